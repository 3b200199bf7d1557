"""grasp-ros-replay: run the planner over a recorded bag, offline, exactly as the node would.

Robotics users test a planner on their own logs before it drives. This tool feeds a bag's
camera and goal images through the same :class:`PlannerRuntime` the node uses, on bag time:

- Ticks run at the configured ``control_rate`` in bag time, from the bag's first message to
  its last. Before each tick every message received up to the tick is fed in bag order; the
  runtime keeps only the newest image and judges its age (header stamp to tick) with its
  watchdog, as the node does with ``ros2 bag play --clock``.
- Deterministic by default: the runtime's fixed-iterations budget never reads the clock, so
  the same bag, parameters and seed give byte-identical actions on any machine.
  ``--realtime-budget`` uses the robot's wall-clock deadline instead.
- The output bag (MCAP) holds every input topic, copied byte for byte with its definition and
  offered QoS (custom types included), plus the planner's ``action``, ``plan`` and
  ``status`` in the package's own message definitions, so Foxglove and ``ros2 bag`` can open
  it; it is written atomically and never over an existing path unless asked. The input is
  only ever read.
- Damaged input is handled, not crashed on: images that do not convert and messages that do
  not deserialise are skipped and counted; a truncated bag is read up to where it breaks (MCAP
  files that rosbags cannot open are scanned record by record) and the report says where
  reading stopped.

Reads rosbag2 directories, single ``.mcap``/``.db3`` files and ROS 1 ``.bag`` files (converted
to ROS 2 on the wire) through :func:`grasp_ros.io.bag_source.open_bag`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from grasp_ros.control import Command, PlannerRuntime, Status
from grasp_ros.control import params as P
from grasp_ros.control.cli_params import add_param_arguments, params_from_cli
from grasp_ros.control.outputs import (
    action_fields,
    plan_stamp,
    status_fields,
    trajectory_fields,
)
from grasp_ros.io import sim_topics
from grasp_ros.io.bag_source import BagSource, open_bag
from grasp_ros.io.bags import BagError, BagWriter, RawMessage, TopicInfo, write_bag
from grasp_ros.io.images import MAX_PIXELS, ImageConversionError, image_msg_to_rgb
from grasp_ros.io.messages import (
    ACTION_COMMAND,
    COMPRESSED_IMAGE,
    IMAGE,
    PLANNER_STATUS,
    VIRTUAL_TRAJECTORY,
    action_command_msg,
    planner_status_msg,
    time_to_sec,
    virtual_trajectory_msg,
)

DEFAULT_IMAGE_TOPICS = (sim_topics.CAMERA_TOPIC, "image")
DEFAULT_GOAL_TOPIC = sim_topics.GOAL_TOPIC
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
_NS = 1_000_000_000


# -- topics ------------------------------------------------------------------------------------
def resolve_topic(topics: Mapping[str, str], name: str) -> str | None:
    """``name`` as the bag spells it: ``camera/image_raw`` matches ``/camera/image_raw``."""
    if name in topics:
        return name
    bare = name.lstrip("/")
    return next((t for t in topics if t.lstrip("/") == bare), None)


# -- the replay loop ----------------------------------------------------------------------------
@dataclass
class ReplayResult:
    """The actions the planner would have sent, tick by tick, and the report."""

    stamps: np.ndarray
    actions: np.ndarray
    statuses: list[Status]
    report: dict[str, Any]


@dataclass
class _Skipped:
    """Messages on one topic the planner could not use; ``corrupt`` of them did not deserialise.

    ``first_stamp`` is the first one's header stamp, or its bag time if it did not deserialise.
    """

    count: int = 0
    corrupt: int = 0
    first_error: str = ""
    first_stamp: float | None = None

    def add(self, error: str, stamp: float, corrupt: bool = False) -> None:
        if not self.count:
            self.first_error, self.first_stamp = error, stamp
        self.count += 1
        self.corrupt += corrupt


@dataclass
class _Topics:
    """The topics of one replay: the planner's inputs, the ground truth, what is copied."""

    image: str
    goal: str | None
    truth: list[str]
    outputs: dict[str, str]  # "action", "plan", "status" -> topic in the output bag
    copied: dict[str, TopicInfo]  # input topics copied into the output bag
    not_copied: dict[str, str]  # input topic -> why it cannot be copied

    @property
    def used(self) -> list[str]:
        """The topics the replay deserialises: camera, goal and ground truth."""
        return [self.image, *([self.goal] if self.goal else []), *self.truth]

    @property
    def read(self) -> list[str]:
        """The topics read from the bag: those used, then those only copied."""
        return [*self.used, *(t for t in self.copied if t not in self.used)]

    def add_to(self, writer: BagWriter) -> None:
        """Declare the outputs, then the copies; a copy the writer refuses is not copied.

        The outputs come first, so an input recorded with another definition of one of this
        package's types (an older grasp_ros) is the one left out.
        """
        for name, msgtype in (
            ("action", ACTION_COMMAND),
            ("plan", VIRTUAL_TRAJECTORY),
            ("status", PLANNER_STATUS),
        ):
            writer.add_topic(self.outputs[name], msgtype)
        for topic, info in list(self.copied.items()):
            try:
                writer.add_raw_topic(info)
            except BagError as exc:
                del self.copied[topic]
                self.not_copied[topic] = str(exc)


