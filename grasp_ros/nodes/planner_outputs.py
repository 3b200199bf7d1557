"""What planner_node publishes each tick: ``action``, ``status``, ``cmd_vel``, ``plan`` and
``/diagnostics``, each message filled from `grasp_ros.control.outputs` values.

``cmd_vel`` is a geometry_msgs/TwistStamped (nav2's default on Jazzy) in ``cmd_vel.frame_id``,
or a plain Twist with ``cmd_vel.stamped`` false; its publisher is made once ``cmd_vel.enabled``
is first true. ``plan`` is filled only while someone subscribes, and without latents unless
``plan_latents`` (a patch-token model's latents are megabytes a tick); its positions are
REP-103 metres in ``frame_id`` (``world_scale`` metres per model unit).
"""

from __future__ import annotations

from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.duration import Duration
from rclpy.time import Time

from grasp_ros.control import PlannerRuntime, Status, cmd_vel, diagnostics
from grasp_ros.control.outputs import action_fields, plan_stamp, status_fields, trajectory_fields
from grasp_ros.control.runtime import Command
from grasp_ros.envs import metres_per_unit
from grasp_ros.msg import ActionCommand, PlannerStatus, VirtualTrajectory
from grasp_ros.nodes import messages as M

#: Seconds of ROS time between two /diagnostics messages.
DIAGNOSTICS_PERIOD = 1.0


class PlannerOutputs:
    """The planner node's publishers and what it says in its log about each tick."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.action = node.create_publisher(ActionCommand, "action", 10)
        self.status = node.create_publisher(PlannerStatus, "status", 10)
        self.plan = node.create_publisher(VirtualTrajectory, "plan", 10)
        self.diagnostics = node.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._twist = None
        self._diag_base: tuple[float, int, int] | None = None

    def publish(self, cmd: Command, runtime: PlannerRuntime, now: Time) -> None:
        """Every message of one tick (or of a stop), stamped ``now``."""
        params, stamp = runtime.params, now.to_msg()
        self.action.publish(M.action_msg(action_fields(cmd), M.header(stamp)))
        status = status_fields(cmd, runtime.stats)
        self.status.publish(M.status_msg(status, M.header(stamp)))
        if params["cmd_vel.enabled"]:
            self._publish_twist(cmd, params, stamp)
        if cmd.plan is not None and self.plan.get_subscription_count() > 0:
            world = getattr(runtime.model, "env_name", "")
            fields = trajectory_fields(
                cmd.plan,
                runtime.model,
                latents=params["plan_latents"],
                world_scale=params["world_scale"] or metres_per_unit(world),
            )
            hdr = M.header(M.time_msg(plan_stamp(cmd)), params["frame_id"])
            self.plan.publish(M.trajectory_msg(fields, hdr))

    def _publish_twist(self, cmd: Command, params: dict[str, Any], stamp: Any) -> None:
        stamped = params["cmd_vel.stamped"]
        if self._twist is None:
            self._twist = self.node.create_publisher(
                TwistStamped if stamped else Twist, "cmd_vel", 10
            )
        twist = M.twist_msg(cmd_vel.twist_from_action(cmd.action, params))
        if stamped:
            twist = TwistStamped(header=M.header(stamp, params["cmd_vel.frame_id"]), twist=twist)
        self._twist.publish(twist)

    def wait_for_stop_delivery(self, timeout: float) -> None:
        """Until reliable subscribers have acknowledged the actions (at most ``timeout`` s)."""
        self.action.wait_for_all_acked(Duration(seconds=timeout))

    # -- /diagnostics ----------------------------------------------------------------------
    def reset_diagnostics(self) -> None:
        self._diag_base = None

    def diagnose(self, cmd: Command, runtime: PlannerRuntime, now: Time) -> None:
        """A /diagnostics message once per ``DIAGNOSTICS_PERIOD``: the rate and misses since
        the previous one, and the runtime's statistics."""
        t, stats = now.nanoseconds * 1e-9, runtime.stats
        if self._diag_base is None or t < self._diag_base[0]:
            self._diag_base = (t, stats.ticks, stats.deadline_misses)
            return
        t0, ticks, misses = self._diag_base
        if t - t0 < DIAGNOSTICS_PERIOD:
            return
        params, device = runtime.params, str(runtime.device)
        diag = diagnostics.diagnostic(
            cmd,
            stats.summary(),
            rate=(stats.ticks - ticks) / (t - t0),
            control_rate=params["control_rate"],
            new_misses=stats.deadline_misses - misses,
            device=device,
            planner=params["planner"],
        )
        name = f"{self.node.get_fully_qualified_name()}: planner"
        self.diagnostics.publish(M.diagnostic_array(diag, now.to_msg(), name, device))
        self._diag_base = (t, stats.ticks, stats.deadline_misses)

    # -- the log ---------------------------------------------------------------------------
    def log(self, cmd: Command, runtime: PlannerRuntime, missed: bool) -> None:
        """A missed control rate, a planner error, a reached goal or a stop, throttled."""
        log = self.node.get_logger()
        if missed:
            log.warning(
                f"missed the {runtime.params['control_rate']:g} Hz control rate: the tick "
                f"took {runtime.stats.tick_times[-1]:.3f} s of a {runtime.period:.3f} s "
                f"period (planning {cmd.solve_time:.3f} s, {cmd.iterations} iterations)",
                throttle_duration_sec=1.0,
            )
        if cmd.status is Status.PLANNER_ERROR:
            log.error(f"planner failed, robot stopped: {cmd.message}", throttle_duration_sec=2.0)
        elif cmd.status is Status.GOAL_REACHED:
            log.info(cmd.message, throttle_duration_sec=5.0)
        elif cmd.is_stop:
            log.warning(
                f"robot stopped ({cmd.status.name}): {cmd.message}", throttle_duration_sec=5.0
            )
