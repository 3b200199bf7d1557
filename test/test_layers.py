"""Layers point down only: what runs on the robot never imports the research or tools code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "grasp_ros"
#: Each layer and the grasp_ros subpackages it must not import.
FORBIDDEN = {
    "planning": {"control", "nodes", "research", "tools", "viz", "io", "envs"},
    "models": {"control", "nodes", "research", "tools", "viz", "planning"},
    "envs": {"control", "nodes", "research", "tools", "viz", "planning", "models", "io"},
    "io": {"control", "nodes", "research", "tools", "viz", "planning", "models"},
    "control": {"nodes", "research", "tools", "viz"},
    "viz": {"nodes", "research", "tools", "control"},
    "nodes": {"research", "tools"},
    "tools": {"research", "nodes"},
}


def grasp_ros_imports(path: Path) -> set[str]:
    """The grasp_ros subpackages ``path`` imports (absolute imports; relative ones stay home)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "grasp_ros" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_down(layer: str) -> None:
    wrong = {
        str(path.relative_to(PACKAGE)): sorted(grasp_ros_imports(path) & FORBIDDEN[layer])
        for path in sorted((PACKAGE / layer).rglob("*.py"))
    }
    assert {k: v for k, v in wrong.items() if v} == {}

