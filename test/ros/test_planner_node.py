"""planner_node alone over DDS, fed by the test: parameters, the goal, a stale camera, reset.

Each test runs its own planner in its own ROS domain, so no test sees a parameter another one
changed (the launch_testing version once failed for that reason).
"""

from __future__ import annotations

import numpy as np
import pytest
from launcher import require_ros
from scenes import PLANNER, image_msg, rgb

require_ros()

from grasp_ros.msg import ActionCommand, PlannerStatus, VirtualTrajectory  # noqa: E402
from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from grasp_ros.nodes import ros  # noqa: E402

START, GOAL = rgb((-0.5, 0.2), (0.5, -0.2))


class Camera:
    """The test's camera: publishes START at 20 Hz, stamped now, while ``on``."""

    def __init__(self, probe, topic: str = "image") -> None:
        self.probe, self.on = probe, True
        self.pub = probe.node.create_publisher(Image, topic, ros.CAMERA_QOS)
        probe.node.create_timer(0.05, self._publish)

    def _publish(self) -> None:
        if self.on:
            now = self.probe.node.get_clock().now().nanoseconds * 1e-9
            self.pub.publish(image_msg(START, now))


def _publish_goal(probe) -> None:
    pub = probe.node.create_publisher(Image, "goal_image", ros.LATCHED_QOS)
    pub.publish(image_msg(GOAL, 0.0))


def _status(statuses, code: int, since: int = 0):
    return next((m for _, m in statuses[since:] if m.status == code), None)


def test_parameters_are_refused_with_the_schemas_reason_accepted_and_described(probe, launcher):
    launcher.start("planner_node", name="planner_node", params=PLANNER)
    set_request = SetParameters.Request()
    set_request.parameters = [
        Parameter("horizon", value=5000).to_parameter_msg(),
        Parameter("planner", value="mppi").to_parameter_msg(),
        Parameter("model", value="maze").to_parameter_msg(),
        Parameter("horizon", value=12).to_parameter_msg(),
    ]
    results = probe.call(SetParameters, "planner_node/set_parameters", set_request).results
    refused, accepted = results[:3], results[3]
    assert not any(r.successful for r in refused), [r.reason for r in refused]
    # rclpy checks the declared range itself (its own wording), the schema everything else.
    assert "horizon" in refused[0].reason and "1000" in refused[0].reason
    assert "planner" in refused[1].reason and "grasp" in refused[1].reason
    assert "read-only" in refused[2].reason
    assert accepted.successful, accepted.reason

    got = probe.call(
        GetParameters,
        "planner_node/get_parameters",
        GetParameters.Request(names=["horizon"]),
        retry_every=5.0,
    )
    assert got.values[0].integer_value == 12

    described = probe.call(
        DescribeParameters,
        "planner_node/describe_parameters",
        DescribeParameters.Request(names=["horizon", "control_rate", "model"]),
        retry_every=5.0,
    ).descriptors
    horizon, rate, model = described
    assert horizon.type == ParameterType.PARAMETER_INTEGER and horizon.description
    assert (horizon.integer_range[0].from_value, horizon.integer_range[0].to_value) == (1, 1000)
    assert "rebuilds the planner" in horizon.additional_constraints
    assert rate.floating_point_range[0].from_value == pytest.approx(0.1)
    assert model.read_only and not horizon.read_only


def test_a_goal_published_before_the_planner_starts_still_arrives(probe, launcher):
    statuses = probe.collect(PlannerStatus, "status")
    _publish_goal(probe)  # transient local: kept for subscribers that come later
    probe.spin_for(0.5)
    Camera(probe)
    launcher.start("planner_node", name="planner_node", params=PLANNER)
    assert probe.spin_until(lambda: _status(statuses, PlannerStatus.OK), 120.0), statuses[-1:]


def test_a_stale_camera_stops_the_robot_until_images_come_back(probe, launcher):
    timeout = 0.3
    statuses = probe.collect(PlannerStatus, "status")
    actions = probe.collect(ActionCommand, "action")
    launcher.start(
        "planner_node", name="planner_node", params={**PLANNER, "image_timeout": timeout}
    )
    _publish_goal(probe)
    camera = Camera(probe)
    assert probe.spin_until(lambda: _status(statuses, PlannerStatus.OK), 120.0), statuses[-1:]

    camera.on, since = False, len(statuses)
    assert probe.spin_until(lambda: _status(statuses, PlannerStatus.STALE_IMAGE, since), 10.0)
    stale = _status(statuses, PlannerStatus.STALE_IMAGE, since)
    assert "old" in stale.message and stale.image_age > timeout
    same_tick = lambda: [m for _, m in actions if m.header.stamp == stale.header.stamp]  # noqa: E731
    assert probe.spin_until(same_tick, 5.0)
    np.testing.assert_array_equal(np.asarray(same_tick()[0].action), [0.0, 0.0])

    camera.on, since = True, len(statuses)
    assert probe.spin_until(lambda: _status(statuses, PlannerStatus.OK, since), 10.0), (
        "planning did not resume when the camera came back"
    )


def test_reset_drops_the_warm_start(probe, launcher):
    plans = probe.collect(VirtualTrajectory, "plan")
    launcher.start("planner_node", name="planner_node", params=PLANNER)
    _publish_goal(probe)
    Camera(probe)
    warm = lambda since=0: [m for _, m in plans[since:] if m.warm_started]  # noqa: E731
    assert probe.spin_until(warm, 120.0), "no warm-started plan"

    response = probe.call(Trigger, "planner_node/reset", Trigger.Request())
    assert response.success and "warm start" in response.message
    since = len(plans)
    assert probe.spin_until(lambda: len(plans) > since + 5, 10.0)
    after = [m.warm_started for _, m in plans[since:]]
    assert False in after and after[-1], f"warm_started of the plans after the reset: {after}"
