"""Point the ROS 2 Jazzy wheels' Python include paths at this interpreter (``make test``).

Every message package from PyPI ships a ``share/<pkg>/cmake/*__rosidl_generator_pyExport.cmake``
whose ``INTERFACE_INCLUDE_DIRECTORIES`` name the Python and numpy include folders of the
machine the wheels were built on (``/opt/python/cp311-cp311/...``). CMake refuses to build
against a target that names a folder that does not exist, so ``rosidl_generate_interfaces``
for this package's messages fails until those two entries name this interpreter's own folders.
Only missing folders are replaced, so running it twice changes nothing.

    python test/ros/jazzy/patch_exports.py PREFIX     # PREFIX: where the wheels installed share/
"""

from __future__ import annotations

import re
import sys
import sysconfig
from pathlib import Path

import numpy

PATTERN = "*__rosidl_generator_pyExport.cmake"
INCLUDES = re.compile(r'(INTERFACE_INCLUDE_DIRECTORIES\s+")([^"]*)(")')


def replacement(path: str, python_include: str, numpy_include: str) -> str:
    """The folder to use for one include entry: itself if it exists, else ours of its kind."""
    if Path(path).is_dir():
        return path
    if re.search(r"numpy/(_core|core)/include$", path):
        return numpy_include
    if re.search(r"include/python3\.\d+$", path):
        return python_include
    raise ValueError(f"{path} does not exist and is neither a Python nor a numpy include folder")


def patch(text: str, python_include: str, numpy_include: str) -> str:
    def fix(match: re.Match) -> str:
        entries = [replacement(p, python_include, numpy_include) for p in match[2].split(";")]
        return f"{match[1]}{';'.join(entries)}{match[3]}"

    return INCLUDES.sub(fix, text)


def main(prefix: str) -> int:
    python_include, numpy_include = sysconfig.get_paths()["include"], numpy.get_include()
    files = sorted(Path(prefix, "share").glob(f"*/cmake/{PATTERN}"))
    if not files:
        print(f"no {PATTERN} under {prefix}/share: are the ROS 2 wheels installed there?")
        return 1
    changed = 0
    for path in files:
        text = path.read_text()
        fixed = patch(text, python_include, numpy_include)
        if fixed != text:
            path.write_text(fixed)
            changed += 1
    print(f"patched {changed} of {len(files)} rosidl Python export files (the others were done)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else sys.prefix))
