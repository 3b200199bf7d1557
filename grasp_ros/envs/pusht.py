"""PushTEnv: a disc agent pushes a T-shaped block into a goal pose (pymunk physics).

A re-implementation of the Push-T task that world-model planners are evaluated on (DINO-WM's
``pusht``, stable-worldmodel's ``swm/PushT-v1``, after Diffusion Policy's): a 512-unit board
walled at 7 and 504, a disc agent of radius 15, a T block (a 120 x 30 bar over a 30 x 90 stem)
of mass 1 with frictionless contacts and full velocity damping (it moves only while pushed:
quasi-static pushing). An action ``a`` in ``[-1, 1]^2`` is a target relative to the agent,
``agent + 100 a`` (kept on the board), tracked by a PD controller (``k_p = 100``, ``k_v = 20``)
over ten 10 ms physics steps: 10 actions a second, at most about 40 units a step. Two
deliberate differences: the reference's agent is kinematic and its walls thin segments, so a
block pushed into a wall is forced through it; here the agent is a heavy disc (mass 100) and
the walls thick, so the wall stops the push.

Success is stable-worldmodel's tolerance, the block within 20 units of the goal position and
pi/9 of its angle; that test also counts the agent's position in the 20 units, which this one
leaves out (the goal is the block's pose, and where the pusher rests is free).

State: ``[agent_x, agent_y, block_x, block_y, block_angle, agent_vx, agent_vy]`` (the
reference's 7-d state). Block damping makes the block's velocity irrelevant to the next step,
and each step starts a fresh physics space, so a state determines its future exactly:
``reset(state=s)`` then ``step(a)`` always gives ``step_states(s, a)``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pymunk

from grasp_ros.envs.base import Task, World

BOARD = 512.0
WALL_LO, WALL_HI, WALL_RADIUS = 5.0, 506.0, 2.0
AGENT_RADIUS = 15.0
#: The T in the block's body frame (y grows down the stem): the bar, then the stem.
BAR = ((-60.0, 0.0), (60.0, 0.0), (60.0, 30.0), (-60.0, 30.0))
STEM = ((-15.0, 30.0), (15.0, 30.0), (15.0, 120.0), (-15.0, 120.0))
#: The block turns about the mean of its two parts' centroids, as in the reference.
BLOCK_PIVOT = (0.0, 45.0)
#: The walls as thick boxes ``(x0, y0, x1, y1)`` around the board, their inner faces where the
#: reference's thin walls end: a block squeezed against a thin wall slips through it.
_INNER_LO, _INNER_HI, _OUTER = WALL_LO + WALL_RADIUS, WALL_HI - WALL_RADIUS, 200.0
_WALL_BOXES = (
    (-_OUTER, -_OUTER, BOARD + _OUTER, _INNER_LO),
    (-_OUTER, _INNER_HI, BOARD + _OUTER, BOARD + _OUTER),
    (-_OUTER, -_OUTER, _INNER_LO, BOARD + _OUTER),
    (_INNER_HI, -_OUTER, BOARD + _OUTER, BOARD + _OUTER),
)
#: The agent is a heavy disc (the reference's is kinematic, infinitely strong): it pushes the
#: block as if unstoppable, but a wall stops both instead of the block being forced through.
AGENT_MASS = 100.0
K_P, K_V = 100.0, 20.0
PHYSICS_DT, SUBSTEPS = 0.01, 10
ACTION_SCALE = 100.0
#: Supersampling factor of the renderer: edges are area-averaged, not aliased.
SUPERSAMPLE = 4
AGENT_COLOR = (65, 105, 225)  # RoyalBlue, as in the reference
BLOCK_COLOR = (119, 136, 153)  # LightSlateGray


class PushTEnv(World):
    """Push-T (see the module docstring). State: 7-d, in board units (0-512) and radians.

    Args:
        image_size: side of the rendered square image in pixels (the board is 512 units).
        seed: seeds the random states drawn by ``reset()`` without a state.
    """

    name = "pusht"
    world_size = BOARD
    #: The 512-unit board as a 0.512 m table top, the size of the real Push-T setups.
    metres_per_unit = 0.001
    #: Block position tolerance (units) and angle tolerance (radians) of ``success``.
    success_radius = 20.0
    success_angle = math.pi / 9
    agent_radius = AGENT_RADIUS
    #: Fraction of the horizon the scripted expert spends on a task's solution.
    task_fraction = 0.875

    # -- batched core ---------------------------------------------------------------------
    def step_states(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.float64)
        actions = np.clip(np.asarray(actions, dtype=np.float64), self.action_low, self.action_high)
        return np.stack([_simulate(s, a) for s, a in zip(states, actions, strict=True)])

    def render_states(self, states: np.ndarray) -> np.ndarray:
        states = np.asarray(states, dtype=np.float64)
        return np.stack([self._render_one(s) for s in states])

    def random_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Agent uniform in ``[50, 450]^2``, block in ``[100, 400]^2`` at any angle, at rest."""
        out = np.empty((0, 7))
        while len(out) < n:
            m = 2 * n
            cand = np.zeros((m, 7))
            cand[:, :2] = rng.uniform(50, 450, size=(m, 2))
            cand[:, 2:4] = rng.uniform(100, 400, size=(m, 2))
            cand[:, 4] = rng.uniform(0, 2 * np.pi, size=m)
            out = np.concatenate([out, cand[self.valid(cand)]])
        return out[:n]

    def exploration_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """A quarter uniform, the rest with the agent 5-60 units from the block's outline.

        A uniformly placed agent acting at random touches the block in few steps, and a world
        model learns pushing only from the steps where it does.
        """
        return self._near_block(rng, self.random_states(rng, n), rng.random(n) < 0.75)

    def _near_block(
        self, rng: np.random.Generator, states: np.ndarray, near: np.ndarray
    ) -> np.ndarray:
        """``states`` with the agent moved 5-60 units out from a random point of the block's
        outline where ``near`` (and that spot is valid)."""
        n = len(states)
        outline = block_outline(states)
        edge = rng.integers(0, outline.shape[1], size=n)
        a, b = outline[np.arange(n), edge], outline[np.arange(n), (edge + 1) % outline.shape[1]]
        point = a + rng.random((n, 1)) * (b - a)
        away = point - states[:, 2:4] - _rotate(np.array(BLOCK_PIVOT), states[:, 4])
        away /= np.linalg.norm(away, axis=1, keepdims=True) + 1e-9
        candidates = states.copy()
        candidates[:, :2] = point + away * (AGENT_RADIUS + rng.uniform(5, 60, size=(n, 1)))
        near = near & self.valid(candidates)
        out = states.copy()
        out[near] = candidates[near]
        return out

    def valid(self, states: np.ndarray) -> np.ndarray:
        """``[N]`` bool: the agent is on the board and clear of the block."""
        states = np.asarray(states, dtype=np.float64)
        lo, hi = _INNER_LO + AGENT_RADIUS, _INNER_HI - AGENT_RADIUS
        on_board = ((states[:, :2] > lo) & (states[:, :2] < hi)).all(1)
        return on_board & (distance_to_block(states) > AGENT_RADIUS + 1.0)

    # -- tasks ----------------------------------------------------------------------------
    def object_pose(self, states: np.ndarray) -> np.ndarray:
        """The block's pose ``(x, y, angle)``."""
        return np.asarray(states, dtype=np.float64)[:, 2:5].copy()

    def reached(self, pose: np.ndarray, goal_pose: np.ndarray) -> bool:
        """The block within ``success_radius`` of the goal position and ``success_angle`` of
        its angle."""
        gap, turn = pose_error(pose, goal_pose)
        return bool(gap < self.success_radius and turn < self.success_angle)

    def outlines(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"block": block_outline(np.asarray(state, dtype=np.float64)[None])[0]}

    def sample_task(self, horizon: int, seed: int | None = None) -> Task:
        """The goal is where a scripted pushing expert takes the block in about ``horizon``
        steps.

        From a random start with the agent 5-60 units from the block, :class:`PushExpert`
        makes ``round(task_fraction * horizon)`` steps of pushes (each: go around the block to
        a point of its outline, push through it); its actions are ``Task.expert_actions`` and
        their count ``Task.optimal_steps``, a known solution that reaches the goal exactly (an
        upper bound on the shortest one). A candidate whose block ends within 80 units of a
        wall, or whose start already counts as solved, is drawn again; after 32 draws the one
        that moved the block most is kept (very short horizons can leave the block in
        tolerance). ``non_greedy`` is True when the block must turn by more than the angle
        tolerance, so that pushing it straight to the goal position does not solve the task.
        """
        if horizon < 1:
            raise ValueError(f"horizon must be positive, got {horizon}")
        rng = np.random.default_rng(seed)
        steps = max(1, round(self.task_fraction * horizon))
        best: tuple[float, np.ndarray, np.ndarray, list[np.ndarray]] | None = None
        for _ in range(32):
            start = self.random_states(rng, 1)
            start = self._near_block(rng, start, np.ones(1, bool))[0]
            expert = PushExpert(self, int(rng.integers(2**31)))
            state, actions = start, []
            for _ in range(steps):
                actions.append(expert(0.0, state))
                state = self.step_states(state[None], actions[-1][None])[0]
            gap, turn = pose_error(start[2:5], state[2:5])
            change = gap / self.success_radius + turn / self.success_angle
            inside = (state[2:4] > 80).all() and (state[2:4] < BOARD - 80).all()
            if inside and (best is None or change > best[0]):
                best = (change, start, state, actions)
            if best is not None and not self.success(start, state) and inside:
                break
        if best is None:
            raise RuntimeError("PushTEnv found no task whose block stays off the walls")
        _, start, state, actions = best
        images = self.render_states(np.stack([start, state]))
        return Task(
            start_state=start,
            goal_state=state,
            start_image=images[0],
            goal_image=images[1],
            horizon=int(horizon),
            optimal_steps=steps,
            non_greedy=bool(pose_error(start[2:5], state[2:5])[1] >= self.success_angle),
            seed=seed,
            expert_actions=np.stack(actions).astype(np.float32),
        )

    # -- helpers --------------------------------------------------------------------------
    def _render_one(self, state: np.ndarray) -> np.ndarray:
        big = self.image_size * SUPERSAMPLE
        canvas = np.full((big, big, 3), 255, dtype=np.uint8)
        scale = big / BOARD
        shift = 4  # fixed-point bits: sub-pixel outlines
        for part in (BAR, STEM):
            pts = _to_world(np.array(part), state[None])[0] * scale - 0.5
            cv2.fillPoly(
                canvas, [np.round(pts * 2**shift).astype(np.int32)], BLOCK_COLOR, cv2.LINE_8, shift
            )
        centre = np.round((state[:2] * scale - 0.5) * 2**shift).astype(np.int32)
        radius = round(AGENT_RADIUS * scale * 2**shift)
        cv2.circle(
            canvas, tuple(int(v) for v in centre), radius, AGENT_COLOR, -1, cv2.LINE_8, shift
        )
        return cv2.resize(canvas, (self.image_size, self.image_size), interpolation=cv2.INTER_AREA)


