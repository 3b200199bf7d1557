"""grasp-ros-record-sim: record the built-in simulator into a rosbag2, as a robot would.

The bag is what a robot log looks like to the planner: ``camera/image_raw`` (rgb8, frame
``camera``) at the camera rate with capture jitter and transport latency, and optionally a
dropout that starves the planner's image watchdog; ``goal_image`` once at the start, latched.
On top, the ground truth a robot does not have: ``sim/task`` (the task as JSON, latched),
``sim/pose`` (the agent's position at every control step) and ``sim/executed_action`` (what
the agent did). The latched topics are stored with a transient-local QoS profile, so
``ros2 bag play`` republishes them latched without a QoS override file.
``grasp-ros-replay`` reads all of it back and scores the recorded run.

Timeline: the agent acts at the control rate; the action chosen at step k moves the agent over
the period ``[k dt, (k+1) dt)`` and the new position holds from ``(k+1) dt``. A camera frame
shows the position at its capture time, carries that time in its header, and enters the bag
``latency`` (plus jitter) later, as a transport would deliver it. Time starts at
``--start-time`` (a fixed Unix time, so the same arguments always give the same bag).

Agents:

- ``expert``: the task's expert, from ground truth: in a point world it follows the shortest
  path (the world's BFS distance field); in Push-T it plays the scripted pushes that made the
  goal (``Task.expert_actions``).
- ``random``: holds random actions for random spells, like the training data's exploration.
- ``planner``: the PlannerRuntime in closed loop on the camera images, with the same
  parameters as the robot; it always uses the fixed-iterations budget, because simulated time
  does not pass while it plans.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from grasp_ros.cli import add_options, option, parse
from grasp_ros.control import PlannerRuntime
from grasp_ros.control import params as schema
from grasp_ros.control.cli_params import ParamOptions, add_param_arguments
from grasp_ros.control.episode import EpisodeHooks, Frame, Tick, run_episode
from grasp_ros.envs import ENVS, Task, World, make_env
from grasp_ros.envs.agents import Policy, expert_policy, random_policy
from grasp_ros.io import sim_topics as topics
from grasp_ros.io.bags import LATCHED, STORAGES, BagError, BagWriter, write_bag
from grasp_ros.io.messages import ACTION_COMMAND, IMAGE, action_command_msg, image_msg, stamp_to_ns

AGENTS = ("expert", "random", "planner")
DEFAULT_START_TIME = 1_700_000_000.0

#: The contract's topics as ``ros2 bag record`` stores them: fully qualified, root namespace.
CAMERA, GOAL, TASK, POSE, OBJECT_POSE, EXECUTED = (
    f"/{name}"
    for name in (
        topics.CAMERA_TOPIC,
        topics.GOAL_TOPIC,
        topics.TASK_TOPIC,
        topics.POSE_TOPIC,
        topics.OBJECT_POSE_TOPIC,
        topics.EXECUTED_ACTION_TOPIC,
    )
)


@dataclass(frozen=True)
class CameraModel:
    """When frames are captured and when they reach the bag (seconds, relative to the start).

    Attributes:
        rate: nominal frames per second.
        jitter: standard deviation of the capture time around its nominal slot, and of the
            extra transport delay.
        latency: mean delay from capture to the bag's receive time.
        dropout: ``(start, duration)`` of an interval with no frames, or None.
    """

    rate: float = 30.0
    jitter: float = 0.002
    latency: float = 0.005
    dropout: tuple[float, float] | None = None

    def frames(self, duration: float, rng: np.random.Generator) -> list[tuple[float, float]]:
        """``(capture, receive)`` times of the frames captured in ``[0, duration)``."""
        period = 1.0 / self.rate
        nominal = np.arange(0.0, duration, period)
        wobble = np.clip(rng.normal(0.0, self.jitter, len(nominal)), -period / 3, period / 3)
        capture = np.clip(nominal + wobble, 0.0, None)
        receive = capture + self.latency + np.abs(rng.normal(0.0, self.jitter, len(nominal)))
        keep = np.ones(len(nominal), dtype=bool)
        if self.dropout is not None:
            start, length = self.dropout
            keep = (capture < start) | (capture >= start + length)
        return [(float(c), float(r)) for c, r in zip(capture[keep], receive[keep], strict=True)]


@dataclass
class Recording:
    """What was recorded: counts and the outcome by ground truth."""

    path: Path
    task: Task
    steps: int
    frames: int
    dropped_frames: int
    final_state: np.ndarray
    success: bool
    statuses: dict[str, int] = field(default_factory=dict)


def record(
    out: str | Path,
    env: World,
    task: Task,
    policy: Policy | PlannerRuntime,
    *,
    duration: float,
    control_rate: float,
    camera: CameraModel | None = None,
    seed: int = 0,
    start_time: float = DEFAULT_START_TIME,
    storage: str = "mcap",
    overwrite: bool = False,
    progress: bool = False,
) -> Recording:
    """Simulate ``task`` for ``duration`` seconds and write the bag ``out`` (atomically).

    ``policy`` is a function ``(time, ground-truth state) -> action`` or, for a planner-driven
    agent, a PlannerRuntime that sees only the camera frames delivered so far.
    """
    if duration <= 0 or control_rate <= 0:
        raise ValueError(f"duration ({duration}) and control rate ({control_rate}) must be > 0")
    camera = camera or CameraModel()
    rng = np.random.default_rng(seed)
    dt = 1.0 / control_rate
    steps = max(1, round(duration * control_rate))
    frames = camera.frames(steps * dt, rng)
    nominal = len(np.arange(0.0, steps * dt, 1.0 / camera.rate))
    with write_bag(out, storage=storage, overwrite=overwrite) as bag:
        log = _BagLog(bag, env, dt)
        with tqdm(total=steps, desc="simulating", unit="step", disable=not progress) as bar:
            log.bar = bar
            outcome = run_episode(
                env,
                task,
                policy,
                period=dt,
                max_ticks=steps,
                start_time=start_time,
                camera=_DelayedCamera(env, frames, start_time, dt),
                hooks=log,
                until_success=False,
            )
    return Recording(
        path=Path(out),
        task=task,
        steps=steps,
        frames=len(frames),
        dropped_frames=nominal - len(frames),
        final_state=outcome.final_state,
        success=env.success(outcome.final_state, task.goal_state),
        statuses=log.statuses,
    )


class _DelayedCamera:
    """The recorded camera: :class:`CameraModel` frames, each showing the state at its
    capture time and reaching the agent (and the bag) at its receive time."""

    def __init__(
        self, env: World, frames: list[tuple[float, float]], start_time: float, dt: float
    ) -> None:
        self.env, self.pending, self.start_time, self.dt = env, list(frames), start_time, dt

    def frames(
        self, until: float, stamp: float, states: list[np.ndarray], image: np.ndarray
    ) -> list[Frame]:
        out = []
        while self.pending and self.pending[0][1] <= until:
            capture, receive = self.pending.pop(0)
            shown = states[min(int(capture / self.dt), len(states) - 1)]
            rgb = self.env.render_states(shown[None])[0]
            out.append((self.start_time + capture, self.start_time + receive, rgb))
        return out


class _BagLog(EpisodeHooks):
    """What the recorder writes: the robot's topics and the simulator's ground truth."""

    def __init__(self, bag: BagWriter, env: World, dt: float) -> None:
        self.bag, self.env, self.dt = bag, env, dt
        self.statuses: dict[str, int] = {}
        self.bar: tqdm | None = None
        # Goal and task are latched, as the sim node publishes them: ros2 bag play then
        # republishes them latched, and a planner that starts late still receives them.
        for topic, msgtype in (
            (TASK, topics.STRING),
            (GOAL, IMAGE),
            (CAMERA, IMAGE),
            (POSE, topics.POSE_STAMPED),
            (OBJECT_POSE, topics.POSE_STAMPED),
            (EXECUTED, ACTION_COMMAND),
        ):
            latched = topic.lstrip("/") in topics.LATCHED_TOPICS
            bag.add_topic(topic, msgtype, qos=[LATCHED] if latched else [])

    def on_start(self, task: Task, stamp: float) -> None:
        ns = stamp_to_ns(stamp)
        self.bag.write(TASK, topics.task_msg(self.env, task), ns)
        self.bag.write(GOAL, image_msg(task.goal_image, stamp, topics.CAMERA_FRAME), ns)

    def on_frame(self, capture: float, receive: float, image: np.ndarray) -> None:
        msg = image_msg(image, capture, topics.CAMERA_FRAME)
        self.bag.write(CAMERA, msg, stamp_to_ns(receive))

    def on_state(self, stamp: float, state: np.ndarray) -> None:
        self.bag.write(POSE, topics.pose_msg(state, stamp), stamp_to_ns(stamp))
        pose = self.env.object_pose(state[None])[0]
        self.bag.write(OBJECT_POSE, topics.planar_pose_msg(pose, stamp), stamp_to_ns(stamp))

    def on_tick(self, tick: Tick) -> None:
        if tick.command is not None:
            name = tick.command.status.name
            self.statuses[name] = self.statuses.get(name, 0) + 1
        msg = action_command_msg(stamp_sec=tick.stamp, action=tick.action, dt=self.dt, step_index=0)
        self.bag.write(EXECUTED, msg, stamp_to_ns(tick.stamp))

    def on_step(self, tick: Tick, state: np.ndarray, image: np.ndarray) -> None:
        if self.bar is not None:
            self.bar.update()


# -- command line -------------------------------------------------------------------------------
@dataclass
class RecordOptions(ParamOptions):
    """grasp-ros-record-sim's options (``params`` and ``param`` configure the planner agent)."""

    out: str = option("", "output bag directory (refused if it exists, unless --force)", "out")
    env: str | None = option(
        None,
        "world (default: the planner model's world with --agent planner, else wall)",
        choices=sorted(ENVS),
    )
    agent: str = option("expert", "default: %(default)s", choices=AGENTS)
    task_horizon: int = option(
        20,
        "task difficulty: its expert solution takes 75-100%% of this many steps "
        "(default: %(default)s)",
        type=int,
    )
    seed: int = option(0, "seeds the task, camera jitter and random agent", type=int)
    duration: float | None = option(
        None, "seconds to simulate (default: 1.5 x task-horizon steps)", type=float
    )
    control_rate: float | None = option(
        None, "agent steps per second (default: control_rate, 10)", type=float
    )
    camera_rate: float = option(30.0, "default: %(default)s Hz", type=float)
    jitter: float = option(0.002, "capture/transport jitter std, s (%(default)s)", type=float)
    latency: float = option(0.005, "capture to bag delay, s (%(default)s)", type=float)
    dropout: str | None = option(
        None,
        "no camera frames for LENGTH seconds from START seconds (exercises the watchdog)",
        metavar="START:LENGTH",
    )
    image_size: int | None = option(
        None, "camera image side, px (default: the model's, else 64)", type=int
    )
    storage: str = option("mcap", "default: %(default)s", choices=sorted(STORAGES))
    start_time: float = option(
        DEFAULT_START_TIME,
        "Unix time of the first message (default: %(default)s, fixed so that runs repeat)",
        type=float,
    )
    force: bool = option(False, "replace an existing bag", action="store_true")
    quiet: bool = option(False, "no progress bar", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    """The grasp-ros-record-sim argument parser."""
    parser = argparse.ArgumentParser(
        prog="grasp-ros-record-sim",
        description="Run the built-in simulator with a scripted or planner-driven agent and "
        "record a rosbag2 like a robot's: camera/image_raw (rgb8, 30 Hz with jitter, optional "
        "dropout), goal_image, and ground truth on sim/task, sim/pose, sim/object_pose and "
        "sim/executed_action. Replay it with grasp-ros-replay. --params and -p configure the "
        "planner agent and give the default control rate.",
        epilog="examples:\n  grasp-ros-record-sim sim_bag\n"
        "  grasp-ros-record-sim sim_bag --agent planner --params config/planner.yaml\n"
        "  grasp-ros-record-sim drop_bag --dropout 1.0:0.8 --storage sqlite3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(parser, RecordOptions)
    add_param_arguments(parser)
    return parser


def _parse_dropout(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    start, sep, length = text.partition(":")
    try:
        values = (float(start), float(length))
    except ValueError:
        values = (math.nan, math.nan)
    if not sep or not all(math.isfinite(v) and v >= 0 for v in values) or values[1] == 0:
        raise ValueError(f"--dropout {text!r}: expected START:LENGTH in seconds, e.g. 1.0:0.5")
    return values


def _setup(args: RecordOptions) -> tuple[World, Policy | PlannerRuntime, float, Task]:
    """The world, the agent, the control rate and the task the arguments ask for."""
    for name in ("camera_rate", "task_horizon"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive")
    if args.jitter < 0 or args.latency < 0:
        raise ValueError("--jitter and --latency must be >= 0")
    values = args.planner_params()
    rate = args.control_rate or values["control_rate"]
    if args.agent != "planner":
        env = make_env(args.env or "wall", image_size=args.image_size or 64)
        task = env.sample_task(args.task_horizon, seed=args.seed)
        if args.agent == "expert":
            return env, expert_policy(env, task), rate, task
        return env, random_policy(env, args.seed), rate, task
    # Simulated time stands still while the planner thinks: only a fixed budget makes sense.
    runtime = PlannerRuntime.from_params({**values, "control_rate": rate, "budget": "iterations"})
    trained_in = getattr(runtime.model, "env_name", "")
    if trained_in and args.env and args.env != trained_in:
        raise ValueError(f"model {values['model']} was trained in {trained_in}, not {args.env}")
    size = args.image_size or getattr(runtime.model, "image_size", 64)
    env = make_env(trained_in or args.env or "wall", image_size=size)
    return env, runtime, rate, env.sample_task(args.task_horizon, seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``grasp-ros-record-sim``; returns the exit status."""
    args = parse(RecordOptions, build_parser(), argv)
    prog = "grasp-ros-record-sim"
    try:
        camera = CameraModel(
            args.camera_rate, args.jitter, args.latency, _parse_dropout(args.dropout)
        )
        env, agent, rate, task = _setup(args)
        duration = args.duration or 1.5 * args.task_horizon / rate
        result = record(
            args.out,
            env,
            task,
            agent,
            duration=duration,
            control_rate=rate,
            camera=camera,
            seed=args.seed,
            start_time=args.start_time,
            storage=args.storage,
            overwrite=args.force,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; no bag written", file=sys.stderr)
        return 130
    except schema.ParamsError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except (BagError, OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    outcome = "reached the goal" if result.success else "did not reach the goal"
    statuses = ", ".join(f"{k} {v}" for k, v in result.statuses.items())
    print(
        f"wrote {result.path}: {env.name} task (seed {args.seed}, expert solution "
        f"{task.optimal_steps} steps), {args.agent} agent, {result.steps} steps at {rate:g} Hz, "
        f"{result.frames} camera frames ({result.dropped_frames} dropped); the agent {outcome}"
        + (f"; planner statuses: {statuses}" if statuses else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