@dataclass
@dataclass
class _Run:
    """One recorded episode: its task, and the last pose seen before the next task."""

    text: str
    task: sim_topics.SimTask
    pose: np.ndarray | None = None


@dataclass
class _GroundTruth:
    """What a simulator bag says really happened: one run per task it announces (the demo
    records several episodes in one bag)."""

    runs: list[_Run] = field(default_factory=list)
    executed: tuple[int, int, np.ndarray] | None = None  # stamp (ns), dt (ns), action
    diffs: list[np.ndarray] = field(default_factory=list)

    def on_task(self, text: str) -> None:
        """A task message starts a run, unless it repeats the current one (latched)."""
        if not self.runs or self.runs[-1].text != text:
            self.runs.append(_Run(text, sim_topics.parse_task(text)))

    def on_pose(self, pose: np.ndarray) -> None:
        if self.runs:  # a pose before any task cannot be scored
            self.runs[-1].pose = pose


class _Replay:
    """One pass over a bag: feeds the runtime, ticks it on bag time, writes what it publishes."""

    def __init__(
        self,
        runtime: PlannerRuntime,
        source: BagSource,
        topics: _Topics,
        writer: BagWriter | None,
        rate_scale: float,
        tick_hook: Callable[[Command], None] | None,
        max_image_pixels: int = MAX_PIXELS,
    ) -> None:
        self.rt, self.source = runtime, source
        self.max_image_pixels = max_image_pixels
        self.image_topic, self.goal_topic = topics.image, topics.goal
        self.used, self.copied = set(topics.used), set(topics.copied)
        self.writer, self.out = writer, topics.outputs
        self.scale = rate_scale
        self.period_ns = round(_NS / (runtime.params["control_rate"] / rate_scale))
        self.tick_hook = tick_hook
        self.frame_id = runtime.params["frame_id"]
        self.commands: list[Command] = []
        self.skipped: dict[str, _Skipped] = {}
        self.latencies: list[float] = []
        self.counts: dict[str, int] = {}
        self.truth = _GroundTruth()
        self.goal: np.ndarray | None = None
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.ticks = 0

    def run(self, messages: Iterator[RawMessage], progress: tqdm) -> None:
        for m in messages:
            if self.first_ns is None:
                self.first_ns = m.stamp_ns
            while self._next_tick() < m.stamp_ns:
                self._tick(self._next_tick())
            self._feed(m)
            self.last_ns = max(self.last_ns or m.stamp_ns, m.stamp_ns)
            progress.update()
            progress.set_postfix(ticks=self.ticks, refresh=False)
        while self.first_ns is not None and self._next_tick() <= self.last_ns:
            self._tick(self._next_tick())

    def _next_tick(self) -> int:
        return self.first_ns + self.ticks * self.period_ns

    def _feed(self, m: RawMessage) -> None:
        """Copy a message verbatim, then use it if it is one the planner or the score needs."""
        self.counts[m.topic] = self.counts.get(m.topic, 0) + 1
        if self.writer is not None and m.topic in self.copied:
            self.writer.write_raw(m.topic, m.data, m.stamp_ns)
        if m.topic not in self.used:
            return
        try:
            msg = self.source.deserialize(m)
        except BagError as exc:
            self._skip(m.topic, str(exc), m.stamp_ns / _NS, corrupt=True)
            return
        if m.topic == self.image_topic or m.topic == self.goal_topic:
            # The header stamp, as the node uses it: a driver that leaves it at zero makes
            # every image stale there, and so here.
            stamp = time_to_sec(msg.header.stamp)
            try:
                rgb = image_msg_to_rgb(msg, self.max_image_pixels)
            except (ImageConversionError, TypeError, ValueError) as exc:
                self._skip(m.topic, str(exc), stamp)
                return
            if m.topic == self.image_topic:
                self.latencies.append(m.stamp_ns / _NS - stamp)
                self.rt.on_image(rgb, stamp / self.scale)
            elif self.goal is None or not np.array_equal(self.goal, rgb):
                # Like the node: a republished, unchanged goal must not drop the warm start.
                self.rt.on_goal(rgb, stamp / self.scale)
                self.goal = rgb
        elif m.topic.lstrip("/") == sim_topics.TASK_TOPIC:
            try:
                self.truth.on_task(msg.data)
            except ValueError as exc:
                self._skip(m.topic, str(exc), m.stamp_ns / _NS)
        elif m.topic.lstrip("/") == sim_topics.POSE_TOPIC:
            self.truth.on_pose(sim_topics.pose_xy(msg))
        elif m.topic.lstrip("/") == sim_topics.EXECUTED_ACTION_TOPIC:
            dt_ns = round(float(msg.dt) * _NS)
            self.truth.executed = (m.stamp_ns, dt_ns, np.asarray(msg.action, dtype=np.float32))

    def _skip(self, topic: str, error: str, stamp: float, corrupt: bool = False) -> None:
        self.skipped.setdefault(topic, _Skipped()).add(error, stamp, corrupt)

    def _tick(self, now_ns: int) -> None:
        now = now_ns / _NS
        cmd = self.rt.tick(now / self.scale)
        if self.scale != 1.0:  # back from the runtime's sped-up clock to bag time
            cmd = dataclasses.replace(
                cmd, stamp=now, dt=cmd.dt * self.scale, image_age=cmd.image_age * self.scale
            )
        self.ticks += 1
        self.commands.append(dataclasses.replace(cmd, plan=None))  # plans can be large: not kept
        if self.truth.executed is not None:
            stamp_ns, dt_ns, executed = self.truth.executed
            # In effect over [stamp, stamp + dt); 1 us absorbs dt's float32 rounding.
            if now_ns < stamp_ns + dt_ns - 1000 and executed.shape == cmd.action.shape:
                self.truth.diffs.append(np.abs(cmd.action - executed))
        if self.writer is not None:
            self._publish(cmd, now, now_ns)
        if self.tick_hook is not None:
            self.tick_hook(cmd)

    def _publish(self, cmd: Command, now: float, now_ns: int) -> None:
        w, out = self.writer, self.out
        w.write(out["action"], action_command_msg(stamp_sec=now, **action_fields(cmd)), now_ns)
        status = status_fields(cmd, self.rt.stats)
        w.write(out["status"], planner_status_msg(stamp_sec=now, **status), now_ns)
        if cmd.plan is not None:
            fields = trajectory_fields(cmd.plan, self.rt.model)
            stamp = plan_stamp(cmd)
            msg = virtual_trajectory_msg(stamp_sec=stamp, frame_id=self.frame_id, **fields)
            w.write(out["plan"], msg, now_ns)


