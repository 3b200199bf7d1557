"""The planner's health as a diagnostic_msgs/DiagnosticStatus, in plain values. No rclpy.

The planner node publishes it on /diagnostics once a second (`grasp_ros.nodes.messages`
only copies these values into the message).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grasp_ros.control.runtime import Command, Status

#: DiagnosticStatus levels (diagnostic_msgs/msg/DiagnosticStatus constants).
OK, WARN, ERROR = 0, 1, 2


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
