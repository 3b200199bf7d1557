"""grasp-ros-bench: GRASP against GD, CEM, collocation and its own ablations, side by side.

The paper's claim (Psenka et al., 2026): at long horizons GRASP succeeds more often than GD and
CEM, gets there faster, and its advantage grows with the horizon. This tool measures that on
grasp_ros's own world models in one run: for each environment, horizon and planner it plans
``--tasks`` tasks (``env.sample_task(H, seed)``, fixed seeds) under one wall-clock budget and
iteration cap, executes each final plan in the true environment (:mod:`bench_protocol`, with
the oracle's checks beside it), times one iteration of each planner at each horizon, and writes
JSON, Markdown and plots (:mod:`bench_report`) into ``--out``. ``--closed-loop`` runs the
closed-loop benchmark (:mod:`closed_loop`) with the same worlds, tasks and planners instead.

Profiles set the defaults: ``quick`` (a minute on 2 CPU cores, for smoke tests) and ``full``
(the published table: each GRASP against GD and CEM from equal starts); any option overrides
its profile.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from grasp_ros.cli import add_options, option, parse
from grasp_ros.envs import ENVS
from grasp_ros.models.loader import resolve_device
from grasp_ros.planning import PLANNERS
from grasp_ros.research import bench_report, bench_stats, closed_loop
from grasp_ros.research.bench_protocol import (
    BENCH_PLANNERS,
    CLOCKS,
    START_GROUPS,
    build_planner,
    encode_tasks,
    iteration_seconds,
    run_open_loop,
)
from grasp_ros.research.bench_setup import (
    csv_type,
    load_model,
    machine_info,
    model_info,
    model_override,
    versions,
)

PROFILES: dict[str, dict[str, Any]] = {
    "quick": {
        "envs": ["wall", "maze"],
        "planners": ["grasp", "gd", "cem", "collocation"],
        "horizons": [20, 30],
        "tasks": 3,
        "budget_per_step": 0.02,
        "max_iters": 1000,
        "checks": 40,
    },
    "full": {
        "envs": ["wall", "maze"],
        # Each GRASP against GD and CEM from the same start: sampled, then the straight line.
        "planners": [p for _, g, rivals in START_GROUPS[:2] for p in (g, *rivals)],
        "horizons": [20, 40, 60, 80],
        "tasks": 50,
        "budget_per_step": 0.03,
        "max_iters": 1000,
        "checks": 40,
    },
}


def _as_flags(profile: dict[str, Any]) -> str:
    """A profile as the command-line options it stands for (``--env wall,maze ...``)."""
    flag = {"envs": "env"}
    return " ".join(
        f"--{flag.get(k, k).replace('_', '-')} "
        + (",".join(map(str, v)) if isinstance(v, list) else str(v))
        for k, v in profile.items()
    )


@dataclass
class BenchOptions:
    """grasp-ros-bench's options; those left unset come from the ``--profile``."""

    profile: str = option(
        "quick",
        "default settings: 'quick' (about a minute on 2 CPU cores) or 'full' "
        "(the published table) (default: quick)",
        choices=sorted(PROFILES),
    )
    envs: list[str] | None = option(
        None,
        "comma-separated environments, e.g. wall,maze",
        "--env",
        type=csv_type(str, sorted(ENVS)),
    )
    planners: list[str] | None = option(
        None,
        "comma-separated planners, e.g. grasp,gd,cem,collocation,grasp-nosync (closed loop: "
        "also grasp-latent, grasp-paper)",
        type=csv_type(
            str, [*BENCH_PLANNERS, *(v for v in closed_loop.VARIANTS if v not in PLANNERS)]
        ),
    )
    horizons: list[int] | None = option(
        None, "comma-separated horizons, e.g. 20,40,60,80", type=csv_type(int)
    )
    tasks: int | None = option(None, "tasks per horizon (seeds SEED..SEED+N-1)", type=int)
    seed: int = option(0, "first task seed (default: 0)", type=int)
    budget_per_step: float | None = option(
        None,
        "wall-clock planning budget in seconds per horizon step (budget = this x H)",
        type=float,
    )
    max_iters: int | None = option(None, "iteration cap, the same for every planner", type=int)
    clock: str = option(
        "wall",
        "what the budget and times are measured on: 'wall' (the paper's protocol) or 'cpu' "
        "(this process's CPU time: the same budgets under any load on a shared machine; "
        "needs --threads 1) (default: wall)",
        choices=sorted(CLOCKS),
    )
    checks: int | None = option(
        None,
        "executions of the current plan in the true environment per budget, evenly "
        "spaced in planner time (each costs about two model rollouts, off the planner's clock)",
        type=int,
    )
    closed_loop: bool = option(
        False,
        "run the closed-loop benchmark instead (research/closed_loop: PlannerRuntime replanning "
        "at --control-rate with default parameters, --planners as its variants); the budget, "
        "iteration cap and checks are the open loop's only",
        action="store_true",
    )
    control_rate: float = option(
        10.0, "closed loop: replanning rate in Hz (default: 10)", type=float
    )
    model: list[tuple[str, str]] = option(
        [],
        "world model for ENV instead of the shipped one (a checkpoint path, "
        "TorchScript file or package.module:factory); repeatable",
        type=model_override,
        action="append",
        metavar="ENV=SPEC",
    )
    device: str = option(
        "auto", "torch device: cpu, cuda, cuda:N or auto (cuda when present) (default: auto)"
    )
    threads: int = option(
        1,
        "torch CPU threads; 1 is fastest for these small models on a shared "
        "CPU, 0 keeps torch's default (default: 1)",
        type=int,
    )
    out: Path = option(Path("bench/results"), "output folder (default: bench/results)", type=Path)
    name: str | None = option(
        None, "run name, the stem of the output files (default: PROFILE-YYYYmmdd-HHMMSS)"
    )
    #: The world model spec of each environment (``--model`` where given, else the shipped one).
    models: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for key, value in PROFILES[self.profile].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        given = dict(self.model)
        self.models = {env: given.get(env, env) for env in self.envs}
        self.horizons = sorted(set(self.horizons))
        self.name = self.name or f"{self.profile}-{time.strftime('%Y%m%d-%H%M%S')}"

    def problems(self) -> list[str]:
        """What is wrong with these options, the first thing first."""
        rules = [
            (self.tasks >= 1, "--tasks must be at least 1"),
            (all(h >= 1 for h in self.horizons), "--horizons must be positive integers"),
            (self.budget_per_step > 0, "--budget-per-step must be positive"),
            (self.max_iters >= 1, "--max-iters must be at least 1"),
            (self.checks >= 1, "--checks must be at least 1"),
            (self.control_rate > 0, "--control-rate must be positive"),
            (
                self.closed_loop or set(self.planners) <= set(BENCH_PLANNERS),
                f"{sorted(set(self.planners) - set(BENCH_PLANNERS))} run in closed loop only "
                "(--closed-loop)",
            ),
            (self.threads >= 0, "--threads must be 0 or more"),
            (
                self.clock == "wall" or (self.threads == 1 and not self.device.startswith("cuda")),
                "--clock cpu needs --threads 1 and a CPU device (CPU time adds up threads and "
                "does not see a GPU)",
            ),
            (
                self.device in ("auto", "cpu") or self.device.startswith("cuda"),
                f"--device {self.device!r}: use cpu, cuda, cuda:N or auto",
            ),
            (
                not self.device.startswith("cuda") or torch.cuda.is_available(),
                f"--device {self.device}: no CUDA GPU is available here; use --device cpu",
            ),
            (
                not set(dict(self.model)) - set(self.envs),
                f"--model for {sorted(set(dict(self.model)) - set(self.envs))}, which is not "
                f"among --env {','.join(self.envs)}",
            ),
            (
                self.name.replace("-", "").replace("_", "").replace(".", "").isalnum(),
                f"--name {self.name!r}: use letters, digits, '-', '_' and '.' only",
            ),
        ]
        return [message for ok, message in rules if not ok]


