"""Static checks of the ROS 2 build files, so a broken colcon build shows up without ROS.

They pin what a Humble/Jazzy build needs: one ament_cmake package that generates the messages
and installs the Python sources beside them, and a package.xml that lists every package the
installed code imports.
"""

from __future__ import annotations

import ast
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import grasp_ros

ROOT = Path(__file__).resolve().parents[1]
MSG_FILES = sorted(f"msg/{p.name}" for p in (ROOT / "msg").glob("*.msg"))
ACTION_FILES = sorted(f"action/{p.name}" for p in (ROOT / "action").glob("*.action"))
NODES = ("planner_node", "trajectory_visualizer", "sim_node")

# ROS packages the nodes and launch files use, whether or not their modules exist yet.
NODE_DEPENDENCIES = {
    "rclpy",
    "rcl_interfaces",
    "std_msgs",
    "geometry_msgs",
    "sensor_msgs",
    "nav_msgs",
    "visualization_msgs",
    "diagnostic_msgs",
    "std_srvs",
    "cv_bridge",
    "launch",
    "launch_ros",
    "rosidl_default_runtime",
}
# Python import name -> rosdep key, for the third-party modules grasp_ros may import.
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "torch": "python3-torch",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "PIL": "python3-pil",
    "rosbags": "python3-rosbags-pip",
}
NO_ROSDEP_KEY = {"mcap", "pymunk"}  # documented in package.xml as pip installs


@pytest.fixture(scope="module")
def package() -> ET.Element:
    return ET.parse(ROOT / "package.xml").getroot()


@pytest.fixture(scope="module")
def cmake() -> list[tuple[str, list[str]]]:
    """CMakeLists.txt as (command, arguments) in order, comments and quotes removed."""
    text = re.sub(r"#[^\n]*", "", (ROOT / "CMakeLists.txt").read_text(encoding="utf-8"))
    return [
        (name.lower(), [a.strip('"') for a in args.split()])
        for name, args in re.findall(r"(\w+)\s*\(([^()]*)\)", text)
    ]


def tags(package: ET.Element, tag: str) -> list[str]:
    return [(e.text or "").strip() for e in package.findall(tag)]


def exec_dependencies(package: ET.Element) -> set[str]:
    return set(tags(package, "depend") + tags(package, "exec_depend"))


def test_package_xml_identity(package: ET.Element) -> None:
    assert package.get("format") == "3"
    assert tags(package, "name") == ["grasp_ros"]
    assert tags(package, "version") == [grasp_ros.__version__]
    assert tags(package, "license") == ["Apache-2.0"]
    assert package.find("maintainer").get("email")
    assert tags(package, "export/build_type") == ["ament_cmake"]
    assert tags(package, "member_of_group") == ["rosidl_interface_packages"]


def test_package_xml_dependencies(package: ET.Element) -> None:
    assert set(tags(package, "buildtool_depend")) == {
        "ament_cmake",
        "ament_cmake_python",
        "rosidl_default_generators",
    }
    assert {"std_msgs", "geometry_msgs"} <= set(tags(package, "depend"))
    assert NODE_DEPENDENCIES | set(ROSDEP_KEYS.values()) <= exec_dependencies(package)
    assert {"ament_cmake_pytest", "python3-pytest", "launch_testing", "launch_testing_ros"} <= set(
        tags(package, "test_depend")
    )
    every = [e.text for e in package if e.tag.endswith("depend")]
    assert len(every) == len(set(every)), "a dependency is listed twice"


def test_msg_dependencies_are_declared(package: ET.Element, cmake) -> None:
    used = set()
    for path in [*(ROOT / "msg").glob("*.msg"), *(ROOT / "action").glob("*.action")]:
        used |= set(re.findall(r"^\s*(\w+)/\w+", path.read_text(encoding="utf-8"), re.M))
    (args,) = [a for c, a in cmake if c == "rosidl_generate_interfaces"]
    declared = set(args[args.index("DEPENDENCIES") + 1 :])
    assert used == declared
    assert used <= set(tags(package, "depend"))
    found = {a[0] for c, a in cmake if c == "find_package"}
    assert used <= found


