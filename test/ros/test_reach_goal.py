"""The ``~/reach_goal`` action: a goal image in, feedback every tick, a result; cancel stops.

The planner is fed by the test's camera (the analytic model's world): a goal showing what the
camera shows is reached at once; a far one gives feedback until it is cancelled, which stops
the robot, or until its time limit, which ends it with the reason. Then the same through the
simulator loop, the robot driven by cmd_vel (TwistStamped): the simulator's goal sent as a
ReachGoal gives feedback and a result, and cancelling one stops the simulated robot.
"""

from __future__ import annotations

import numpy as np
from launcher import require_ros
from scenes import PLANNER, image_msg, rgb

require_ros()

from geometry_msgs.msg import TwistStamped  # noqa: E402
from grasp_ros.action import ReachGoal  # noqa: E402
from grasp_ros.msg import ActionCommand, PlannerStatus  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from grasp_ros.nodes import ros  # noqa: E402

START, FAR = rgb((-0.5, 0.2), (0.5, -0.2))


def _camera(probe) -> None:
    pub = probe.node.create_publisher(Image, "image", ros.CAMERA_QOS)

    def publish() -> None:
        pub.publish(image_msg(START, probe.node.get_clock().now().nanoseconds * 1e-9))

    probe.node.create_timer(0.05, publish)


def _send(probe, client, goal: ReachGoal.Goal, feedback: list):
    assert client.wait_for_server(timeout_sec=120.0), "no ~/reach_goal server"
    probe.spin_for(0.5)  # the reply paths match a little after the server is seen (Probe.call)
    future = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
    assert probe.spin_until(future.done, 30.0)
    handle = future.result()
    assert handle.accepted
    return handle


def _result(probe, handle, timeout: float = 60.0):
    future = handle.get_result_async()
    assert probe.spin_until(future.done, timeout), "no result"
    return future.result()


def test_a_goal_is_reached_cancelled_or_given_up_with_feedback(probe, launcher):
    statuses = probe.collect(PlannerStatus, "status")
    actions = probe.collect(ActionCommand, "action")
    launcher.start("planner_node", name="planner_node", params=PLANNER)
    _camera(probe)
    client = ActionClient(probe.node, ReachGoal, "planner_node/reach_goal")

    feedback: list = []
    here = ReachGoal.Goal(goal_image=image_msg(START, 0.0), tolerance=0.05)
    result = _result(probe, _send(probe, client, here, feedback))
    assert result.result.reached and result.result.status == PlannerStatus.GOAL_REACHED
    assert feedback and feedback[-1].status == PlannerStatus.GOAL_REACHED

    feedback.clear()
    handle = _send(probe, client, ReachGoal.Goal(goal_image=image_msg(FAR, 0.0)), feedback)
    planning = lambda: sum(f.status == PlannerStatus.OK for f in feedback) >= 3  # noqa: E731
    assert probe.spin_until(planning, 60.0), [f.status for f in feedback]
    assert np.isfinite(feedback[-1].plan_cost) and feedback[-1].ticks >= 3
    assert feedback[-1].goal_cost > 0.05  # FAR is far
    cancel = handle.cancel_goal_async()
    assert probe.spin_until(cancel.done, 10.0)
    ended = _result(probe, handle).result
    assert not ended.reached and ended.message == "goal canceled"
    since = len(statuses)
    assert probe.spin_until(lambda: len(statuses) > since + 3, 10.0)
    halted = [m for _, m in statuses[since + 1 :]]
    assert all(m.status == PlannerStatus.NO_GOAL and m.message == "goal canceled" for m in halted)
    stamps = {m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in halted}
    stops = [m for _, m in actions if m.header.stamp.sec * 10**9 + m.header.stamp.nanosec in stamps]
    assert stops and all(np.all(np.asarray(m.action) == 0) for m in stops)

    limited = ReachGoal.Goal(goal_image=image_msg(FAR, 0.0), time_limit=1.0)
    ended = _result(probe, _send(probe, client, limited, [])).result
    assert not ended.reached and ended.message == "time limit of 1 s reached"
    client.destroy()


def test_a_goal_through_the_simulator_loop_and_cancelling_it_stops_the_robot(probe, launcher):
    goals = probe.collect(Image, "goal_image", ros.LATCHED_QOS)
    twists = probe.collect(TwistStamped, "cmd_vel")
    executed = probe.collect(ActionCommand, "sim/executed_action")
    params = {**PLANNER, "cmd_vel.enabled": True}
    # Only the ReachGoal gives the planner its goal, and only cmd_vel drives the simulator.
    remaps = {"image": "camera/image_raw", "goal_image": "unused/goal", "action": "unused/action"}
    launcher.start("planner_node", name="planner_node", params=params, remaps=remaps)
    launcher.start("sim_node", name="sim_node", params={"env": "wall"})
    assert probe.spin_until(lambda: goals, 120.0), "no goal image from the simulator"
    client = ActionClient(probe.node, ReachGoal, "planner_node/reach_goal")

    feedback: list = []
    goal = ReachGoal.Goal(goal_image=goals[-1][1], time_limit=3.0)
    ended = _result(probe, _send(probe, client, goal, feedback)).result
    assert ended.reached or ended.message == "time limit of 3 s reached", ended.message
    assert feedback and feedback[-1].ticks == ended.ticks > 0
    assert any(f.status == PlannerStatus.OK for f in feedback)
    assert twists and twists[-1][1].header.frame_id == "base_link"
    assert any(np.any(np.asarray(m.action)) for _, m in executed), "cmd_vel never moved it"

    feedback.clear()
    handle = _send(probe, client, ReachGoal.Goal(goal_image=goals[-1][1]), feedback)
    planning = lambda: sum(f.status == PlannerStatus.OK for f in feedback) >= 2  # noqa: E731
    assert probe.spin_until(planning, 60.0), [f.status for f in feedback]
    cancel = handle.cancel_goal_async()
    assert probe.spin_until(cancel.done, 10.0)
    assert _result(probe, handle).result.message == "goal canceled"
    probe.spin_for(0.5)  # the stop reaches the simulator within a tick
    since = len(executed)
    assert probe.spin_until(lambda: len(executed) >= since + 5, 10.0)
    assert all(not np.any(np.asarray(m.action)) for _, m in executed[since:])
    client.destroy()
