"""Vectorised 2-D geometry for point agents among axis-aligned walls.

All environments in :mod:`grasp_ros.envs` are a point agent moving among rectangles, so motion,
rendering and shortest paths are written once here, batched over many agents with numpy (data
collection steps thousands of agents at once). Rectangles are ``[x0, y0, x1, y1]`` in world
units; ``x`` grows to the right (image column), ``y`` grows downwards (image row).
"""

from __future__ import annotations

import numpy as np


def move(pos: np.ndarray, delta: np.ndarray, rects: np.ndarray, backoff: float = 0.5) -> np.ndarray:
    """Move points by ``delta``, stopping ``backoff`` short of the first wall on the way.

    This is DINO-WM's wall rule (a move that would cross a wall is stopped and pushed back
    0.5 px), made exact for any step length with a segment/box (slab) test.

    Args:
        pos: ``[N, 2]`` start positions.
        delta: ``[N, 2]`` displacements.
        rects: ``[M, 4]`` walls shared by all agents, or ``[N, M, 4]`` per agent.
        backoff: distance kept from the wall face along the direction of motion.
    """
    p = pos[:, None, :]
    d = delta[:, None, :]
    lo, hi = rects[..., :2], rects[..., 2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = (lo - p) / d
        t1 = (hi - p) / d
    still = d == 0
    inside = (p > lo) & (p < hi)
    t_near = np.where(still, np.where(inside, -np.inf, np.inf), np.minimum(t0, t1))
    t_far = np.where(still, np.where(inside, np.inf, -np.inf), np.maximum(t0, t1))
    enter, leave = t_near.max(-1), t_far.min(-1)
    hit = (enter <= leave) & (leave > 0) & (enter <= 1)
    t = np.where(hit, np.clip(enter, 0.0, 1.0), np.inf).min(-1)
    blocked = np.isfinite(t)
    length = np.linalg.norm(delta, axis=-1)
    travel = np.where(
        blocked, np.maximum(np.nan_to_num(t, posinf=1.0) * length - backoff, 0.0), length
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(length[:, None] > 0, delta / length[:, None], 0.0)
    return pos + unit * travel[:, None]


def move_sliding(
    pos: np.ndarray, delta: np.ndarray, rects: np.ndarray, backoff: float = 0.5
) -> np.ndarray:
    """Like :func:`move`, but along x first and then along y, so agents slide along walls."""
    zero = np.zeros_like(delta[:, :1])
    pos = move(pos, np.concatenate([delta[:, :1], zero], axis=1), rects, backoff)
    return move(pos, np.concatenate([zero, delta[:, 1:]], axis=1), rects, backoff)


def inflate(rects: np.ndarray, radius: float) -> np.ndarray:
    """Grow rectangles by ``radius`` on every side (keeps a round agent's centre out)."""
    return rects + np.array([-radius, -radius, radius, radius])


def free_grid(rects: np.ndarray, world_size: float, cells: int) -> np.ndarray:
    """Bool grid (row = y) of cells whose centre is outside every wall.

    ``[M, 4]`` rects give a ``[cells, cells]`` grid, ``[N, M, 4]`` rects ``[N, cells, cells]``.
    """
    if rects.ndim == 2:
        return free_grid(rects[None], world_size, cells)[0]
    c = (np.arange(cells) + 0.5) * world_size / cells
    r = rects[:, :, None, :]
    in_x = (c >= r[..., 0]) & (c <= r[..., 2])
    in_y = (c >= r[..., 1]) & (c <= r[..., 3])
    return ~(in_y[:, :, :, None] & in_x[:, :, None, :]).any(1)


def grid_distances(free: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Chebyshev geodesic distance (in cells) from ``source`` (row, col) over free cells.

    Breadth-first search with 8-connected moves, written as repeated 3x3 dilation. Diagonal
    moves cost one cell, which is exact for an agent whose actions lie in a box ``[-1, 1]^2``.
    Unreachable cells are ``inf``.
    """
    dist = np.full(free.shape, np.inf)
    if not free[source]:
        return dist
    reached = np.zeros_like(free)
    reached[source] = True
    dist[source] = 0
    step = 0
    while True:
        step += 1
        padded = np.pad(reached, 1)
        grown = np.zeros_like(reached)
        h, w = reached.shape
        for dy in range(3):
            for dx in range(3):
                grown |= padded[dy : dy + h, dx : dx + w]
        new = grown & free & ~reached
        if not new.any():
            return dist
        dist[new] = step
        reached |= new


def lookup(dist: np.ndarray, pos: np.ndarray, world_size: float) -> np.ndarray:
    """Distances at world positions ``[N, 2]``.

    A position whose own cell is blocked (an agent hugging a wall can sit in a cell whose
    centre is inside the inflated wall) takes its nearest neighbour's distance plus one.
    """
    cells = dist.shape[0]
    ij = np.clip(np.floor(pos * cells / world_size).astype(int), 0, cells - 1)
    own = dist[ij[:, 1], ij[:, 0]]
    padded = np.pad(dist, 1, constant_values=np.inf)
    near = np.full(len(pos), np.inf)
    for dy in range(3):
        for dx in range(3):
            near = np.minimum(near, padded[ij[:, 1] + dy, ij[:, 0] + dx] + 1.0)
    return np.where(np.isfinite(own), own, near)


def render(
    pos: np.ndarray,
    walls: np.ndarray,
    world_size: float,
    dot_std: float,
    dot_color: tuple[float, float, float],
    wall_color: tuple[float, float, float],
) -> np.ndarray:
    """RGB ``uint8 [N, S, S, 3]`` images: a Gaussian dot at ``pos`` over walls on white.

    Args:
        pos: ``[N, 2]`` agent positions in world units.
        walls: ``[S, S]`` or ``[N, S, S]`` bool masks of wall pixels.
        dot_std: the dot's standard deviation in world units.
    """
    size = walls.shape[-1]
    c = (np.arange(size) + 0.5) * world_size / size
    gx = np.exp(-((c[None, :] - pos[:, :1]) ** 2) / (2 * dot_std**2)).astype(np.float32)
    gy = np.exp(-((c[None, :] - pos[:, 1:2]) ** 2) / (2 * dot_std**2)).astype(np.float32)
    alpha = (gy[:, :, None] * gx[:, None, :])[..., None]
    walls = np.broadcast_to(walls, (len(pos), size, size))[..., None]
    back = np.where(walls, np.asarray(wall_color, np.float32), np.float32(1.0))
    img = back + alpha * (np.asarray(dot_color, np.float32) - back)
    return (img * 255 + 0.5).astype(np.uint8)