def replay(
    bag: str | os.PathLike[str],
    params: Mapping[str, Any],
    *,
    image_topic: str | None = None,
    goal_topic: str | None = DEFAULT_GOAL_TOPIC,
    goal_image: np.ndarray | None = None,
    out: str | os.PathLike[str] | None = None,
    output_prefix: str = "",
    overwrite: bool = False,
    realtime_budget: bool = False,
    rate_scale: float = 1.0,
    progress: bool = False,
    tick_hook: Callable[[Command], None] | None = None,
    max_image_pixels: int = MAX_PIXELS,
) -> ReplayResult:
    """Replay ``bag`` through a PlannerRuntime built from ``params``; see the module docstring.

    Args:
        image_topic: camera topic; default ``camera/image_raw``, else ``image``.
        goal_topic: topic of goal images; used when the bag has it, else ``goal_image`` (an
            RGB ``uint8 [H, W, 3]``) is the goal, set before the first tick.
        out: output bag directory (MCAP), or None for none.
        output_prefix: prepended to the output topics ``/action``, ``/plan``, ``/status``.
        realtime_budget: plan with the wall-clock deadline budget (as on the robot) instead of
            the deterministic fixed-iterations budget.
        rate_scale: with ``realtime_budget``, play the bag this many times faster than real
            time: each tick's wall-clock budget is the control period divided by it.
        tick_hook: called with every tick's Command (progress displays, tests).
        max_image_pixels: images larger than this (width x height, read from the header before
            decoding) are skipped and counted, like undecodable ones.

    Raises:
        FileNotFoundError, FileExistsError, BagError, ValueError: with a message that says
            what is wrong and how to fix it.
    """
    started = time.perf_counter()
    bag_path = Path(bag)
    if out is not None:
        _check_output(Path(out), bag_path, overwrite)
    if max_image_pixels < 1:
        raise ValueError(f"--max-image-pixels must be at least 1, got {max_image_pixels}")
    values = dict(params)
    values["budget"] = "deadline" if realtime_budget else "iterations"
    _check_rate_scale(values, rate_scale, realtime_budget)
    with open_bag(bag_path) as source:
        topics = _choose_topics(source, image_topic, goal_topic, goal_image, out, output_prefix)
        runtime = PlannerRuntime.from_params(
            {
                **values,
                "control_rate": values["control_rate"] * rate_scale,
                "image_timeout": values["image_timeout"] / rate_scale,
            }
        )
        if goal_image is not None and topics.goal is None:
            runtime.on_goal(goal_image)
        with write_bag(out, overwrite=overwrite) if out else contextlib.nullcontext() as writer:
            if writer is not None:
                topics.add_to(writer)
            total = sum(source.counts.get(t, 0) for t in topics.read) if source.counts else None
            loop = _Replay(runtime, source, topics, writer, rate_scale, tick_hook, max_image_pixels)
            with tqdm(
                total=total, unit="msg", desc="replaying", disable=not progress, leave=False
            ) as bar:
                loop.run(source.raw_messages(topics.read), bar)
            if loop.counts.get(topics.image, 0) == 0:
                where = f" (reading stopped: {source.stop.reason})" if source.stop else ""
                raise BagError(f"no readable message on {topics.image} in {bag_path}{where}")
    report = _report(
        loop,
        source,
        values,
        topics=topics,
        out=out,
        rate_scale=rate_scale,
        wall_time=time.perf_counter() - started,
    )
    dim = int(runtime.model.action_dim)
    return ReplayResult(
        stamps=np.array([c.stamp for c in loop.commands], dtype=np.float64),
        actions=np.array([c.action for c in loop.commands], dtype=np.float32).reshape(-1, dim),
        statuses=[c.status for c in loop.commands],
        report=report,
    )


