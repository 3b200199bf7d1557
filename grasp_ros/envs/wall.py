"""WallEnv: two rooms joined by a door; the shortest path to the other room is non-greedy.

A re-implementation of the Wall task that DINO-WM and the GRASP paper plan in: a 64-unit square
arena with border walls, a vertical wall 6 units wide at x = 32 with a door of +-4 units around
a per-task ``door_y``, a red Gaussian dot (std 1.7) on white, ``pos += 2 * action`` stopped
0.5 units short of walls, and success within 4.5 units of the goal. One deliberate difference:
by default the agent slides along a wall instead of stopping dead (see ``sliding``).
"""

from __future__ import annotations

import numpy as np

from grasp_ros.envs.base import PointEnv


class WallEnv(PointEnv):
    """Point agent, two rooms, one door. State: ``[x, y, door_y]`` in world units.

    Args:
        image_size: side of the rendered square image in pixels (the world is 64 units).
        seed: seeds the random states drawn by ``reset()`` without a state.
        sliding: resolve a blocked move along x then y, so the agent slides along walls
            (default). ``False`` is DINO-WM's rule: the whole move stops at the wall. That
            rule makes the displacement jump as an action's component into a wall crosses
            zero; every smooth learned model blurs the jump, and plans that graze a wall then
            fail in the real world although the model predicts success (open-loop GRASP
            success on the shipped model's tasks: 5% at horizon 10 with the stop rule versus
            45% with sliding, in the same test).
    """

    def __init__(self, image_size: int = 64, seed: int | None = None, sliding: bool = True) -> None:
        self.sliding = sliding
        super().__init__(image_size=image_size, seed=seed)

    name = "wall"
    border = 2.0
    wall_x = (29.0, 35.0)
    door_half = 4.0
    door_range = (16.0, 48.0)

    def walls(self, states: np.ndarray) -> np.ndarray:
        door = np.asarray(states, dtype=np.float64)[:, 2]
        s, b = self.world_size, self.border
        fixed = np.array([[0, 0, s, b], [0, s - b, s, s], [0, 0, b, s], [s - b, 0, s, s]])
        x0, x1 = self.wall_x
        upper = np.stack(
            [
                np.full_like(door, x0),
                np.zeros_like(door),
                np.full_like(door, x1),
                door - self.door_half,
            ],
            axis=1,
        )
        lower = np.stack(
            [
                np.full_like(door, x0),
                door + self.door_half,
                np.full_like(door, x1),
                np.full_like(door, s),
            ],
            axis=1,
        )
        fixed = np.broadcast_to(fixed, (len(door), 4, 4))
        return np.concatenate([fixed, upper[:, None], lower[:, None]], axis=1)

    def random_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.empty((0, 3))
        while len(out) < n:
            cand = self._uniform(rng, 2 * n, rng.uniform(*self.door_range, size=2 * n))
            out = np.concatenate([out, cand[self.valid(cand)]])
        return out[:n]

    def exploration_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Half uniform, half within a few steps of the door (passages are otherwise rare)."""
        states = self.random_states(rng, n)
        near = rng.random(n) < 0.5
        x = rng.uniform(self.wall_x[0] - 4, self.wall_x[1] + 4, size=n)
        y = states[:, 2] + rng.uniform(-1, 1, size=n) * self.door_half
        candidates = np.stack([x, y, states[:, 2]], axis=1)
        near &= self.valid(candidates)
        states[near] = candidates[near]
        return states

    def _task_candidates(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        door = rng.uniform(*self.door_range)
        goal_left = bool(rng.integers(2))
        goal = self._uniform(rng, 1, np.full(1, door), left=goal_left)[0]
        starts = self._uniform(rng, n, np.full(n, door), left=not goal_left)
        return goal, starts

    def _uniform(
        self, rng: np.random.Generator, n: int, door: np.ndarray, left: bool | None = None
    ) -> np.ndarray:
        """Uniform positions in one room (``left``) or anywhere, with the given door heights."""
        margin = self.border + self.backoff
        lo, hi = np.full(n, margin), np.full(n, self.world_size - margin)
        if left is True:
            hi[:] = self.wall_x[0] - self.backoff
        elif left is False:
            lo[:] = self.wall_x[1] + self.backoff
        x = rng.uniform(lo, hi)
        y = rng.uniform(margin, self.world_size - margin, size=n)
        return np.stack([x, y, door], axis=1)
