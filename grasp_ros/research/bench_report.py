"""Open-loop benchmark statistics and result files: JSON, Markdown tables, plots.

A run's ``results`` dict (built by :mod:`grasp_ros.research.bench`) holds every task outcome and
its summaries and claims (:mod:`~grasp_ros.research.bench_stats`); this module shows the final
plan's success with a Wilson 95% interval, the oracle's success and median time to success beside
it, the claims checked for planners compared from equal starts, and writes ``NAME.json``,
``NAME.md``, ``NAME_success.png`` and ``NAME_time.png``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grasp_ros.research.bench_stats import CLAIM_HORIZON, CLAIM_POINTS, CLAIM_TIME_RATIO


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename, so no reader sees half a file.

    The file gets the usual umask-based mode, not mkstemp's private 0600.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pct(rate: float) -> str:
    return f"{100 * rate:.0f}%"


def _secs(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(run: dict[str, Any]) -> str:
    """The run as Markdown: per environment the final plan's success, the oracle beside it."""
    cfg = run["config"]
    out = [
        f"# grasp-ros-bench: {run['run']}",
        "",
        f"{run['created']} · {run['machine']['summary']} · load "
        f"{run['machine']['load_avg_1min_at_start']:.1f} at the start and "
        f"{run.get('load_avg_1min_at_end', float('nan')):.1f} at the end (1-min average; other "
        f"work shares the cores) · device `{run['device']}` · torch {run['versions']['torch']} "
        f"· commit {run['versions']['git_commit']} · run took {run['wall_time_s'] / 60:.1f} min",
        "",
        f"Protocol (open loop): `{cfg['tasks']}` tasks per horizon, `env.sample_task(H, seed)` "
        f"with seeds {cfg['seeds'][0]}..{cfg['seeds'][-1]}. " + _protocol(cfg),
    ]
    for env in run["results"]:
        out += _env_section(run, env)
    out += _timing_section(run)
    if run["claims"]:
        out += _claims_section(run["claims"])
    return "\n".join(out) + "\n"


#: The per-horizon tables of an environment: caption, then the cell from a planner's summary.
_TABLES: tuple[tuple[str, Any], ...] = (
    (
        "**Success of the final plan** (executed once at the budget's end; 95% Wilson interval):",
        lambda s: f"{_pct(s['success_rate'])} ({_interval(s['ci95'])})",
    ),
    (
        "Oracle, not a robot's figure: some check of the plan so far reached the goal (95% "
        "interval) / median planner time to that first success:",
        lambda s: (
            f"{_pct(s['oracle_success_rate'])} ({_interval(s['oracle_ci95'])}) / "
            f"{_secs(s['median_oracle_time_to_success'])}"
        ),
    ),
    ("Median iterations in the budget:", lambda s: f"{s['median_iterations']:g}"),
    (
        "Planner or model? For the final plan: success in the model (the model's own prediction "
        "of the plan's end passes the success test) and median distance from the plan's end to "
        "the goal in world units, true / as the model predicts it. High in-model success with "
        "low true success means the planner solved the model's problem and the model was wrong:",
        lambda s: _distances(s),
    ),
)


def _interval(ci: Sequence[float]) -> str:
    return "–".join(f"{100 * x:.0f}" for x in ci)


def _env_section(run: dict[str, Any], env: str) -> list[str]:
    """One environment: the per-horizon tables, then the tasks; capped horizons marked."""
    by_h, planners, info = run["results"][env], run["config"]["planners"], run["tasks"][env]
    out = ["", f"## {env} (model `{run['models'][env]['spec']}`)"]
    label = {h: f"H={h}" + (" ‡" if info[h].get("capped") else "") for h in by_h}
    for caption, cell in _TABLES:
        out += ["", caption, ""]
        rows = [[label[h], *(cell(by_h[h][p]["summary"]) for p in planners)] for h in by_h]
        out += _table(["Horizon", *planners], rows)
    rows = [
        [
            label[h],
            f"{t['optimal_steps_mean']:.1f} ({t['optimal_steps_min']}–{t['optimal_steps_max']})",
            _pct(t["non_greedy"]),
        ]
        for h, t in info.items()
    ]
    out += ["", "Tasks (shortest path by BFS, in full-speed steps):", ""]
    out += _table(["Horizon", "optimal steps (mean, min–max)", "non-greedy"], rows)
    if any(t.get("capped") for t in info.values()):
        out += [
            "",
            "‡ Tasks capped: this world has too few tasks that long, so some of these tasks need "
            "fewer than 0.75 H steps (see the task table); the horizon adds spare steps, not a "
            "harder task.",
        ]
    return out