def _choose_topics(
    source: BagSource,
    image_topic: str | None,
    goal_topic: str | None,
    goal_image: np.ndarray | None,
    out: str | os.PathLike[str] | None,
    output_prefix: str,
) -> _Topics:
    """What to read, use and copy, checked before any planning starts."""
    image, goal = _pick_topics(source, image_topic, goal_topic, goal_image)
    outputs = {n: _qualified(output_prefix + n) for n in ("action", "plan", "status")}
    copied: dict[str, TopicInfo] = {}
    not_copied: dict[str, str] = {}
    if out is not None:
        _check_clashes(outputs, list(source.topics))
        for topic in source.topics:
            try:
                copied[topic] = source.topic_info(topic)
            except BagError as exc:
                not_copied[topic] = str(exc)
    return _Topics(image, goal, _truth_topics(source.topics), outputs, copied, not_copied)


def _check_output(out: Path, bag: Path, overwrite: bool) -> None:
    o, b = out.resolve(), bag.resolve()
    if o == b or o in b.parents or b in o.parents:
        raise ValueError(f"output {out} would overwrite or sit inside the input bag {bag}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --force to replace it")


def _check_rate_scale(values: Mapping[str, Any], scale: float, realtime: bool) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"--rate-scale must be a positive number, got {scale}")
    if scale != 1.0 and not realtime:
        raise ValueError(
            "--rate-scale only changes the wall-clock budget, so it needs --realtime-budget "
            "(the default fixed-iterations replay does not depend on speed)"
        )
    for name in ("control_rate", "image_timeout"):
        spec, value = (
            P.SCHEMA[name],
            values[name] * (scale if name == "control_rate" else 1 / scale),
        )
        if not spec.low <= value <= spec.high:
            raise ValueError(
                f"--rate-scale {scale} makes the effective {name} {value:g}, outside "
                f"[{spec.low}, {spec.high}]"
            )


