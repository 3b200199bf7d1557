"""sim_node: a reference world (`grasp_ros.envs`) as a robot, so the whole loop runs in ROS.

It steps the world at ``step_rate`` with the newest command (``action``, whose chunk it steps
through one ``dt`` at a time, or ``cmd_vel`` mapped back through the ``cmd_vel.*``
parameters), zeros once no command came for ``action_timeout`` seconds
(`grasp_ros.control.sim_robot`, the ROS-free part), and publishes what the team's topic
contract names (`grasp_ros.io.sim_topics`, the module the bag recorder writes the same topics
with): ``camera/image_raw`` at ``camera_rate``, the goal image and the task (latched), the
ground-truth ``sim/pose`` and ``sim/object_pose`` (what the task is about: Push-T's block), the
action it executed on ``sim/executed_action`` (its ``step_index`` is the chunk row it
executed), and, while someone subscribes, ``sim/markers`` for rviz (the agent, Push-T's block
and its goal pose; `grasp_ros.viz.world_markers`). ``~/new_task`` draws the next task (seed + 1).

Positions follow REP-103: metres (``world_scale`` per world unit) in ``map``, x along the image
columns and y up the image (the image's row axis grows downward, so y and yaw change sign), and
the robot's pose goes out on ``/tf`` as ``map`` -> ``base_frame`` where tf2_msgs is installed
(PyPI's ROS 2 wheels lack it; the node then says so once and ``sim/pose`` carries the pose).

With ``publish_clock`` the world runs on simulated time: each step advances it by one
``step_rate`` period and publishes it on ``/clock``, every stamp is in it, and the node's
timers run on the steady clock, since the simulator is what makes time pass. The launch file
sets it with ``use_sim_time``, so the other nodes follow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped, Twist, TwistStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from grasp_ros.control.cmd_vel import TWIST_FIELDS, action_from_twist
from grasp_ros.control.node_params import SIM_SCHEMA
from grasp_ros.control.sim_robot import SimRobot
from grasp_ros.envs import make_env
from grasp_ros.io import sim_topics as T
from grasp_ros.io.frames import to_map
from grasp_ros.msg import ActionCommand
from grasp_ros.nodes import messages as M
from grasp_ros.nodes import ros
from grasp_ros.viz import MarkerSpec, world_markers

try:
    from tf2_msgs.msg import TFMessage
except ImportError:  # PyPI's ROS 2 Jazzy has no tf2_msgs wheel
    TFMessage = None

#: tf2_ros's TransformBroadcaster QoS (its DynamicBroadcasterQoS): reliable, volatile, depth 100.
TF_QOS = QoSProfile(depth=100)


class SimNode(Node):
    """A simulated robot with a camera (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("sim_node")
        self.params = ros.declare(self, SIM_SCHEMA.values())
        env = make_env(self.params["env"], image_size=self.params["image_size"])
        self.robot = SimRobot(env, self.params["horizon"], self.params["action_timeout"])
        self._camera_pub = self.create_publisher(Image, T.CAMERA_TOPIC, ros.CAMERA_QOS)
        self._goal_pub = self.create_publisher(Image, T.GOAL_TOPIC, ros.LATCHED_QOS)
        self._task_pub = self.create_publisher(String, T.TASK_TOPIC, ros.LATCHED_QOS)
        self._pose_pub = self.create_publisher(PoseStamped, T.POSE_TOPIC, 10)
        self._object_pub = self.create_publisher(PoseStamped, T.OBJECT_POSE_TOPIC, 10)
        self._markers_pub = self.create_publisher(MarkerArray, T.MARKERS_TOPIC, 10)
        self._executed_pub = self.create_publisher(ActionCommand, T.EXECUTED_ACTION_TOPIC, 10)
        self._tf_pub = None
        if TFMessage is not None:
            self._tf_pub = self.create_publisher(TFMessage, "/tf", TF_QOS)
        else:
            self.get_logger().info("tf2_msgs is not installed: no /tf; sim/pose has the pose")
        self._sim_time: int | None = None
        timer_clock = None
        if self.params["publish_clock"]:
            self._sim_time = 0
            self._clock_pub = self.create_publisher(ClockMsg, "/clock", ros.CAMERA_QOS)
            timer_clock = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_subscription(ActionCommand, "action", self._on_action, 10)
        twist_type = TwistStamped if self.params["cmd_vel.stamped"] else Twist
        self.create_subscription(twist_type, "cmd_vel", self._on_twist, 10)
        self.create_service(Trigger, "~/new_task", self._on_new_task)
        self._step_timer = self.create_timer(
            1.0 / self.params["step_rate"], self._step, clock=timer_clock
        )
        self._camera_timer = self.create_timer(
            1.0 / self.params["camera_rate"], self._publish_image, clock=timer_clock
        )
        ros.on_set_parameters(self, SIM_SCHEMA, self._apply)
        self._new_task(self.params["seed"])

    # -- commands ---------------------------------------------------------------------------
    def _on_action(self, msg: ActionCommand) -> None:
        chunk = np.asarray(msg.chunk if len(msg.chunk) else msg.action, dtype=np.float32)
        try:
            self.robot.command(chunk.reshape(-1, len(msg.action)), self._now(), msg.dt or 1.0)
        except ValueError as exc:
            self.get_logger().warning(f"ignored {exc}", throttle_duration_sec=5.0)

    def _on_twist(self, msg: Twist | TwistStamped) -> None:
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        values = (twist.linear.x, twist.linear.y, twist.angular.z)
        try:
            action = action_from_twist(
                dict(zip(TWIST_FIELDS, values, strict=True)),
                self.params,
                self.robot.env.action_dim,
            )
            self.robot.command(action, self._now())
        except ValueError as exc:
            self.get_logger().warning(f"ignored a cmd_vel: {exc}", throttle_duration_sec=5.0)

    # -- the world --------------------------------------------------------------------------
    def _step(self) -> None:
        dt = 1.0 / self.params["step_rate"]
        if self._sim_time is not None:
            self._sim_time += round(dt * 1e9)
            self._clock_pub.publish(ClockMsg(clock=self._stamp()))
        step = self.robot.step(self._now())
        stamp = self._stamp()
        fields = {"action": step.action, "dt": dt, "step_index": step.index, "chunk": [step.action]}
        self._executed_pub.publish(M.action_msg(fields, M.header(stamp)))
        hdr, scale = M.header(stamp, T.MAP_FRAME), self._world_scale()
        xyz = to_map(np.append(step.state[:2], 0.0), scale)
        self._pose_pub.publish(M.pose_stamped(xyz, hdr))
        pose = self.robot.env.object_pose(step.state[None])[0]
        at = to_map(np.append(pose[:2], 0.0), scale)
        self._object_pub.publish(M.pose_stamped(at, hdr, yaw=-pose[2]))
        if self._tf_pub is not None:
            tf = TransformStamped(header=hdr, child_frame_id=self.params["base_frame"])
            tf.transform.translation.x, tf.transform.translation.y = xyz[0], xyz[1]
            tf.transform.rotation.w = 1.0
            self._tf_pub.publish(TFMessage(transforms=[tf]))
        if self._markers_pub.get_subscription_count() > 0:
            markers = world_markers(self.robot.env, step.state, self.robot.task.goal_state)
            self._markers_pub.publish(M.marker_array([_in_map(m, scale) for m in markers], hdr))
        if step.reached:
            self.get_logger().info(
                f"goal reached after {self.robot.steps} steps (expert solution: "
                f"{self.robot.task.optimal_steps})"
            )

    def _world_scale(self) -> float:
        """Metres per world unit: the parameter, or the world's own when it is 0."""
        return self.params["world_scale"] or self.robot.env.metres_per_unit

    def _publish_image(self) -> None:
        hdr = M.header(self._stamp(), T.CAMERA_FRAME)
        self._camera_pub.publish(M.image_msg(self.robot.image, hdr))

    def _new_task(self, seed: int) -> str:
        task = self.robot.new_task(seed)
        text = T.task_json(self.robot.env, task, self._world_scale())
        hdr = M.header(self._stamp(), T.CAMERA_FRAME)
        self._goal_pub.publish(M.image_msg(task.goal_image, hdr))
        self._task_pub.publish(String(data=text))
        self.get_logger().info(f"new task: {text}")
        return text

    def _on_new_task(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        response.success, response.message = True, self._new_task(self.robot.seed + 1)
        return response

    def _apply(self, changes: dict[str, Any]) -> None:
        self.params = {**self.params, **changes}
        self.robot.horizon = self.params["horizon"]
        self.robot.action_timeout = self.params["action_timeout"]
        for name, timer in (("step_rate", self._step_timer), ("camera_rate", self._camera_timer)):
            if name in changes:
                timer.timer_period_ns = round(1e9 / self.params[name])

    def _time(self) -> Time:
        """Now: the simulated time with ``publish_clock``, else the node's ROS clock."""
        if self._sim_time is not None:
            return Time(nanoseconds=self._sim_time)
        return self.get_clock().now()

    def _stamp(self) -> Any:
        return self._time().to_msg()

    def _now(self) -> float:
        return self._time().nanoseconds * 1e-9


def _in_map(spec: MarkerSpec, scale: float) -> MarkerSpec:
    """A world marker (world units, image axes) in the REP-103 map frame."""
    points = to_map(spec.points, scale)
    return dataclasses.replace(spec, points=points, scale=tuple(s * scale for s in spec.scale))


def main(args: list[str] | None = None) -> int:
    return ros.run(SimNode, "sim_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