def parse_args(argv: list[str] | None) -> BenchOptions:
    parser = argparse.ArgumentParser(
        prog="grasp-ros-bench",
        description="Benchmark GRASP against GD, CEM, collocation and GRASP's ablations on the "
        "shipped world models: success rate and median time to success per "
        "horizon, per-iteration cost vs horizon. Writes NAME.json, NAME.md, "
        "NAME_success.png and NAME_time.png into --out.",
        epilog="; ".join(f"--profile {k} means {_as_flags(v)}" for k, v in PROFILES.items())
        + f". Planners: {', '.join(BENCH_PLANNERS)}.",
    )
    add_options(parser, BenchOptions)
    return parse(BenchOptions, parser, argv)


def task_stats(tasks: list[Any], fraction: float) -> dict[str, Any]:
    """Task lengths at one horizon; ``capped`` when some task needs fewer than ``fraction`` x H
    steps: the world has too few tasks that long, so the horizon only adds spare steps."""
    steps = [t.optimal_steps for t in tasks]
    horizon = tasks[0].horizon
    return {
        "optimal_steps_mean": float(np.mean(steps)),
        "optimal_steps_min": int(min(steps)),
        "optimal_steps_max": int(max(steps)),
        "non_greedy": float(np.mean([t.non_greedy for t in tasks])),
        "capped": bool(min(steps) < math.ceil(fraction * horizon)),
    }


