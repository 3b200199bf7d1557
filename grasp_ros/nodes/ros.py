"""The rclpy side the nodes share: QoS profiles, parameter declaration, the process loop."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import rclpy
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from grasp_ros.control import node_params as P
from grasp_ros.control.params import ParamSpec
from grasp_ros.nodes import signals

#: Camera images: only the newest matters, and a lost one is replaced by the next.
SENSOR_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
#: Reliable, depth 1: matches best-effort and reliable subscribers (rviz's default) alike.
CAMERA_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
#: Goal image and task: published once, delivered to subscribers that start later too.
LATCHED_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
#: What a node's constructor raises for bad parameters or a model that will not load.
STARTUP_ERRORS = (ValueError, FileNotFoundError, RuntimeError, ParameterException)


# -- parameters -------------------------------------------------------------------------------
def descriptor(decl: P.Declaration) -> ParameterDescriptor:
    """The ParameterDescriptor for a declaration: what ``ros2 param describe`` shows."""
    return ParameterDescriptor(
        name=decl.name,
        type=getattr(ParameterType, f"PARAMETER_{decl.ros_type.upper()}"),
        description=decl.description,
        additional_constraints=decl.additional_constraints,
        read_only=decl.read_only,
        dynamic_typing=decl.dynamic_typing,
        floating_point_range=[
            FloatingPointRange(from_value=lo, to_value=hi, step=0.0)
            for lo, hi in filter(None, [decl.float_range])
        ],
        integer_range=[
            IntegerRange(from_value=lo, to_value=hi, step=1)
            for lo, hi in filter(None, [decl.integer_range])
        ],
    )


def declare(node: Node, specs: Iterable[ParamSpec]) -> dict[str, Any]:
    """Declare every spec on ``node``; returns the values in effect (defaults or overrides).

    rclpy silently ignores a value given for a parameter nobody declares, so a misspelt name in
    a params file would look like a tuning that does nothing; it is named in a warning instead
    (rclpy keeps the given values in ``_parameter_overrides``, Humble and Jazzy alike).
    """
    specs = list(specs)
    values = {}
    for spec, decl in zip(specs, P.declarations(specs), strict=True):
        param = node.declare_parameter(decl.name, decl.default, descriptor(decl))
        values[decl.name] = P.from_ros(spec, param.value)
    given = getattr(node, "_parameter_overrides", {})
    unknown = sorted(name for name in given if not node.has_parameter(name))
    if unknown:
        node.get_logger().warning(
            f"ignoring unknown parameter(s) {unknown}; the names this node has are in "
            "config/planner.yaml and `ros2 param list`"
        )
    return values


def on_set_parameters(
    node: Node, specs: Mapping[str, ParamSpec], apply: Callable[[dict[str, Any]], None]
) -> None:
    """Check every ``ros2 param set`` against ``specs``, then ``apply`` the changes.

    A value the specs refuse, or a ValueError from ``apply``, is returned as
    ``SetParametersResult(successful=False, reason=...)``, which ``ros2 param set`` prints.
    Parameters outside ``specs`` (``use_sim_time``) are left to rclpy.
    """

    def callback(params: list[Any]) -> SetParametersResult:
        try:
            changes = P.ros_changes(((p.name, p.value) for p in params), specs)
            if changes:
                apply(changes)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if changes:
            node.get_logger().info(f"parameters set: {changes}")
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


# -- process ----------------------------------------------------------------------------------
#: Longest wait for a signal to be noticed: the spin loop's wait timeout, in seconds.
POLL_PERIOD = 0.1
#: Seconds a reliable subscriber gets to acknowledge the stop command before the node exits.
STOP_DELIVERY_TIMEOUT = 1.0
#: Seconds to wait for a callback still running (a planning step) after the stop went out.
CALLBACK_GRACE = 0.5


def run(
    factory: Callable[[], Node],
    name: str,
    args: list[str] | None = None,
    executor: Callable[[], Executor] = SingleThreadedExecutor,
) -> int:
    """Init, build the node, spin until SIGINT or SIGTERM, stop cleanly; the exit code.

    Signals only set a flag (`grasp_ros.nodes.signals`), polled every ``POLL_PERIOD``; rclpy's
    own handlers stay off, since they would shut the context down before the node could publish
    its last message. Then :func:`stop` runs, also after an exception from a callback (which
    still ends the process with its traceback: that is a bug to see). A node that cannot start
    (bad parameter, model that will not load) logs one line and exits 1.
    """
    signals.catch()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = factory()
    except STARTUP_ERRORS as exc:
        rclpy.logging.get_logger(name).fatal(f"{name} cannot start: {exc}")
        rclpy.try_shutdown()
        signals.ignore_until_exit()
        return 1
    spinner = executor()
    spinner.add_node(node)
    try:
        while not signals.stop_requested() and rclpy.ok():
            spinner.spin_once(timeout_sec=POLL_PERIOD)
    except ExternalShutdownException:
        pass
    finally:
        code = stop(node, spinner)
        signals.ignore_until_exit()
    return code


def stop(node: Node, spinner: Executor) -> int:
    """The node's last words first, then the clean-up; exit code 0.

    ``node.stop_now()`` (when defined) publishes the stop command at once, whatever runs in
    other threads. A callback still running after ``CALLBACK_GRACE`` (``node.wait_idle``: a
    planning step in a slow model) is abandoned: the process ends without waiting for it,
    since waiting could outlast launch's patience (SIGKILL) and its result is never published.
    Signals that arrive meanwhile are absorbed (`grasp_ros.nodes.signals`).
    """
    stop_now = getattr(node, "stop_now", None)
    if stop_now is not None:
        stop_now()
    wait_idle = getattr(node, "wait_idle", None)
    if wait_idle is not None and not wait_idle(CALLBACK_GRACE):
        node.get_logger().warning("exiting without waiting for the planning step still running")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    spinner.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()
    return 0
