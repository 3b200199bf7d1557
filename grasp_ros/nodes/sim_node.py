"""sim_node: a reference world (`grasp_ros.envs`) as a robot, so the whole loop runs in ROS.

It steps the world at ``step_rate`` with the newest command (``action``, or ``cmd_vel`` mapped
back through the ``cmd_vel.*`` parameters), zeros once no command came for ``action_timeout``
seconds, and publishes what the team's topic contract names (`grasp_ros.io.sim_topics`, the
module the bag recorder writes the same topics with): ``camera/image_raw`` at ``camera_rate``,
the goal image and the task (latched), the ground-truth ``sim/pose`` and the action it executed
on ``sim/executed_action``. ``~/new_task`` draws the next task (seed + 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import Trigger

from grasp_ros.control.cmd_vel import TWIST_FIELDS, action_from_twist
from grasp_ros.control.node_params import SIM_SCHEMA
from grasp_ros.envs import make_env
from grasp_ros.io import sim_topics as T
from grasp_ros.msg import ActionCommand
from grasp_ros.nodes import messages as M
from grasp_ros.nodes import ros


class SimNode(Node):
    """A simulated robot with a camera (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("sim_node")
        self.params = ros.declare(self, SIM_SCHEMA.values())
        self.env = make_env(self.params["env"], image_size=self.params["image_size"])
        self._command = np.zeros(self.env.action_dim, np.float32)
        self._command_at = -np.inf
        self._steps = 0
        self._camera_pub = self.create_publisher(Image, T.CAMERA_TOPIC, ros.CAMERA_QOS)
        self._goal_pub = self.create_publisher(Image, T.GOAL_TOPIC, ros.LATCHED_QOS)
        self._task_pub = self.create_publisher(String, T.TASK_TOPIC, ros.LATCHED_QOS)
        self._pose_pub = self.create_publisher(PoseStamped, T.POSE_TOPIC, 10)
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
        action = np.asarray(msg.action, dtype=np.float32)
        if action.shape != (self.env.action_dim,) or not np.isfinite(action).all():
            self.get_logger().warning(
                f"ignored an action of shape {list(action.shape)}: the {self.params['env']} "
                f"world takes {self.env.action_dim} finite values",
                throttle_duration_sec=5.0,
            )
            return
        self._hold(action)

    def _on_twist(self, msg: Twist) -> None:
        twist = dict(zip(TWIST_FIELDS, (msg.linear.x, msg.linear.y, msg.angular.z), strict=True))
        try:
            self._hold(action_from_twist(twist, self.params, self.env.action_dim))
        except ValueError as exc:
            self.get_logger().warning(f"ignored a cmd_vel: {exc}", throttle_duration_sec=5.0)

    def _hold(self, action: np.ndarray) -> None:
        self._command, self._command_at = action, self._now()

    # -- the world --------------------------------------------------------------------------
    def _step(self) -> None:
        fresh = self._now() - self._command_at <= self.params["action_timeout"]
        action = self._command if fresh else np.zeros(self.env.action_dim, np.float32)
        self._frame = self.env.step(action)
        self._steps += 1
        stamp = self.get_clock().now().to_msg()
        fields = {"action": action, "dt": 1.0 / self.params["step_rate"], "step_index": 0}
        self._executed_pub.publish(M.action_msg(fields, M.header(stamp)))
        position = np.append(self.env.state[:2], 0.0)
        self._pose_pub.publish(M.pose_stamped(position, M.header(stamp, T.MAP_FRAME)))
        if not self._reached and self.env.success(self.env.state, self.task.goal_state):
            self._reached = True
            self.get_logger().info(
                f"goal reached after {self._steps} steps (shortest path: {self.task.optimal_steps})"
            )

    def _publish_image(self) -> None:
        hdr = M.header(self.get_clock().now().to_msg(), T.CAMERA_FRAME)
        self._camera_pub.publish(M.image_msg(self._frame, hdr))

    def _new_task(self, seed: int) -> str:
        self.task = self.env.sample_task(self.params["horizon"], seed)
        self._frame = self.env.reset(state=self.task.start_state)
        self.seed, self._steps, self._reached = seed, 0, False
        text = T.task_json(self.env, self.task)
        hdr = M.header(self.get_clock().now().to_msg(), T.CAMERA_FRAME)
        self._goal_pub.publish(M.image_msg(self.task.goal_image, hdr))
        self._task_pub.publish(String(data=text))
        self.get_logger().info(f"new task: {text}")
        return text

    def _on_new_task(self, request: Trigger.Request, response: Trigger.Response) -> Any:
        response.success, response.message = True, self._new_task(self.seed + 1)
        return response

    def _apply(self, changes: dict[str, Any]) -> None:
        self.params = {**self.params, **changes}
        for name, timer in (("step_rate", self._step_timer), ("camera_rate", self._camera_timer)):
            if name in changes:
                timer.timer_period_ns = round(1e9 / self.params[name])

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9


def main(args: list[str] | None = None) -> int:
    return ros.run(SimNode, "sim_node", args)


if __name__ == "__main__":
    raise SystemExit(main())
