"""The nodes in a live ROS 2 graph (launch_testing; `colcon test` on a full ROS 2 install).

Two planners run on the analytic world model (no checkpoint needed, a few iterations a tick):
one closes the loop with sim_node; the other, in namespace ``fed``, sees only the images this
test publishes, so the test can let its camera go stale. Checked: actions come at the
configured control rate and drive the simulator; the visualiser draws the plan; an
out-of-range or invalid parameter change is refused with a reason; a stale camera gives
STALE_IMAGE and the stop action; every node exits cleanly (code 0) on shutdown.
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
import launch_testing.asserts  # noqa: E402
import numpy as np  # noqa: E402
import rclpy  # noqa: E402
import torch  # noqa: E402
from grasp_ros.msg import ActionCommand, PlannerStatus  # noqa: E402
from launch.launch_description import LaunchDescription  # noqa: E402
from nav_msgs.msg import Path  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from grasp_ros.models.analytic import PointWallModel  # noqa: E402
from grasp_ros.nodes import messages as M  # noqa: E402
from grasp_ros.nodes import ros  # noqa: E402

RATE = 10.0
PLANNER = {
    "autostart": True,
    "model": "grasp_ros.models.analytic:PointWallModel",
    "device": "cpu",
    "control_rate": RATE,
    "budget": "iterations",
    "iterations": 3,
    "cold_start_iterations": 10,
    "horizon": 10,
}
FED_TIMEOUT = 0.3


@pytest.mark.ros
@pytest.mark.rostest
def generate_test_description():
    loop = launch_ros.actions.Node(
        package="grasp_ros",
        executable="planner_node",
        parameters=[{**PLANNER, "image_timeout": 1.0}],
        remappings=[("image", "camera/image_raw")],
    )
    fed = launch_ros.actions.Node(
        package="grasp_ros",
        executable="planner_node",
        namespace="fed",
        parameters=[{**PLANNER, "image_timeout": FED_TIMEOUT}],
    )
    sim = launch_ros.actions.Node(
        package="grasp_ros", executable="sim_node", parameters=[{"step_rate": RATE}]
    )
    viz = launch_ros.actions.Node(package="grasp_ros", executable="trajectory_visualizer")
    nodes = {"loop": loop, "fed": fed, "sim": sim, "viz": viz}
    return LaunchDescription([*nodes.values(), launch_testing.actions.ReadyToTest()]), nodes


class TestNodes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rclpy.init()
        cls.node = rclpy.create_node("test_grasp_ros_nodes")

    @classmethod
    def tearDownClass(cls):
        cls.node.destroy_node()
        rclpy.shutdown()

    def _spin_until(self, done, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not done():
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def _collect(self, msg_type, topic: str, done, timeout: float) -> list:
        got = []
        sub = self.node.create_subscription(msg_type, topic, got.append, 50)
        try:
            self._spin_until(lambda: done(got), timeout)
        finally:
            self.node.destroy_subscription(sub)
        return got

    def _wait_ok(self) -> None:
        ok = self._collect(
            PlannerStatus,
            "/status",
            lambda got: any(s.status == PlannerStatus.OK for s in got),
            timeout=120.0,
        )
        last = ok[-1].message if ok else "no status at all"
        self.assertTrue(any(s.status == PlannerStatus.OK for s in ok), f"never OK: {last}")

    def test_actions_come_at_the_control_rate_and_drive_the_simulator(self):
        self._wait_ok()
        actions = self._collect(ActionCommand, "/action", lambda got: len(got) >= 31, 30.0)
        self.assertGreaterEqual(len(actions), 31)
        for msg in actions:
            self.assertEqual(len(msg.action), 2)
            self.assertAlmostEqual(msg.dt, 1.0 / RATE, places=5)
        # The stamps are the control timer's: their spacing is the configured period.
        stamps = [Time.from_msg(m.header.stamp).nanoseconds * 1e-9 for m in actions]
        self.assertAlmostEqual(statistics.median(np.diff(stamps)), 1.0 / RATE, delta=0.25 / RATE)
        executed = self._collect(
            ActionCommand,
            "/sim/executed_action",
            lambda got: any(np.any(np.asarray(m.action) != 0) for m in got),
            10.0,
        )
        self.assertTrue(any(np.any(np.asarray(m.action) != 0) for m in executed))

    def test_invalid_parameter_changes_are_refused_with_a_reason(self):
        client = self.node.create_client(SetParameters, "/planner_node/set_parameters")
        try:
            self.assertTrue(client.wait_for_service(timeout_sec=60.0))
            # The last case puts the horizon back: the other tests share this planner.
            cases = [
                ("horizon", 5000, False),
                ("planner", "mppi", False),
                ("horizon", 12, True),
                ("horizon", PLANNER["horizon"], True),
            ]
            for name, value, accepted in cases:
                request = SetParameters.Request()
                request.parameters = [Parameter(name, value=value).to_parameter_msg()]
                future = client.call_async(request)
                self._spin_until(future.done, 30.0)
                result = future.result().results[0]
                self.assertEqual(result.successful, accepted, (name, value, result.reason))
                if not accepted:
                    self.assertIn(name, result.reason)
        finally:
            self.node.destroy_client(client)

    def test_the_visualiser_draws_the_plan(self):
        self._wait_ok()
        arrays = self._collect(MarkerArray, "/trajectory_visualizer/virtual_trajectory", bool, 30.0)
        self.assertTrue(arrays, "no MarkerArray from the visualiser")
        markers = {(m.ns, m.id): m for m in arrays[0].markers}
        self.assertEqual({ns for ns, _ in markers}, {"virtual_states", "rollout", "goal", "info"})
        spheres = markers["virtual_states", 1]
        self.assertEqual(spheres.type, Marker.SPHERE_LIST)
        self.assertEqual(len(spheres.points), PLANNER["horizon"] + 1)
        self.assertEqual(len(spheres.colors), len(spheres.points))
        self.assertEqual(spheres.header.frame_id, "map")
        paths = self._collect(Path, "/trajectory_visualizer/rollout_path", bool, 30.0)
        self.assertTrue(paths and len(paths[0].poses) == PLANNER["horizon"] + 1)

    def test_a_stale_camera_stops_the_robot(self):
        model = PointWallModel()
        start_goal = model.render(torch.tensor([[-0.5, 0.2], [0.5, -0.2]]), 32)
        rgb = (start_goal.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        goal_pub = self.node.create_publisher(Image, "/fed/goal_image", ros.LATCHED_QOS)
        image_pub = self.node.create_publisher(Image, "/fed/image", ros.CAMERA_QOS)
        statuses, actions = [], []
        subs = [
            self.node.create_subscription(PlannerStatus, "/fed/status", statuses.append, 50),
            self.node.create_subscription(ActionCommand, "/fed/action", actions.append, 50),
        ]
        try:
            goal_pub.publish(M.image_msg(rgb[1], M.header(M.time_msg(0.0))))

            def publish_image() -> None:
                msg = M.image_msg(rgb[0], M.header(self.node.get_clock().now().to_msg()))
                image_pub.publish(msg)

            camera = self.node.create_timer(0.05, publish_image)
            self._spin_until(lambda: _first(statuses, PlannerStatus.OK), 120.0)
            self.assertTrue(_first(statuses, PlannerStatus.OK), "the fed planner never got to OK")
            self.node.destroy_timer(camera)
            statuses.clear()
            self._spin_until(lambda: _first(statuses, PlannerStatus.STALE_IMAGE), 10.0)
            stale = _first(statuses, PlannerStatus.STALE_IMAGE)
            self.assertIsNotNone(stale, "the planner never reported STALE_IMAGE")
            self.assertIn("old", stale.message)
            self.assertGreater(stale.image_age, FED_TIMEOUT)
            same_tick = lambda: [a for a in actions if a.header.stamp == stale.header.stamp]  # noqa: E731
            self._spin_until(same_tick, 5.0)
            self.assertEqual(len(same_tick()), 1)
            np.testing.assert_array_equal(np.asarray(same_tick()[0].action), [0.0, 0.0])
        finally:
            for sub in subs:
                self.node.destroy_subscription(sub)
            self.node.destroy_publisher(goal_pub)
            self.node.destroy_publisher(image_pub)


def _first(statuses: list, code: int):
    return next((s for s in statuses if s.status == code), None)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_every_node_exits_cleanly(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info)
