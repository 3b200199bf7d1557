"""cmd_vel: the planner's actions as geometry_msgs/Twist fields, and back. No rclpy.

Which action dimension drives which Twist field is set by the ``cmd_vel.*`` parameters of the
planner's schema; the planner node publishes :func:`twist_from_action`, the simulator node
reads a Twist back with :func:`action_from_twist`. With ``cmd_vel.image_axes`` the actions are
taken to be in image axes (x right, y down, as the reference worlds' are), so linear.y and
angular.z change sign: the Twist is in REP-103 axes (x forward, y left, z up), the same flip
as the published positions (`grasp_ros.io.frames`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: Action indices mapped to each geometry_msgs/Twist field (``-1``: none).
TWIST_FIELDS = ("linear_x", "linear_y", "angular_z")


def check_twist_mapping(params: Mapping[str, Any], action_dim: int) -> None:
    """ValueError unless every ``cmd_vel.*`` index is -1 or a valid action index."""
    for field in TWIST_FIELDS:
        index = params[f"cmd_vel.{field}"]
        if index >= action_dim:
            raise ValueError(
                f"cmd_vel.{field}={index} but the model's actions have {action_dim} "
                f"dimensions (0..{action_dim - 1}); use -1 to leave {field} at 0"
            )


def _scales(params: Mapping[str, Any]) -> dict[str, float]:
    """Factor from action to Twist for each field: the scale, signed for image axes."""
    flip = -1.0 if params["cmd_vel.image_axes"] else 1.0
    signs = {"linear_x": 1.0, "linear_y": flip, "angular_z": flip}
    return {field: params["cmd_vel.scale"] * signs[field] for field in TWIST_FIELDS}


def twist_from_action(action: np.ndarray, params: Mapping[str, Any]) -> dict[str, float]:
    """``{linear_x, linear_y, angular_z}`` for an action: mapped dimension times the scale."""
    scales = _scales(params)
    out = {}
    for field in TWIST_FIELDS:
        index = params[f"cmd_vel.{field}"]
        out[field] = float(action[index]) * scales[field] if index >= 0 else 0.0
    return out


def action_from_twist(
    twist: Mapping[str, float], params: Mapping[str, Any], action_dim: int
) -> np.ndarray:
    """The inverse of :func:`twist_from_action`, for the simulator: unmapped dimensions are 0."""
    if params["cmd_vel.scale"] == 0:
        raise ValueError("cmd_vel.scale is 0, so a Twist says nothing about the action")
    check_twist_mapping(params, action_dim)
    scales = _scales(params)
    action = np.zeros(action_dim, np.float32)
    for field in TWIST_FIELDS:
        index = params[f"cmd_vel.{field}"]
        if index >= 0:
            action[index] = twist[field] / scales[field]
    return action
