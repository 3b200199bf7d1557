"""The nodes' parameters as plain values: what to declare, and what rclpy hands back. No rclpy.

Every node's parameters are `grasp_ros.control.params.ParamSpec` objects: the planner node
declares the runtime's `SCHEMA`, the simulator and the visualiser their own tables below. The
node turns a :class:`Declaration` into ``declare_parameter(name, default, ParameterDescriptor)``
(`grasp_ros.nodes.ros.declare`) and checks every live change here with the same specs. This
module lives beside the schema, below the nodes, so that it is tested without ROS.
"""

from __future__ import annotations

import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from grasp_ros.control.params import SCHEMA, ParamSpec
from grasp_ros.envs import ENVS

#: ParameterType names (rcl_interfaces/msg/ParameterType) for the schema's Python types.
ROS_TYPES = {bool: "bool", int: "integer", float: "double", str: "string", list: "double_array"}


@dataclass(frozen=True)
class Declaration:
    """What one ``declare_parameter(name, default, ParameterDescriptor(...))`` call needs.

    A list parameter is declared with ``dynamic_typing``: its default ``[]`` carries no element
    type (rclpy infers a byte array from it, Humble and Jazzy alike), and a YAML ``[]`` reaches
    the node as an unset value; the schema check in the node's callback enforces the type.
    """

    name: str
    ros_type: str
    default: Any
    description: str
    integer_range: tuple[int, int] | None
    float_range: tuple[float, float] | None
    additional_constraints: str
    read_only: bool
    dynamic_typing: bool


def declarations(specs: Iterable[ParamSpec]) -> list[Declaration]:
    """One :class:`Declaration` per spec: type, default, description, range, read-only."""
    out = []
    for spec in specs:
        bounded = spec.low is not None and spec.high is not None
        constraints = f"one of: {', '.join(spec.choices)}" if spec.choices else ""
        if spec.rebuilds_planner:
            constraints = "; ".join(filter(None, [constraints, "a change rebuilds the planner"]))
        out.append(
            Declaration(
                name=spec.name,
                ros_type=ROS_TYPES[spec.type],
                default=list(spec.default) if spec.type is list else spec.default,
                description=spec.description,
                integer_range=(int(spec.low), int(spec.high))
                if bounded and spec.type is int
                else None,
                float_range=(float(spec.low), float(spec.high))
                if bounded and spec.type is float
                else None,
                additional_constraints=constraints,
                read_only=spec.read_only,
                dynamic_typing=spec.type is list,
            )
        )
    return out


def from_ros(spec: ParamSpec, value: Any) -> Any:
    """A parameter value as rclpy gives it, as the schema holds it (checked by ``spec``).

    rclpy hands arrays over as ``array.array`` and a YAML ``[]`` as ``None``.
    """
    if spec.type is list:
        value = [] if value is None else list(value) if isinstance(value, array.array) else value
    return spec.check(value)


def ros_changes(
    params: Iterable[tuple[str, Any]], specs: Mapping[str, ParamSpec] = SCHEMA
) -> dict[str, Any]:
    """``{name: value}`` for the ``(name, value)`` pairs that ``specs`` knows, checked.

    Others (``use_sim_time``, QoS overrides) belong to rclpy and pass untouched. ValueError
    names the first bad value; a ``None`` value (a parameter being deleted) is refused.
    """
    changes = {}
    for name, value in params:
        spec = specs.get(name)
        if spec is None:
            continue
        if value is None:
            raise ValueError(f"{name} cannot be unset; set a value instead")
        changes[name] = from_ros(spec, value)
    return changes


def _p(name: str, type_: type, default: Any, description: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name, type_, default, description, **kw)


_TWIST_SPECS = tuple(
    SCHEMA[f"cmd_vel.{f}"]
    for f in ("linear_x", "linear_y", "angular_z", "scale", "stamped", "image_axes")
)

SIM_SCHEMA: dict[str, ParamSpec] = {
    s.name: s
    for s in (
        _p(
            "env",
            str,
            "wall",
            "reference world to simulate",
            choices=tuple(sorted(ENVS)),
            read_only=True,
        ),
        _p("image_size", int, 64, "camera image side in pixels", low=16, high=1024, read_only=True),
        _p("camera_rate", float, 30.0, "camera images per second (Hz)", low=0.1, high=1000.0),
        _p("step_rate", float, 10.0, "simulation steps per second (Hz)", low=0.1, high=1000.0),
        _p("horizon", int, 30, "steps a sampled task needs, about", low=1, high=1000),
        _p("seed", int, 0, "seed of the first task; ~/new_task adds 1", low=0, high=2**31 - 1),
        _p(
            "action_timeout",
            float,
            0.5,
            "seconds an action or cmd_vel is applied without a new one, then zeros",
            low=0.0,
            high=3600.0,
        ),
        _p(
            "publish_clock",
            bool,
            False,
            "publish /clock: simulated time, one step_rate period per step (the other nodes "
            "then take use_sim_time)",
            read_only=True,
        ),
        _p("base_frame", str, "base_link", "the robot's frame, child of map on /tf"),
        SCHEMA["world_scale"],
        *_TWIST_SPECS,
    )
}

#: The planner node's own parameters, beside the runtime's SCHEMA.
PLANNER_NODE_SCHEMA: dict[str, ParamSpec] = {
    "autostart": _p(
        "autostart",
        bool,
        False,
        "configure and activate at start-up, without a lifecycle manager (the launch file's "
        "default)",
        read_only=True,
    )
}

VISUALIZER_SCHEMA: dict[str, ParamSpec] = {
    s.name: s
    for s in (
        _p("frame_id", str, "", "frame of the markers and path ('': the plan's own frame)"),
        _p(
            "scale",
            float,
            1.0,
            "factor from plan positions to marker positions",
            low=1e-6,
            high=1e6,
        ),
        _p("marker_size", float, 0.05, "sphere diameter, in marker units (m)", low=1e-6, high=1e6),
        _p(
            "model",
            str,
            "",
            "world model whose decode() draws the states ('': no image)",
            read_only=True,
        ),
        _p("device", str, "cpu", "torch device for decoding", read_only=True),
        _p("mosaic_columns", int, 8, "decoded states per row of the image", low=1, high=64),
        _p("mosaic_max_tiles", int, 32, "most decoded states in the image", low=1, high=1024),
    )
}