def _describe(topics: Mapping[str, str]) -> str:
    return ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"


def _pick_topics(
    source: BagSource, image_topic: str | None, goal_topic: str | None, goal_image: Any
) -> tuple[str, str | None]:
    """The bag's camera and goal topics, checked; BagError lists what the bag has instead."""
    images = {t: m for t, m in source.topics.items() if m in IMAGE_TYPES}
    if image_topic is None:
        found = [t for name in DEFAULT_IMAGE_TOPICS if (t := resolve_topic(source.topics, name))]
        if not found:
            raise BagError(
                f"bag {source.path} has none of the default camera topics "
                f"{', '.join(DEFAULT_IMAGE_TOPICS)}; pass --image-topic. Image topics in the "
                f"bag: {_describe(images)}"
            )
        image = found[0]
    else:
        image = _checked_topic(source, image_topic, "--image-topic")
    goal = None
    if goal_image is None:
        if goal_topic is None or resolve_topic(source.topics, goal_topic) is None:
            raise BagError(
                f"bag {source.path} has no goal topic {goal_topic}; pass --goal-topic, or "
                f"--goal-image PNG for a goal from a file. Image topics in the bag: "
                f"{_describe(images)}"
            )
        goal = _checked_topic(source, goal_topic, "--goal-topic")
    return image, goal


def _checked_topic(source: BagSource, name: str, option: str) -> str:
    topic = resolve_topic(source.topics, name)
    if topic is None:
        raise BagError(
            f"bag {source.path} has no topic {name} ({option}); its topics: "
            f"{_describe(source.topics)}"
        )
    if source.topics[topic] not in IMAGE_TYPES:
        raise BagError(
            f"topic {topic} in {source.path} has type {source.topics[topic]}, expected "
            f"{' or '.join(IMAGE_TYPES)}"
        )
    return topic


def _truth_topics(topics: Mapping[str, str]) -> list[str]:
    """The simulator's ground-truth topics present with their contract types."""
    wanted = (
        (sim_topics.TASK_TOPIC, sim_topics.STRING),
        (sim_topics.POSE_TOPIC, sim_topics.POSE_STAMPED),
        (sim_topics.EXECUTED_ACTION_TOPIC, ACTION_COMMAND),
    )
    found = [(resolve_topic(topics, name), msgtype) for name, msgtype in wanted]
    return [t for t, msgtype in found if t is not None and topics[t] == msgtype]


def _qualified(topic: str) -> str:
    """The name as ``ros2 bag record`` stores a root-namespace topic: with a leading slash."""
    return "/" + topic.lstrip("/")


def _check_clashes(outputs: Mapping[str, str], inputs: Sequence[str]) -> None:
    taken = {t.lstrip("/"): t for t in inputs}
    for name in outputs.values():
        if name.lstrip("/") in taken:
            raise ValueError(
                f"output topic {name} would clash with the input topic {taken[name.lstrip('/')]}"
                " copied into the output bag; pass --output-prefix, e.g. --output-prefix replay/"
            )


# -- the report ---------------------------------------------------------------------------------
def _finite(value: float) -> float | None:
    """JSON has no NaN: missing values are null."""
    return float(value) if value is not None and math.isfinite(value) else None


def _stats(values: np.ndarray) -> dict[str, Any]:
    if not len(values):
        return {"count": 0}
    return {
        "count": len(values),
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
    }


