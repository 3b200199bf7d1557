"""Benchmark statistics and result files: JSON, a Markdown table in the paper's format, plots.

A run's ``results`` dict (built by :mod:`grasp_ros.research.bench`) holds every task outcome; this
module summarises it (success rates with Wilson 95% intervals, medians over successful tasks),
checks the paper's claim at long horizons, and writes ``NAME.json``, ``NAME.md``,
``NAME_success.png`` and ``NAME_time.png``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The issue's acceptance claim: at horizons >= CLAIM_HORIZON, GRASP's success rate at least
#: CLAIM_POINTS above the better of GD and CEM, and its median time at most CLAIM_TIME_RATIO
#: of CEM's.
CLAIM_HORIZON = 50
CLAIM_POINTS = 10.0
CLAIM_TIME_RATIO = 1 / 3


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95% interval for a binomial rate (sound at 0% and 100%, unlike +-1.96 sd)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarize(tasks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rate, interval, and medians over the successful tasks (time, iterations, calls)."""
    wins = [t for t in tasks if t["success"]]
    judged = [t["model_success"] for t in tasks if t.get("model_success") is not None]
    low, high = wilson_interval(len(wins), len(tasks))
    return {
        "tasks": len(tasks),
        "successes": len(wins),
        "success_rate": len(wins) / len(tasks) if tasks else 0.0,
        "ci95": [low, high],
        "median_time_to_success": _median([t["time_to_success"] for t in wins]),
        "median_iterations_to_success": _median([t["iterations"] for t in wins]),
        "median_model_calls_to_success": _median([t["model_calls"] for t in wins]),
        "median_distance": _median([t["distance"] for t in tasks]),
        "model_success_rate": sum(judged) / len(judged) if judged else None,
        "median_model_distance": _median(
            [t["model_distance"] for t in tasks if t.get("model_distance") is not None]
        ),
    }


def check_claims(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's claim per environment, at each horizon >= 50 and pooled over them.

    Needs 'grasp', 'gd' and 'cem' in the run; returns an empty list otherwise. When CEM never
    succeeds its median time is undefined and the time condition holds only if GRASP succeeds.
    """
    claims = []
    for env, by_h in results.items():
        long = sorted((int(h), cells) for h, cells in by_h.items() if int(h) >= CLAIM_HORIZON)
        if not long or not all({"grasp", "gd", "cem"} <= set(c) for _, c in long):
            continue
        pooled = {
            p: summarize([t for _, c in long for t in c[p]["tasks"]])
            for p in ("grasp", "gd", "cem")
        }
        groups = [(str(h), {p: c[p]["summary"] for p in ("grasp", "gd", "cem")}) for h, c in long]
        for label, s in [*groups, (f">={CLAIM_HORIZON}", pooled)]:
            rival = max(s["gd"]["success_rate"], s["cem"]["success_rate"])
            points = 100 * (s["grasp"]["success_rate"] - rival)
            t_grasp = s["grasp"]["median_time_to_success"]
            t_cem = s["cem"]["median_time_to_success"]
            ratio = t_grasp / t_cem if t_grasp is not None and t_cem else None
            time_ok = t_grasp is not None and (t_cem is None or ratio <= CLAIM_TIME_RATIO)
            claims.append(
                {
                    "env": env,
                    "horizon": label,
                    "grasp_success": s["grasp"]["success_rate"],
                    "best_rival_success": rival,
                    "points_ahead": points,
                    "success_ok": points >= CLAIM_POINTS,
                    "grasp_time": t_grasp,
                    "cem_time": t_cem,
                    "time_ratio": ratio,
                    "time_ok": time_ok,
                }
            )
    return claims


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
    """The run as Markdown: per environment the paper's table (success % / median time)."""
    cfg = run["config"]
    loop = "closed loop (PlannerRuntime)" if cfg["closed_loop"] else "open loop"
    out = [
        f"# grasp-ros-bench: {run['run']}",
        "",
        f"{run['created']} · {run['machine']['summary']} · device `{run['device']}` · "
        f"torch {run['versions']['torch']} · grasp_ros {run['versions']['grasp_ros']} · "
        f"run took {run['wall_time_s'] / 60:.1f} min",
        "",
        f"Protocol ({loop}): `{cfg['tasks']}` tasks per horizon, `env.sample_task(H, seed)` "
        f"with seeds {cfg['seeds'][0]}..{cfg['seeds'][-1]}. " + _protocol(cfg),
        "",
        "Cells: success rate / median time to success over the successful tasks "
        "(lower is better), planner-clock seconds.",
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
        "",
        lambda s: f"{_pct(s['success_rate'])} / {_secs(s['median_time_to_success'])}",
    ),
    ("Success 95% interval (Wilson):", lambda s: "–".join(_pct(x) for x in s["ci95"])),
    ("Median iterations / model calls to success:", lambda s: _iters_calls(s)),
    (
        "Planner or model? Success in the model (the model's own prediction of the plan's end "
        "passes the success test) and median distance from the plan's end to the goal in "
        "world units, true / as the model predicts it. High in-model success with low true "
        "success means the planner solved the model's problem and the model was wrong:",
        lambda s: _distances(s),
    ),
)


