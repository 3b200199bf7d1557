"""Stopping the nodes: the stop command always goes out first, and every node exits 0.

As a terminal's Ctrl-C does, SIGINT goes to the process group of the three nodes, once or twice
in quick succession (`ros2 launch` forwards a second one), also while a planning step of a slow
model (`slow_model`: every model call sleeps) is running. Also SIGTERM (launch's escalation) and
SIGINT to a planner that inherited SIGINT as ignored. Each run checks: a stop command on
``action`` after the signal and nothing but stops after it, exit code 0, no traceback, no
process left. The runs repeat, since what they guard against is a race.
"""

from __future__ import annotations

import re
import signal
import time

import numpy as np
import pytest
from launcher import require_ros
from scenes import PLANNER

require_ros()

from grasp_ros.msg import ActionCommand, PlannerStatus  # noqa: E402

SHUTDOWN = "planner_node is shutting down"
SLOW = {**PLANNER, "model": "slow_model:SlowModel", "horizon": 5, "cold_start_iterations": 3}
TRACEBACK = re.compile(r"Traceback|KeyboardInterrupt")

ABANDONED = "exiting without waiting for the planning step still running"
CASES = {
    "SIGTERM to the planner": (PLANNER, signal.SIGTERM, 1, "planner", False),
    "SIGINT to a planner that ignored it": (PLANNER, signal.SIGINT, 1, "planner", True),
    "Ctrl-C": (PLANNER, signal.SIGINT, 1, "group", False),
    "Ctrl-C in a long tick": (SLOW, signal.SIGINT, 1, "group", False),
    **{f"Ctrl-C twice, run {i}": (PLANNER, signal.SIGINT, 2, "group", False) for i in range(2)},
    **{
        f"Ctrl-C twice in a long tick, run {i}": (SLOW, signal.SIGINT, 2, "group", False)
        for i in range(2)
    },
}


@pytest.mark.parametrize("case", CASES)
def test_the_stop_goes_out_first_and_every_node_exits_cleanly(case, probe, launcher):
    params, signum, times, target, ignore_sigint = CASES[case]
    statuses = probe.collect(PlannerStatus, "status")
    actions = probe.collect(ActionCommand, "action")
    planner = launcher.start(
        "planner_node",
        name="planner_node",
        params=params,
        remaps={"image": "camera/image_raw"},
        ignore_sigint=ignore_sigint,
    )
    launcher.start("trajectory_visualizer", name="trajectory_visualizer")
    launcher.start("sim_node", name="sim_node")
    ok = lambda: any(m.status == PlannerStatus.OK for _, m in statuses)  # noqa: E731
    assert probe.spin_until(ok, 120.0), f"never OK:\n{planner.output()}"
    if params is SLOW:  # the next tick has started and runs for seconds
        probe.spin_for(0.5)

    signalled = time.monotonic()
    for i in range(times):
        if i:
            probe.spin_for(0.05)
        if target == "group":
            launcher.signal_group(signum)
        else:
            planner.popen.send_signal(signum)
    stopping = launcher.processes if target == "group" else [planner]
    end = time.monotonic() + 20.0
    while any(p.running() for p in stopping) and time.monotonic() < end:
        probe.spin_for(0.05)
    probe.spin_for(0.2)

    for p in stopping:
        assert p.popen.poll() == 0, f"{p.name} exited with {p.popen.poll()}:\n{p.output()}"
        assert not TRACEBACK.search(p.output()), f"{p.name} printed a traceback:\n{p.output()}"
    if target == "group":
        assert not launcher.group_alive(), "a process of the group is still running"

    last = [m for t, m in statuses if t > signalled and m.message == SHUTDOWN]
    assert len(last) == 1, "no stop command on shutdown" if not last else "more than one"
    assert last[0].status == PlannerStatus.STOPPED
    after = [m for t, m in actions if t > signalled]
    stops = [i for i, m in enumerate(after) if m.header.stamp == last[0].header.stamp]
    assert stops, "the shutdown status came without its action"
    for m in after[stops[0] :]:
        np.testing.assert_array_equal(np.asarray(m.action), [0.0, 0.0])
    if params is SLOW:  # each tick takes seconds: the signal came while one ran
        assert ABANDONED in planner.output(), planner.output()
