"""The rclpy side the nodes share: QoS profiles, parameter declaration, the process loop."""

from __future__ import annotations

import signal
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

from grasp_ros.control.params import ParamSpec
from grasp_ros.nodes import parameters as P

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
def run(
    factory: Callable[[], Node],
    name: str,
    args: list[str] | None = None,
    executor: Callable[[], Executor] = SingleThreadedExecutor,
) -> int:
    """Init, build the node, spin until Ctrl-C or SIGTERM, then let it stop cleanly; exit code.

    rclpy's own signal handlers would shut the context down before the node could publish its
    last message, so SIGINT and SIGTERM (launch's escalation) raise KeyboardInterrupt instead,
    and the node's ``on_shutdown()`` runs while the context is still valid. Short waits in the
    spin loop let Python notice a signal within 0.2 s even when no timer is due. A node that
    cannot start (bad parameter, model that will not load) logs one line and exits 1.
    """
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    node, spinner = None, None
    try:
        node = factory()
        spinner = executor()
        spinner.add_node(node)
        while rclpy.ok():
            spinner.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except STARTUP_ERRORS as exc:
        if node is not None:
            raise
        rclpy.logging.get_logger(name).fatal(f"{name} cannot start: {exc}")
        return 1
    finally:
        if node is not None:
            on_shutdown = getattr(node, "on_shutdown", None)
            if on_shutdown is not None:
                on_shutdown()
            if spinner is not None:
                spinner.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