class PushExpert:
    """A scripted pusher on ground truth: repeated pushes at points of the block's outline.

    Each push picks a point of the T's outline (near the agent, pushing roughly along a random
    heading kept for the whole run), a speed and a length; the agent goes to a spot just
    outside that point (around the block, never through it, via waypoints on a circle about
    the block), then drives inwards along the outline's normal for the push's length. A
    :data:`~grasp_ros.envs.agents.Policy` (``(t, state) -> action``); deterministic per seed.
    """

    #: Radius (units) of the circle about the block's pivot that the agent goes around on.
    clearance = 130.0
    #: Steps the agent may take to reach a push's start (e.g. one against a wall) before
    #: another push is drawn.
    patience = 25

    #: Candidate push points drawn for each push.
    choices = 4

    def __init__(self, env: PushTEnv, seed: int) -> None:
        self.env = env
        self.rng = np.random.default_rng(seed)
        angle = self.rng.uniform(0, 2 * math.pi)
        self.heading = np.array([math.cos(angle), math.sin(angle)])
        self._push: tuple[np.ndarray, np.ndarray, int] | None = None  # local point, normal, steps
        self._pushing, self._approach, self.speed = 0, 0, 0.0

    def __call__(self, _t: float, state: np.ndarray) -> np.ndarray:
        if self._push is None or self._approach > self.patience:
            self._push, self._approach = self._new_push(state), 0
        point, normal, length = self._push
        world_point = _to_world(point[None], state[None])[0, 0]
        world_normal = _rotate(normal, np.array([state[4]]))[0]
        if self._pushing:
            self._pushing += 1
            if self._pushing > length:
                self._push, self._pushing = None, 0
            return np.clip(-world_normal * self.speed, -1, 1).astype(np.float32)
        ready = world_point + world_normal * (AGENT_RADIUS + 6.0)
        if np.linalg.norm(ready - state[:2]) < 8.0:
            self._pushing = 1
            return np.clip(-world_normal * self.speed, -1, 1).astype(np.float32)
        self._approach += 1
        target = self._waypoint(state, ready)
        return np.clip((target - state[:2]) / ACTION_SCALE, -1, 1).astype(np.float32)

    def _new_push(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """The next push: of a few random points of the outline, the one nearest the agent
        whose push goes most along the expert's heading (so pushes add up, not cancel)."""
        edges = _outline_edges()
        lengths = np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1)
        i = self.rng.choice(len(edges), size=self.choices, p=lengths / lengths.sum())
        a, b = edges[i, 0], edges[i, 1]
        points = a + self.rng.uniform(0.1, 0.9, size=(self.choices, 1)) * (b - a)
        d = (b - a) / np.linalg.norm(b - a, axis=1, keepdims=True)
        normals = np.stack([d[:, 1], -d[:, 0]], axis=1)  # outward: the outline runs clockwise
        world = _to_world(points, state[None])[0]
        turned = _rotate(normals, np.full(self.choices, state[4]))
        ready = world + turned * (AGENT_RADIUS + 6.0)
        score = np.linalg.norm(ready - state[:2], axis=1) + 80.0 * turned @ self.heading
        k = int(np.argmin(score))
        self.speed = float(self.rng.uniform(0.3, 0.8))
        return points[k], normals[k], int(self.rng.integers(4, 12))

    def _waypoint(self, state: np.ndarray, ready: np.ndarray) -> np.ndarray:
        """``ready`` if the straight way there misses the block, else a point on the way around."""
        if _segment_clear(state, state[:2], ready):
            return ready
        pivot = state[2:4] + _rotate(np.array(BLOCK_PIVOT), np.array([state[4]]))[0]
        here, there = state[:2] - pivot, ready - pivot
        a0, a1 = math.atan2(here[1], here[0]), math.atan2(there[1], there[0])
        turn = (a1 - a0 + math.pi) % (2 * math.pi) - math.pi
        if np.linalg.norm(here) < self.clearance - 10:
            angle = a0  # first straight out, away from the block
        else:
            angle = a0 + np.clip(turn, -0.6, 0.6)
        return pivot + self.clearance * np.array([math.cos(angle), math.sin(angle)])