def _timing_section(run: dict[str, Any]) -> list[str]:
    """Per-iteration wall time against the horizon, per environment."""
    out = [
        "",
        "## Per-iteration wall time, as a ratio to the shortest horizon",
        "",
        "GRASP's parallel-in-time claim: a GRASP iteration is one batched model call over all "
        "H steps (plus a serial sync every K_sync iterations), where GD and CEM make H serial "
        "calls. A device that runs the batch in parallel keeps GRASP's ratio near 1; on one CPU "
        "thread the batch's arithmetic still grows with H. Fastest of 5 timed runs of a fixed "
        "iteration count (GRASP: 2 sync cycles; grasp-nosync, if run, is the parallel part "
        "alone).",
        "",
    ]
    for env, per in run["iteration_seconds"].items():
        horizons = list(next(iter(per.values())))
        ratio = {p: [per[p][h] / per[p][horizons[0]] for h in horizons] for p in per}
        rows = [
            [
                p,
                *(
                    f"{r:.2f} ({1000 * per[p][h]:.1f} ms)"
                    for r, h in zip(ratio[p], horizons, strict=True)
                ),
            ]
            for p in per
        ]
        out += [f"{env}:", "", *_table(["Planner", *(f"H={h}" for h in horizons)], rows), ""]
    return out


def _verdict(ok: bool | None) -> str:
    return "undefined" if ok is None else ("holds" if ok else "NO")


def _claims_section(claims: list[dict[str, Any]]) -> list[str]:
    """The paper's claims at long horizons, checked per start group."""
    rows = [
        [
            c["env"],
            c["group"],
            c["horizon"] + (" ‡" if c["capped"] else ""),
            f"{c['grasp']} {_pct(c['grasp_success'])}",
            f"{c['rival']} {_pct(c['best_rival_success'])}",
            f"{c['points_ahead']:+.0f} ({c['points_ci95'][0]:+.0f} to {c['points_ci95'][1]:+.0f})",
            _verdict(c["success_ok"]),
            _secs(c["grasp_time"]),
            _secs(c["cem_time"]),
            "—" if c["time_ratio"] is None else f"{c['time_ratio']:.2f}",
            _verdict(c["time_ok"]),
        ]
        for c in claims
    ]
    header = ["env", "starts", "H", "GRASP", "better rival", "points (95% CI)", "success"]
    header += ["GRASP oracle time", "CEM oracle time", "ratio", "time"]
    return [
        "## Claim check",
        "",
        f"At H >= {CLAIM_HORIZON}: GRASP's final-plan success at least {CLAIM_POINTS:g} points "
        "above the better of GD and CEM started the same way, and its oracle median time to "
        f"success at most {CLAIM_TIME_RATIO:.2f} of CEM's. 'undefined': CEM never succeeded, "
        "so there is no time to compare. A gap whose interval includes 0 is not resolved by "
        "this many tasks.",
        "",
        *_table(header, rows),
    ]


def _protocol(cfg: dict[str, Any]) -> str:
    """How the planners were budgeted and judged, in words."""
    budgets = ", ".join(f"H={h}: {b:g}s" for h, b in cfg["budgets"].items())
    clock = {"wall": "wall-clock", "cpu": "CPU-time (this process's, 1 thread: load-independent)"}
    return (
        f"Every planner gets the same {clock[cfg.get('clock', 'wall')]} budget "
        f"({cfg['budget_per_step'] * 1000:g} ms "
        f"per horizon step: {budgets}) and iteration cap ({cfg['max_iters']}), plans to the end "
        "of it, and its final plan is executed once, open loop, in the true environment: the "
        f"headline. The oracle executes the plan so far {cfg['checks']} times per budget, "
        "evenly spaced in planner time (checking time excluded; the checks change neither the "
        "search nor the final plan), and records the first success."
    )


