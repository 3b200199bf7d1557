"""ROS 2 message objects without ROS: a rosbags typestore and builders for grasp_ros's messages.

The offline tools (demo, replay, sim recorder) write and read bags that ``ros2 bag play`` must
accept, so they need the exact ROS 2 types. ``msg/*.msg`` is the one source of truth: the ROS
build generates the rclpy classes from it, and this module registers the same files with a
rosbags typestore, so both sides always agree on the wire format.

The standard types come from the Humble store: every type grasp_ros uses (std_msgs/Header,
sensor_msgs/Image and CompressedImage, geometry_msgs/Point, nav_msgs/Path, ...) has the same
definition and RIHS01 hash in the Humble and Jazzy stores, and the Humble store is the smaller
one, so nothing written here can depend on a type that only newer distributions have.

The builders take plain numpy arrays and numbers and return rosbags dataclass instances; they
check shapes so that a malformed message fails where it is built, not in a subscriber.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from grasp_ros.io.images import rgb_to_image_fields

PACKAGE = "grasp_ros"
MSG_NAMES = ("VirtualTrajectory", "PlannerStatus", "ActionCommand")
VIRTUAL_TRAJECTORY = f"{PACKAGE}/msg/VirtualTrajectory"
PLANNER_STATUS = f"{PACKAGE}/msg/PlannerStatus"
ACTION_COMMAND = f"{PACKAGE}/msg/ActionCommand"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"

_NS_PER_SEC = 1_000_000_000


def msg_dir_candidates() -> list[Path]:
    """Where the ``.msg`` files may be, in the order they are tried.

    The source tree (also what an editable install sees), then ``sys.prefix/share/grasp_ros/msg``
    (setup.py's data_files), then ``share/grasp_ros/msg`` under each ``AMENT_PREFIX_PATH``
    prefix (a colcon install).
    """
    candidates = [
        Path(__file__).resolve().parents[2] / "msg",
        Path(sys.prefix) / "share" / PACKAGE / "msg",
    ]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    return candidates


def find_msg_dir(candidates: Iterable[Path] | None = None) -> Path:
    """The first candidate directory that holds all of grasp_ros's ``.msg`` files.

    Raises:
        FileNotFoundError: none does; the message lists every place searched.
    """
    searched = list(msg_dir_candidates() if candidates is None else candidates)
    for directory in searched:
        if all((directory / f"{name}.msg").is_file() for name in MSG_NAMES):
            return directory
    places = "\n  ".join(str(p) for p in searched)
    raise FileNotFoundError(
        f"grasp_ros message definitions ({', '.join(n + '.msg' for n in MSG_NAMES)}) not found;"
        f" searched:\n  {places}\nRun from a source checkout, pip-install grasp_ros, or source"
        " a colcon install of it."
    )


def build_typestore(msg_dir: Path) -> Typestore:
    """A fresh Humble typestore with the ``.msg`` files in ``msg_dir`` registered."""
    store = get_typestore(Stores.ROS2_HUMBLE)
    types: dict[str, Any] = {}
    for name in MSG_NAMES:
        text = (msg_dir / f"{name}.msg").read_text(encoding="utf-8")
        types.update(get_types_from_msg(text, f"{PACKAGE}/msg/{name}"))
    store.register(types)
    return store


@functools.cache
def typestore() -> Typestore:
    """The process-wide typestore (built on first use: parsing the types takes a moment)."""
    return build_typestore(find_msg_dir())


def status_codes() -> dict[str, int]:
    """PlannerStatus's named constants (``{"OK": 0, ...}``), read from the ``.msg`` file."""
    constants, _ = typestore().fielddefs[PLANNER_STATUS]
    return {name: int(value) for name, _, value in constants}


def stamp_to_ns(stamp_sec: float) -> int:
    """Seconds (float) to integer nanoseconds, the unit of bag timestamps."""
    if not math.isfinite(stamp_sec) or stamp_sec < 0:
        raise ValueError(f"stamp must be a finite, non-negative number of seconds: {stamp_sec}")
    return round(stamp_sec * _NS_PER_SEC)


def time_to_sec(stamp: Any) -> float:
    """Seconds from a builtin_interfaces/Time (rosbags or rclpy: both have sec and nanosec)."""
    return stamp.sec + stamp.nanosec / _NS_PER_SEC


def make_time(stamp_sec: float) -> Any:
    """A builtin_interfaces/Time for ``stamp_sec`` seconds."""
    sec, nanosec = divmod(stamp_to_ns(stamp_sec), _NS_PER_SEC)
    return _cls("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def make_header(stamp_sec: float, frame_id: str = "") -> Any:
    """A std_msgs/Header."""
    return _cls("std_msgs/msg/Header")(stamp=make_time(stamp_sec), frame_id=frame_id)


def image_msg(rgb: np.ndarray, stamp_sec: float, frame_id: str = "", encoding: str = "rgb8") -> Any:
    """A sensor_msgs/Image holding an RGB ``uint8 [H, W, 3]`` array in ``encoding``."""
    return _cls(IMAGE)(
        header=make_header(stamp_sec, frame_id), **rgb_to_image_fields(rgb, encoding)
    )


def points(positions: np.ndarray | None) -> list[Any]:
    """geometry_msgs/Point list from ``[N, 2]`` or ``[N, 3]`` positions (z = 0 for 2-D)."""
    if positions is None:
        return []
    p = np.asarray(positions, dtype=np.float64)
    if p.size == 0:
        return []
    if p.ndim != 2 or p.shape[1] not in (2, 3):
        raise ValueError(f"positions must have shape [N, 2] or [N, 3], got {list(p.shape)}")
    point = _cls("geometry_msgs/msg/Point")
    return [point(x=float(r[0]), y=float(r[1]), z=float(r[2]) if len(r) == 3 else 0.0) for r in p]


def virtual_trajectory_msg(
    *,
    stamp_sec: float,
    frame_id: str,
    planner: str,
    latent_shape: Sequence[int],
    action_dim: int,
    virtual_states: np.ndarray,
    rollout: np.ndarray,
    actions: np.ndarray,
    positions: np.ndarray | None = None,
    rollout_positions: np.ndarray | None = None,
    cost: float,
    iterations: int,
    solve_time: float,
    warm_started: bool,
) -> Any:
    """A grasp_ros/VirtualTrajectory; the horizon T is ``len(actions)``.

    ``virtual_states`` and ``rollout`` must be ``[T+1, *latent_shape]`` or empty (a lean plan,
    as the planner node publishes without ``plan_latents``), ``actions``
    ``[T, action_dim]``, and ``positions``/``rollout_positions`` (``None`` when the model has no
    projection) ``[T+1, 2 or 3]``.
    """
    latent = tuple(int(d) for d in latent_shape)
    acts = _float32(actions, "actions")
    if acts.ndim != 2 or acts.shape[1] != action_dim:
        raise ValueError(f"actions must be [T, {action_dim}], got {list(acts.shape)}")
    horizon = acts.shape[0]
    states = _shaped(virtual_states, "virtual_states", (horizon + 1, *latent))
    rolled = _shaped(rollout, "rollout", (horizon + 1, *latent))
    pts = points(positions)
    rollout_pts = points(rollout_positions)
    for name, value in (("positions", pts), ("rollout_positions", rollout_pts)):
        if value and len(value) != horizon + 1:
            raise ValueError(f"{name} must have T+1 = {horizon + 1} rows, got {len(value)}")
    return _cls(VIRTUAL_TRAJECTORY)(
        header=make_header(stamp_sec, frame_id),
        planner=planner,
        horizon=horizon,
        latent_shape=np.asarray(latent, dtype=np.uint32),
        action_dim=int(action_dim),
        virtual_states=states.ravel(),
        rollout=rolled.ravel(),
        actions=acts.ravel(),
        positions=pts,
        rollout_positions=rollout_pts,
        cost=_f32(cost),
        iterations=int(iterations),
        solve_time=_f32(solve_time),
        warm_started=bool(warm_started),
    )


def planner_status_msg(
    *,
    stamp_sec: float,
    frame_id: str = "",
    status: int,
    message: str = "",
    tick: int,
    solve_time: float = 0.0,
    iterations: int = 0,
    cost: float = math.nan,
    deadline_misses: int = 0,
    image_age: float = math.nan,
) -> Any:
    """A grasp_ros/PlannerStatus; ``status`` must be one of :func:`status_codes`' values."""
    if int(status) not in status_codes().values():
        raise ValueError(f"status {status} is not one of {status_codes()}")
    return _cls(PLANNER_STATUS)(
        header=make_header(stamp_sec, frame_id),
        status=int(status),
        message=message,
        tick=int(tick),
        solve_time=_f32(solve_time),
        iterations=int(iterations),
        cost=_f32(cost),
        deadline_misses=int(deadline_misses),
        image_age=_f32(image_age),
    )


def action_command_msg(
    *,
    stamp_sec: float,
    frame_id: str = "",
    action: np.ndarray,
    dt: float,
    step_index: int,
    chunk: np.ndarray | None = None,
) -> Any:
    """A grasp_ros/ActionCommand for one action vector and its chunk ``[k, action_dim]``
    (``None``: the action alone, as a simulator's executed action is)."""
    vec = _float32(action, "action")
    if vec.ndim != 1:
        raise ValueError(f"action must be a vector, got shape {list(vec.shape)}")
    rows = vec[None] if chunk is None else _float32(chunk, "chunk")
    if rows.ndim != 2 or rows.shape[1] != vec.shape[0] or len(rows) == 0:
        raise ValueError(f"chunk must be [k >= 1, {vec.shape[0]}], got {list(rows.shape)}")
    return _cls(ACTION_COMMAND)(
        header=make_header(stamp_sec, frame_id),
        action=vec,
        dt=_f32(dt),
        step_index=int(step_index),
        chunk=rows.ravel(),
    )


def _cls(msgtype: str) -> Any:
    return typestore().types[msgtype]


def _f32(value: float) -> float:
    """Rounded to float32 as the wire will hold it, so a built message equals its round trip."""
    return float(np.float32(value))


def _float32(value: Any, name: str) -> np.ndarray:
    """A C-contiguous float32 copy: rosbags serialises sequences from the raw array buffer."""
    try:
        return np.array(value, dtype=np.float32, order="C")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a numeric array: {exc}") from exc


def _shaped(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    arr = _float32(value, name)
    if arr.size == 0:
        return arr.reshape(0)
    if arr.shape != shape:
        raise ValueError(
            f"{name} must be [T+1, *latent_shape] = {list(shape)} or empty, got {list(arr.shape)}"
        )
    return arr
