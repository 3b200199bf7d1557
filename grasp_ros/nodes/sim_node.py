"""sim_node: a reference world (`grasp_ros.envs`) as a robot, so the whole loop runs in ROS.

It steps the world at ``step_rate`` with the newest command (``action``, or ``cmd_vel`` mapped
back through the ``cmd_vel.*`` parameters), zeros once no command came for ``action_timeout``
seconds (`grasp_ros.control.sim_robot`, the ROS-free part), and publishes what the team's topic
contract names (`grasp_ros.io.sim_topics`, the module the bag recorder writes the same topics
with): ``camera/image_raw`` at ``camera_rate``, the goal image and the task (latched), the
ground-truth ``sim/pose`` and ``sim/object_pose`` (what the task is about: Push-T's block), the
action it executed on ``sim/executed_action``, and, while someone subscribes, ``sim/markers``
for rviz (the agent, Push-T's block and its goal pose; `grasp_ros.viz.world_markers`).
``~/new_task`` draws the next task (seed + 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from grasp_ros.control.cmd_vel import TWIST_FIELDS, action_from_twist
from grasp_ros.control.node_params import SIM_SCHEMA
from grasp_ros.control.sim_robot import SimRobot
from grasp_ros.envs import make_env
from grasp_ros.io import sim_topics as T
from grasp_ros.msg import ActionCommand
from grasp_ros.nodes import messages as M
from grasp_ros.nodes import ros
from grasp_ros.viz import world_markers


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
        self.create_subscription(ActionCommand, "action", self._on_action, 10)
        self.create_subscription(Twist, "cmd_vel", self._on_twist, 10)
        self.create_service(Trigger, "~/new_task", self._on_new_task)
        self._step_timer = self.create_timer(1.0 / self.params["step_rate"], self._step)
        self._camera_timer = self.create_timer(
            1.0 / self.params["camera_rate"], self._publish_image
        )
        ros.on_set_parameters(self, SIM_SCHEMA, self._apply)
        self._new_task(self.params["seed"])

    # -- commands ---------------------------------------------------------------------------
    def _on_action(self, msg: ActionCommand) -> None:
        try:
            self.robot.command(np.asarray(msg.action, dtype=np.float32), self._now())
        except ValueError as exc:
            self.get_logger().warning(f"ignored {exc}", throttle_duration_sec=5.0)

    def _on_twist(self, msg: Twist) -> None:
        twist = dict(zip(TWIST_FIELDS, (msg.linear.x, msg.linear.y, msg.angular.z), strict=True))
        try:
            action = action_from_twist(twist, self.params, self.robot.env.action_dim)
            self.robot.command(action, self._now())
        except ValueError as exc:
            self.get_logger().warning(f"ignored a cmd_vel: {exc}", throttle_duration_sec=5.0)

    # -- the world --------------------------------------------------------------------------
    def _step(self) -> None:
        step = self.robot.step(self._now())
        stamp = self.get_clock().now().to_msg()
        fields = {"action": step.action, "dt": 1.0 / self.params["step_rate"], "step_index": 0}
        self._executed_pub.publish(M.action_msg(fields, M.header(stamp)))
        hdr = M.header(stamp, T.MAP_FRAME)
        self._pose_pub.publish(M.pose_stamped(np.append(step.state[:2], 0.0), hdr))
        pose = self.robot.env.object_pose(step.state[None])[0]
        self._object_pub.publish(M.pose_stamped(np.append(pose[:2], 0.0), hdr, yaw=pose[2]))
        if self._markers_pub.get_subscription_count() > 0:
            markers = world_markers(self.robot.env, step.state, self.robot.task.goal_state)
            self._markers_pub.publish(M.marker_array(markers, hdr))
        if step.reached:
            self.get_logger().info(
                f"goal reached after {self.robot.steps} steps (expert solution: "
                f"{self.robot.task.optimal_steps})"
            )

    def _publish_image(self) -> None:
        hdr = M.header(self.get_clock().now().to_msg(), T.CAMERA_FRAME)
        self._camera_pub.publish(M.image_msg(self.robot.image, hdr))

    def _new_task(self, seed: int) -> str:
        task = self.robot.new_task(seed)
        text = T.task_json(self.robot.env, task)
        hdr = M.header(self.get_clock().now().to_msg(), T.CAMERA_FRAME)
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

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def main(args: list[str] | None = None) -> int:
    return ros.run(SimNode, "sim_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
