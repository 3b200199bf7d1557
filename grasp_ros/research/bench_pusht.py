"""The paper's headline table, side by side: Push-T (and Wall) with patch-token models.

Psenka et al. (2026) report success and median time to success of CEM, GD, LatCo and GRASP on
Push-T with a DINO-WM world model at H = 40-80 (:data:`PAPER`). This tool runs grasp-ros-bench's
open-loop protocol (:mod:`grasp_ros.research.bench_protocol`, unchanged) per world model, adds the
conditioning diagnostic of each model (:mod:`grasp_ros.research.conditioning`, the reason
GRASP's advantage should or should not appear), and writes one Markdown and one JSON file:
ours beside the paper's in the paper's format, with 95% Wilson intervals on the success rates
(few tasks on a shared 2-core CPU), the per-iteration time against the horizon, and the
conditioning figures.

``python -m grasp_ros.research.bench_pusht --env pusht`` (the shipped ``pusht`` model);
``--env wall --model wall --model wall-patch`` compares the flat and the patch-token Wall model.
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
from torch import nn

from grasp_ros.cli import add_options, option, parse
from grasp_ros.models import list_shipped_models, resolve_device
from grasp_ros.models.loader import CHECKPOINT_DIR
from grasp_ros.research import bench
from grasp_ros.research.bench_protocol import build_planner, encode_tasks, run_open_loop
from grasp_ros.research.bench_stats import wilson_interval
from grasp_ros.research.conditioning import conditioning

#: The paper's Table (Push-T, DINO-WM): horizon -> planner -> (success %, median seconds to
#: success; ``None`` where nothing succeeded). LatCo is our ``collocation``.
PAPER: dict[int, dict[str, tuple[float, float | None]]] = {
    40: {
        "cem": (61.4, 35.3),
        "gd": (51.0, 18.0),
        "collocation": (15.0, 598.0),
        "grasp": (59.0, 8.5),
    },
    50: {
        "cem": (30.2, 96.2),
        "gd": (37.6, 76.3),
        "collocation": (4.2, 1114.7),
        "grasp": (43.4, 15.2),
    },
    60: {
        "cem": (7.2, 83.1),
        "gd": (16.4, 146.5),
        "collocation": (2.0, 231.5),
        "grasp": (26.2, 49.1),
    },
    70: {
        "cem": (7.8, 156.1),
        "gd": (12.0, 103.1),
        "collocation": (0.0, None),
        "grasp": (16.0, 79.9),
    },
    80: {
        "cem": (2.8, 132.2),
        "gd": (6.4, 161.3),
        "collocation": (0.0, None),
        "grasp": (10.4, 58.9),
    },
}
PLANNERS = ("cem", "gd", "collocation", "grasp")
LABELS = {"cem": "CEM", "gd": "GD", "collocation": "LatCo-style", "grasp": "GRASP"}


def csv_type(kind: type) -> Any:
    return lambda text: [kind(s) for s in text.split(",") if s.strip()]


@dataclass
class PaperTableOptions:
    """Options of the side-by-side table (the benchmark's own go to grasp-ros-bench)."""

    env: str = option("pusht", "world: pusht or wall")
    model: list[str] = option(
        [], "world model spec, repeatable (default: the world's shipped model)", action="append"
    )
    horizons: list[int] = option([40, 50, 60, 70, 80], "horizons", type=csv_type(int))
    planners: list[str] = option(list(PLANNERS), "planners", type=csv_type(str))
    tasks: int = option(8, "tasks per horizon", type=int)
    budget_per_step: float = option(0.1, "planning seconds per horizon step", type=float)
    max_iters: int = option(1000, "iteration cap of every planner", type=int)
    checks: int = option(20, "oracle checks per budget", type=int)
    device: str = option("cpu", "cpu, cuda, cuda:N or auto (cuda when present)")
    conditioning_horizon: int = option(50, "rollout length of the conditioning check", type=int)
    out: Path = option(Path("bench/results"), "output folder", type=Path)
    name: str = option("", "output stem (default: paper-ENV-YYYYmmdd-HHMMSS)")
    render: Path | None = option(
        None, "only re-write the Markdown of this saved JSON (pass the run's options)", type=Path
    )


def cell(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Final-plan success, the oracle's success and median time to success, of one cell."""
    n = len(tasks)
    wins = sum(bool(t["success"]) for t in tasks)
    oracle = [t.get("oracle_success", t["success"]) for t in tasks]
    times = [t.get("oracle_time_to_success", t.get("time_to_success")) for t in tasks]
    times = [s for s, ok in zip(times, oracle, strict=True) if ok and s is not None]
    low, high = wilson_interval(wins, n)
    return {
        "n": n,
        "success": wins / n if n else math.nan,
        "success_ci95": [low, high],
        "oracle_success": sum(map(bool, oracle)) / n if n else math.nan,
        "oracle_median_time_to_success": float(np.median(times)) if times else None,
    }


def run_model(spec: str, opts: PaperTableOptions) -> dict[str, Any]:
    """grasp-ros-bench's open-loop protocol (:func:`bench_protocol.run_open_loop`) for one
    model: every planner on the same tasks and budgets. The per-iteration time is each run's
    own (planner-clock seconds over iterations), not a separate timing pass, which at
    patch-token scale would cost more CPU time than the runs."""
    device = resolve_device(opts.device)
    model, env = bench.load_model(opts.env, spec, device)
    cells: dict[int, dict[str, Any]] = {}
    iteration: dict[str, dict[str, float]] = {p: {} for p in opts.planners}
    outcomes: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for h in opts.horizons:
        tasks = [env.sample_task(h, seed=s) for s in range(opts.tasks)]
        starts, goals = encode_tasks(model, tasks, device)
        budget = opts.budget_per_step * h
        cells[h], outcomes[str(h)] = {}, {}
        for p in opts.planners:
            runs = []
            for i, task in enumerate(tasks):
                planner = build_planner(p, model, h, opts.max_iters, int(task.seed or 0))
                res = run_open_loop(planner, env, task, starts[i], goals[i], budget,
                                    budget / opts.checks)  # fmt: skip
                runs.append(res.to_dict())
                print(f"{spec} H={h} {p} task {i}: success {res.success}", file=sys.stderr)
            cells[h][p] = cell(runs)
            iteration[p][str(h)] = float(
                np.median([r["solve_time"] / max(r["iterations"], 1) for r in runs])
            )
            outcomes[str(h)][p] = runs
    return {
        "class": type(model).__name__,
        "latent_shape": list(model.latent_shape),
        "cells": cells,
        "iteration_seconds": iteration,
        "conditioning": _conditioning(spec, model, env, opts.conditioning_horizon),
        "tasks": outcomes,
    }


def _conditioning(spec: str, model: nn.Module, env: Any, horizon: int) -> dict[str, float]:
    """The model card's conditioning figures when its checkpoint holds them at ``horizon``
    (a minute of CPU for a patch-token model), else measured now."""
    path = CHECKPOINT_DIR / f"{spec}.pt" if spec in list_shipped_models() else Path(spec)
    metrics = torch.load(path, weights_only=True).get("metrics", {}) if path.is_file() else {}
    if metrics.get("conditioning_horizon") == horizon:
        return {
            k: v for k, v in metrics.items() if k.startswith(("jacobian", "grad_spread", "cond"))
        }
    return conditioning(model, env, horizon=horizon)


def run(opts: PaperTableOptions, done: Any = None) -> dict[str, Any]:
    """:func:`run_model` for each model; the record to write, handed to ``done`` after each
    model so that a run cut short keeps the models it finished."""
    torch.set_num_threads(1)
    record: dict[str, Any] = {
        "options": {k: str(v) for k, v in vars(opts).items()},
        "machine": bench.machine_info(),
        "versions": bench.versions(),
        "device": str(resolve_device(opts.device)),
        "models": {},
    }
    for spec in opts.model or [opts.env]:
        record["models"][spec] = run_model(spec, opts)
        if done is not None:
            done(record)
    return record


def _ours(c: dict[str, Any]) -> str:
    low, high = c["success_ci95"]
    t = c["oracle_median_time_to_success"]
    time_text = "—" if t is None else f"{t:.1f}s"
    return (
        f"{100 * c['success']:.0f}% [{100 * low:.0f}-{100 * high:.0f}] "
        f"(oracle {100 * c['oracle_success']:.0f}% / {time_text})"
    )


def _paper(h: int, p: str) -> str:
    if h not in PAPER or p not in PAPER[h]:
        return ""
    rate, t = PAPER[h][p]
    return f"{rate:.1f}% / " + ("—" if t is None else f"{t:.1f}s")


def _median_iterations(m: dict[str, Any], h: int, p: str) -> str:
    runs = m.get("tasks", {}).get(str(h), {}).get(p, [])
    return f"{np.median([r['iterations'] for r in runs]):.0f}" if runs else "?"


def _protocol_note(record: dict[str, Any]) -> str:
    """What "success" means in the bench protocol the record was measured with."""
    for m in record["models"].values():
        for cells in m.get("tasks", {}).values():
            for runs in cells.values():
                if runs and "oracle_success" not in runs[0]:
                    return (
                        " The protocol of this run stops a planner at its first successful "
                        "check, so final-plan success and the oracle's are one figure here."
                    )
    return ""


def _device_text(record: dict[str, Any]) -> str:
    """Where the run planned: the GPU's name, or the CPU with one torch thread."""
    device = record.get("device", "cpu")
    if device.startswith("cuda"):
        return f"{record['machine'].get('gpu') or device} ({device})"
    return "CPU, 1 torch thread"


def markdown(record: dict[str, Any], opts: PaperTableOptions) -> str:
    """The side-by-side tables of :func:`run`'s record."""
    planners = [p for p in PLANNERS if p in opts.planners]
    head = "| Horizon | " + " | ".join(LABELS[p] for p in planners) + " |"
    rule = "|---" * (len(planners) + 1) + "|"
    lines = [
        f"# The paper's table side by side: `{opts.env}`",
        "",
        f"grasp-ros-bench open loop, {opts.tasks} tasks per horizon (`env.sample_task(H, seed)`, "
        f"seeds 0-{opts.tasks - 1}), budget {opts.budget_per_step:g} s per horizon step, at most "
        f"{opts.max_iters} iterations, {_device_text(record)}. Cells: final-plan success "
        "[95% Wilson interval] (the oracle's success / median oracle time to success: the first "
        f"of {opts.checks} checks of the plan so far that reaches the goal in the true world). "
        "Paper: Psenka et al. (2026), Push-T, DINO-WM, success / median time to success."
        + _protocol_note(record),
    ]
    for spec, m in record["models"].items():
        lines += ["", f"## Model `{spec}` ({m['class']}, latent {m['latent_shape']})", "", head]
        lines.append(rule)
        for h in opts.horizons:
            lines.append(
                f"| H={h} ours | " + " | ".join(_ours(m["cells"][h][p]) for p in planners) + " |"
            )
            if opts.env == "pusht" and h in PAPER:
                lines.append(
                    f"| H={h} paper | " + " | ".join(_paper(h, p) for p in planners) + " |"
                )
        lines += [
            "",
            "Seconds per iteration against the horizon: planner-clock seconds over the "
            "iterations done in the budget, initialisation included (median over tasks; in "
            "brackets the median iterations done):",
            "",
            head,
            rule,
        ]
        for h in opts.horizons:
            row = [
                f"{1e3 * m['iteration_seconds'][p][str(h)]:.1f} ms ({_median_iterations(m, h, p)})"
                for p in planners
            ]
            lines.append(f"| H={h} | " + " | ".join(row) + " |")
        c = m["conditioning"]
        lines += [
            "",
            f"Conditioning ({int(c['conditioning_rollouts'])} random rollouts of "
            f"{int(c['conditioning_horizon'])} steps): one step's spectral norm median "
            f"{c['jacobian_step_median']:.2f} (largest {c['jacobian_step_max']:.2f}); whole "
            f"rollout median {c['jacobian_rollout_median']:.2f} (largest "
            f"{c['jacobian_rollout_max']:.2f}); GD gradient size spread over steps median "
            f"{c['grad_spread_median']:.1f}x (largest {c['grad_spread_max']:.1f}x).",
        ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> PaperTableOptions:
    parser = argparse.ArgumentParser(
        prog="python -m grasp_ros.research.bench_pusht",
        description="The paper's Push-T table beside ours (grasp-ros-bench per model).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(parser, PaperTableOptions)
    return parse(PaperTableOptions, parser, argv)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.render is not None:
        record = json.loads(opts.render.read_text())
        for m in record["models"].values():
            m["cells"] = {int(h): c for h, c in m["cells"].items()}
        opts.render.with_suffix(".md").write_text(markdown(record, opts), encoding="utf-8")
        return 0
    name = opts.name or f"paper-{opts.env}-{time.strftime('%Y%m%d-%H%M%S')}"
    opts.out.mkdir(parents=True, exist_ok=True)

    def write(record: dict[str, Any]) -> None:
        (opts.out / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
        (opts.out / f"{name}.md").write_text(markdown(record, opts), encoding="utf-8")
        print(f"wrote {opts.out / name}.md and .json ({len(record['models'])} models)")

    run(opts, done=write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
