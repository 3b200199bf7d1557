"""The replay loop: a bag's messages fed to a PlannerRuntime that ticks on bag time.

See the package docstring (:mod:`grasp_ros.tools.replay`) for what a replay promises.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from grasp_ros.control import Command, PlannerRuntime, Status
from grasp_ros.control import params as schema
from grasp_ros.control.outputs import (
    action_fields,
    plan_stamp,
    status_fields,
    trajectory_fields,
)
from grasp_ros.io import sim_topics
from grasp_ros.io.bag_source import BagSource, open_bag
from grasp_ros.io.bags import BagError, BagWriter, RawMessage, write_bag
from grasp_ros.io.images import MAX_PIXELS, ImageConversionError, image_msg_to_rgb
from grasp_ros.io.messages import (
    action_command_msg,
    planner_status_msg,
    time_to_sec,
    virtual_trajectory_msg,
)
from grasp_ros.tools.replay.report import ReplayLog, Skipped, build_report
from grasp_ros.tools.replay.topics import DEFAULT_GOAL_TOPIC, Topics, choose_topics

_NS = 1_000_000_000


@dataclass
class ReplayResult:
    """The actions the planner would have sent, tick by tick, and the report."""

    stamps: np.ndarray
    actions: np.ndarray
    statuses: list[Status]
    report: dict[str, Any]


class Replay:
    """One pass over a bag: feeds the runtime, ticks it on bag time, writes what it publishes."""

    def __init__(
        self,
        runtime: PlannerRuntime,
        source: BagSource,
        topics: Topics,
        writer: BagWriter | None,
        rate_scale: float,
        tick_hook: Callable[[Command], None] | None,
        max_image_pixels: int = MAX_PIXELS,
    ) -> None:
        self.max_image_pixels = max_image_pixels
        self.rt, self.source = runtime, source
        self.image_topic, self.goal_topic = topics.image, topics.goal
        self.used, self.copied = set(topics.used), set(topics.copied)
        self.writer, self.out = writer, topics.outputs
        self.scale = rate_scale
        self.period_ns = round(_NS / (runtime.params["control_rate"] / rate_scale))
        self.tick_hook = tick_hook
        self.frame_id = runtime.params["frame_id"]
        self.log = ReplayLog()
        self.ticks = 0

    def run(self, messages: Iterator[RawMessage], progress: tqdm) -> None:
        for m in messages:
            if self.log.first_ns is None:
                self.log.first_ns = m.stamp_ns
            while self._next_tick() < m.stamp_ns:
                self._tick(self._next_tick())
            self._feed(m)
            self.log.last_ns = max(self.log.last_ns or m.stamp_ns, m.stamp_ns)
            progress.update()
            progress.set_postfix(ticks=self.ticks, refresh=False)
        while self.log.first_ns is not None and self._next_tick() <= self.log.last_ns:
            self._tick(self._next_tick())

    def _next_tick(self) -> int:
        return self.log.first_ns + self.ticks * self.period_ns

    def _feed(self, m: RawMessage) -> None:
        """Copy a message verbatim, then use it if it is one the planner or the score needs."""
        self.log.counts[m.topic] = self.log.counts.get(m.topic, 0) + 1
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
                self.log.latencies.append(m.stamp_ns / _NS - stamp)
                self.rt.on_image(rgb, stamp / self.scale)
            else:  # the runtime ignores a republished, unchanged goal, as the node's does
                self.rt.on_goal(rgb, stamp / self.scale)
        elif m.topic.lstrip("/") == sim_topics.TASK_TOPIC:
            try:
                self.log.truth.on_task(msg.data)
            except ValueError as exc:
                self._skip(m.topic, str(exc), m.stamp_ns / _NS)
        elif m.topic.lstrip("/") == sim_topics.POSE_TOPIC:
            self.log.truth.on_pose(sim_topics.pose_xy(msg))
        elif m.topic.lstrip("/") == sim_topics.OBJECT_POSE_TOPIC:
            self.log.truth.on_object_pose(sim_topics.planar_pose(msg))
        elif m.topic.lstrip("/") == sim_topics.EXECUTED_ACTION_TOPIC:
            dt_ns = round(float(msg.dt) * _NS)
            self.log.truth.executed = (m.stamp_ns, dt_ns, np.asarray(msg.action, dtype=np.float32))

    def _skip(self, topic: str, error: str, stamp: float, corrupt: bool = False) -> None:
        self.log.skipped.setdefault(topic, Skipped()).add(error, stamp, corrupt)

    def _tick(self, now_ns: int) -> None:
        now = now_ns / _NS
        cmd = self.rt.tick(now / self.scale)
        if self.scale != 1.0:  # back from the runtime's sped-up clock to bag time
            cmd = dataclasses.replace(
                cmd, stamp=now, dt=cmd.dt * self.scale, image_age=cmd.image_age * self.scale
            )
        self.ticks += 1
        # Plans can be large: the log keeps the commands without them.
        self.log.commands.append(dataclasses.replace(cmd, plan=None))
        if self.log.truth.executed is not None:
            stamp_ns, dt_ns, executed = self.log.truth.executed
            # In effect over [stamp, stamp + dt); 1 us absorbs dt's float32 rounding.
            if now_ns < stamp_ns + dt_ns - 1000 and executed.shape == cmd.action.shape:
                self.log.truth.diffs.append(np.abs(cmd.action - executed))
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
        check_output(Path(out), bag_path, overwrite)
    if max_image_pixels < 1:
        raise ValueError(f"--max-image-pixels must be at least 1, got {max_image_pixels}")
    values = dict(params)
    values["budget"] = "deadline" if realtime_budget else "iterations"
    _check_rate_scale(values, rate_scale, realtime_budget)
    with open_bag(bag_path) as source:
        topics = choose_topics(source, image_topic, goal_topic, goal_image, out, output_prefix)
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
            loop = Replay(runtime, source, topics, writer, rate_scale, tick_hook, max_image_pixels)
            with tqdm(
                total=total, unit="msg", desc="replaying", disable=not progress, leave=False
            ) as bar:
                loop.run(source.raw_messages(topics.read), bar)
            if loop.log.counts.get(topics.image, 0) == 0:
                where = f" (reading stopped: {source.stop.reason})" if source.stop else ""
                raise BagError(f"no readable message on {topics.image} in {bag_path}{where}")
    report = build_report(
        loop.log,
        runtime.stats.deadline_misses,
        source,
        values,
        topics=topics,
        out=out,
        rate_scale=rate_scale,
        wall_time=time.perf_counter() - started,
    )
    dim = int(runtime.model.action_dim)
    return ReplayResult(
        stamps=np.array([c.stamp for c in loop.log.commands], dtype=np.float64),
        actions=np.array([c.action for c in loop.log.commands], dtype=np.float32).reshape(-1, dim),
        statuses=[c.status for c in loop.log.commands],
        report=report,
    )


def check_output(out: Path, bag: Path, overwrite: bool) -> None:
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
            schema.SCHEMA[name],
            values[name] * (scale if name == "control_rate" else 1 / scale),
        )
        if not spec.low <= value <= spec.high:
            raise ValueError(
                f"--rate-scale {scale} makes the effective {name} {value:g}, outside "
                f"[{spec.low}, {spec.high}]"
            )
