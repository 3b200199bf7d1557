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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from grasp_ros.cli import add_options, option, parse
from grasp_ros.control import Command, PlannerRuntime, Status
from grasp_ros.control import params as schema
from grasp_ros.control.episode import EpisodeHooks, Tick, run_episode
from grasp_ros.control.outputs import action_fields, status_fields, trajectory_fields
from grasp_ros.envs import ENVS, Task, World, make_env
from grasp_ros.io import sim_topics
from grasp_ros.io.bags import LATCHED, BagWriter, write_bag
from grasp_ros.io.messages import (
    IMAGE,
    action_command_msg,
    image_msg,
    planner_status_msg,
    stamp_to_ns,
    virtual_trajectory_msg,
)
from grasp_ros.io.sim_topics import STRING
from grasp_ros.planning import PLANNERS
from grasp_ros.tools.demo_outputs import (
    END_FRAMES,
    Animation,
    Episode,
    TickRecord,
    plot_ticks,
    summarize,
)
from grasp_ros.tools.record_sim import DEFAULT_START_TIME as START_TIME

#: The planner node's topics (the simulator's are in `grasp_ros.io.sim_topics`).
ACTION_TOPIC, PLAN_TOPIC, STATUS_TOPIC = "action", "plan", "status"

TICKS_PER_OPTIMAL_STEP = 3


@dataclass
class DemoOptions:
    """grasp-ros-demo's options."""

    env: str = option("wall", "simulated world (default: %(default)s)", choices=sorted(ENVS))
    model: str | None = option(None, "world model spec (default: the shipped model of --env)")
    planner: str | None = option(None, "planner (default: from params)", choices=sorted(PLANNERS))
    horizon: int | None = option(
        None,
        "plan length T; tasks are sampled to need about T steps (default: from params)",
        type=int,
    )
    episodes: int = option(5, "episodes to run (default: %(default)s)", type=int)
    max_ticks: int | None = option(
        None, "tick limit per episode (default: 3 x the task's optimal number of steps)", type=int
    )
    seed: int = option(0, "episode i uses task seed SEED + i (default: %(default)s)", type=int)
    device: str | None = option(None, "torch device: auto, cpu, cuda, cuda:N (default: params)")
    params: Path | None = option(
        None,
        "ROS parameters YAML (as config/planner.yaml; default: its defaults); flags "
        "override it, and --fast/--realtime set its 'budget'",
        type=Path,
    )
    out: Path = option(Path("out/demo"), "output folder (default: %(default)s)", type=Path)
    gif: bool = option(
        True,
        "skip the animation (faster; the bag and plot are still written)",
        "--no-gif",
        action="store_false",
    )
    realtime: bool = False  # --fast (the default) or --realtime: see build_parser

    def problems(self) -> list[str]:
        """What is wrong with these options."""
        counts = {"episodes": self.episodes, "horizon": self.horizon, "max_ticks": self.max_ticks}
        return [
            f"--{name.replace('_', '-')} must be at least 1, got {value}"
            for name, value in counts.items()
            if value is not None and value < 1
        ]

    def runtime_params(self) -> dict[str, Any]:
        """``--params`` (if given) over the schema defaults, then the flags over both; the
        budget always follows ``--fast``/``--realtime``."""
        values = schema.load_params_file(self.params) if self.params is not None else {}
        values["model"] = self.model or values.get("model") or self.env
        flags = {"planner": self.planner, "horizon": self.horizon, "device": self.device}
        values.update({k: v for k, v in flags.items() if v is not None})
        values["budget"] = "deadline" if self.realtime else "iterations"
        return schema.validate(values)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="grasp-ros-demo",
        description="Closed-loop planning in a simulated reference world through "
        "PlannerRuntime (the planner node's code path), without ROS. Writes an animated GIF, a "
        "timing plot, a rosbag2 (MCAP) and summary.json to --out; existing files there are "
        "replaced.",
    )
    add_options(p, DemoOptions)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="simulated clock, fixed iterations per tick: deterministic, as fast as the CPU "
        "allows (the default)",
    )
    mode.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        help="pace ticks to the wall clock at control_rate and plan within each period "
        "('deadline' budget), as on a robot",
    )
    p.set_defaults(realtime=False)
    return p


def check_env_fits(model: torch.nn.Module, env: World, env_name: str) -> None:
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