def pose_error(pose: np.ndarray, goal_pose: np.ndarray) -> tuple[float, float]:
    """Position error (units) and angle error (radians, wrapped to ``[0, pi]``) between two
    block poses ``(x, y, angle)``."""
    pose, goal = np.asarray(pose, dtype=np.float64), np.asarray(goal_pose, dtype=np.float64)
    gap = float(np.linalg.norm(pose[:2] - goal[:2]))
    turn = abs(float(pose[2] - goal[2])) % (2 * math.pi)
    return gap, min(turn, 2 * math.pi - turn)


def block_outline(states: np.ndarray) -> np.ndarray:
    """The T's eight corners ``[N, 8, 2]`` in world units, in order around its outline."""
    return _to_world(_outline(), np.asarray(states, dtype=np.float64))


#: A step pushes when some point of the block's outline (a turn too) moves over this many units.
PUSH_MOVE = 2.0


def pushing_steps(states: np.ndarray) -> np.ndarray:
    """``[E, L]``: does step ``t`` of episodes ``[E, L + 1, 7]`` push the block (PUSH_MOVE)?"""
    states = np.asarray(states, dtype=np.float64)
    outline = block_outline(states.reshape(-1, 7)).reshape(*states.shape[:2], -1, 2)
    return np.linalg.norm(np.diff(outline, axis=1), axis=-1).max(-1) > PUSH_MOVE


