"""A recorded simulator bag played into the node live reproduces the offline replay's actions.

The bag (`grasp-ros-record-sim`) is read with rosbags and its camera and goal messages are
published byte for byte, as `ros2 bag play --clock --topics /camera/image_raw /goal_image`
would, to a planner with ``use_sim_time``, with the test's own ``/clock``. The test steps the
clock tick by tick: the images up to each tick time, then the clock at that time, then it waits
for the tick's action. `grasp-ros-replay` ticks at the same times on bag time, so with the same
parameters (fixed iterations) the two give the same actions, bit for bit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from launcher import require_ros

require_ros()

from grasp_ros.msg import ActionCommand  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from rclpy.time import Time  # noqa: E402
from rosbags.rosbag2 import Reader  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from grasp_ros.io import messages  # noqa: E402
from grasp_ros.nodes import ros  # noqa: E402

RATE = 10.0
START = 100.0
PLANNER = {
    "model": "wall",
    "device": "cpu",
    "cpu_threads": 1,
    "control_rate": RATE,
    "budget": "iterations",
    "iterations": 3,
    "cold_start_iterations": 10,
    "horizon": 10,
    "image_timeout": 0.5,
}
TOPICS = ("/camera/image_raw", "/goal_image")


def _tool(name: str, *args: str) -> None:
    subprocess.run([str(Path(sys.executable).parent / name), *args], check=True)


def _replayed_actions(bag: Path, params: Path, out: Path) -> list[tuple[int, np.ndarray]]:
    """``(stamp in ns, action)`` of every tick of the offline replay."""
    _tool("grasp-ros-replay", str(bag), "--params", str(params), "--out", str(out), "--quiet")
    store = messages.typestore()
    with Reader(out) as reader:
        connections = [c for c in reader.connections if c.topic == "/action"]
        return [
            (_ns(msg), np.asarray(msg.action, np.float32))
            for msg in (
                store.deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages(connections)
            )
        ]


def _recorded(bag: Path) -> list[tuple[int, str, Image]]:
    """``(receive time in ns, topic, message)`` of the camera and goal images, in bag order."""
    with Reader(bag) as reader:
        connections = [c for c in reader.connections if c.topic in TOPICS]
        return [
            (t, c.topic, deserialize_message(raw, Image))
            for c, t, raw in reader.messages(connections)
        ]


def test_a_bag_fed_live_gives_the_offline_replays_actions(probe, launcher, tmp_path):
    bag, params = tmp_path / "sim_bag", tmp_path / "planner.yaml"
    _tool("grasp-ros-record-sim", str(bag), "--duration", "2", "--start-time", str(START))
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": PLANNER}}))
    expected = _replayed_actions(bag, params, tmp_path / "replayed")
    assert len(expected) >= 15

    recorded = _recorded(bag)
    goal_pub = probe.node.create_publisher(Image, "goal_image", ros.LATCHED_QOS)
    image_pub = probe.node.create_publisher(Image, "camera/image_raw", ros.CAMERA_QOS)
    clock_pub = probe.node.create_publisher(Clock, "/clock", 10)
    actions = probe.collect(ActionCommand, "action")
    launcher.start(
        "planner_node",
        name="planner_node",
        params_files=[params],
        params={"use_sim_time": True, "autostart": True},
        remaps={"image": "camera/image_raw"},
    )
    # The node answers get_state once it spins, after autostart created the control timer;
    # no /clock was published before, so the timer started at time 0.
    request = GetState.Request()
    state = probe.call(GetState, "planner_node/get_state", request, 120.0, retry_every=5.0)
    assert state.current_state.label == "active"
    probe.spin_until(lambda: clock_pub.get_subscription_count() > 0, 10.0)

    fed = 0
    for stamp, _ in expected:
        while fed < len(recorded) and recorded[fed][0] <= stamp:
            _, topic, msg = recorded[fed]
            (goal_pub if topic == "/goal_image" else image_pub).publish(msg)
            fed += 1
        # Time for the images to reach the node's one-slot inbox before the clock makes it tick
        # (0.15 s once let a tick plan on the previous frame on a clean CI machine).
        probe.spin_for(0.5)
        clock_pub.publish(Clock(clock=Time(nanoseconds=stamp).to_msg()))
        ticked = lambda s=stamp: any(_ns(m) >= s for _, m in actions)  # noqa: E731
        assert probe.spin_until(ticked, 30.0), f"no tick at {stamp}"
    probe.spin_for(0.3)

    live = [(_ns(m), np.asarray(m.action, np.float32)) for _, m in actions]
    assert [s for s, _ in live] == [s for s, _ in expected]
    for (stamp, want), (_, got) in zip(expected, live, strict=True):
        np.testing.assert_array_equal(got, want, err_msg=f"tick at {stamp}")
    assert any(np.any(a != 0) for _, a in live), "every action was a stop"


def _ns(msg) -> int:
    """The header stamp in nanoseconds (an rclpy or a rosbags message)."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