class ClosedLoop(EpisodeHooks):
    """The simulator and the runtime stepped together on one simulated clock.

    Episodes run through :func:`~grasp_ros.control.episode.run_episode` one after another on
    one clock; this class records what either side would publish to the bag, the tick
    records and the animation frames.
    """

    def __init__(
        self,
        runtime: PlannerRuntime,
        env: World,
        bag: BagWriter,
        anim: Animation | None,
        realtime: bool,
        episodes: int,
    ) -> None:
        self.runtime, self.env, self.bag, self.anim = runtime, env, bag, anim
        self.realtime, self.episodes = realtime, episodes
        self.frame_id = runtime.params["frame_id"]
        self.records: list[TickRecord] = []
        self.steps = 0
        self._ep: Episode | None = None
        self._task: Task | None = None
        self._trail: list[np.ndarray] = []
        self._image: np.ndarray | None = None
        self._bar: tqdm | None = None
        for topic, msgtype in ((sim_topics.GOAL_TOPIC, IMAGE), (sim_topics.TASK_TOPIC, STRING)):
            bag.add_topic(topic, msgtype, qos=[LATCHED])  # transient local, as the sim offers

    def run(self, ep: Episode, task: Task, bar: tqdm) -> None:
        """Run one episode to success, the tick limit or GOAL_REACHED; fills in ``ep``.

        ``bar`` counts ``ep.max_ticks`` for the episode however early it ends, so its total,
        set once for all episodes, holds.
        """
        runtime, env = self.runtime, self.env
        ep.optimal_steps, ep.non_greedy = task.optimal_steps, task.non_greedy
        self._ep, self._task, self._bar = ep, task, bar
        # The first tick of an episode plans from scratch: seconds, where later ones take ms.
        cold = runtime.params["cold_start_iterations"]
        bar.set_postfix_str(f"cold start: planning from scratch, up to {cold} iterations")
        self._trail = [task.start_state[:2]]
        misses = runtime.stats.deadline_misses
        outcome = run_episode(
            env,
            task,
            runtime,
            period=runtime.period,
            max_ticks=ep.max_ticks,
            start_time=START_TIME,
            first_step=self.steps,
            hooks=self,
            stop_after=(Status.GOAL_REACHED,),
            realtime=self.realtime,
        )
        self.steps += outcome.ticks + 1  # each tick, and the episode's last frame
        bar.update(ep.max_ticks - ep.ticks)
        ep.final_distance = env.distance(env.state, task.goal_state)
        if self.realtime:  # on the simulated clock of --fast, a tick has no deadline to miss
            ep.deadline_misses = runtime.stats.deadline_misses - misses
        ep.end = "success" if ep.success else "tick limit" if ep.end == Status.OK.name else ep.end
        if self.anim is not None:
            verdict = f"SUCCESS in {ep.ticks} ticks" if ep.success else f"FAILED ({ep.end})"
            lines = [
                f"episode {ep.episode + 1}/{self.episodes}: {verdict}",
                f"distance to goal {ep.final_distance:.1f} units "
                f"(success radius {env.success_radius})",
            ]
            self.anim.add(env.render(), task, self._trail, lines, repeat=END_FRAMES)

    # -- EpisodeHooks -------------------------------------------------------------------------
    def on_start(self, task: Task, stamp: float) -> None:
        ns = stamp_to_ns(stamp)
        self.bag.write(sim_topics.TASK_TOPIC, sim_topics.task_msg(self.env, task), ns)
        self.bag.write(
            sim_topics.GOAL_TOPIC, image_msg(task.goal_image, stamp, sim_topics.CAMERA_FRAME), ns
        )

    def on_frame(self, capture: float, receive: float, image: np.ndarray) -> None:
        self._image = image
        msg = image_msg(image, capture, sim_topics.CAMERA_FRAME)
        self.bag.write(sim_topics.CAMERA_TOPIC, msg, stamp_to_ns(receive))

    def on_state(self, stamp: float, state: np.ndarray) -> None:
        ns = stamp_to_ns(stamp)
        self.bag.write(sim_topics.POSE_TOPIC, sim_topics.pose_msg(state, stamp), ns)
        pose = self.env.object_pose(state[None])[0]
        self.bag.write(sim_topics.OBJECT_POSE_TOPIC, sim_topics.planar_pose_msg(pose, stamp), ns)

    def on_tick(self, tick: Tick) -> None:
        ep, cmd = self._ep, tick.command
        plan = trajectory_fields(cmd.plan, self.runtime.model) if cmd.plan is not None else None
        self._publish_planner(cmd, plan)
        self.records.append(
            TickRecord(
                ep.episode,
                cmd.status.name,
                cmd.solve_time,
                tick.tick_time,
                cmd.iterations,
                cmd.cost,
            )
        )
        ep.ticks, ep.end = ep.ticks + 1, cmd.status.name
        if self.anim is not None:
            self.anim.add(self._image, self._task, self._trail, self._lines(ep, cmd), plan)

    def on_step(self, tick: Tick, state: np.ndarray, image: np.ndarray) -> None:
        cmd = tick.command
        self._trail.append(state[:2])
        self._ep.success = self.env.success(state, self._task.goal_state)
        self._bar.update()
        self._bar.set_postfix(
            status=cmd.status.name,
            cost=f"{cmd.cost:.4f}",
            solve_ms=f"{1000 * cmd.solve_time:.0f}",
            refresh=False,
        )

    def _publish_planner(self, cmd: Command, plan: dict[str, Any] | None) -> None:
        t, ns, frame = cmd.stamp, stamp_to_ns(cmd.stamp), self.frame_id
        status = status_fields(cmd, self.runtime.stats)
        self.bag.write(STATUS_TOPIC, planner_status_msg(stamp_sec=t, frame_id=frame, **status), ns)
        action = action_command_msg(stamp_sec=t, frame_id=frame, **action_fields(cmd))
        self.bag.write(ACTION_TOPIC, action, ns)
        self.bag.write(sim_topics.EXECUTED_ACTION_TOPIC, action, ns)
        if plan is not None:
            msg = virtual_trajectory_msg(stamp_sec=t, frame_id=frame, **plan)
            self.bag.write(PLAN_TOPIC, msg, ns)

    def _lines(self, ep: Episode, cmd: Command) -> list[str]:
        p = self.runtime.params
        gap = self.env.distance(self.env.state, self._task.goal_state)
        return [
            f"{self.env.name} | {p['planner']} T={p['horizon']} | episode {ep.episode + 1}/"
            f"{self.episodes} | tick {ep.ticks}/{ep.max_ticks} | t={cmd.stamp - START_TIME:.1f} s",
            f"{cmd.status.name}  cost {cmd.cost:.4f}  iters {cmd.iterations}  "
            f"solve {1000 * cmd.solve_time:.0f} ms  distance {gap:.1f}",
        ]


