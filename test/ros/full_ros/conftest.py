"""launch_testing versions of the node tests, for a full ROS 2 install (`colcon test`).

PyPI has no launch or launch_testing, so where they do not import these files are not
collected at all (the summary says so); the same behaviour is checked through
test/ros/launcher.py in the tests one folder up, which `make test` runs.
"""

import importlib


def _installed(module: str) -> bool:
    """Importable as a real package (the checkout's launch/ folder is a namespace package)."""
    try:
        return importlib.import_module(module).__file__ is not None
    except ImportError:
        return False


MISSING = [m for m in ("launch", "launch_ros", "launch_testing") if not _installed(m)]
collect_ignore_glob = ["test_*.py"] if MISSING else []


def pytest_terminal_summary(terminalreporter):
    if MISSING:
        terminalreporter.write_line(
            f"test/ros/full_ros not collected: {', '.join(MISSING)} not installed "
            "(the launcher-based node tests in test/ros cover the same checks)"
        )
