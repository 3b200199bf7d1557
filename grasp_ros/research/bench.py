"""grasp-ros-bench: GRASP against GD, CEM, collocation and its own ablations, side by side.

The paper's claim (Psenka et al., 2026): at long horizons GRASP succeeds more often than GD and
CEM, gets there faster, and its advantage grows with the horizon. This tool measures that on
grasp_ros's own world models in one run: for each environment, horizon and planner it plans
``--tasks`` tasks (``env.sample_task(H, seed)``, fixed seeds) under one wall-clock budget and
iteration cap, executes the plans in the true environment (:mod:`bench_protocol`), times one
iteration of each planner at each horizon, and writes JSON, Markdown and plots
(:mod:`bench_report`) into ``--out``.

Profiles set the defaults: ``quick`` (a minute on 2 CPU cores, for smoke tests) and ``full``
(the published table); any option overrides its profile.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import grasp_ros
from grasp_ros.cli import add_options, option, parse
from grasp_ros.envs import ENVS
from grasp_ros.models import env_for_model, list_shipped_models, load_world_model
from grasp_ros.models.loader import CHECKPOINT_DIR, resolve_device
from grasp_ros.research import bench_report
from grasp_ros.research.bench_protocol import (
    BENCH_PLANNERS,
    build_planner,
    encode_tasks,
    iteration_seconds,
    run_closed_loop,
    run_open_loop,
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
        "planners": list(BENCH_PLANNERS),
        "horizons": [20, 40, 60, 80],
        "tasks": 20,
        "budget_per_step": 0.03,
        "max_iters": 1000,
        "checks": 40,
    },
}


def _csv(kind: type, choices: list[str] | None = None) -> Any:
    """argparse type for a comma-separated list of ``kind`` (optionally from ``choices``)."""

    def parse(text: str) -> list[Any]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        if not items:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        try:
            values = [kind(s) for s in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a list of {kind.__name__}s"
            ) from None
        bad = [v for v in values if choices is not None and v not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {', '.join(choices)}")
        return values

    return parse


def _as_flags(profile: dict[str, Any]) -> str:
    """A profile as the command-line options it stands for (``--env wall,maze ...``)."""
    flag = {"envs": "env"}
    return " ".join(
        f"--{flag.get(k, k).replace('_', '-')} "
        + (",".join(map(str, v)) if isinstance(v, list) else str(v))
        for k, v in profile.items()
    )


def _model_override(text: str) -> tuple[str, str]:
    env, sep, spec = text.partition("=")
    if not sep or not env or not spec:
        raise argparse.ArgumentTypeError(f"expected ENV=SPEC (e.g. wall=out/wall.pt), got {text!r}")
    return env, spec


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
        type=_csv(str, sorted(ENVS)),
    )
    planners: list[str] | None = option(
        None,
        "comma-separated planners, e.g. grasp,gd,cem,collocation,grasp-nosync",
        type=_csv(str, list(BENCH_PLANNERS)),
    )
    horizons: list[int] | None = option(
        None, "comma-separated horizons, e.g. 20,40,60,80", type=_csv(int)
    )
    tasks: int | None = option(None, "tasks per horizon (seeds SEED..SEED+N-1)", type=int)
    seed: int = option(0, "first task seed (default: 0)", type=int)
    budget_per_step: float | None = option(
        None,
        "wall-clock planning budget in seconds per horizon step (budget = this x H)",
        type=float,
    )
    max_iters: int | None = option(None, "iteration cap, the same for every planner", type=int)
    checks: int | None = option(
        None,
        "executions of the current plan in the true environment per budget, evenly "
        "spaced in planner time (each costs about two model rollouts, off the planner's clock)",
        type=int,
    )
    closed_loop: bool = option(
        False,
        "run each task through PlannerRuntime with replanning instead of one open-loop plan",
        action="store_true",
    )
    control_rate: float = option(
        10.0, "closed loop: replanning rate in Hz (default: 10)", type=float
    )
    model: list[tuple[str, str]] = option(
        [],
        "world model for ENV instead of the shipped one (a checkpoint path, "
        "TorchScript file or package.module:factory); repeatable",
        type=_model_override,
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
            (self.threads >= 0, "--threads must be 0 or more"),
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


def machine_info() -> dict[str, Any]:
    """Where the numbers were measured: CPU, cores, load (other work skews timings), GPU."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    cores = os.cpu_count()
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": cores,
        "gpu": gpu,
        "load_avg_1min_at_start": load,
        "torch_threads": torch.get_num_threads(),
        "summary": f"{cpu}, {cores} cores" + (f", {gpu}" if gpu else ""),
    }


def versions() -> dict[str, Any]:
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(grasp_ros.__file__).parent,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "grasp_ros": grasp_ros.__version__,
        "git_commit": commit,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def model_info(spec: str, model: Any) -> dict[str, Any]:
    """The model's spec, class and checkpoint hash: which weights produced the numbers."""
    path = CHECKPOINT_DIR / f"{spec}.pt" if spec in list_shipped_models() else Path(spec)
    info: dict[str, Any] = {"spec": spec, "class": type(model).__name__}
    if path.is_file():
        info["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return info


def load_model(env_name: str, spec: str, device: torch.device) -> tuple[Any, Any]:
    """The world model for ``env_name`` and the reference world it was trained in."""
    model = load_world_model(spec, device=device)
    trained_in = getattr(model, "env_name", "")
    if trained_in != env_name:
        raise ValueError(
            f"model {spec!r} was not trained in {env_name!r} (its env_name is "
            f"{trained_in!r}); pass --model {env_name}=SPEC"
        )
    return model, env_for_model(model)


def task_stats(tasks: list[Any]) -> dict[str, Any]:
    steps = [t.optimal_steps for t in tasks]
    return {
        "optimal_steps_mean": float(np.mean(steps)),
        "optimal_steps_min": int(min(steps)),
        "optimal_steps_max": int(max(steps)),
        "non_greedy": float(np.mean([t.non_greedy for t in tasks])),
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
            task_info[env_name][str(horizon)] = task_stats(tasks)
            starts, goals = encode_tasks(model, tasks, device)
            cells: dict[str, Any] = {}
            for name in args.planners:
                bar.set_postfix_str(f"{env_name} H={horizon} {name} timing")
                timing[env_name][name][str(horizon)] = iteration_seconds(
                    name, model, horizon, starts[0], goals[0]
                )
                bar.update()
                outcomes = []
                for i, task in enumerate(tasks):
                    bar.set_postfix_str(f"{env_name} H={horizon} {name} task {i + 1}/{len(tasks)}")
                    if args.closed_loop:
                        res = run_closed_loop(
                            model, env, task, name, args.max_iters, args.control_rate
                        )
                    else:
                        planner = build_planner(name, model, horizon, args.max_iters, task.seed)
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
                cells[name] = {"summary": bench_report.summarize(outcomes), "tasks": outcomes}
            results[env_name][str(horizon)] = cells
    bar.close()
    return {
        "run": args.name,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "wall_time_s": time.perf_counter() - t_start,
        "machine": machine,
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
            "checks": args.checks,
            "closed_loop": args.closed_loop,
            "control_rate": args.control_rate,
            "threads": args.threads,
        },
        "models": models,
        "tasks": task_info,
        "results": results,
        "iteration_seconds": timing,
        "claims": bench_report.check_claims(results),
    }


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = parse_args(argv)
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
