"""grasp-ros-replay's command line: arguments, image and JSON files, the summary line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grasp_ros.cli import add_options, option, parse
from grasp_ros.control import params as schema
from grasp_ros.control.cli_params import ParamOptions, add_param_arguments
from grasp_ros.io.bags import BagError
from grasp_ros.io.images import MAX_PIXELS
from grasp_ros.tools.replay.loop import check_output, replay
from grasp_ros.tools.replay.topics import DEFAULT_GOAL_TOPIC, DEFAULT_IMAGE_TOPICS

EXAMPLES = """\
examples:
  grasp-ros-record-sim sim_bag
  grasp-ros-replay sim_bag --params config/planner.yaml --out replayed --report report.json
  grasp-ros-replay robot_bag --image-topic /front/image_raw --goal-image goal.png -p seed=1
  grasp-ros-replay robot_bag.mcap --realtime-budget --rate-scale 2 --report stress.json
"""


@dataclass
class ReplayOptions(ParamOptions):
    """grasp-ros-replay's options (``params`` and ``param`` configure the planner)."""

    bag: str = option("", "rosbag2 directory, .mcap or .db3 file, or ROS 1 .bag file", "bag")
    image_topic: str | None = option(
        None,
        "camera topic, sensor_msgs/Image or CompressedImage "
        f"(default: {DEFAULT_IMAGE_TOPICS[0]}, else {DEFAULT_IMAGE_TOPICS[1]})",
    )
    goal_topic: str = option(DEFAULT_GOAL_TOPIC, "goal image topic (default: %(default)s)")
    goal_image: str | None = option(
        None,
        "goal from an image file, e.g. for bags without a goal topic (overrides --goal-topic)",
        metavar="PNG",
    )
    out: str | None = option(None, "output bag directory (MCAP)", metavar="OUT_BAG")
    report: str | None = option(None, "write the report to this file", metavar="JSON")
    output_prefix: str = option(
        "",
        "prefix of the output topics /action, /plan, /status (e.g. replay/)",
        metavar="PREFIX",
    )
    realtime_budget: bool = option(
        False,
        "plan within the wall-clock deadline, as the robot does (results then depend on "
        "this machine's speed); default: the fixed-iterations budget, deterministic",
        action="store_true",
    )
    rate_scale: float = option(
        1.0,
        "with --realtime-budget: play the bag X times faster than real time, so each "
        "tick's wall-clock budget is the control period / X (X < 1 emulates a faster "
        "computer); the tick schedule in bag time does not change (default: 1)",
        type=float,
        metavar="X",
    )
    max_image_pixels: int = option(
        MAX_PIXELS,
        "skip (and count) images larger than N pixels, width x height, judged by the header "
        "before decoding (default: %(default)s = 4096 x 4096)",
        type=int,
        metavar="N",
    )
    force: bool = option(False, "replace existing outputs", action="store_true")
    quiet: bool = option(False, "no progress bar", action="store_true")


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
    add_options(parser, ReplayOptions)
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
    args = parse(ReplayOptions, build_parser(), argv)
    prog = "grasp-ros-replay"
    try:
        if any(p.partition("=")[0].strip() == "budget" for p in args.param):
            raise schema.ParamsError("set the budget with --realtime-budget, not -p budget=...")
        if args.report:
            report_path = Path(args.report)
            check_output(report_path, Path(args.bag), args.force)
        values = args.planner_params()
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
    except schema.ParamsError as exc:
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