def _report(
    loop: _Replay,
    source: BagSource,
    values: Mapping[str, Any],
    *,
    topics: _Topics,
    out: Any,
    rate_scale: float,
    wall_time: float,
) -> dict[str, Any]:
    cmds = loop.commands
    ok = [c for c in cmds if c.status is Status.OK]
    solve = np.array([c.solve_time for c in ok])
    latency = np.array(loop.latencies)
    start = loop.first_ns / _NS if loop.first_ns is not None else None
    end = loop.last_ns / _NS if loop.last_ns is not None else None
    messages = sum(loop.counts.values())
    return {
        "bag": str(source.path),
        "storage": source.storage,
        "salvaged": source.salvaged,
        "truncated": dataclasses.asdict(source.stop) if source.stop else None,
        "image_topic": topics.image,
        "goal_topic": topics.goal,
        "output_bag": None if out is None else str(out),
        "messages": dict(sorted(loop.counts.items())),
        "skipped": {t: dataclasses.asdict(s) for t, s in sorted(loop.skipped.items())},
        "not_copied": dict(sorted(topics.not_copied.items())),
        "image_latency": {
            "p50": _finite(np.percentile(latency, 50)) if len(latency) else None,
            "max": _finite(latency.max()) if len(latency) else None,
        },
        "start": start,
        "end": end,
        "duration": None if start is None else end - start,
        "ticks": len(cmds),
        "status_counts": dict(Counter(c.status.name for c in cmds)),
        "deadline_misses": loop.rt.stats.deadline_misses,
        "solve_time": {
            f"p{q}": _finite(np.percentile(solve, q)) if len(solve) else None for q in (50, 90, 99)
        },
        "iterations_mean": _finite(np.mean([c.iterations for c in ok])) if ok else None,
        "cost_last": _finite(ok[-1].cost) if ok else None,
        "actions": _stats(np.stack([c.action for c in ok]) if ok else np.zeros((0, 0))),
        "ground_truth": _ground_truth(loop.truth, cut_off=source.stop is not None),
        "budget": values["budget"],
        "rate_scale": rate_scale,
        "params": dict(values),
        "wall_time": wall_time,
        "messages_per_second": messages / wall_time if wall_time > 0 else None,
    }


def _ground_truth(truth: _GroundTruth, cut_off: bool) -> dict[str, Any] | None:
    """Success per recorded episode (``recorded_success``: every one reached its goal)."""
    runs = [r for r in truth.runs if r.pose is not None]
    if not runs and not truth.diffs:
        return None
    result: dict[str, Any] = {}
    if runs:
        episodes = []
        for run in runs:
            goal = run.task.goal_state
            episodes.append(
                {
                    "task_seed": run.task.seed,
                    "optimal_steps": run.task.optimal_steps,
                    "recorded_success": bool(run.task.make_env().success(run.pose, goal)),
                    "final_distance": float(np.linalg.norm(run.pose - goal[:2])),
                }
            )
        wins = sum(e["recorded_success"] for e in episodes)
        result.update(
            env=runs[-1].task.env,
            episodes=episodes,
            recorded_successes=wins,
            recorded_success=wins == len(episodes),
        )
        if cut_off:
            result["note"] = (
                "the bag is cut off: success and distance are at the last readable pose, "
                "which may not be the end of the recorded run"
            )
    if truth.diffs:
        diffs = np.stack(truth.diffs)
        result["executed_action_agreement"] = {
            "ticks_compared": len(diffs),
            "mean_abs_diff": diffs.mean(0).tolist(),
            "max_abs_diff": diffs.max(0).tolist(),
            "note": (
                "Each tick's replayed action against the action the recorded agent executed at "
                "that time. Replay is open loop: the planner's actions never move the recorded "
                "agent, so this measures how differently it would have acted, not whether it "
                "would have succeeded. It is 0 when the recording was driven by this planner "
                "with the same parameters and seed (a reproduction check)."
            ),
        }
    return result


