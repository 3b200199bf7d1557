"""grasp-ros-demo: the closed loop in a reference world, through the node's own code path.

Each episode samples a task (start and goal) in the simulated world, gives the goal image to a
:class:`~grasp_ros.control.PlannerRuntime` and then, at the control rate, feeds it the camera
image, calls ``tick`` and applies the action to the simulator, exactly as the ROS node does
with real topics. The simulator's clock advances one control period per tick, and every image
is stamped with it, so the runtime sees the data ages a robot would.

``--fast`` (the default) runs the planner for a fixed number of iterations per tick (the
runtime's ``'iterations'`` budget): the run is deterministic and takes as long as the CPU needs.
``--realtime`` paces ticks to the wall clock and lets the runtime fit its iterations into the
control period (the ``'deadline'`` budget), as on a robot; how many iterations fit then depends
on the machine.

Outputs, in ``--out``: ``demo.gif`` (camera frames with the plan drawn on them, the goal, the
decoded virtual states), ``ticks.png`` (solve time, iterations and cost per tick), ``rosbag/``
(rosbag2, MCAP: what the simulator and the planner node would publish) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import grasp_ros
from grasp_ros.control import Command, PlannerRuntime, Status
from grasp_ros.control import params as P
from grasp_ros.control.outputs import action_fields, status_fields, trajectory_fields
from grasp_ros.envs import ENVS, PointEnv, Task, make_env
from grasp_ros.io import messages as M
from grasp_ros.io.bags import BagWriter, write_bag
from grasp_ros.models import has_decoder
from grasp_ros.planning import PLANNERS
from grasp_ros.tools import overlay

#: Planner settings the demo uses unless ``--params`` or a flag says otherwise (see the report
#: in ``summary.json``): tuned on the shipped Wall model.
DEMO_PARAMS: dict[str, Any] = {}

#: Topic names of the team contract, fully qualified as ``ros2 bag record`` stores them.
CAMERA, GOAL_IMAGE, POSE, TASK, EXECUTED = (
    "/camera/image_raw",
    "/goal_image",
    "/sim/pose",
    "/sim/task",
    "/sim/executed_action",
)
ACTION, PLAN, STATUS = "/action", "/plan", "/status"
CAMERA_FRAME, WORLD_FRAME = "camera", "map"

PANEL = 256
GAP = 4
WIDTH = 2 * PANEL + GAP
DECODED_STATES = 8
END_FRAMES = 10


@dataclass
class Tick:
    """One control tick as the plot and the summary need it."""

    episode: int
    status: str
    solve_time: float
    tick_time: float
    iterations: int
    cost: float


@dataclass
class Episode:
    """One episode's task and outcome."""

    episode: int
    seed: int
    success: bool = False
    ticks: int = 0
    max_ticks: int = 0
    optimal_steps: int = 0
    non_greedy: bool = False
    final_distance: float = math.nan
    deadline_misses: int = 0
    end: str = ""
    trail: list[list[float]] = field(default_factory=list, repr=False)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grasp-ros-demo",
        description="Closed-loop planning in a simulated reference world through "
        "PlannerRuntime (the planner node's code path), without ROS. Writes an animated GIF, a "
        "timing plot, a rosbag2 (MCAP) and summary.json to --out; existing files there are "
        "replaced.",
    )
    p.add_argument(
        "--env", choices=sorted(ENVS), default="wall", help="simulated world (default: %(default)s)"
    )
    p.add_argument("--model", help="world model spec (default: the shipped model of --env)")
    p.add_argument("--planner", choices=sorted(PLANNERS), help="planner (default: from params)")
    p.add_argument(
        "--horizon",
        type=int,
        help="plan length T; tasks are sampled to need 0.75 T to T steps (default: from params)",
    )
    p.add_argument("--episodes", type=int, default=5, help="episodes to run (default: %(default)s)")
    p.add_argument(
        "--max-ticks",
        type=int,
        help="tick limit per episode (default: 3 x the task's optimal number of steps)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="episode i uses task seed SEED + i (default: %(default)s)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="simulated clock, "
        "fixed iterations per tick: deterministic, as fast as the CPU allows "
        "(the default)",
    )
    mode.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        help="pace ticks "
        "to the wall clock at control_rate and plan within each period "
        "('deadline' budget), as on a robot",
    )
    p.set_defaults(realtime=False)
    p.add_argument("--device", help="torch device: auto, cpu, cuda, cuda:N (default: params)")
    p.add_argument(
        "--params",
        type=Path,
        help="ROS parameters YAML (as config/planner.yaml); "
        "its values replace the demo's tuned defaults, and flags replace both",
    )
    p.add_argument(
        "--out", type=Path, default=Path("out/demo"), help="output folder (default: %(default)s)"
    )
    p.add_argument(
        "--no-gif",
        dest="gif",
        action="store_false",
        help="skip the animation (faster; the bag and plot are still written)",
    )
    return p


