"""The parameter schema: every parameter's name, type, default, range and description, once.

The ROS node declares its parameters from `SCHEMA` (with descriptors and ranges), the runtime
validates against it, and ``config/planner.yaml`` is checked against it by a test, so the three
never drift apart. Planner hyper-parameters are not repeated here: they are read from each
planner's config dataclass (`grasp_ros.planning.base.knob`) and namespaced by planner name,
e.g. ``grasp.goal_weight`` or ``cem.samples``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grasp_ros.planning import PLANNERS
from grasp_ros.planning.base import check_value
from grasp_ros.planning.plan import PAD_MODES

# Planner knobs the runtime sets itself: the seed is global and iterations come from the budget.
_RUNTIME_OWNED = ("seed", "iterations")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: what it is, its type, default and allowed values."""

    name: str
    type: type
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    read_only: bool = False
    rebuilds_planner: bool = False

    def check(self, value: Any) -> Any:
        """The value coerced to this parameter's type, or ValueError saying why not."""
        value = _coerce(self, value)
        check_value(self.name, value, self.low, self.high, self.choices)
        return value


def _coerce(spec: ParamSpec, value: Any) -> Any:
    want = spec.type
    if want is bool:
        if isinstance(value, bool):
            return value
    elif want is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif want is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif want is str:
        if isinstance(value, str):
            return value
    elif want is list:
        if isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            return [float(v) for v in value]
    kind = "list of numbers" if want is list else want.__name__
    raise ValueError(f"{spec.name} must be a {kind}, got {value!r} ({type(value).__name__})")


def _p(name: str, type_: type, default: Any, description: str, **kw: Any) -> ParamSpec:
    return ParamSpec(name, type_, default, description, **kw)


_BASE = (
    _p(
        "model",
        str,
        "wall",
        "world model: shipped name ('wall', 'maze'), checkpoint or "
        "TorchScript path, or package.module:factory",
        read_only=True,
    ),
    _p(
        "device",
        str,
        "auto",
        "torch device: 'auto' (cuda when present), 'cpu', 'cuda', 'cuda:N'",
        read_only=True,
    ),
    _p(
        "cpu_threads",
        int,
        1,
        "torch intra-op threads on CPU (0: torch's default); small models plan fastest on one",
        low=0,
        high=256,
        read_only=True,
    ),
    _p(
        "planner",
        str,
        "grasp",
        "planner: grasp, gd, cem or collocation",
        choices=tuple(sorted(PLANNERS)),
        rebuilds_planner=True,
    ),
    _p(
        "horizon",
        int,
        30,
        "plan length T in control steps",
        low=1,
        high=1000,
        rebuilds_planner=True,
    ),
    _p("control_rate", float, 10.0, "control ticks per second (Hz)", low=0.1, high=1000.0),
    _p(
        "image_timeout",
        float,
        0.5,
        "camera images older than this (s) stop the robot",
        low=0.001,
        high=3600.0,
    ),
    _p(
        "seed",
        int,
        0,
        "seed for the planner's noise (same seed, same plan)",
        low=0,
        high=2**31 - 1,
        rebuilds_planner=True,
    ),
    _p(
        "budget",
        str,
        "deadline",
        "'deadline': as many iterations as fit in the period; "
        "'iterations': a fixed count per tick, never reading the clock (replay, tests)",
        choices=("deadline", "iterations"),
    ),
    _p(
        "iterations",
        int,
        20,
        "iterations per warm-started tick ('iterations' budget) or the "
        "cap per tick ('deadline' budget)",
        low=0,
        high=100000,
    ),
    _p(
        "cold_start_iterations",
        int,
        200,
        "iterations (or cap) for a tick with no warm start",
        low=0,
        high=100000,
    ),
    _p(
        "deadline_margin",
        float,
        0.2,
        "fraction of the period kept free for encoding and publishing ('deadline' budget)",
        low=0.0,
        high=0.95,
    ),
    _p(
        "action_chunk",
        int,
        1,
        "actions returned per tick (the first k of the plan)",
        low=1,
        high=1000,
    ),
    _p("stop_action", list, [], "action sent on a stop; empty: all zeros"),
    _p(
        "goal_threshold",
        float,
        0.0,
        "latent MSE to the goal below which the goal counts as reached (0: never)",
        low=0.0,
        high=1e6,
    ),
    _p("warm_start", bool, True, "start each tick from the previous plan, shifted"),
    _p(
        "warm_start_pad",
        str,
        "zero",
        "how the shifted plan's tail is filled: 'zero' actions or the 'last' one",
        choices=PAD_MODES,
    ),
    # Read by the ROS nodes only; here so that one schema covers config/planner.yaml.
    _p("frame_id", str, "map", "frame of the published plan positions and markers"),
    _p("cmd_vel.enabled", bool, False, "also publish geometry_msgs/Twist on cmd_vel"),
    _p("cmd_vel.linear_x", int, 0, "action index mapped to linear.x (-1: none)", low=-1, high=64),
    _p("cmd_vel.linear_y", int, 1, "action index mapped to linear.y (-1: none)", low=-1, high=64),
    _p(
        "cmd_vel.angular_z", int, -1, "action index mapped to angular.z (-1: none)", low=-1, high=64
    ),
    _p("cmd_vel.scale", float, 1.0, "factor from action units to m/s or rad/s", low=-1e3, high=1e3),
)


