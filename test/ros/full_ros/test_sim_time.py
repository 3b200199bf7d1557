"""The planner's control timer follows the ROS clock (launch_testing, for `colcon test`).

A planner with ``use_sim_time`` runs on a ``/clock`` this test publishes: while the clock is
held still, no ticks; while it runs five times faster than the wall clock, ticks come five
times as often per wall second, spaced by the control period in sim time. This is what makes
`ros2 bag play --clock` replays (paused, stepped or sped up) behave like the robot.
"""

from __future__ import annotations

import statistics
import time
import unittest

import pytest

REASON = "needs ROS 2 (rclpy, launch_testing): source a ROS 2 setup.bash, then `colcon test`"
pytest.importorskip("rclpy", reason=REASON)
pytest.importorskip("launch_testing", reason=REASON)
pytest.importorskip(
    "grasp_ros.msg",
    reason="grasp_ros.msg is not importable: colcon build grasp_ros, source install/setup.bash, "
    "and run pytest where the source grasp_ros/ (which has no generated msg) is not on sys.path",
)

import launch_ros.actions  # noqa: E402
import launch_testing.actions  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from grasp_ros.msg import PlannerStatus  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from rclpy.time import Time  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402

RATE = 10.0
SPEED = 5.0


@pytest.mark.ros
@pytest.mark.rostest
def generate_test_description():
    planner = launch_ros.actions.Node(
        package="grasp_ros",
        executable="planner_node",
        parameters=[
            {
                "autostart": True,
                "model": "grasp_ros.models.analytic:PointWallModel",
                "device": "cpu",
                "control_rate": RATE,
                "budget": "iterations",
                "iterations": 2,
                "cold_start_iterations": 2,
                "horizon": 5,
                "use_sim_time": True,
            }
        ],
    )
    return LaunchDescription([planner, launch_testing.actions.ReadyToTest()]), {"planner": planner}


class TestSimTime(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("test_grasp_ros_sim_time")
        cls.clock = cls.node.create_publisher(Clock, "/clock", 10)
        cls.statuses: list = []
        cls.node.create_subscription(PlannerStatus, "/status", cls.statuses.append, 100)

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def _run_clock(self, start: float, speed: float, wall_seconds: float) -> float:
        """Publish /clock every 10 ms of wall time for ``wall_seconds``; returns the sim end."""
        sim, end = start, time.monotonic() + wall_seconds
        while time.monotonic() < end:
            msg = Clock()
            msg.clock = Time(nanoseconds=int(sim * 1e9)).to_msg()
            self.clock.publish(msg)
            rclpy.spin_once(self.node, timeout_sec=0.01)
            sim += 0.01 * speed
        return sim

    def test_ticks_follow_the_ros_clock(self):
        # Let the node start (model load, warm-up) with the clock running at real speed.
        sim = 100.0
        deadline = time.monotonic() + 120.0
        while not self.statuses and time.monotonic() < deadline:
            sim = self._run_clock(sim, 1.0, 0.5)
        self.assertTrue(self.statuses, "the planner never ticked on the published /clock")

        # Clock held still: no ticks (one already due may still come out).
        self._run_clock(sim, 0.0, 0.5)
        self.statuses.clear()
        self._run_clock(sim, 0.0, 2.0)
        self.assertLessEqual(len(self.statuses), 1, "ticks while the clock was paused")

        # Clock at SPEED x real time for 2 wall seconds = 10 sim seconds = about 100 ticks.
        self.statuses.clear()
        self._run_clock(sim, SPEED, 2.0)
        expected = 2.0 * SPEED * RATE
        self.assertGreater(len(self.statuses), 0.6 * expected)
        self.assertLess(len(self.statuses), 1.2 * expected)
        stamps = [Time.from_msg(s.header.stamp).nanoseconds * 1e-9 for s in self.statuses]
        self.assertAlmostEqual(statistics.median(np.diff(stamps)), 1.0 / RATE, delta=0.03)
