"""MazeEnv: a winding corridor maze whose long tasks need 50-100 steps.

A point-maze in the spirit of the PointMaze task of DINO-WM and the GRASP paper, drawn like the
Wall world (red dot, black walls, white floor) so one reference model architecture serves both.
The layout is fixed: a 9 x 9 block map whose single corridor snakes through the arena, so goals
that are close in the image are often far along the corridor (a non-greedy path).
"""

from __future__ import annotations

import numpy as np

from grasp_ros.envs.base import PointEnv

LAYOUT = (
    "#########",
    "#.......#",
    "#.#####.#",
    "#.#...#.#",
    "#.#.#.#.#",
    "#...#.#.#",
    "#####.#.#",
    "#.....#.#",
    "#########",
)


def _layout_rects(layout: tuple[str, ...], world_size: float) -> np.ndarray:
    """One rectangle per wall block of a text map (``#`` wall, ``.`` floor)."""
    block = world_size / len(layout)
    return np.array(
        [
            [c * block, r * block, (c + 1) * block, (r + 1) * block]
            for r, row in enumerate(layout)
            for c, ch in enumerate(row)
            if ch == "#"
        ]
    )


class MazeEnv(PointEnv):
    """Point agent in a fixed maze; it slides along walls. State: ``[x, y]`` in world units.

    Args:
        image_size: side of the rendered square image in pixels (the world is 64 units).
        seed: seeds the random states drawn by ``reset()`` without a state.
    """

    name = "maze"
    sliding = True
    agent_radius = 1.0
    success_radius = 4.0

    def __init__(self, image_size: int = 64, seed: int | None = None) -> None:
        self._rects = _layout_rects(LAYOUT, self.world_size)
        super().__init__(image_size=image_size, seed=seed)

    def walls(self, states: np.ndarray) -> np.ndarray:
        return self._rects

    def random_states(self, rng: np.random.Generator, n: int) -> np.ndarray:
        out = np.empty((0, 2))
        while len(out) < n:
            cand = rng.uniform(0, self.world_size, size=(4 * n, 2))
            out = np.concatenate([out, cand[self.valid(cand)]])
        return out[:n]

    def _task_candidates(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.random_states(rng, 1)[0], self.random_states(rng, n)
