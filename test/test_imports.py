"""The package's shape: layers that point down only, the declared dependencies, short modules.

Layers: what runs on the robot never imports the research or tools code. Dependencies:
setup.py declares what the package imports, nothing missing and nothing unused.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "grasp_ros"
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
#: Distribution name -> the module it installs, where they differ.
MODULE_OF = {"opencv-python-headless": "cv2", "pillow": "PIL", "pyyaml": "yaml"}


def imports(path: Path) -> set[str]:
    """The absolute module names ``path`` imports (relative imports stay in their package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_point_down(layer: str) -> None:
    wrong = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        used = {n.split(".")[1] for n in imports(path) if n.startswith("grasp_ros.")}
        if used & FORBIDDEN[layer]:
            wrong[str(path.relative_to(PACKAGE))] = sorted(used & FORBIDDEN[layer])
    assert wrong == {}


def install_requires() -> set[str]:
    """The distributions setup.py asks pip for (names only)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    call = next(
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "setup"
    )
    (listed,) = [k.value for k in call.keywords if k.arg == "install_requires"]
    return {re.split(r"[<>=!~ \[]", ast.literal_eval(e))[0].lower() for e in listed.elts}


def third_party_imports() -> set[str]:
    """Top-level modules grasp_ros imports that are neither stdlib, itself nor ROS packages
    (package.xml's dependencies that are not Python rosdep keys)."""
    xml = ET.parse(ROOT / "package.xml").getroot()
    ros = {e.text for e in xml if e.tag.endswith("depend") and not e.text.startswith("python3")}
    skip = set(sys.stdlib_module_names) | {"grasp_ros"} | ros
    tops = {n.split(".")[0] for p in PACKAGE.rglob("*.py") for n in imports(p)}
    return tops - skip


def test_every_import_is_declared() -> None:
    declared = {MODULE_OF.get(d, d) for d in install_requires()}
    assert third_party_imports() - declared == set()


def test_every_declared_dependency_is_imported() -> None:
    imported = third_party_imports()
    assert {d for d in install_requires() if MODULE_OF.get(d, d) not in imported} == set()


def test_no_module_is_long() -> None:
    """Short modules (about 400 lines at most): a longer one mixes concerns; split it."""
    lengths = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in lengths.items() if n > 420} == {}
