"""planner_node as a managed node: nothing moves until it is configured and activated.

Driven through the lifecycle services, as a lifecycle manager (nav2's) or `ros2 lifecycle set`
drives it: configure loads the model, activate starts the actions, deactivate publishes the
stop action (status STOPPED) and ends them, cleanup releases the model; a configure that fails
(a model that does not exist) is reported and leaves the node alive and unconfigured. A
ReachGoal sent before activation is aborted with the reason, and so is one in progress when
the node is deactivated.
"""

from __future__ import annotations

import numpy as np
from launcher import require_ros
from scenes import PLANNER, image_msg, rgb

require_ros()

from grasp_ros.action import ReachGoal  # noqa: E402
from grasp_ros.msg import ActionCommand, PlannerStatus  # noqa: E402
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402


def _change(probe, node: str, transition: int) -> bool:
    request = ChangeState.Request(transition=Transition(id=transition))
    return probe.call(ChangeState, f"{node}/change_state", request).success


def _state(probe, node: str) -> str:
    request = GetState.Request()
    return probe.call(GetState, f"{node}/get_state", request, retry_every=5.0).current_state.label


def test_the_planner_moves_only_while_active(probe, launcher):
    actions = probe.collect(ActionCommand, "action")
    statuses = probe.collect(PlannerStatus, "status")
    launcher.start("planner_node", name="planner_node", params={**PLANNER, "autostart": False})
    assert _state(probe, "planner_node") == "unconfigured"
    assert _change(probe, "planner_node", Transition.TRANSITION_CONFIGURE)
    assert _state(probe, "planner_node") == "inactive"
    client = ActionClient(probe.node, ReachGoal, "planner_node/reach_goal")
    goal = ReachGoal.Goal(goal_image=image_msg(rgb((0.5, 0.0))[0], 0.0))
    assert "is not active" in _ended(probe, _reach_goal(probe, client, goal)).message
    assert not actions, "actions before activation"

    assert _change(probe, "planner_node", Transition.TRANSITION_ACTIVATE)
    assert probe.spin_until(lambda: len(actions) >= 5, 30.0), "no actions once active"

    in_progress = _reach_goal(probe, client, goal)
    assert _change(probe, "planner_node", Transition.TRANSITION_DEACTIVATE)
    assert _ended(probe, in_progress).message == "planner_node was deactivated"
    client.destroy()
    probe.spin_for(0.5)
    stop = [m for _, m in statuses if m.message == "planner_node was deactivated"]
    assert len(stop) == 1 and stop[0].status == PlannerStatus.STOPPED
    (stop_action,) = [m for _, m in actions if m.header.stamp == stop[0].header.stamp]
    np.testing.assert_array_equal(np.asarray(stop_action.action), [0.0, 0.0])
    count = len(actions)
    probe.spin_for(1.0)
    assert len(actions) == count, "actions after deactivation"

    assert _change(probe, "planner_node", Transition.TRANSITION_CLEANUP)
    assert _state(probe, "planner_node") == "unconfigured"


def test_a_failed_configure_is_reported_and_the_node_stays_up(probe, launcher):
    params = {**PLANNER, "autostart": False, "model": "/nonexistent/model.pt"}
    planner = launcher.start("planner_node", name="planner_node", params=params)
    assert not _change(probe, "planner_node", Transition.TRANSITION_CONFIGURE)
    assert _state(probe, "planner_node") == "unconfigured"
    assert planner.running() and "cannot configure" in planner.output()


def _reach_goal(probe, client: ActionClient, goal: ReachGoal.Goal):
    """Send ``goal``; the future of its result."""
    assert client.wait_for_server(timeout_sec=60.0), "no ~/reach_goal server"
    probe.spin_for(0.5)  # the reply paths match a little after the server is seen (Probe.call)
    sent = client.send_goal_async(goal)
    assert probe.spin_until(sent.done, 30.0) and sent.result().accepted
    return sent.result().get_result_async()


def _ended(probe, result) -> ReachGoal.Result:
    assert probe.spin_until(result.done, 30.0), "no result"
    return result.result().result
