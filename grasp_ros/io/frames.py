"""REP-103 positions on the wire: world units in image axes to metres in ``map``, and back.

The reference worlds' states, the models' ``project()`` and Push-T's poses are in world units
with x along the image columns and y down its rows. REP-103 asks for metres in a right-handed
frame with z up: x stays, y changes sign (up the image), a yaw about z with it, and everything
is times ``world_scale`` (metres per world unit). The origin stays at the image's top-left
corner, so an arena lies at x >= 0, y <= 0. The live nodes publish in this frame; the offline
tools' bags keep world units and say so (`grasp_ros.io.sim_topics.SimTask.world_scale`).
"""

from __future__ import annotations

import numpy as np

_FLIP = np.array([1.0, -1.0, 1.0])


def to_map(xyz: np.ndarray, world_scale: float) -> np.ndarray:
    """Positions ``[N, 2 or 3]`` in world units and image axes as map metres (float64)."""
    xyz = np.asarray(xyz, dtype=np.float64)
    return xyz * world_scale * _FLIP[: xyz.shape[-1]]


def from_map(xyz: np.ndarray, world_scale: float) -> np.ndarray:
    """The inverse of :func:`to_map`."""
    xyz = np.asarray(xyz, dtype=np.float64)
    return xyz / world_scale * _FLIP[: xyz.shape[-1]]