def runtime_params(args: argparse.Namespace) -> dict[str, Any]:
    """Schema defaults, then the demo's tuned values, then ``--params``, then the flags."""
    values = dict(DEMO_PARAMS)
    if args.params is not None:
        values.update(P.load_params_file(args.params))
    values["model"] = args.model or values.get("model") if args.params else args.model or args.env
    flags = {"planner": args.planner, "horizon": args.horizon, "device": args.device}
    values.update({k: v for k, v in flags.items() if v is not None})
    values["budget"] = "deadline" if args.realtime else "iterations"
    return P.validate(values)


def check_env_fits(model: torch.nn.Module, env: PointEnv, env_name: str) -> None:
    """Refuse a model trained in another world, or one whose action box is not the world's."""
    trained = getattr(model, "env_name", "")
    if trained and trained != env_name:
        raise ValueError(
            f"the model was trained in '{trained}', not '{env_name}'; pass "
            f"--env {trained} or a model for {env_name}"
        )
    if model.action_dim != env.action_dim:
        raise ValueError(
            f"the model's actions have {model.action_dim} values, the "
            f"{env_name} world's {env.action_dim}"
        )
    for name, bound in (("action_low", env.action_low), ("action_high", env.action_high)):
        mine = getattr(model, name, None)
        if mine is not None and not np.allclose(mine.cpu().numpy(), bound):
            raise ValueError(
                f"the model's {name} {mine.tolist()} differs from the world's "
                f"{bound.tolist()}; the simulator would rescale its actions"
            )


class BagLog:
    """What the simulator and the planner node would publish, written to one bag."""

    def __init__(self, bag: BagWriter, frame_id: str) -> None:
        self.bag, self.frame_id = bag, frame_id

    def episode(self, t: float, env_name: str, task: Task) -> None:
        ns = M.stamp_to_ns(t)
        info = {
            "env": env_name,
            "seed": task.seed,
            "horizon": task.horizon,
            "start_state": task.start_state.tolist(),
            "goal_state": task.goal_state.tolist(),
            "optimal_steps": task.optimal_steps,
        }
        self.bag.write(GOAL_IMAGE, M.image_msg(task.goal_image, t, CAMERA_FRAME), ns)
        self.bag.write(TASK, _msg("std_msgs/msg/String", data=json.dumps(info)), ns)

    def camera(self, t: float, image: np.ndarray, state: np.ndarray) -> None:
        ns = M.stamp_to_ns(t)
        self.bag.write(CAMERA, M.image_msg(image, t, CAMERA_FRAME), ns)
        self.bag.write(POSE, _pose(t, state), ns)

    def tick(self, cmd: Command, runtime: PlannerRuntime, plan_fields: dict | None) -> None:
        t, ns = cmd.stamp, M.stamp_to_ns(cmd.stamp)
        self.bag.write(
            STATUS,
            M.planner_status_msg(
                stamp_sec=t, frame_id=self.frame_id, **status_fields(cmd, runtime.stats)
            ),
            ns,
        )
        action = M.action_command_msg(stamp_sec=t, frame_id=self.frame_id, **action_fields(cmd))
        self.bag.write(ACTION, action, ns)
        if plan_fields is not None:
            self.bag.write(
                PLAN,
                M.virtual_trajectory_msg(stamp_sec=t, frame_id=self.frame_id, **plan_fields),
                ns,
            )
        self.bag.write(EXECUTED, action, ns)


def _msg(msgtype: str, **fields: Any) -> Any:
    return M.typestore().types[msgtype](**fields)


