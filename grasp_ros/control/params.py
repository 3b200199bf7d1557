"""The parameter schema: every parameter's name, type, default, range and description, once.

The ROS node declares its parameters from `SCHEMA` (with descriptors and ranges), the runtime
validates against it, and ``config/planner.yaml`` is checked against it by a test, so the three
never drift apart. Planner hyper-parameters are not repeated here: they are read from each
planner's config dataclass (`grasp_ros.planning.base.knob`) and namespaced by planner name,
e.g. ``grasp.goal_weight`` or ``cem.samples``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grasp_ros.models.compiled import COMPILE_MODES, MATMUL_PRECISIONS
from grasp_ros.models.loader import check_device_name
from grasp_ros.planning import OBJECTIVES, PLANNERS
from grasp_ros.planning.config import check_value
from grasp_ros.planning.plan import PAD_MODES

# Planner knobs the runtime sets itself: the seed is global and iterations come from the budget.
_RUNTIME_OWNED = ("seed", "iterations")


class ParamsError(ValueError):
    """A parameters file or value that is wrong: the user's input, not a fault of the program.

    A ValueError, so every caller that handles bad values handles it; the command-line tools
    exit with status 2 on it, as argparse does for a bad flag.
    """


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
    #: A check beyond type and range: returns the value or raises ValueError saying why not.
    valid: Callable[[Any], Any] | None = None

    def check(self, value: Any) -> Any:
        """The value coerced to this parameter's type, or ValueError saying why not."""
        value = _coerce(self, value)
        try:
            check_value(self.name, value, self.low, self.high, self.choices)
            if self.valid is not None:
                value = self.valid(value)
        except ValueError as exc:
            raise ParamsError(str(exc)) from None
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
    raise ParamsError(f"{spec.name} must be {_KINDS[want]}, got {value!r} ({type(value).__name__})")


_KINDS = {
    bool: "a bool",
    int: "an int",
    float: "a float",
    str: "a string",
    list: "a list of numbers",
}


#: The cost-to-go objective's settings (a change rebuilds the planner) and the stall detector's.
_CTG, _LIVE = "objective 'cost_to_go': ", {"low": 0.0, "high": 1e6, "rebuilds_planner": True}
_STALL = {"low": 0, "high": 100000}


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
        valid=check_device_name,
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
        "compile",
        str,
        "off",
        "torch.compile the model's forward for planning: 'off' or a torch.compile mode "
        "('reduce-overhead' adds CUDA graphs); compiles at start-up, pays on a GPU if at all",
        choices=COMPILE_MODES,
        read_only=True,
    ),
    _p(
        "matmul_precision",
        str,
        "highest",
        "torch float32 matmul precision, process-wide: 'high' lets a GPU use TF32 tensor cores "
        "(halved GRASP's iteration at 256 x 384 latents on an H200), 'highest' is full float32",
        choices=MATMUL_PRECISIONS,
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
    _p(
        "objective",
        str,
        "auto",
        "goal cost: 'latent_mse' (the paper's), 'cost_to_go' (latent MSE plus the model's "
        "learned steps-to-goal head) or 'auto' (cost_to_go when the model has the head)",
        choices=OBJECTIVES,
        rebuilds_planner=True,
    ),
    _p("cost_to_go_weight", float, 1.0, _CTG + "weight (0: latent MSE only)", **_LIVE),
    _p("cost_to_go_slack", float, 1.5, _CTG + "fall per step beyond which a path leaks", **_LIVE),
    _p("cost_to_go_leak_weight", float, 10.0, _CTG + "weight of the leak penalty", **_LIVE),
    _p(
        "memory_limit_mb",
        float,
        0.0,
        "refuse a horizon and planner settings whose estimated memory exceeds this (MiB; "
        "0: half of the device's memory)",
        low=0.0,
        high=1e9,
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
    _p("action_chunk", int, 1, "plan actions per ActionCommand (its chunk)", low=1, high=1000),
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
    _p("stall_ticks", int, 10, "plan cold after N ticks of no progress (0: never)", **_STALL),
    _p("stall_progress", float, 0.02, "cost fall (fraction) counted as progress", **_STALL),
    _p("stall_motion", float, 0.25, "motion / predicted motion below which blocked", **_STALL),
    _p(
        "warm_start_pad",
        str,
        "zero",
        "how the shifted plan's tail is filled: 'zero' actions or the 'last' one",
        choices=PAD_MODES,
    ),
    # Read by the ROS nodes only; here so that one schema covers config/planner.yaml.
    _p("frame_id", str, "map", "frame of the published plan positions and markers"),
    _p(
        "world_scale",
        float,
        0.0,
        "metres per project() unit (REP-103); 0: the model's world's "
        "own (wall, maze 0.05; pusht 0.001; else 1)",
        low=0.0,
        high=1e6,
    ),
    _p("plan_latents", bool, False, "put the latents in the plan message (MBs a tick)"),
    _p("cmd_vel.enabled", bool, False, "also publish a velocity command on cmd_vel"),
    _p("cmd_vel.stamped", bool, True, "TwistStamped (nav2); false: Twist", read_only=True),
    _p("cmd_vel.frame_id", str, "base_link", "frame of the TwistStamped: the robot's base"),
    _p("cmd_vel.image_axes", bool, True, "actions have y down (reference worlds): flip y, z"),
    _p("cmd_vel.linear_x", int, 0, "action index mapped to linear.x (-1: none)", low=-1, high=64),
    _p("cmd_vel.linear_y", int, 1, "action index mapped to linear.y (-1: none)", low=-1, high=64),
    _p("cmd_vel.angular_z", int, -1, "action index for angular.z (-1: none)", low=-1, high=64),
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
    """Nested dicts (as YAML writes them) to dotted names: {'grasp': {'x': 1}} -> 'grasp.x'.

    An empty mapping stays a value (``horizon: {}``), which validation then refuses.
    """
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Check names, types and ranges; returns the coerced values or raises ValueError."""
    if not isinstance(params, Mapping):
        raise ParamsError(
            f"parameters must be a mapping of parameter names to values, got {params!r} "
            f"({type(params).__name__})"
        )
    flat = flatten(params)
    if unknown := sorted(set(flat) - set(SCHEMA)):
        raise ParamsError(
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

    Raises:
        ParamsError: the file is missing, unreadable, not YAML or not a mapping; the message
            names the file (and, for YAML, the line).
    """
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"parameters file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {describe_yaml_error(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot read the parameters file: {exc}") from None
    if not isinstance(data, Mapping):
        raise ParamsError(f"{path}: expected a mapping of parameters, got {type(data).__name__}")
    for block in data.values():
        if isinstance(block, Mapping) and "ros__parameters" in block:
            return flatten(block["ros__parameters"])
    return flatten(data)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """PyYAML's complaint in one line, with 1-based lines (its own text names no file)."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None or mark is None:
        return " ".join(str(exc).split())
    text = f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None:
        text += f" ({context} started at line {start.line + 1}, column {start.column + 1})"
    return text


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
