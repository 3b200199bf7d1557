"""The GPU benchmark's result files: ``NAME.json`` (everything) and ``NAME.md`` (the tables).

The targets are issue 17's: GRASP's ms per iteration at H=80 at most 1.5x its H=20 figure, an
iteration at most 2x the CUDA-graph floor, at most 8 GB and at least 5 replans per second at
256 x 384 latents and H=50. The tables print them beside the figures; a CPU run's files open
with a line saying that they are not the GPU measurement.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from grasp_ros.research.bench_report import _atomic_write, _json_safe

TARGET_RATIO = 1.5
TARGET_FLOOR = 2.0
TARGET_MEMORY_GB = 8.0
TARGET_REPLANS = 5.0


def device_info(device: torch.device) -> dict[str, Any]:
    """The accelerator and the numerics settings that change its timings."""
    info: dict[str, Any] = {
        "type": device.type,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gb=props.total_memory / 1e9,
            multiprocessors=props.multi_processor_count,
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def _ms(x: float | None) -> str:
    return "—" if x is None else f"{x:.3g} ms"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown(run: dict[str, Any]) -> str:
    cfg, dev = run["config"], run["device_info"]
    out = [f"# gpu_bench: {run['run']}", ""]
    if not run["gpu_measurement"]:
        out += [
            "**A CPU run: a smoke test of the command, NOT the GPU measurement.** Its figures "
            "say nothing about a GPU; run `python -m grasp_ros.research.gpu_bench` on one.",
            "",
        ]
    where = dev.get("name") or run["machine"]["summary"]
    out += [
        f"{run['created']} · device `{run['device']}` ({where}) · torch "
        f"{run['versions']['torch']} (CUDA {dev.get('cuda', '—')}) · grasp_ros "
        f"{run['versions']['grasp_ros']} @ {run['versions']['git_commit']} · profile "
        f"`{cfg['profile']}` · took {run.get('wall_time_s', 0) / 60:.1f} min · float32 matmul "
        f"precision `{dev['float32_matmul_precision']}` (TF32 {dev['cuda_matmul_allow_tf32']})",
        "",
        f"Models: {', '.join(k + ' ' + str(v['latent_shape']) for k, v in run['models'].items())} "
        f"(patch: random weights, {cfg['patch']['depth']} transformer blocks); GRASP population "
        f"{cfg['population']}; GD and CEM at their defaults (CEM: "
        f"{run['planner_configs']['cem']['samples']} samples). Every plan synchronises the device "
        "after each iteration, as the runtime's deadline budget does.",
    ]
    hs = [str(h) for h in cfg["horizons"]]
    w, n = cfg["windows"]["grasp"]
    if run.get("p2"):
        out += [
            "",
            "## P2: ms per iteration against the horizon",
            "",
            f"Ratio: H={hs[-1]} / H={hs[0]} (target for GRASP <= {TARGET_RATIO}). "
            "`grasp-nosync` is GRASP's parallel iteration alone; `grasp` adds its serial "
            "syncs (10 rollout steps every 50 iterations) inside the timed iterations "
            f"{w + 1}–{w + n} (two whole sync cycles in the gpu profile).",
            "",
        ]
        for m, per in run["p2"].items():
            rows = [
                [p, *(_ms(t[h]) for h in hs), f"{t[hs[-1]] / t[hs[0]]:.2f}"] for p, t in per.items()
            ]
            out += [f"{m}:", "", *_table(["planner", *(f"H={h}" for h in hs), "ratio"], rows), ""]
    if run.get("p4"):
        out += [
            "## P4: a GRASP iteration against the CUDA-graph floor",
            "",
            "The GRASP loss's forward + backward replayed as one CUDA graph is the "
            "launch-bound floor of an iteration; target: the iteration (`grasp-nosync`, P2) "
            f"at most {TARGET_FLOOR}x the floor.",
            "",
        ]
        rows = []
        for m, per in run["p4"].items():
            for h, f in per.items():
                it = (run.get("p2") or {}).get(m, {}).get("grasp-nosync", {}).get(h)
                graph = f["graph_fwd_bwd_ms"]
                ratio = f"{it / graph:.2f}" if it is not None and graph else "—"
                rows.append([m, f"H={h}", _ms(it), _ms(f["eager_fwd_bwd_ms"]), _ms(graph), ratio])
        header = ["model", "H", "GRASP iteration", "eager fwd+bwd", "graph fwd+bwd", "ratio"]
        out += [*_table(header, rows), ""]
    if run.get("p5"):
        out += [f"## P5: patch model at H={cfg['replan_horizon']}, and the closed loop", ""]
        if r := run["p5"]["replans"]:
            mem = [r["cold_peak_memory_gb"], r["warm_peak_memory_gb"]]
            gb = "not measured on CPU" if mem[0] is None else f"{mem[0]:.2f} / {mem[1]:.2f} GB"
            out += [
                f"Peak memory cold / warm: {gb} (target <= {TARGET_MEMORY_GB:g} GB). Replans per "
                f"second: warm ({r['warm_iterations']} iterations from the shifted plan) "
                f"{r['warm_replans_per_s']:.3g}, cold ({r['cold_iterations']} iterations from "
                f"sampled starts) {r['cold_replans_per_s']:.3g} (target >= {TARGET_REPLANS:g}).",
                "",
            ]
        out += [
            f"Closed loop through PlannerRuntime, GRASP, H={cfg['loop_horizon']}, "
            "deadline budget, episodes of at most twice the task's optimal steps; inside: ticks "
            "whose whole tick took at most one period:",
            "",
        ]
        rows = [
            [
                c["env"],
                f"{c['control_rate']:g} Hz",
                f"{c['inside_period']} / {c['ticks']}",
                f"{c['warm_iterations_median']}",
                f"{c['cold_iterations_median']}",
                f"{c['tick_ms_p50']:.1f} / {c['tick_ms_p99']:.1f} / {c['tick_ms_max']:.1f}",
                f"{c['successes']} / {c['tasks']}",
            ]
            for c in run["p5"]["closed_loop"]
        ]
        out += _table(
            [
                "world",
                "rate",
                "inside period",
                "iterations (warm tick, median)",
                "iterations (cold tick)",
                "tick ms p50 / p99 / max",
                "success",
            ],
            rows,
        )
        out += [""]
    if run.get("compile"):
        h5 = str(cfg["replan_horizon"])
        out += [
            "## torch.compile (the `compile` parameter)",
            "",
            f"GRASP's ms per iteration at H={h5} with the model's forward compiled; eager "
            "figures (P2) in brackets; compile: seconds of the first plans, which compile.",
            "",
        ]
        rows = []
        for key, c in run["compile"].items():
            if "error" in c:
                rows.append([key, "failed", " ".join(c["error"].split())[:200]])
                continue
            eager = (run.get("p2") or {}).get(key.split("/")[1], {})
            times = " · ".join(
                f"{p} {_ms(c[p][h5])} ({_ms(eager.get(p, {}).get(h5))})"
                for p in ("grasp", "grasp-nosync")
            )
            rows.append([key, f"{c['compile_s']:.1f} s", times])
        out += [*_table(["mode / model", "compile", "ms per iteration (eager)"], rows), ""]
    if run["errors"]:
        out += ["## Sections that failed", ""]
        out += [f"- {k}: {' '.join(v.split())}" for k, v in run["errors"].items()]
    return "\n".join(out) + "\n"


def write(run: dict[str, Any], out: Path) -> list[Path]:
    """Write ``NAME.json`` and ``NAME.md`` into ``out`` (atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{run['run']}.json", out / f"{run['run']}.md"]
    text = json.dumps(_json_safe(run), indent=1, allow_nan=False)
    _atomic_write(paths[0], (text + "\n").encode())
    _atomic_write(paths[1], markdown(run).encode())
    return paths
