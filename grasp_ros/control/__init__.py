"""Closed-loop control without ROS: the runtime the nodes and the offline tools share, and the
episode driver (`episode.py`) that steps a simulated world with it."""

from grasp_ros.control.params import SCHEMA, ParamSpec, defaults, load_params_file, validate
from grasp_ros.control.runtime import Command, PlannerRuntime, RuntimeStats, Status

__all__ = [
    "SCHEMA",
    "Command",
    "ParamSpec",
    "PlannerRuntime",
    "RuntimeStats",
    "Status",
    "defaults",
    "load_params_file",
    "validate",
]
