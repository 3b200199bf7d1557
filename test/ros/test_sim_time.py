"""With ``use_sim_time`` the planner ticks on the ``/clock`` the test publishes.

While the clock is held still, no ticks; while it runs five times faster than the wall clock,
the ticks' times run ahead of the wall clock, at most one tick per control period of sim time.
This is what makes `ros2 bag play --clock` replays (paused, stepped or sped up) behave like the
robot.
"""

from __future__ import annotations

import time

import numpy as np
from launcher import require_ros
from scenes import PLANNER, RATE

require_ros()

from grasp_ros.msg import PlannerStatus  # noqa: E402
from rclpy.time import Time  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402

SPEED = 5.0


def test_ticks_follow_the_ros_clock(probe, launcher):
    clock = probe.node.create_publisher(Clock, "/clock", 10)
    statuses = probe.collect(PlannerStatus, "status")
    launcher.start("planner_node", name="planner_node", params={**PLANNER, "use_sim_time": True})

    def run_clock(start: float, speed: float, wall_seconds: float) -> float:
        """Run /clock at ``speed`` x the wall clock, a message about every 20 ms; the sim time
        reached. On a loaded machine the messages come further apart and the clock jumps further:
        it still runs at ``speed``, and the ticks must follow it either way.
        """
        sim, t0 = start, time.monotonic()
        while (elapsed := time.monotonic() - t0) < wall_seconds:
            sim = start + speed * elapsed
            clock.publish(Clock(clock=Time(nanoseconds=round(sim * 1e9)).to_msg()))
            probe.spin_for(0.02)
        return sim

    sim, deadline = 100.0, time.monotonic() + 120.0
    while not statuses and time.monotonic() < deadline:  # the node starts at real speed
        sim = run_clock(sim, 1.0, 0.5)
    assert statuses, "the planner never ticked on the published /clock"

    run_clock(sim, 0.0, 0.5)  # a tick already due may still come out
    statuses.clear()
    run_clock(sim, 0.0, 2.0)
    assert len(statuses) <= 1, f"{len(statuses)} ticks while the clock stood still"

    # How many ticks a wall second holds depends on the machine (a tick the node cannot start in
    # time is skipped: rclpy's /clock subscription keeps only the newest message, so a node that
    # lags sees the clock jump several periods). What must hold: at most one tick per control
    # period of sim time, and the ticks' own times run ahead of the wall clock as the clock does.
    statuses.clear()
    start, deadline = sim, time.monotonic() + 60.0
    arrivals = lambda: statuses[-1][0] - statuses[0][0] if statuses else 0.0  # noqa: E731
    while (len(statuses) < 10 or arrivals() < 1.0) and time.monotonic() < deadline:
        sim = run_clock(sim, SPEED, 0.5)
    probe.spin_for(0.3)  # the last ticks' statuses
    assert len(statuses) >= 10 and arrivals() >= 1.0, f"{len(statuses)} ticks in 60 s"
    stamps = [Time.from_msg(m.header.stamp).nanoseconds * 1e-9 for _, m in statuses]
    assert all(np.diff(stamps) > 0), "tick stamps went backwards"
    assert len(statuses) <= (sim - start) * RATE + 2, (len(statuses), sim - start)
    assert stamps[-1] - stamps[0] > 2.0 * arrivals(), (stamps[0], stamps[-1], arrivals())
