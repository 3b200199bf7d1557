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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

import grasp_ros
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="grasp-ros-bench",
        description="Benchmark GRASP against GD, CEM, collocation and GRASP's ablations on the "
        "shipped world models: success rate and median time to success per "
        "horizon, per-iteration cost vs horizon. Writes NAME.json, NAME.md, "
        "NAME_success.png and NAME_time.png into --out.",
        epilog="; ".join(f"--profile {k} means {_as_flags(v)}" for k, v in PROFILES.items())
        + f". Planners: {', '.join(BENCH_PLANNERS)}.",
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="default settings: 'quick' (about a minute on 2 CPU cores) or 'full' "
        "(the published table) (default: quick)",
    )
    p.add_argument(
        "--env",
        type=_csv(str, sorted(ENVS)),
        dest="envs",
        help="comma-separated environments, e.g. wall,maze",
    )
    p.add_argument(
        "--planners",
        type=_csv(str, list(BENCH_PLANNERS)),
        help="comma-separated planners, e.g. grasp,gd,cem,collocation,grasp-nosync",
    )
    p.add_argument("--horizons", type=_csv(int), help="comma-separated horizons, e.g. 20,40,60,80")
    p.add_argument("--tasks", type=int, help="tasks per horizon (seeds SEED..SEED+N-1)")
    p.add_argument("--seed", type=int, default=0, help="first task seed (default: 0)")
    p.add_argument(
        "--budget-per-step",
        type=float,
        help="wall-clock planning budget in seconds per horizon step (budget = this x H)",
    )
    p.add_argument("--max-iters", type=int, help="iteration cap, the same for every planner")
    p.add_argument(
        "--checks",
        type=int,
        help="executions of the current plan in the true environment per budget, evenly "
        "spaced in planner time (each costs about two model rollouts, off the planner's clock)",
    )
    p.add_argument(
        "--closed-loop",
        action="store_true",
        help="run each task through PlannerRuntime with replanning instead of one open-loop plan",
    )
    p.add_argument(
        "--control-rate",
        type=float,
        default=10.0,
        help="closed loop: replanning rate in Hz (default: 10)",
    )
    p.add_argument(
        "--model",
        type=_model_override,
        action="append",
        default=[],
        metavar="ENV=SPEC",
        help="world model for ENV instead of the shipped one (a checkpoint path, "
        "TorchScript file or package.module:factory); repeatable",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="torch device: cpu, cuda, cuda:N or auto (cuda when present) (default: auto)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads; 1 is fastest for these small models on a shared "
        "CPU, 0 keeps torch's default (default: 1)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results"),
        help="output folder (default: bench/results)",
    )
    p.add_argument(
        "--name", help="run name, the stem of the output files (default: PROFILE-YYYYmmdd-HHMMSS)"
    )
    args = p.parse_args(argv)
    for key, value in PROFILES[args.profile].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    rules = [
        (args.tasks >= 1, "--tasks must be at least 1"),
        (all(h >= 1 for h in args.horizons), "--horizons must be positive integers"),
        (args.budget_per_step > 0, "--budget-per-step must be positive"),
        (args.max_iters >= 1, "--max-iters must be at least 1"),
        (args.checks >= 1, "--checks must be at least 1"),
        (args.control_rate > 0, "--control-rate must be positive"),
        (args.threads >= 0, "--threads must be 0 or more"),
        (
            args.device in ("auto", "cpu") or args.device.startswith("cuda"),
            f"--device {args.device!r}: use cpu, cuda, cuda:N or auto",
        ),
    ]
    for ok, message in rules:
        if not ok:
            p.error(message)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA GPU is available here; use --device cpu")
    models = dict(args.model)
    unknown = sorted(set(models) - set(args.envs))
    if unknown:
        p.error(f"--model for {unknown}, which is not among --env {','.join(args.envs)}")
    args.models = {env: models.get(env, env) for env in args.envs}
    args.horizons = sorted(set(args.horizons))
    args.name = args.name or f"{args.profile}-{time.strftime('%Y%m%d-%H%M%S')}"
    if not args.name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        p.error(f"--name {args.name!r}: use letters, digits, '-', '_' and '.' only")
    return args


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


def run(args: argparse.Namespace) -> dict[str, Any]:
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
