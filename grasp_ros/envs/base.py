"""The environment API shared by grasp_ros's reference worlds.

Every reference world is seen from above as an RGB image and acted on with bounded 2-D actions.
:class:`World` implements the single-agent API (``reset``, ``step``, ``render``, ``state``) once,
on top of the batched ``step_states`` / ``render_states`` that data collection uses to run
thousands of agents at a time; each world adds ``sample_task`` and ``success``.
:class:`PointEnv` is the point agent among axis-aligned walls (Wall, Maze): its subclasses only
describe their walls and how to draw random states. Push-T (:mod:`grasp_ros.envs.pusht`) is a
:class:`World` of its own.

The ground-truth ``state`` is for success checks and tests only; planners see images. Its first
two entries are the agent's position in world units (x = image column, y = image row), which
the visualisers draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from grasp_ros.envs import geometry


@dataclass(frozen=True)
class Task:
    """A start/goal pair whose solution needs about ``horizon`` steps.

    Attributes:
        start_state, goal_state: ground-truth states; ``env.reset(state=start_state)`` restores
            the start exactly (including per-task layout such as the Wall door).
        start_image, goal_image: ``uint8 [H, W, 3]`` observations of the two states.
        horizon: the horizon the task was sampled for.
        optimal_steps: steps of a known solution: for a point world the fewest full-speed
            steps (shortest path, by BFS; reaching the success radius takes about two fewer),
            for Push-T the scripted expert's (``expert_actions``).
        non_greedy: True when the straight line to the goal does not solve the task (point
            worlds: a wall blocks it; Push-T: the block must also turn).
        seed: the seed that produced the task.
        expert_actions: ``[optimal_steps, action_dim]`` actions that solve the task exactly,
            where the world has them (Push-T's scripted expert); ``None`` otherwise.
    """

    start_state: np.ndarray
    goal_state: np.ndarray
    start_image: np.ndarray
    goal_image: np.ndarray
    horizon: int
    optimal_steps: int
    non_greedy: bool
    seed: int | None
    expert_actions: np.ndarray | None = None


class World:
    """A reference world: batched dynamics and rendering, and the single-agent API on them.

    Attributes:
        name: the registry name (``make_env(name)``).
        world_size: side of the square world in world units; the image covers all of it.
        success_radius: how close (world units) the goal's object position must be reached;
            the demo draws it around the goal.
        agent_radius: the agent's radius in world units (0: a point).
        metres_per_unit: the world's size on a robot, for REP-103 messages (the nodes'
            ``world_scale`` when that is 0): the 64-unit point worlds are a 3.2 m floor.
        action_dim, action_low, action_high: the action box; actions are clipped to it.
    """

    name = ""
    world_size = 64.0
    success_radius = 4.5
    agent_radius = 0.0
    metres_per_unit = 0.05
    action_dim = 2

    def __init__(self, image_size: int = 64, seed: int | None = None) -> None:
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        self.image_size = int(image_size)
        self.action_low = -np.ones(self.action_dim, dtype=np.float32)
        self.action_high = np.ones(self.action_dim, dtype=np.float32)
        self._rng = np.random.default_rng(seed)
        self._state = self.random_states(self._rng, 1)[0]

    # -- what every world describes -------------------------------------------------------
    def step_states(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next states ``[N, state_dim]`` for states ``[N, state_dim]`` and actions ``[N, 2]``."""
        raise NotImplementedError

    def render_states(self, states: np.ndarray) -> np.ndarray:
        """Observations ``uint8 [N, H, W, 3]`` of states ``[N, state_dim]``."""
        raise NotImplementedError

    def random_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random valid states ``[n, state_dim]``."""
        raise NotImplementedError

    def exploration_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Start states for random-exploration data; uniform (``random_states``) by default.

        Worlds where random actions rarely reach what matters override it so that the data
        covers it (a door, a block to push): a world model learns only the transitions it has
        seen.
        """
        return self.random_states(rng, n)

    def object_pose(self, states: np.ndarray) -> np.ndarray:
        """``[N, 3]`` poses ``(x, y, yaw)`` of what the task is about, for states ``[N, D]``.

        The agent (yaw 0) in a point world, the block in Push-T: the success test compares it
        with the goal's, the demo marks it, the simulator publishes it (``sim/object_pose``)
        so that a recording can be scored without the full state.
        """
        raise NotImplementedError

    def reached(self, pose: np.ndarray, goal_pose: np.ndarray) -> bool:
        """The success test on object poses ``(x, y, yaw)`` (see :meth:`object_pose`)."""
        raise NotImplementedError

    def success(self, state: np.ndarray, goal_state: np.ndarray) -> bool:
        """True when ``state`` solves the task whose goal is ``goal_state``."""
        return self.reached(self._pose(state), self._pose(goal_state))

    def distance(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """Distance (world units) between the object positions of a state and a goal state."""
        return float(np.linalg.norm(self._pose(state)[:2] - self._pose(goal_state)[:2]))

    def _pose(self, state: np.ndarray) -> np.ndarray:
        return self.object_pose(np.asarray(state, dtype=np.float64)[None])[0]

    def outlines(self, state: np.ndarray) -> dict[str, np.ndarray]:
        """Closed outlines ``{name: [K, 2]}`` (world units) of the bodies in ``state`` that are
        not points, for drawing a goal over a camera image; none in a point world."""
        return {}

    def sample_task(self, horizon: int, seed: int | None = None) -> Task:
        """A start/goal pair drawn with ``seed`` whose solution needs about ``horizon`` steps."""
        raise NotImplementedError

    # -- single-agent API -----------------------------------------------------------------
    @property
    def state(self) -> np.ndarray:
        """Ground-truth state (a copy): for success checks and tests, never for planners."""
        return self._state.copy()

    def reset(self, seed: int | None = None, state: np.ndarray | None = None) -> np.ndarray:
        """Start an episode at ``state`` (exactly), or at a random state drawn with ``seed``."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        if state is None:
            self._state = self.random_states(self._rng, 1)[0]
        else:
            state = np.asarray(state, dtype=np.float64).reshape(-1)
            if state.shape != self._state.shape:
                raise ValueError(
                    f"{type(self).__name__} state has shape {self._state.shape}, got {state.shape}"
                )
            self._state = state.copy()
        return self.render()

    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply one action (clipped to the bounds) and return the new observation."""
        action = np.asarray(action, dtype=np.float64).reshape(1, self.action_dim)
        self._state = self.step_states(self._state[None], action)[0]
        return self.render()

    def render(self) -> np.ndarray:
        """The current observation, RGB ``uint8 [H, W, 3]``."""
        return self.render_states(self._state[None])[0]


class PointEnv(World):
    """A point agent with bounded 2-D velocity actions among walls, rendered top-down.

    Dynamics: ``pos += speed * clip(action, -1, 1)``, stopped (and pushed back ``backoff``)
    where the move would enter a wall; with ``sliding`` the move is resolved along x then y,
    so the agent slides along walls instead of stopping.
    """

    speed = 2.0
    backoff = 0.5
    sliding = False
    dot_std = 1.7
    dot_color = (1.0, 0.0, 0.0)
    wall_color = (0.0, 0.0, 0.0)
    #: Fraction of the horizon below which a sampled task counts as too easy.
    min_task_fraction = 0.75

    # -- what subclasses describe ------------------------------------------------------------
    def walls(self, states: np.ndarray) -> np.ndarray:
        """Wall rectangles ``[M, 4]`` (fixed layout) or ``[N, M, 4]`` (per state)."""
        raise NotImplementedError

    def _task_candidates(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """One goal state ``[state_dim]`` and ``n`` start states that share its layout."""
        raise NotImplementedError

    # -- batched core ---------------------------------------------------------------------
    def step_states(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Next states ``[N, state_dim]`` for states ``[N, state_dim]`` and actions ``[N, 2]``."""
        states = np.asarray(states, dtype=np.float64)
        actions = np.clip(np.asarray(actions, dtype=np.float64), self.action_low, self.action_high)
        rects = geometry.inflate(self.walls(states), self.agent_radius)
        mover = geometry.move_sliding if self.sliding else geometry.move
        out = states.copy()
        out[:, :2] = mover(states[:, :2], self.speed * actions, rects, self.backoff)
        return out

    def render_states(self, states: np.ndarray) -> np.ndarray:
        """Observations ``uint8 [N, H, W, 3]`` of states ``[N, state_dim]``."""
        states = np.asarray(states, dtype=np.float64)
        mask = ~geometry.free_grid(self.walls(states), self.world_size, self.image_size)
        return geometry.render(
            states[:, :2], mask, self.world_size, self.dot_std, self.dot_color, self.wall_color
        )

    def valid(self, states: np.ndarray) -> np.ndarray:
        """``[N]`` bool: the agent centre lies inside the arena and outside every wall."""
        states = np.asarray(states, dtype=np.float64)
        rects = geometry.inflate(self.walls(states), self.agent_radius)
        if rects.ndim == 2:
            rects = np.broadcast_to(rects, (len(states), *rects.shape))
        p = states[:, None, :2]
        inside = ((p > rects[..., :2]) & (p < rects[..., 2:])).all(-1).any(-1)
        in_arena = ((states[:, :2] > 0) & (states[:, :2] < self.world_size)).all(-1)
        return in_arena & ~inside

    # -- tasks --------------------------------------------------------------------------
    def object_pose(self, states: np.ndarray) -> np.ndarray:
        """The agent's position, yaw 0."""
        states = np.asarray(states, dtype=np.float64)
        return np.concatenate([states[:, :2], np.zeros((len(states), 1))], axis=1)

    def reached(self, pose: np.ndarray, goal_pose: np.ndarray) -> bool:
        """True when the agent is within ``success_radius`` of the goal position."""
        gap = np.asarray(pose, dtype=np.float64)[:2] - np.asarray(goal_pose)[:2]
        return bool(np.linalg.norm(gap) < self.success_radius)

    def optimal_steps(self, state: np.ndarray, goal_state: np.ndarray) -> int:
        """Fewest full-speed steps from ``state`` to ``goal_state`` (BFS on a 1-unit grid)."""
        dist = self._distance_field(np.asarray(goal_state, dtype=np.float64))
        d = geometry.lookup(dist, np.asarray(state, dtype=np.float64)[None, :2], self.world_size)[0]
        if not np.isfinite(d):
            raise ValueError("the goal is unreachable from this state")
        return math.ceil(d / self.speed)

    def shortest_path(self, state: np.ndarray, goal_state: np.ndarray) -> np.ndarray:
        """States ``[n + 1, state_dim]`` along a shortest full-speed path to the goal's radius.

        Greedy descent of the BFS distance field over the 8 full-speed moves (the box's corners
        and edge midpoints), through this world's own ``step_states``: the ground truth that a
        learned cost-to-go is checked against (it must fall along this path, also where the
        path turns away from the goal to pass a door).
        """
        goal_state = np.asarray(goal_state, dtype=np.float64)
        dist = self._distance_field(goal_state)
        unit = [(x, y) for x in (-1, 0, 1) for y in (-1, 0, 1) if x or y]
        moves = np.array([(f * x, f * y) for f in (1.0, 0.5) for x, y in unit])
        path = [np.asarray(state, dtype=np.float64)]
        limit = 2 * self.optimal_steps(path[0], goal_state) + 2
        while not self.success(path[-1], goal_state) and len(path) <= limit:
            nxt = self.step_states(np.repeat(path[-1][None], len(moves), 0), moves)
            d = geometry.lookup(dist, nxt[:, :2], self.world_size)
            d += 1e-3 * np.linalg.norm(nxt[:, :2] - goal_state[:2], axis=1)  # ties: nearer
            seen = np.stack(path)[:, None, :2]
            # Never step back onto a visited spot: the grid field can be flat at a corner.
            d[(np.linalg.norm(nxt[None, :, :2] - seen, axis=-1) < 0.25).any(0)] = np.inf
            path.append(nxt[int(np.argmin(d))])
        return np.stack(path)

    def sample_task(self, horizon: int, seed: int | None = None) -> Task:
        """A task needing between ``min_task_fraction * horizon`` and ``horizon`` steps.

        Candidates are drawn with ``seed`` and scored by their true shortest path (BFS), so a
        planner with ``horizon`` steps can solve the task while a much shorter one cannot;
        tasks whose straight line is blocked by a wall are preferred (non-greedy). When no
        candidate fits (a horizon beyond this world's longest path) the closest one is used:
        check ``Task.optimal_steps``.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be positive, got {horizon}")
        rng = np.random.default_rng(seed)
        lo = math.ceil(self.min_task_fraction * horizon)
        target = 0.5 * (lo + horizon)
        best: tuple[float, np.ndarray, np.ndarray, int, bool] | None = None
        for _ in range(48):
            goal, starts = self._task_candidates(rng, 128)
            dist = self._distance_field(goal)
            steps = np.ceil(geometry.lookup(dist, starts[:, :2], self.world_size) / self.speed)
            blocked = self._blocked(starts, goal)
            # Outside the window costs most, then an unblocked line, then distance to target.
            miss = np.maximum(lo - steps, 0) + np.maximum(steps - horizon, 0)
            cost = 10 * miss + 5 * ~blocked + np.abs(steps - target) / (horizon + 1)
            i = int(np.argmin(cost))
            if np.isfinite(cost[i]) and (best is None or cost[i] < best[0]):
                best = (float(cost[i]), starts[i], goal, int(steps[i]), bool(blocked[i]))
            if best is not None and best[0] < 1:
                break
        if best is None:
            raise RuntimeError(f"{type(self).__name__} found no reachable task")
        _, start, goal, steps, blocked = best
        images = self.render_states(np.stack([start, goal]))
        return Task(
            start_state=start.copy(),
            goal_state=goal.copy(),
            start_image=images[0],
            goal_image=images[1],
            horizon=int(horizon),
            optimal_steps=steps,
            non_greedy=blocked,
            seed=seed,
        )

    # -- helpers --------------------------------------------------------------------------
    def _distance_field(self, goal: np.ndarray) -> np.ndarray:
        """Geodesic distance (world units) from the goal to every cell of a 1-unit grid."""
        cells = int(self.world_size)
        rects = geometry.inflate(self.walls(goal[None]), self.agent_radius)
        rects = rects[0] if rects.ndim == 3 else rects
        free = geometry.free_grid(rects, self.world_size, cells)
        ij = np.clip(np.floor(goal[:2] * cells / self.world_size).astype(int), 0, cells - 1)
        dist = geometry.grid_distances(free, (int(ij[1]), int(ij[0])))
        return dist * self.world_size / cells

    def _blocked(self, starts: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """``[N]`` bool: the straight line from each start to the goal touches a wall."""
        rects = geometry.inflate(self.walls(starts), self.agent_radius)
        delta = goal[None, :2] - starts[:, :2]
        end = geometry.move(starts[:, :2], delta, rects, 0.0)
        return np.linalg.norm(end - goal[None, :2], axis=1) > 1e-9
