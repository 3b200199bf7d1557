"""launch/planner.launch.py imported and built by `launch` (a full ROS 2 install).

Without `launch`, test/test_launch.py checks what the file declares from its source, and
test/ros/test_loop.py that its executables and params file resolve in the built package.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from launch.actions import DeclareLaunchArgument

LAUNCH = Path(__file__).resolve().parents[3] / "launch" / "planner.launch.py"


def test_launch_file_builds_with_every_argument_declared():
    spec = importlib.util.spec_from_file_location("planner_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {a.name for a in description.entities if isinstance(a, DeclareLaunchArgument)}
    declared = {
        ast.literal_eval(node.args[0])
        for node in ast.walk(ast.parse(LAUNCH.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument"
    }
    assert names == declared