def distance_to_block(states: np.ndarray) -> np.ndarray:
    """``[N]`` distance from the agent's centre to the T (0 inside it)."""
    states = np.asarray(states, dtype=np.float64)
    local = _rotate(states[:, :2] - states[:, 2:4], -states[:, 4])
    out = np.full(len(states), np.inf)
    for part in (BAR, STEM):
        lo, hi = np.min(part, axis=0), np.max(part, axis=0)
        gap = np.maximum(np.maximum(lo - local, local - hi), 0.0)
        out = np.minimum(out, np.linalg.norm(gap, axis=1))
    return out


def _simulate(state: np.ndarray, action: np.ndarray) -> np.ndarray:
    """One control step of one state in a fresh pymunk space (no contact state carried over)."""
    space = pymunk.Space()
    space.gravity = (0.0, 0.0)
    space.damping = 0.0  # the block keeps no velocity between physics steps
    for x0, y0, x1, y1 in _WALL_BOXES:
        corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        space.add(pymunk.Poly(space.static_body, corners))
    agent = pymunk.Body(AGENT_MASS, math.inf)
    agent.velocity_func = _keep_velocity
    agent.position = (float(state[0]), float(state[1]))
    agent.velocity = (float(state[5]), float(state[6]))
    space.add(agent, pymunk.Circle(agent, AGENT_RADIUS))
    bar_area, stem_area = 120.0 * 30.0, 30.0 * 90.0
    moment = sum(
        pymunk.moment_for_poly(
            area / (bar_area + stem_area), part, (-BLOCK_PIVOT[0], -BLOCK_PIVOT[1])
        )
        for part, area in ((BAR, bar_area), (STEM, stem_area))
    )
    block = pymunk.Body(1.0, moment)
    block.center_of_gravity = BLOCK_PIVOT
    block.angle = float(state[4])  # before the position: a turn moves the origin about the pivot
    block.position = (float(state[2]), float(state[3]))
    space.add(block, pymunk.Poly(block, BAR), pymunk.Poly(block, STEM))
    target = np.clip(
        state[:2] + ACTION_SCALE * action, _INNER_LO + AGENT_RADIUS, _INNER_HI - AGENT_RADIUS
    )
    for _ in range(SUBSTEPS):
        pos, vel = np.array(agent.position), np.array(agent.velocity)
        agent.velocity = tuple(vel + (K_P * (target - pos) - K_V * vel) * PHYSICS_DT)
        space.step(PHYSICS_DT)
    return np.array(
        [
            *agent.position,
            *block.position,
            block.angle % (2 * math.pi),
            *agent.velocity,
        ]
    )