def _pose(t: float, state: np.ndarray) -> Any:
    point = _msg("geometry_msgs/msg/Point", x=float(state[0]), y=float(state[1]), z=0.0)
    quat = _msg("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0)
    pose = _msg("geometry_msgs/msg/Pose", position=point, orientation=quat)
    return _msg("geometry_msgs/msg/PoseStamped", header=M.make_header(t, WORLD_FRAME), pose=pose)


class Animation:
    """Frames of the demo GIF, kept palette-quantised (one byte a pixel) until written."""

    def __init__(self, env: PointEnv, runtime: PlannerRuntime) -> None:
        self.env, self.runtime = env, runtime
        self.frames: list[Any] = []
        self.decoder = has_decoder(runtime.model)

    def add(
        self,
        image: np.ndarray,
        task: Task,
        ep: Episode,
        lines: list[str],
        plan_fields: dict | None = None,
        repeat: int = 1,
    ) -> None:
        from PIL import Image

        frame = self._frame(image, task, ep, lines, plan_fields)
        quantised = Image.fromarray(frame).quantize(colors=255, dither=Image.Dither.NONE)
        self.frames.extend([quantised] * repeat)

    def _frame(
        self, image: np.ndarray, task: Task, ep: Episode, lines: list[str], fields: dict | None
    ) -> np.ndarray:
        size, world = PANEL, self.env.world_size
        goal_px = overlay.to_pixels(task.goal_state[None], world, size)[0]
        ring = self.env.success_radius * size / world
        camera = overlay.upscale(image, size)
        overlay.draw_path(
            camera, overlay.to_pixels(np.array(ep.trail), world, size), overlay.TRAIL_COLOR, 1
        )
        overlay.draw_ring(camera, goal_px, ring, overlay.GOAL_COLOR)
        if fields is not None and fields["positions"] is not None:
            states = overlay.to_pixels(fields["positions"], world, size)
            overlay.draw_path(
                camera,
                overlay.to_pixels(fields["rollout_positions"], world, size),
                overlay.ROLLOUT_COLOR,
                2,
            )
            overlay.draw_dots(camera, states, overlay.time_colors(len(states)))
        goal = overlay.draw_ring(
            overlay.upscale(task.goal_image, size), goal_px, ring, overlay.GOAL_COLOR
        )
        rows = [[overlay.title(camera, "camera + plan"), overlay.title(goal, "goal image")]]
        if self.decoder:
            rows.append([self._decoded(fields)])
        rows.append([overlay.text_bar(WIDTH, lines)])
        return overlay.stack(rows, GAP)

    def _decoded(self, fields: dict | None) -> np.ndarray:
        """A strip of decoded virtual states s_0 .. s_T (blank before the first plan)."""
        width = WIDTH
        if fields is None:
            blank = np.full((width // DECODED_STATES, width // DECODED_STATES, 3), 255, np.uint8)
            return overlay.strip([blank] * DECODED_STATES, width)
        states = fields["virtual_states"]
        idx = np.linspace(0, len(states) - 1, DECODED_STATES).round().astype(int)
        z = torch.from_numpy(states[idx]).to(self.runtime.device)
        with torch.no_grad():
            images = self.runtime.model.decode(z).clamp(0, 1).mul(255).round()
        images = images.byte().permute(0, 2, 3, 1).cpu().numpy()
        colors = overlay.time_colors(len(states))[idx]
        return overlay.title(
            overlay.strip(list(images), width, colors), "virtual states, decoded (s_0 ... goal)"
        )

    def save(self, path: Path) -> None:
        if not self.frames:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        self.frames[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=self.frames[1:],
            duration=round(1000 * self.runtime.period),
            loop=0,
        )
        tmp.replace(path)


def run_episode(
    runtime: PlannerRuntime,
    env: PointEnv,
    env_name: str,
    ep: Episode,
    clock: list[float],
    log: BagLog,
    anim: Animation | None,
    realtime: bool,
    bar: tqdm,
    records: list[Tick],
    total: int,
) -> None:
    """One episode; ``clock`` holds the simulated time, shared across episodes."""
    task = env.sample_task(runtime.params["horizon"], seed=ep.seed)
    ep.optimal_steps, ep.non_greedy = task.optimal_steps, task.non_greedy
    ep.max_ticks = ep.max_ticks or 3 * task.optimal_steps
    bar.total += ep.max_ticks
    image = env.reset(state=task.start_state)
    runtime.on_goal(task.goal_image, clock[0])
    log.episode(clock[0], env_name, task)
    misses0, period = runtime.stats.deadline_misses, runtime.period
    wall0 = time.monotonic()
    while True:
        t, state = clock[0], env.state
        ep.trail.append(state[:2].tolist())
        ep.success = env.success(state, task.goal_state)
        if ep.success or ep.ticks >= ep.max_ticks or ep.end == Status.GOAL_REACHED.name:
            break
        log.camera(t, image, state)
        runtime.on_image(image, t)
        t0 = time.perf_counter()
        cmd = runtime.tick(t)
        tick_time = time.perf_counter() - t0
        fields = trajectory_fields(cmd.plan, runtime.model) if cmd.plan is not None else None
        log.tick(cmd, runtime, fields)
        records.append(
            Tick(ep.episode, cmd.status.name, cmd.solve_time, tick_time, cmd.iterations, cmd.cost)
        )
        ep.ticks, ep.end = ep.ticks + 1, cmd.status.name
        if anim is not None:
            anim.add(
                image, task, ep, _lines(runtime, env_name, ep, total, cmd, state, task), fields
            )
        image = env.step(cmd.action)
        clock[0] = t + period
        bar.update()
        bar.set_postfix(
            status=cmd.status.name,
            cost=f"{cmd.cost:.4f}",
            solve_ms=f"{1000 * cmd.solve_time:.0f}",
            refresh=False,
        )
        if realtime:
            time.sleep(max(0.0, wall0 + ep.ticks * period - time.monotonic()))
    bar.total -= ep.max_ticks - ep.ticks
    bar.refresh()
    ep.final_distance = float(np.linalg.norm(env.state[:2] - task.goal_state[:2]))
    ep.deadline_misses = runtime.stats.deadline_misses - misses0
    ep.end = "success" if ep.success else ep.end if ep.end == "GOAL_REACHED" else "tick limit"
    if anim is not None:
        verdict = f"SUCCESS in {ep.ticks} ticks" if ep.success else f"FAILED ({ep.end})"
        lines = [
            f"episode {ep.episode + 1}/{total}: {verdict}",
            f"distance to goal {ep.final_distance:.1f} units (success radius {env.success_radius})",
        ]
        anim.add(image, task, ep, lines, repeat=END_FRAMES)


def _lines(
    runtime: PlannerRuntime,
    env_name: str,
    ep: Episode,
    total: int,
    cmd: Command,
    state: np.ndarray,
    task: Task,
) -> list[str]:
    p = runtime.params
    gap = float(np.linalg.norm(state[:2] - task.goal_state[:2]))
    return [
        f"{env_name} | {p['planner']} T={p['horizon']} | episode {ep.episode + 1}/{total} | "
        f"tick {ep.ticks}/{ep.max_ticks} | t={cmd.stamp:.1f} s",
        f"{cmd.status.name}  cost {cmd.cost:.4f}  iters {cmd.iterations}  "
        f"solve {1000 * cmd.solve_time:.0f} ms  distance {gap:.1f}",
        "dots: virtual states (dark=early)  blue: model rollout  grey: path  green: goal",
    ]


def plot_ticks(records: list[Tick], episodes: list[Episode], period: float, path: Path) -> None:
    """Solve time, iterations and cost per tick, episodes shaded apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(records))
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    series = [
        ("solve time (ms)", [1000 * r.solve_time for r in records]),
        ("iterations", [r.iterations for r in records]),
        ("cost (latent MSE)", [r.cost if r.status == "OK" else math.nan for r in records]),
    ]
    for ax, (label, values) in zip(axes, series, strict=True):
        ax.plot(x, values, ".-", ms=3, lw=0.8)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].axhline(1000 * period, color="r", ls="--", lw=1, label="control period")
    axes[0].legend(loc="upper right")
    if any(r.cost > 0 for r in records if r.status == "OK"):
        axes[2].set_yscale("log")
    start = 0
    for ep in episodes:
        end = start + ep.ticks
        if ep.episode % 2:
            for ax in axes:
                ax.axvspan(start - 0.5, end - 0.5, color="0.92", zorder=0)
        axes[0].annotate(
            f"ep {ep.episode + 1} {'ok' if ep.success else 'fail'}",
            (start, 1.02),
            xycoords=("data", "axes fraction"),
            fontsize=8,
        )
        start = end
    axes[-1].set_xlabel("control tick")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def summarize(
    args: argparse.Namespace,
    runtime: PlannerRuntime,
    episodes: list[Episode],
    records: list[Tick],
    wall: float,
) -> dict[str, Any]:
    """summary.json's contents: per-episode outcomes, timing percentiles, params, versions."""
    ok = [r for r in records if r.status == "OK"]

    def ms(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"p50": None, "p90": None, "p99": None, "max": None}
        q = np.percentile(1000 * np.asarray(values), [50, 90, 99])
        return {"p50": q[0], "p90": q[1], "p99": q[2], "max": 1000 * max(values)}

    return _plain(
        {
            "env": args.env,
            "mode": "realtime" if args.realtime else "fast",
            "success_rate": sum(e.success for e in episodes) / max(len(episodes), 1),
            "episodes": [{k: v for k, v in asdict(e).items() if k != "trail"} for e in episodes],
            "ticks": len(records),
            "deadline_misses": sum(e.deadline_misses for e in episodes),
            "solve_time_ms": ms([r.solve_time for r in ok]),
            "tick_time_ms": ms([r.tick_time for r in records]),
            "iterations_mean": float(np.mean([r.iterations for r in ok])) if ok else None,
            "wall_time_s": wall,
            "params": runtime.params,
            "device": str(runtime.device),
            "versions": {
                "grasp_ros": grasp_ros.__version__,
                "python": platform.python_version(),
                **{name: metadata.version(name) for name in ("torch", "numpy", "rosbags")},
            },
        }
    )


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python numbers, NaN to None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole demo; returns the summary it wrote."""
    runtime = PlannerRuntime.from_params(runtime_params(args))
    env = make_env(args.env, image_size=getattr(runtime.model, "image_size", 64))
    check_env_fits(runtime.model, env, args.env)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    anim = Animation(env, runtime) if args.gif else None
    episodes = [
        Episode(i, args.seed + i, max_ticks=args.max_ticks or 0) for i in range(args.episodes)
    ]
    records: list[Tick] = []
    clock = [0.0]
    wall0 = time.perf_counter()
    with (
        write_bag(out / "rosbag", overwrite=True) as bag,
        tqdm(total=0, unit="tick", desc="demo", mininterval=1) as bar,
    ):
        log = BagLog(bag, runtime.params["frame_id"])
        for ep in episodes:
            bar.set_description(f"episode {ep.episode + 1}/{len(episodes)}")
            run_episode(
                runtime,
                env,
                args.env,
                ep,
                clock,
                log,
                anim,
                args.realtime,
                bar,
                records,
                len(episodes),
            )
    summary = summarize(args, runtime, episodes, records, time.perf_counter() - wall0)
    plot_ticks(records, episodes, runtime.period, out / "ticks.png")
    if anim is not None:
        anim.save(out / "demo.gif")
    else:
        (out / "demo.gif").unlink(missing_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("episodes", "horizon", "max_ticks"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    torch.set_num_threads(1)
    try:
        summary = run(args)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"grasp-ros-demo: error: {exc}", file=sys.stderr)
        return 1
    for ep in summary["episodes"]:
        dist = ep["final_distance"]
        print(
            f"episode {ep['episode'] + 1}: {'success' if ep['success'] else 'failure'} "
            f"after {ep['ticks']} ticks ({ep['end']}; optimal {ep['optimal_steps']} steps), "
            f"final distance {dist:.1f}"
        )
    solve = summary["solve_time_ms"]
    print(
        f"success {summary['success_rate']:.0%} over {len(summary['episodes'])} episodes; "
        f"solve time p50 {solve['p50'] or math.nan:.1f} ms, p99 {solve['p99'] or math.nan:.1f}"
        f" ms; {summary['deadline_misses']} deadline misses"
    )
    print(f"outputs in {args.out}/: demo.gif, ticks.png, rosbag/, summary.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
