"""sim_node on its own clock: /clock, /tf and the pose in REP-103 metres, and a chunk stepped.

With ``publish_clock`` each step advances simulated time by one step period and publishes it,
and every stamp is in that time. The pose goes out on ``sim/pose`` and as the ``map`` ->
``base_link`` transform on ``/tf`` (same stamp, same point): metres (``world_scale`` per arena
unit), y up the image, so the arena lies at x >= 0, y <= 0. An ActionCommand with a chunk of
three actions is executed row by row, each for its ``dt``, and ``sim/executed_action`` reports
the row as ``step_index``. A planner with ``use_sim_time`` (as the launch file starts it with
``sim:=true use_sim_time:=true``) plans on that clock: its ticks are stamped with /clock's times.
"""

from __future__ import annotations

import numpy as np
from launcher import require_ros
from scenes import PLANNER

require_ros()

from geometry_msgs.msg import PoseStamped  # noqa: E402
from grasp_ros.msg import ActionCommand, PlannerStatus  # noqa: E402
from rclpy.time import Time  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from grasp_ros.nodes import messages as M  # noqa: E402

STEP_RATE, SCALE, ARENA = 20.0, 0.05, 64.0
CHUNK = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], np.float32)


def _ns(stamp) -> int:
    return Time.from_msg(stamp).nanoseconds


def test_the_sim_publishes_its_clock_tf_and_pose_and_steps_through_a_chunk(probe, launcher):
    clock = probe.collect(Clock, "/clock")
    tf = probe.collect(TFMessage, "/tf")
    poses = probe.collect(PoseStamped, "sim/pose")
    executed = probe.collect(ActionCommand, "sim/executed_action")
    # world_scale left at its default (0): the Wall's own 0.05 m per unit
    params = {"env": "wall", "publish_clock": True, "step_rate": STEP_RATE}
    launcher.start("sim_node", name="sim_node", params=params)
    assert probe.spin_until(lambda: len(clock) >= 5 and len(tf) >= 5 and poses, 120.0)

    ticks = [_ns(m.clock) for _, m in clock]
    period = round(1e9 / STEP_RATE)
    steps = np.diff(ticks)
    assert ticks[0] > 0 and np.all(steps > 0) and np.all(steps % period == 0), ticks[:10]
    pose = poses[-1][1]
    assert pose.header.frame_id == "map" and _ns(pose.header.stamp) % period == 0
    (transform,) = next(m.transforms for _, m in tf if m.transforms[0].header == pose.header)
    assert transform.child_frame_id == "base_link"
    t, p = transform.transform.translation, pose.pose.position
    assert (t.x, t.y, t.z) == (p.x, p.y, p.z) and transform.transform.rotation.w == 1.0
    assert 0.0 < p.x < ARENA * SCALE and -ARENA * SCALE < p.y < 0.0

    action = probe.node.create_publisher(ActionCommand, "action", 10)
    probe.spin_until(lambda: action.get_subscription_count() > 0, 10.0)
    since = len(executed)
    header = M.header(clock[-1][1].clock)
    fields = {"action": CHUNK[0], "dt": 0.1, "step_index": 0, "chunk": CHUNK}
    action.publish(M.action_msg(fields, header))
    stepped = lambda: [m for _, m in executed[since:] if np.any(np.asarray(m.action))]  # noqa: E731
    assert probe.spin_until(lambda: any(m.step_index == 2 for m in stepped()), 30.0)
    rows = [m.step_index for m in stepped()]
    assert rows == sorted(rows) and set(rows) == {0, 1, 2}, rows
    for m in stepped():
        np.testing.assert_array_equal(np.asarray(m.action), CHUNK[m.step_index])


def test_a_planner_with_use_sim_time_plans_on_the_simulators_clock(probe, launcher):
    clock = probe.collect(Clock, "/clock")
    statuses = probe.collect(PlannerStatus, "status")
    params = {"env": "wall", "publish_clock": True, "use_sim_time": True}
    launcher.start("sim_node", name="sim_node", params=params)
    planner = {**PLANNER, "use_sim_time": True}
    launcher.start("planner_node", params=planner, remaps={"image": "camera/image_raw"})
    ok = lambda: [m for _, m in statuses if m.status == PlannerStatus.OK]  # noqa: E731
    assert probe.spin_until(lambda: len(ok()) >= 3, 120.0), [m.message for _, m in statuses[-3:]]
    # The probe discovers the sim's /clock publisher on its own schedule, which can lag the
    # planner's by more than three ticks.
    probe.spin_until(lambda: clock, 10.0)
    # Simulated time is a whole number of step periods (0.1 s); a wall-clock stamp almost never.
    stamps = [_ns(m.header.stamp) for m in ok()]
    assert all(t % 100_000_000 == 0 for t in stamps) and clock, stamps