def run(args: DemoOptions) -> dict[str, Any]:
    """The whole demo; returns the summary it wrote."""
    runtime = PlannerRuntime.from_params(args.runtime_params())
    env = make_env(args.env, image_size=getattr(runtime.model, "image_size", 64))
    check_env_fits(runtime.model, env, args.env)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    anim = Animation(env, runtime.model, runtime.period) if args.gif else None
    tasks = [
        env.sample_task(runtime.params["horizon"], seed=args.seed + i) for i in range(args.episodes)
    ]
    episodes = [
        Episode(
            i,
            args.seed + i,
            max_ticks=args.max_ticks or TICKS_PER_OPTIMAL_STEP * task.optimal_steps,
        )
        for i, task in enumerate(tasks)
    ]
    wall0 = time.perf_counter()
    with (
        write_bag(out / "rosbag", overwrite=True) as bag,
        tqdm(total=sum(e.max_ticks for e in episodes), unit="tick", mininterval=1) as bar,
    ):
        loop = ClosedLoop(runtime, env, bag, anim, args.realtime, len(episodes))
        for ep, task in zip(episodes, tasks, strict=True):
            bar.set_description(f"episode {ep.episode + 1}/{len(episodes)}")
            loop.run(ep, task, bar)
    wall = time.perf_counter() - wall0
    summary = summarize(args.env, args.realtime, runtime, episodes, loop.records, wall)
    title = _title(args, runtime, summary)
    plot_ticks(loop.records, episodes, title, runtime.period, out / "ticks.png")
    if anim is not None:
        anim.save(out / "demo.gif")
    else:
        (out / "demo.gif").unlink(missing_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def _title(args: DemoOptions, runtime: PlannerRuntime, summary: dict[str, Any]) -> str:
    p = runtime.params
    return (
        f"{args.env}, {p['planner']} T={p['horizon']}, {summary['mode']} "
        f"({p['budget']} budget), success {summary['success_rate']:.0%}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse(DemoOptions, build_parser(), argv)
    torch.set_num_threads(1)
    try:
        summary = run(args)
    except schema.ParamsError as exc:
        print(f"grasp-ros-demo: error: {exc}", file=sys.stderr)
        return 2
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
    misses = summary["deadline_misses"]
    print(
        f"success {summary['success_rate']:.0%} over {len(summary['episodes'])} episodes; "
        f"solve time p50 {solve['p50'] or math.nan:.1f} ms, p99 {solve['p99'] or math.nan:.1f}"
        " ms; "
        + (
            f"{misses} deadline misses"
            if misses is not None
            else "deadline misses: not applicable in --fast mode (a simulated clock that waits "
            "for the planner; --realtime measures them)"
        )
    )
    outputs = ["demo.gif"] * args.gif + ["ticks.png", "rosbag/", "summary.json"]
    print(f"outputs in {args.out}/: {', '.join(outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