def run(args: BenchOptions) -> dict[str, Any]:
    """The whole benchmark; returns the run dict that :func:`bench_report.write_results` saves."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    machine, code = machine_info(), versions()  # as the run starts: load, commit
    seeds = list(range(args.seed, args.seed + args.tasks))
    budgets = {str(h): round(args.budget_per_step * h, 6) for h in args.horizons}
    n_planners = len(args.planners)
    total = len(args.envs) * len(args.horizons) * n_planners * (args.tasks + 1)
    results: dict[str, Any] = {}
    task_info: dict[str, Any] = {}
    timing: dict[str, Any] = {}
    models: dict[str, Any] = {}
    worlds = {name: load_model(name, args.models[name], device) for name in args.envs}
    bar = tqdm(total=total, desc="bench", unit="run", mininterval=1)
    for env_name, (model, env) in worlds.items():
        models[env_name] = model_info(args.models[env_name], model)
        results[env_name], task_info[env_name] = {}, {}
        timing[env_name] = {p: {} for p in args.planners}
        for horizon in args.horizons:
            tasks = [env.sample_task(horizon, seed=s) for s in seeds]
            fraction = getattr(env, "min_task_fraction", 0.0)  # worlds without one: not capped
            task_info[env_name][str(horizon)] = task_stats(tasks, fraction)
            starts, goals = encode_tasks(model, tasks, device)
            cells: dict[str, Any] = {}
            for name in args.planners:
                bar.set_postfix_str(f"{env_name} H={horizon} {name} timing")
                timing[env_name][name][str(horizon)] = iteration_seconds(
                    name, model, horizon, starts[0], goals[0], clock=args.clock
                )
                bar.update()
                outcomes = []
                for i, task in enumerate(tasks):
                    bar.set_postfix_str(f"{env_name} H={horizon} {name} task {i + 1}/{len(tasks)}")
                    planner = build_planner(
                        name, model, horizon, args.max_iters, task.seed, args.clock
                    )
                    res = run_open_loop(
                        planner,
                        env,
                        task,
                        starts[i],
                        goals[i],
                        budgets[str(horizon)],
                        budgets[str(horizon)] / args.checks,
                    )
                    outcomes.append(res.to_dict())
                    bar.update()
                cells[name] = {"summary": bench_stats.summarize(outcomes), "tasks": outcomes}
            results[env_name][str(horizon)] = cells
    bar.close()
    return {
        "run": args.name,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "wall_time_s": time.perf_counter() - t_start,
        "machine": machine,
        "load_avg_1min_at_end": os.getloadavg()[0],
        "device": str(device),
        "versions": code,
        "config": {
            "profile": args.profile,
            "envs": args.envs,
            "planners": args.planners,
            "horizons": args.horizons,
            "tasks": args.tasks,
            "seeds": seeds,
            "budget_per_step": args.budget_per_step,
            "budgets": budgets,
            "max_iters": args.max_iters,
            "clock": args.clock,
            "checks": args.checks,
            "threads": args.threads,
        },
        "models": models,
        "tasks": task_info,
        "results": results,
        "iteration_seconds": timing,
        "claims": bench_stats.check_claims(
            results,
            {e: [h for h, t in info.items() if t["capped"]] for e, info in task_info.items()},
        ),
    }


def closed_loop_argv(args: BenchOptions) -> list[str]:
    """``--closed-loop``'s options as :mod:`closed_loop`'s command line (its one protocol)."""
    argv = ["--env", ",".join(args.envs), "--horizons", ",".join(map(str, args.horizons))]
    argv += ["--variants", ",".join(args.planners), "--tasks", str(args.tasks)]
    argv += ["--seed", str(args.seed), "--control-rate", str(args.control_rate)]
    argv += ["--threads", str(args.threads), "--device", str(resolve_device(args.device))]
    argv += ["--out", str(args.out), "--name", args.name]
    return argv + [a for env, spec in args.model for a in ("--model", f"{env}={spec}")]


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = parse_args(argv)
    if args.closed_loop:
        return closed_loop.main(closed_loop_argv(args))
    try:
        record = run(args)
        paths = bench_report.write_results(record, args.out)
    except KeyboardInterrupt:
        print("\ngrasp-ros-bench: interrupted; nothing written", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"grasp-ros-bench: error: {exc}", file=sys.stderr)
        return 1
    print("\n".join(["wrote", *(f"  {p}" for p in paths)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
