"""The replay's JSON report: what was read, what the planner did, and the ground truth."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from grasp_ros.control import Command, Status
from grasp_ros.io import sim_topics
from grasp_ros.io.bag_source import BagSource
from grasp_ros.tools.replay.topics import Topics

_NS = 1_000_000_000


@dataclass
class Skipped:
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
class RecordedRun:
    """One recorded episode: its task, and the last poses seen before the next task.

    ``pose`` is the agent's ``[x, y]`` (``sim/pose``), ``object_pose`` the ``[x, y, yaw]`` the
    success test is about (``sim/object_pose``; bags recorded before it existed lack it, and
    then the agent's pose stands in, which is right for the point worlds they come from).
    """

    text: str
    task: sim_topics.SimTask
    pose: np.ndarray | None = None
    object_pose: np.ndarray | None = None

    def final_pose(self) -> np.ndarray | None:
        """The last object pose, or the agent's (yaw 0) where none was recorded."""
        if self.object_pose is not None:
            return self.object_pose
        return None if self.pose is None else np.append(self.pose[:2], 0.0)


@dataclass
class GroundTruth:
    """What a simulator bag says really happened: one run per task it announces (the demo
    records several episodes in one bag)."""

    runs: list[RecordedRun] = field(default_factory=list)
    executed: tuple[int, int, np.ndarray] | None = None  # stamp (ns), dt (ns), action
    diffs: list[np.ndarray] = field(default_factory=list)

    def on_task(self, text: str) -> None:
        """A task message starts a run, unless it repeats the current one (latched)."""
        if not self.runs or self.runs[-1].text != text:
            self.runs.append(RecordedRun(text, sim_topics.parse_task(text)))

    def on_pose(self, pose: np.ndarray) -> None:
        if self.runs:  # a pose before any task cannot be scored
            self.runs[-1].pose = self.runs[-1].task.world_pose(pose)

    def on_object_pose(self, pose: np.ndarray) -> None:
        if self.runs:
            self.runs[-1].object_pose = self.runs[-1].task.world_pose(pose)


@dataclass
class ReplayLog:
    """What one pass over a bag read and did: the report's input."""

    commands: list[Command] = field(default_factory=list)
    skipped: dict[str, Skipped] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # receive minus header stamp, s
    counts: dict[str, int] = field(default_factory=dict)  # messages read per topic
    truth: GroundTruth = field(default_factory=GroundTruth)
    first_ns: int | None = None
    last_ns: int | None = None


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


def build_report(
    loop: ReplayLog,
    deadline_misses: int,
    source: BagSource,
    values: Mapping[str, Any],
    *,
    topics: Topics,
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
        "deadline_misses": deadline_misses,
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


def _ground_truth(truth: GroundTruth, cut_off: bool) -> dict[str, Any] | None:
    """Success per recorded episode (``recorded_success``: every one reached its goal)."""
    runs = [r for r in truth.runs if r.final_pose() is not None]
    if not runs and not truth.diffs:
        return None
    result: dict[str, Any] = {}
    if runs:
        episodes = []
        for run in runs:
            env, pose = run.task.make_env(), run.final_pose()
            goal = env.object_pose(run.task.goal_state[None])[0]
            episodes.append(
                {
                    "task_seed": run.task.seed,
                    "optimal_steps": run.task.optimal_steps,
                    "recorded_success": env.reached(pose, goal),
                    "final_distance": float(np.linalg.norm(pose[:2] - goal[:2])),
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
