"""What the nodes publish, as plain values: cmd_vel mapping and diagnostics. No rclpy.

The node modules beside this one only convert these values to ROS messages
(`grasp_ros.nodes.ros`), so what they publish is tested here without a ROS install.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grasp_ros.control.runtime import Command, Status

#: Action indices mapped to each geometry_msgs/Twist field (``-1``: none).
TWIST_FIELDS = ("linear_x", "linear_y", "angular_z")
#: DiagnosticStatus levels (diagnostic_msgs/msg/DiagnosticStatus constants).
OK, WARN, ERROR = 0, 1, 2


def check_twist_mapping(params: Mapping[str, Any], action_dim: int) -> None:
    """ValueError unless every ``cmd_vel.*`` index is -1 or a valid action index."""
    for field in TWIST_FIELDS:
        index = params[f"cmd_vel.{field}"]
        if index >= action_dim:
            raise ValueError(
                f"cmd_vel.{field}={index} but the model's actions have {action_dim} "
                f"dimensions (0..{action_dim - 1}); use -1 to leave {field} at 0"
            )


def twist_from_action(action: np.ndarray, params: Mapping[str, Any]) -> dict[str, float]:
    """``{linear_x, linear_y, angular_z}`` for an action: mapped dimension times the scale."""
    scale = params["cmd_vel.scale"]
    out = {}
    for field in TWIST_FIELDS:
        index = params[f"cmd_vel.{field}"]
        out[field] = float(action[index]) * scale if index >= 0 else 0.0
    return out


def action_from_twist(
    twist: Mapping[str, float], params: Mapping[str, Any], action_dim: int
) -> np.ndarray:
    """The inverse of :func:`twist_from_action`, for the simulator: unmapped dimensions are 0."""
    scale = params["cmd_vel.scale"]
    if scale == 0:
        raise ValueError("cmd_vel.scale is 0, so a Twist says nothing about the action")
    check_twist_mapping(params, action_dim)
    action = np.zeros(action_dim, np.float32)
    for field in TWIST_FIELDS:
        index = params[f"cmd_vel.{field}"]
        if index >= 0:
            action[index] = twist[field] / scale
    return action


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic_msgs/DiagnosticStatus as plain values."""

    level: int
    message: str
    values: list[tuple[str, str]]


def diagnostic(
    cmd: Command,
    summary: Mapping[str, Any],
    *,
    rate: float,
    control_rate: float,
    new_misses: int,
    device: str,
    planner: str,
) -> Diagnostic:
    """The planner's health since the last report: rate achieved, solve time, misses, image age.

    ERROR while the robot is stopped by a fault (stale camera, planner error), WARN while it
    waits for input, misses deadlines or runs below 90 % of ``control_rate``, else OK.
    """
    if cmd.status in (Status.STALE_IMAGE, Status.PLANNER_ERROR):
        level, message = ERROR, cmd.message
    elif cmd.status in (Status.NO_IMAGE, Status.NO_GOAL):
        level, message = WARN, cmd.message
    elif new_misses > 0:
        level, message = WARN, f"{new_misses} deadline misses since the last report"
    elif math.isfinite(rate) and rate < 0.9 * control_rate:
        level, message = WARN, f"running at {rate:.1f} Hz, below control_rate {control_rate} Hz"
    else:
        level, message = OK, cmd.message or "planning"
    values = [
        ("status", cmd.status.name),
        ("planner", planner),
        ("device", device),
        ("control rate (Hz)", f"{control_rate:g}"),
        ("rate achieved (Hz)", _num(rate)),
        ("solve time p50 (s)", _num(summary["solve_time_p50"])),
        ("solve time p99 (s)", _num(summary["solve_time_p99"])),
        ("tick time max (s)", _num(summary["tick_time_max"])),
        ("iterations mean", _num(summary["iterations_mean"])),
        ("cost", _num(cmd.cost)),
        ("deadline misses", str(summary["deadline_misses"])),
        ("image age (s)", _num(cmd.image_age)),
        ("ticks", str(summary["ticks"])),
    ]
    return Diagnostic(level, message, values)


def _num(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "n/a"