def _keep_velocity(body: pymunk.Body, gravity: object, damping: float, dt: float) -> None:
    """The agent's velocity is the PD controller's alone: no damping, no forces."""


def _rotate(v: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Vectors ``[N, 2]`` (or one ``[2]``) turned by ``angle`` ``[N]``: ``[N, 2]``.

    A positive angle turns x towards y, so clockwise on the image (y grows downwards).
    """
    v = np.broadcast_to(np.asarray(v, dtype=np.float64), (len(angle), 2))
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1]], axis=1)


def _to_world(local: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Block-frame points ``[K, 2]`` to world points ``[N, K, 2]`` for block poses in states."""
    c, s = np.cos(states[:, 4])[:, None], np.sin(states[:, 4])[:, None]
    x = c * local[None, :, 0] - s * local[None, :, 1] + states[:, 2:3]
    y = s * local[None, :, 0] + c * local[None, :, 1] + states[:, 3:4]
    return np.stack([x, y], axis=-1)


def _outline() -> np.ndarray:
    """The T's corners in the block frame, clockwise on the image (x right, y down)."""
    return np.array(
        [(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30)],
        dtype=np.float64,
    )


def _outline_edges() -> np.ndarray:
    """The outline's edges ``[8, 2, 2]`` (start, end) in the block frame."""
    corners = _outline()
    return np.stack([corners, np.roll(corners, -1, axis=0)], axis=1)


def _segment_clear(state: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    """True when the agent moving from ``a`` to ``b`` keeps clear of the block."""
    t = np.linspace(0, 1, 12)[:, None]
    probes = np.repeat(state[None], len(t), 0)
    probes[:, :2] = a + t * (b - a)
    return bool((distance_to_block(probes) > AGENT_RADIUS + 2.0).all())