def test_every_import_of_the_installed_code_is_a_dependency(package: ET.Element) -> None:
    """What grasp_ros, launch/ and scripts/ import resolves to a package.xml dependency."""
    sources = [*(ROOT / "grasp_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]
    sources += [ROOT / "scripts" / n for n in NODES]
    declared = exec_dependencies(package)
    missing = set()
    for path in sources:
        for name in imported_packages(path):
            if name in sys.stdlib_module_names or name == "grasp_ros" or name in NO_ROSDEP_KEY:
                continue
            if ROSDEP_KEYS.get(name, name) not in declared:
                missing.add(f"{name} ({path.relative_to(ROOT)})")
    assert not missing, f"imported but not in package.xml: {sorted(missing)}"


def test_every_python_dependency_in_package_xml_is_imported(package: ET.Element) -> None:
    """The other direction: no rosdep key for a Python module that nothing imports."""
    sources = [*(ROOT / "grasp_ros").rglob("*.py"), *(ROOT / "launch").glob("*.py")]
    sources += [ROOT / "scripts" / n for n in NODES]
    imported = {ROSDEP_KEYS.get(n, n) for path in sources for n in imported_packages(path)}
    python_keys = {d for d in exec_dependencies(package) if d.startswith("python3-")}
    assert python_keys - imported == set()


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_cmake_finds_what_it_uses(cmake) -> None:
    commands = [c for c, _ in cmake]
    found = [a[0] for c, a in cmake if c == "find_package"]
    for name in ("ament_cmake", "ament_cmake_python", "rosidl_default_generators"):
        assert name in found
    assert cmake[0][0] == "cmake_minimum_required" and cmake[1] == ("project", ["grasp_ros"])
    assert commands[-1] == "ament_package"
    assert ["rosidl_default_runtime"] in [a for c, a in cmake if c == "ament_export_dependencies"]


def test_cmake_generates_every_msg_and_action_file(cmake) -> None:
    (args,) = [a for c, a in cmake if c == "rosidl_generate_interfaces"]
    assert args[0] == "${PROJECT_NAME}"
    assert sorted(args[1 : args.index("DEPENDENCIES")]) == ACTION_FILES + MSG_FILES


def test_cmake_installs_python_beside_the_generated_messages(cmake) -> None:
    commands = [c for c, _ in cmake]
    assert "ament_python_install_package" not in commands  # ros2/rosidl_python#141
    python_installs = [
        i
        for i, (c, a) in enumerate(cmake)
        if c == "install" and a[:2] == ["DIRECTORY", "grasp_ros/"]
    ]
    assert len(python_installs) == 1
    (index,) = python_installs
    args = cmake[index][1]
    assert args[args.index("DESTINATION") + 1] == "${PYTHON_INSTALL_DIR}/${PROJECT_NAME}"
    assert index > commands.index("rosidl_generate_interfaces")
    assert not (ROOT / "grasp_ros" / "msg").exists(), "grasp_ros/msg is generated, never source"


def test_cmake_installs_the_node_scripts(cmake) -> None:
    (args,) = [a for c, a in cmake if c == "install" and a[0] == "PROGRAMS"]
    assert args[args.index("DESTINATION") + 1] == "lib/${PROJECT_NAME}"
    assert args[1 : args.index("DESTINATION")] == [f"scripts/{n}" for n in NODES]
    for name in NODES:
        script = ROOT / "scripts" / name
        assert os.access(script, os.X_OK), f"{script} is not executable"
        text = script.read_text(encoding="utf-8")
        assert text.startswith("#!/usr/bin/env python3\n")
        assert f"from grasp_ros.nodes.{name} import main" in text


def test_cmake_installs_launch_and_config(cmake) -> None:
    assert ["DIRECTORY", "launch", "config", "DESTINATION", "share/${PROJECT_NAME}"] in [
        a for c, a in cmake if c == "install"
    ]
