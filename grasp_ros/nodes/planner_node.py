"""planner_node: camera image and goal image in, an action every control tick out.

A thin shell around `grasp_ros.control.PlannerRuntime`: it converts messages, calls the
runtime, and publishes ``action``, ``status``, ``plan`` (when someone listens), ``cmd_vel``
(when enabled) and ``/diagnostics`` (`grasp_ros.nodes.planner_outputs`). Parameters are
declared from the runtime's schema; a live change goes through ``PlannerRuntime.set_params``,
so ``ros2 param set`` is refused with the schema's reason, and a new horizon or planner is
built without a restart.

A managed (lifecycle) node, as nav2's are: ``configure`` loads the model and warms up (a
failure is logged and leaves it unconfigured), ``activate`` starts the control timer,
``deactivate`` publishes the stop action (status STOPPED) and stops ticking, ``cleanup`` and
``shutdown`` release the model. With ``autostart`` (the launch file's default) it configures
and activates itself. Images and the goal are received in any state; the newest wait for the
first tick.

Threads (a MultiThreadedExecutor): image callbacks, the control timer, the ``~/reach_goal``
action (`grasp_ros.nodes.reach_goal`) and the parameter and reset services each have their own
callback group. An image callback converts the image and
leaves it, with its stamp, in a one-slot inbox under a lock held for a pointer swap; the tick
empties the inbox and hands the newest image to the runtime itself. So only the timer thread
feeds and ticks the runtime, and camera callbacks never wait behind a planning step. Parameter
changes and ``~/reset`` take the runtime lock and so wait for a running tick to end; stopping
does not (see :meth:`PlannerNode.stop_now`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from grasp_ros.control import PlannerRuntime, Status, cmd_vel
from grasp_ros.control.node_params import PLANNER_NODE_SCHEMA
from grasp_ros.control.params import SCHEMA
from grasp_ros.io.messages import time_to_sec
from grasp_ros.nodes import messages as M
from grasp_ros.nodes import ros
from grasp_ros.nodes.planner_outputs import PlannerOutputs
from grasp_ros.nodes.reach_goal import ReachGoalServer


class PlannerNode(LifecycleNode):
    """The planner as a managed ROS 2 node (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("planner_node")
        values = ros.declare(self, [*SCHEMA.values(), *PLANNER_NODE_SCHEMA.values()])
        self.params = {name: values[name] for name in SCHEMA}
        self.runtime: PlannerRuntime | None = None
        #: Why the robot is held stopped until the next goal (a ReachGoal that ended), or None.
        self.halted: str | None = None
        self._lock = threading.Lock()
        self._outbox = threading.Lock()
        self._inbox_lock = threading.Lock()
        self._inbox: dict[str, tuple[np.ndarray, float]] = {}
        self._goal: tuple[np.ndarray, float] | None = None
        self._stopped = True
        self._timer = None
        sensors, self._control = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        for topic, qos in (("image", ros.SENSOR_QOS), ("goal_image", ros.LATCHED_QOS)):
            self.create_subscription(
                Image, topic, lambda m, t=topic: self._receive(t, m), qos, callback_group=sensors
            )
        self.outputs = PlannerOutputs(self)
        self.create_service(Trigger, "~/reset", self._reset)
        self._goals = ReachGoalServer(self)
        ros.on_set_parameters(self, SCHEMA, self._apply)
        if values["autostart"] and self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # -- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load the model and warm up; a failure is logged and leaves the node unconfigured."""
        try:
            runtime = PlannerRuntime.from_params(self.params)
            cmd_vel.check_twist_mapping(runtime.params, runtime.model.action_dim)
        except ros.STARTUP_ERRORS as exc:
            self.get_logger().error(f"cannot configure: {exc}")
            return TransitionCallbackReturn.FAILURE
        with self._lock:
            self.runtime = runtime
            self.outputs.reset_diagnostics()
            if self._goal is not None:  # a goal that came before (or before a cleanup)
                runtime.on_goal(*self._goal)
        p = runtime.params
        self.get_logger().info(
            f"configured: {p['planner']} on {p['model']} ({runtime.device}), horizon "
            f"{p['horizon']}, {p['control_rate']:g} Hz"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Start ticking: an action every control period from now on."""
        with self._outbox:
            self._stopped = False
        if self._timer is None:
            self._timer = self.create_timer(
                self.runtime.period, self._tick, callback_group=self._control
            )
        else:
            self._timer.timer_period_ns = round(self.runtime.period * 1e9)
            self._timer.reset()
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Publish the stop action and tick no more (a running tick publishes nothing)."""
        self._timer.cancel()
        self.stop_now("planner_node was deactivated")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the model."""
        with self._lock:
            self.runtime = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop the robot if it was driven, and release the model."""
        if self._timer is not None:
            self._timer.cancel()
        self.stop_now("planner_node is shutting down")
        with self._lock:
            self.runtime = None
        return TransitionCallbackReturn.SUCCESS

    @property
    def active(self) -> bool:
        """Whether the control timer drives the robot (active, and not stopping)."""
        return not self._stopped

    # -- inputs -----------------------------------------------------------------------------
    def _receive(self, topic: str, msg: Image) -> None:
        try:
            rgb = M.image_to_rgb(msg)
        except M.IMAGE_ERRORS as exc:
            self.get_logger().warning(
                f"dropped a {topic} message: {exc}", throttle_duration_sec=5.0
            )
            return
        with self._inbox_lock:
            self._inbox[topic] = (rgb, time_to_sec(msg.header.stamp))

    def post_goal(self, rgb: np.ndarray) -> None:
        """A goal image from ``~/reach_goal``: it takes the goal topic's way, the inbox."""
        with self._inbox_lock:
            self._inbox["goal_image"] = (rgb, self.now())

    def _feed(self, inbox: dict[str, tuple[np.ndarray, float]]) -> None:
        """Hand the newest images to the runtime (which ignores a republished, unchanged goal)."""
        for topic, (rgb, stamp) in inbox.items():
            try:
                if topic == "goal_image":
                    if not self.runtime.on_goal(rgb, stamp):
                        continue
                    self._goal, self.halted = (rgb, stamp), None
                    self.get_logger().info("new goal image", throttle_duration_sec=5.0)
                else:
                    self.runtime.on_image(rgb, stamp)
            except ValueError as exc:
                self.get_logger().warning(f"ignored a {topic}: {exc}", throttle_duration_sec=5.0)

    # -- the control tick -------------------------------------------------------------------
    def _tick(self) -> None:
        if self._stopped or self.runtime is None:
            return
        now = self.get_clock().now()
        with self._inbox_lock:
            inbox, self._inbox = self._inbox, {}
        with self._lock:
            self._feed(inbox)
            misses = self.runtime.stats.deadline_misses
            t = now.nanoseconds * 1e-9
            if self.halted is not None:
                cmd = self.runtime.stop_command(t, Status.NO_GOAL, self.halted)
            else:
                cmd = self.runtime.tick(t)
            with self._outbox:
                if self._stopped:  # the stop went out while this tick planned: drop its result
                    return
                self.outputs.publish(cmd, self.runtime, now)
                self.outputs.diagnose(cmd, self.runtime, now)
            self._goals.on_tick(cmd)
            missed = self.runtime.stats.deadline_misses > misses
            self.outputs.log(cmd, self.runtime, missed)

    # -- parameters, services, shutdown -----------------------------------------------------
    def _apply(self, changes: dict[str, Any]) -> None:
        with self._lock:
            if self.runtime is None:  # not configured: the values take effect at configure
                self.params = {**self.params, **changes}
                return
            cmd_vel.check_twist_mapping(
                {**self.runtime.params, **changes}, self.runtime.model.action_dim
            )
            ok, reason = self.runtime.set_params(changes)
            if not ok:
                raise ValueError(reason)
            self.params = dict(self.runtime.params)
            if "control_rate" in changes and self._timer is not None:
                self._timer.timer_period_ns = round(self.runtime.period * 1e9)

    def _reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            if self.runtime is None:
                response.success, response.message = False, "planner_node is not configured"
                return response
            self.runtime.reset()
            self.outputs.reset_diagnostics()
        response.success, response.message = True, "dropped the warm start and the statistics"
        return response

    def stop_now(self, message: str = "planner_node is shutting down") -> None:
        """Publish a stop command (status STOPPED) now, and no more ticks.

        It takes only the outbox lock, which a tick holds just while its messages go out, never
        while it plans: so the stop does not wait for a planning step, and a step that finishes
        later publishes nothing. Then it waits (at most ``STOP_DELIVERY_TIMEOUT``) until reliable
        subscribers have the stop, since the process may end right after. Nothing is published
        by a node that was never active (no runtime, or not ticking).
        """
        with self._outbox:
            was_ticking, self._stopped = not self._stopped, True
            runtime = self.runtime
            if not was_ticking or runtime is None:
                return
            now = self.get_clock().now()
            cmd = runtime.stop_command(now.nanoseconds * 1e-9, Status.STOPPED, message)
            self.outputs.publish(cmd, runtime, now)
        self.outputs.wait_for_stop_delivery(ros.STOP_DELIVERY_TIMEOUT)

    # -- what the ReachGoal server (grasp_ros.nodes.reach_goal) uses -------------------------
    @contextmanager
    def runtime_lock(self) -> Iterator[PlannerRuntime | None]:
        """The runtime (None unless configured), held from ticks and parameter changes."""
        with self._lock:
            yield self.runtime

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def wait_idle(self, timeout: float) -> bool:
        """True once no tick, parameter change or reset runs (at most ``timeout`` seconds)."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True


def main(args: list[str] | None = None) -> int:
    return ros.run(PlannerNode, "planner_node", args, lambda: MultiThreadedExecutor(num_threads=4))


if __name__ == "__main__":
    raise SystemExit(main())
