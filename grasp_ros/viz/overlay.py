"""Drawing a plan onto camera frames: pure numpy and OpenCV, no model and no ROS.

The demo's animation is built from these pieces, and a person judges the planner by it, so the
geometry must be exact: world positions map to pixels with the reference worlds' rendering
convention (pixel ``i`` covers world ``[i, i + 1) * world_size / size``), so a projected state
lands on the dot it stands for. Every function takes and returns RGB ``uint8`` arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Fixed-point bits for OpenCV drawing, so lines and dots sit at sub-pixel positions.
_SHIFT = 4
_FONT = cv2.FONT_HERSHEY_SIMPLEX
GOAL_COLOR = (0, 170, 0)
ROLLOUT_COLOR = (30, 110, 255)
TRAIL_COLOR = (150, 150, 150)
TEXT_COLOR = (20, 20, 20)
BAR_COLOR = (235, 235, 235)


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Square image to ``size x size`` pixels, nearest neighbour (keeps pixels crisp)."""
    _check_rgb(image)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)


def to_pixels(positions: np.ndarray, world_size: float, size: int) -> np.ndarray:
    """World positions ``[N, >=2]`` (x = column, y = row) to OpenCV pixel coordinates ``[N, 2]``.

    OpenCV puts integer coordinates at pixel centres, half a pixel in from the edge the world
    coordinates start at, hence the ``- 0.5``.
    """
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"positions must be [N, 2] or [N, 3], got {list(p.shape)}")
    return p[:, :2] * (size / world_size) - 0.5


def time_colors(n: int) -> np.ndarray:
    """``n`` RGB colours along the plasma map, early steps dark blue to late steps yellow."""
    if n < 1:
        return np.zeros((0, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, n).round().astype(np.uint8)[:, None]
    return cv2.applyColorMap(ramp, cv2.COLORMAP_PLASMA)[:, 0, ::-1].copy()


def draw_path(
    image: np.ndarray, points: np.ndarray, color: Sequence[int], thickness: int = 1
) -> np.ndarray:
    """A polyline through pixel ``points`` ``[N, 2]``, drawn in place; non-finite rows skipped."""
    pts = _fixed(points)
    if len(pts) >= 2:
        cv2.polylines(image, [pts], False, _color(color), thickness, cv2.LINE_AA, _SHIFT)
    return image


def draw_dots(
    image: np.ndarray, points: np.ndarray, colors: np.ndarray, radius: float = 3.0
) -> np.ndarray:
    """Filled dots at pixel ``points`` ``[N, 2]``, one colour per dot (``[N, 3]``), in place."""
    points = np.asarray(points, dtype=np.float64)
    keep = np.isfinite(points).all(1)
    r = round(radius * (1 << _SHIFT))
    for p, c in zip(_fixed(points[keep]), np.asarray(colors)[keep], strict=True):
        cv2.circle(image, tuple(int(v) for v in p), r, _color(c), -1, cv2.LINE_AA, _SHIFT)
        cv2.circle(image, tuple(int(v) for v in p), r, (255, 255, 255), 1, cv2.LINE_AA, _SHIFT)
    return image


def draw_ring(
    image: np.ndarray, center: np.ndarray, radius: float, color: Sequence[int], thickness: int = 2
) -> np.ndarray:
    """A circle outline of ``radius`` pixels around pixel ``center`` ``[2]``, in place."""
    c = _fixed(np.asarray(center, dtype=np.float64).reshape(1, 2))
    if len(c):
        r = round(radius * (1 << _SHIFT))
        cv2.circle(
            image, tuple(int(v) for v in c[0]), r, _color(color), thickness, cv2.LINE_AA, _SHIFT
        )
    return image


def caption(image: np.ndarray, text: str, height: int = 16) -> np.ndarray:
    """``image`` under a light band holding one line of ``text`` (a new, taller image)."""
    band = np.empty((height, image.shape[1], 3), dtype=np.uint8)
    band[:] = BAR_COLOR
    cv2.putText(band, text, (4, height - 4), _FONT, 0.4, TEXT_COLOR, 1, cv2.LINE_AA)
    return np.concatenate([band, _check_rgb(image)], axis=0)


def text_bar(width: int, lines: Sequence[str], line_height: int = 16) -> np.ndarray:
    """A ``width``-wide panel holding ``lines`` of text, one per row."""
    bar = np.empty((line_height * len(lines) + 6, width, 3), dtype=np.uint8)
    bar[:] = BAR_COLOR
    for i, line in enumerate(lines):
        y = 3 + line_height * (i + 1) - 4
        cv2.putText(bar, line, (6, y), _FONT, 0.42, TEXT_COLOR, 1, cv2.LINE_AA)
    return bar


def stack(rows: Sequence[Sequence[np.ndarray]], gap: int = 4) -> np.ndarray:
    """Panels laid out in rows (left to right, top to bottom) with ``gap`` white pixels between,
    each row padded white to the widest."""
    built = [_join([_check_rgb(p) for p in _same_height(row)], gap, axis=1) for row in rows]
    width = max(r.shape[1] for r in built)
    padded = [
        np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in built
    ]
    return _join(padded, gap, axis=0)


def _join(panels: list[np.ndarray], gap: int, axis: int) -> np.ndarray:
    shape = list(panels[0].shape)
    shape[axis] = gap
    spacer = np.full(shape, 255, dtype=np.uint8)
    parts = [part for p in panels for part in (spacer, p)][1:]
    return np.concatenate(parts, axis=axis)


def _same_height(row: Sequence[np.ndarray]) -> list[np.ndarray]:
    h = max(p.shape[0] for p in row)
    return [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in row]


def _fixed(points: np.ndarray) -> np.ndarray:
    """Finite pixel coordinates as OpenCV fixed-point integers ``[M, 2]`` (int32)."""
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    p = p[np.isfinite(p).all(1)]
    return np.round(p * (1 << _SHIFT)).astype(np.int32)


def _color(color: Sequence[int] | np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in color)
    return (r, g, b)


def _check_rgb(image: np.ndarray) -> np.ndarray:
    if (
        not isinstance(image, np.ndarray)
        or image.dtype != np.uint8
        or image.ndim != 3
        or image.shape[2] != 3
    ):
        got = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image)
        raise ValueError(f"expected an RGB uint8 image [H, W, 3], got {got}")
    return image