def _planner_specs() -> tuple[ParamSpec, ...]:
    specs = []
    for name, cls in sorted(PLANNERS.items()):
        for f in dataclasses.fields(cls.Config):
            if f.name in _RUNTIME_OWNED:
                continue
            meta = f.metadata
            specs.append(
                ParamSpec(
                    f"{name}.{f.name}",
                    type(f.default),
                    f.default,
                    f"{name}: {meta.get('help', '')}",
                    low=meta.get("low"),
                    high=meta.get("high"),
                    choices=meta.get("choices"),
                    rebuilds_planner=True,
                )
            )
    return tuple(specs)


SCHEMA: dict[str, ParamSpec] = {s.name: s for s in (*_BASE, *_planner_specs())}


def defaults() -> dict[str, Any]:
    """Every parameter at its default (a fresh copy)."""
    return {name: (list(s.default) if s.type is list else s.default) for name, s in SCHEMA.items()}


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts (as YAML writes them) to dotted names: {'grasp': {'x': 1}} -> 'grasp.x'."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check names, types and ranges; returns the coerced values or raises ValueError."""
    flat = flatten(params)
    unknown = sorted(set(flat) - set(SCHEMA))
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown}; see config/planner.yaml for the valid names"
        )
    return {name: SCHEMA[name].check(value) for name, value in flat.items()}


def planner_config(params: Mapping[str, Any], planner: str) -> dict[str, Any]:
    """The keyword arguments for ``make_planner(planner, ...)`` from full runtime params."""
    prefix = f"{planner}."
    config = {k[len(prefix) :]: v for k, v in params.items() if k.startswith(prefix)}
    config["seed"] = params["seed"]
    return config


def load_params_file(path: str | Path) -> dict[str, Any]:
    """Read a ROS 2 parameters YAML (``node: {ros__parameters: {...}}``) or a plain mapping.

    Returns flat, dotted names. Only the first node's block is read when several are given.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: expected a mapping of parameters, got {type(data).__name__}")
    for block in data.values():
        if isinstance(block, Mapping) and "ros__parameters" in block:
            return flatten(block["ros__parameters"])
    return flatten(data)


def to_yaml(node: str = "/**") -> str:
    """A ROS 2 parameters file with every parameter at its default, described in comments.

    ``config/planner.yaml`` is this text (a test keeps them equal); run
    ``python -m grasp_ros.control > my_params.yaml`` for a fresh copy to edit.
    """
    lines = [
        "# grasp_ros planner parameters: every parameter at its default.",
        "# Generated from grasp_ros/control/params.py (python -m grasp_ros.control).",
        f"{node}:",
        "  ros__parameters:",
    ]
    group = None
    for spec in SCHEMA.values():
        head, _, leaf = spec.name.rpartition(".")
        if head != group:
            group = head
            if head:
                lines.append(f"    {head}:")
        indent = "      " if head else "    "
        bounds = ""
        if spec.choices:
            bounds = f" {{{', '.join(spec.choices)}}}"
        elif spec.low is not None or spec.high is not None:
            bounds = f" [{spec.low}, {spec.high}]"
        ro = " (read-only)" if spec.read_only else ""
        lines.append(f"{indent}# {spec.description}{bounds}{ro}")
        value = yaml.safe_dump(spec.default, default_flow_style=True).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
        lines.append(f"{indent}{leaf or spec.name}: {value}")
    return "\n".join(lines) + "\n"