def _env_section(run: dict[str, Any], env: str) -> list[str]:
    """One environment: the per-horizon tables, then the tasks."""
    by_h, planners = run["results"][env], run["config"]["planners"]
    out = ["", f"## {env} (model `{run['models'][env]['spec']}`)"]
    for caption, cell in _TABLES:
        out += ["", caption, ""] if caption else [""]
        rows = [[f"H={h}", *(cell(by_h[h][p]["summary"]) for p in planners)] for h in by_h]
        out += _table(["Horizon", *planners], rows)
    rows = [
        [
            f"H={h}",
            f"{t['optimal_steps_mean']:.1f} ({t['optimal_steps_min']}–{t['optimal_steps_max']})",
            _pct(t["non_greedy"]),
        ]
        for h, t in run["tasks"][env].items()
    ]
    out += ["", "Tasks (shortest path by BFS, in full-speed steps):", ""]
    return out + _table(["Horizon", "optimal steps (mean, min–max)", "non-greedy"], rows)


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


def _claims_section(claims: list[dict[str, Any]]) -> list[str]:
    """The paper's claims at long horizons, checked."""
    rows = [
        [
            c["env"],
            c["horizon"],
            _pct(c["grasp_success"]),
            _pct(c["best_rival_success"]),
            f"{c['points_ahead']:+.0f}",
            "yes" if c["success_ok"] else "NO",
            _secs(c["grasp_time"]),
            _secs(c["cem_time"]),
            "—" if c["time_ratio"] is None else f"{c['time_ratio']:.2f}",
            "yes" if c["time_ok"] else "NO",
        ]
        for c in claims
    ]
    header = ["env", "H", "GRASP", "best of GD/CEM", "points", "success holds", "GRASP time"]
    header += ["CEM time", "ratio", "time holds"]
    return [
        "## Claim check",
        "",
        f"At H >= {CLAIM_HORIZON}: GRASP's success rate at least {CLAIM_POINTS:g} points "
        "above the better of GD and CEM, and its median time to success at most "
        f"{CLAIM_TIME_RATIO:.2f} of CEM's.",
        "",
        *_table(header, rows),
    ]


def _protocol(cfg: dict[str, Any]) -> str:
    """How the planners were budgeted and judged, in words."""
    if cfg["closed_loop"]:
        period = 1000 / cfg["control_rate"]
        return (
            f"PlannerRuntime replans at {cfg['control_rate']:g} Hz from each new image, "
            f"warm-started, every tick under its deadline budget (the {period:g} ms period less "
            f"the runtime's margin, at most {cfg['max_iters']} iterations), for at most H steps; "
            "success is reaching the goal on the way, and the time to success is the planning "
            "time summed over the ticks until then."
        )
    budgets = ", ".join(f"H={h}: {b:g}s" for h, b in cfg["budgets"].items())
    return (
        f"Every planner gets the same wall-clock budget ({cfg['budget_per_step'] * 1000:g} ms "
        f"per horizon step: {budgets}) and iteration cap ({cfg['max_iters']}). The best plan so "
        f"far is executed open loop in the true environment {cfg['checks']} times per budget, "
        "evenly spaced in planner time, and at the budget's end; the first success stops the "
        "planner and gives the time to success (checking time excluded)."
    )


def _iters_calls(s: dict[str, Any]) -> str:
    if not s["successes"]:
        return "—"
    return f"{s['median_iterations_to_success']:g} / {s['median_model_calls_to_success']:g}"


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
            title=f"{env}: success (95% CI)", xlabel="horizon H", ylabel="success %", ylim=(-5, 105)
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
                (h, results[env][str(h)][p]["summary"]["median_time_to_success"]) for h in horizons
            ]
            pts = [(h, t) for h, t in pts if t is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=p)
        ax.set(
            title=f"{env}: median time to success",
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