def _distances(s: dict[str, Any]) -> str:
    rate, model = s.get("model_success_rate"), s.get("median_model_distance")
    if rate is None or model is None:
        return f"— · {s['median_distance']:.1f} / —"
    return f"{_pct(rate)} · {s['median_distance']:.1f} / {model:.1f}"


def plot(run: dict[str, Any], success_path: Path, time_path: Path) -> None:
    """Success rate vs horizon, and median time to success and per-iteration cost vs horizon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    planners, results = run["config"]["planners"], run["results"]
    envs = list(results)
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 4), squeeze=False)
    for ax, env in zip(axes[0], envs, strict=True):
        horizons = [int(h) for h in results[env]]
        spread = 0.01 * (max(horizons) - min(horizons) or 10)
        for i, p in enumerate(planners):
            s = [results[env][str(h)][p]["summary"] for h in horizons]
            rate = [100 * x["success_rate"] for x in s]
            err = [
                [r - 100 * x["ci95"][0] for r, x in zip(rate, s, strict=True)],
                [100 * x["ci95"][1] - r for r, x in zip(rate, s, strict=True)],
            ]
            dodge = [h + (i - (len(planners) - 1) / 2) * spread for h in horizons]
            ax.errorbar(dodge, rate, yerr=err, marker="o", capsize=3, label=p)
        ax.set(
            title=f"{env}: final-plan success (95% CI)",
            xlabel="horizon H",
            ylabel="success %",
            ylim=(-5, 105),
        )
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, success_path)
    plt.close(fig)

    fig, axes = plt.subplots(2, len(envs), figsize=(5 * len(envs), 7.5), squeeze=False)
    for col, env in enumerate(envs):
        horizons = [int(h) for h in results[env]]
        ax = axes[0][col]
        for p in planners:
            pts = [
                (h, results[env][str(h)][p]["summary"]["median_oracle_time_to_success"])
                for h in horizons
            ]
            pts = [(h, t) for h, t in pts if t is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=p)
        ax.set(
            title=f"{env}: oracle median time to success",
            xlabel="horizon H",
            ylabel="seconds",
            yscale="log",
        )
        ax.grid(alpha=0.3, which="both")
        ax = axes[1][col]
        per = run["iteration_seconds"][env]
        for p, by_h in per.items():
            hs = list(by_h)
            ax.plot([int(h) for h in hs], [by_h[h] / by_h[hs[0]] for h in hs], marker="o", label=p)
        ax.set(
            title=f"{env}: per-iteration time / time at H={hs[0]}",
            xlabel="horizon H",
            ylabel="ratio",
        )
        ax.grid(alpha=0.3)
    axes[1][-1].legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, time_path)
    plt.close(fig)


def _save_figure(fig: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _atomic_write(path, buf.getvalue())


def _json_safe(value: Any) -> Any:
    """Floats to 5 significant digits (results stay small; timings are not that exact), NaN
    and infinities (e.g. the cost of a plan never made) as null: JSON has no NaN."""
    if isinstance(value, float):
        return float(f"{value:.5g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_results(run: dict[str, Any], out: Path) -> list[Path]:
    """Write NAME.json, NAME.md, NAME_success.png and NAME_time.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    name = run["run"]
    paths = [
        out / f"{name}.json",
        out / f"{name}.md",
        out / f"{name}_success.png",
        out / f"{name}_time.png",
    ]
    text = json.dumps(_json_safe(run), separators=(",", ":"), allow_nan=False)
    _atomic_write(paths[0], (text + "\n").encode())
    _atomic_write(paths[1], markdown(run).encode())
    plot(run, paths[2], paths[3])
    return paths