# -- command line -------------------------------------------------------------------------------
EXAMPLES = """\
examples:
  grasp-ros-record-sim sim_bag
  grasp-ros-replay sim_bag --params config/planner.yaml --out replayed --report report.json
  grasp-ros-replay robot_bag --image-topic /front/image_raw --goal-image goal.png -p seed=1
  grasp-ros-replay robot_bag.mcap --realtime-budget --rate-scale 2 --report stress.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The grasp-ros-replay argument parser."""
    parser = argparse.ArgumentParser(
        prog="grasp-ros-replay",
        description="Run the planner over a recorded bag offline, on bag time, exactly as the "
        "planner node would see it (newest image only, image watchdog on bag time). "
        "Reads rosbag2 (MCAP, sqlite3) and ROS 1 bags; writes an MCAP bag with the planner's "
        "action, plan and status added, and a JSON report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bag", help="rosbag2 directory, .mcap or .db3 file, or ROS 1 .bag file")
    parser.add_argument(
        "--image-topic",
        help="camera topic, sensor_msgs/Image or CompressedImage "
        f"(default: {DEFAULT_IMAGE_TOPICS[0]}, else {DEFAULT_IMAGE_TOPICS[1]})",
    )
    parser.add_argument(
        "--goal-topic", default=DEFAULT_GOAL_TOPIC, help="goal image topic (default: %(default)s)"
    )
    parser.add_argument(
        "--goal-image",
        metavar="PNG",
        help="goal from an image file, e.g. for bags without a goal topic (overrides --goal-topic)",
    )
    parser.add_argument("--out", metavar="OUT_BAG", help="output bag directory (MCAP)")
    parser.add_argument("--report", metavar="JSON", help="write the report to this file")
    parser.add_argument(
        "--output-prefix",
        default="",
        metavar="PREFIX",
        help="prefix of the output topics /action, /plan, /status (e.g. replay/)",
    )
    parser.add_argument(
        "--realtime-budget",
        action="store_true",
        help="plan within the wall-clock deadline, as the robot does (results then depend on "
        "this machine's speed); default: the fixed-iterations budget, deterministic",
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="with --realtime-budget: play the bag X times faster than real time, so each "
        "tick's wall-clock budget is the control period / X (X < 1 emulates a faster "
        "computer); the tick schedule in bag time does not change (default: 1)",
    )
    parser.add_argument(
        "--max-image-pixels",
        type=int,
        default=MAX_PIXELS,
        metavar="N",
        help="skip (and count) images larger than N pixels, width x height, judged by the "
        "header before decoding (default: %(default)s = 4096 x 4096)",
    )
    parser.add_argument("--force", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_param_arguments(parser)
    return parser


def read_image_file(path: str) -> np.ndarray:
    """An image file (PNG, JPEG, ...) as RGB ``uint8 [H, W, 3]``."""
    import cv2

    if not Path(path).is_file():
        raise FileNotFoundError(f"no image file {path}")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path} as an image (PNG, JPEG, ...)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_json(data: Mapping[str, Any], path: Path, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _summary(report: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in report["status_counts"].items())
    line = f"{report['ticks']} ticks over {report['duration'] or 0:.2f} s of bag time ({counts})"
    p50 = report["solve_time"]["p50"]
    if p50 is not None:
        line += f"; solve time p50 {p50 * 1e3:.1f} ms"
    truth = report["ground_truth"] or {}
    episodes = truth.get("episodes", [])
    if len(episodes) == 1:
        line += f"; recorded run {'succeeded' if truth['recorded_success'] else 'failed'}"
    elif episodes:
        wins = truth["recorded_successes"]
        line += f"; recorded runs: {wins} of {len(episodes)} episodes succeeded"
    if episodes and "note" in truth:
        line += " (at the last readable pose)"
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``grasp-ros-replay``; returns the exit status."""
    args = build_parser().parse_args(argv)
    prog = "grasp-ros-replay"
    try:
        if any(p.partition("=")[0].strip() == "budget" for p in args.param):
            raise P.ParamsError("set the budget with --realtime-budget, not -p budget=...")
        if args.report:
            report_path = Path(args.report)
            _check_output(report_path, Path(args.bag), args.force)
        values = params_from_cli(args.params, args.param)
        goal = read_image_file(args.goal_image) if args.goal_image else None
        result = replay(
            args.bag,
            values,
            image_topic=args.image_topic,
            goal_topic=args.goal_topic,
            goal_image=goal,
            out=args.out,
            output_prefix=args.output_prefix,
            overwrite=args.force,
            realtime_budget=args.realtime_budget,
            rate_scale=args.rate_scale,
            progress=not args.quiet,
            max_image_pixels=args.max_image_pixels,
        )
        if args.report:
            write_json(result.report, report_path, args.force)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; unfinished outputs were not written", file=sys.stderr)
        return 130
    except P.ParamsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (BagError, OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    report = result.report
    stop = report["truncated"]
    if stop:
        where = f" at byte {stop['offset']} of {stop['file_size']}" if stop["offset"] else ""
        print(
            f"{prog}: warning: {args.bag} is damaged: {stop['reason']} ({stop['file']}{where}); "
            f"replayed the {sum(report['messages'].values())} messages before it",
            file=sys.stderr,
        )
    for topic, skipped in report["skipped"].items():
        print(
            f"{prog}: warning: skipped {skipped['count']} unusable message(s) on {topic} "
            f"({skipped['corrupt']} corrupt), first: {skipped['first_error']}",
            file=sys.stderr,
        )
    for reason in report["not_copied"].values():
        print(f"{prog}: warning: not copied to the output bag: {reason}", file=sys.stderr)
    print(_summary(report))
    for label, path in (("bag", args.out), ("report", args.report)):
        if path:
            print(f"wrote {label} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
