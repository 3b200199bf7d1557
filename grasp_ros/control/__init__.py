"""Closed-loop control without ROS: the runtime the nodes, the demo and the replay tool share."""

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
