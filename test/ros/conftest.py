"""Fixtures of the ROS node tests: a ROS domain per test, the test's node, node processes.

The tests run on any ROS 2 where rclpy and the built grasp_ros messages import: the PyPI Jazzy
of `make test` (test/ros/jazzy) or a sourced workspace with grasp_ros built. Elsewhere they
skip, except under `make test` (GRASP_ROS_TESTS_NEED_ROS=1): there a missing ROS is an error,
so `make test` can never pass with the ROS tests skipped.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import re

import pytest
from launcher import NO_ROS, Launcher

if os.environ.get("GRASP_ROS_TESTS_NEED_ROS"):
    for module in ("rclpy", "grasp_ros.msg"):
        if importlib.util.find_spec(module) is None:
            raise RuntimeError(f"{module} does not import, and make test needs it: {NO_ROS}")

# Domain ids 1..100 (well inside the range DDS can map to ports), one per test, starting at a
# place that depends on the process so that two test runs at once rarely meet.
_DOMAINS = (1 + (os.getpid() * 7 + k) % 100 for k in itertools.count())
TRACEBACK = re.compile(r"Traceback|KeyboardInterrupt")


@pytest.fixture
def domain_id() -> int:
    return next(_DOMAINS)


@pytest.fixture
def probe(domain_id):
    from probe import Probe

    p = Probe(domain_id)
    yield p
    p.close()


@pytest.fixture
def launcher(domain_id, tmp_path):
    """Node processes for the test; after it, each must exit 0 on SIGINT without a traceback."""
    nodes = Launcher(domain_id, tmp_path)
    yield nodes
    codes = nodes.stop()
    for p in nodes.processes:
        assert codes[p.name] == 0, f"{p.name} exited with {codes[p.name]}:\n{p.output()}"
        assert not TRACEBACK.search(p.output()), f"{p.name} printed a traceback:\n{p.output()}"
