"""setup.py declares exactly what the package imports: nothing missing, nothing unused."""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Distribution name -> the module it installs, where they differ.
MODULE_OF = {"opencv-python-headless": "cv2", "pillow": "PIL", "pyyaml": "yaml"}


def install_requires() -> set[str]:
    """The distributions setup.py asks pip for (names only)."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and _named(n, "setup"))
    (listed,) = [k.value for k in call.keywords if k.arg == "install_requires"]
    return {re.split(r"[<>=!~ \[]", ast.literal_eval(e))[0].lower() for e in listed.elts}


def _named(call: ast.Call, name: str) -> bool:
    return isinstance(call.func, ast.Name) and call.func.id == name


def ros_packages() -> set[str]:
    """ROS packages (package.xml's dependencies that are not Python rosdep keys)."""
    root = ET.parse(ROOT / "package.xml").getroot()
    return {e.text for e in root if e.tag.endswith("depend") and not e.text.startswith("python3")}


def third_party_imports() -> dict[str, str]:
    """Top-level modules grasp_ros imports that are neither stdlib, itself nor ROS: module ->
    one file that imports it."""
    skip = set(sys.stdlib_module_names) | {"grasp_ros"} | ros_packages()
    found: dict[str, str] = {}
    for path in sorted((ROOT / "grasp_ros").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in skip:
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_import_is_declared() -> None:
    declared = {MODULE_OF.get(d, d) for d in install_requires()}
    missing = {m: where for m, where in third_party_imports().items() if m not in declared}
    assert missing == {}


def test_every_declared_dependency_is_imported() -> None:
    imported = set(third_party_imports())
    assert {d for d in install_requires() if MODULE_OF.get(d, d) not in imported} == set()
