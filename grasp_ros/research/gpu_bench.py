"""The GPU benchmark (issue 17): what the planners cost on a device, as one prepared command.

    python -m grasp_ros.research.gpu_bench                  # the GPU measurement (a few minutes)
    python -m grasp_ros.research.gpu_bench --profile quick --device cpu   # smoke run, seconds

It writes ``NAME.json`` and ``NAME.md`` into ``--out`` with the machine, versions and device:

- P2: ms per iteration at each horizon for GRASP (with its serial syncs, and its parallel part
  alone, ``grasp-nosync``), GD and CEM, on the shipped models and on a random-weight 256 x 384
  patch-token model (:mod:`patch_model`, DINO-WM's latent size), GRASP population 8; the ratio
  of the longest to the shortest horizon (the parallel-in-time claim: near 1 on a GPU).
- P4: one GRASP iteration (parallel part) against the same loss's forward + backward replayed
  as one CUDA graph: the launch-bound floor of an iteration.
- P5: at the patch model's size, H=50, population 8: peak GPU memory and replans per second
  (warm: the runtime's ``iterations`` per tick from a shifted plan; cold: ``cold_start_iterations``
  from sampled starts); and the closed loop through ``PlannerRuntime`` at 30 Hz with the shipped
  models: ticks inside the period and iterations per tick.
- compile: GRASP's ms per iteration at H=50 with the model's forward under each
  ``torch.compile`` mode (the ``compile`` parameter), and the seconds compiling took; the
  shipped model first (launch-bound, where CUDA graphs should pay), and no new mode is started
  once the section has run ``compile_budget_s`` seconds, so the command stays within minutes.

Every timed plan gets an infinite deadline, so the planner synchronises CUDA after each
iteration as the runtime's deadline budget does. A CPU run is a smoke test of the command, not
the GPU measurement, and its results say so. The models' weights are frozen, as the runtime
freezes them. A section that fails is recorded with its error and the others still run; the
files are rewritten after each section, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.cli import add_options, option, parse
from grasp_ros.models import env_for_model, load_world_model, resolve_device
from grasp_ros.models.base import to_tensor
from grasp_ros.models.compiled import COMPILE_MODES, MATMUL_PRECISIONS, CompiledForward
from grasp_ros.research import gpu_bench_report
from grasp_ros.research import gpu_measure as M
from grasp_ros.research.bench_setup import csv_type, machine_info, versions
from grasp_ros.research.patch_model import PatchTokenModel

P2_PLANNERS = ("grasp", "grasp-nosync", "gd", "cem")
#: Timed with the model's forward compiled, at the replanning horizon only (compiling is slow).
COMPILED_PLANNERS = ("grasp", "grasp-nosync")
SHIPPED = ("wall", "maze", "pusht")
SECTIONS = ("p2", "p4", "p5", "compile")
PROFILES: dict[str, dict[str, Any]] = {
    "gpu": {
        "horizons": [20, 50, 80],
        "population": 8,
        "patch": {"tokens": 256, "dim": 384, "depth": 2, "heads": 6},
        # (warm-up iterations, timed iterations): GRASP's window is two whole sync cycles.
        "windows": {"grasp": [50, 100], "grasp-nosync": [10, 100], "gd": [2, 20], "cem": [1, 5]},
        "repeats": 2,
        "graph_replays": 50,
        "replan_horizon": 50,
        "replans": 10,
        "control_rate": 30.0,
        "loop_tasks": 3,
        "loop_horizon": 30,
        "compile_modes": ["reduce-overhead", "default"],
        "compile_budget_s": 150,
    },
    "quick": {
        "horizons": [4, 8],
        "population": 8,
        "patch": {"tokens": 16, "dim": 32, "depth": 1, "heads": 2},
        "windows": {"grasp": [2, 4], "grasp-nosync": [1, 4], "gd": [1, 2], "cem": [1, 1]},
        "repeats": 1,
        "graph_replays": 5,
        "replan_horizon": 8,
        "replans": 2,
        "control_rate": 30.0,
        "loop_tasks": 1,
        "loop_horizon": 10,
        "compile_modes": [],
        "compile_budget_s": 60,
    },
}


def _ends(model: nn.Module, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and goal latents: a reference-world task's images, or random images."""
    if getattr(model, "env_name", ""):
        task = env_for_model(model).sample_task(20, seed=0)
        images = np.stack([task.start_image, task.goal_image])
        batch = to_tensor(images, device)
    else:
        gen = torch.Generator().manual_seed(0)
        batch = torch.rand(2, 3, model.image_size, model.image_size, generator=gen).to(device)
    with torch.no_grad():
        z = model.encode(batch)
    return z[0], z[1]


def models(cfg: dict[str, Any], names: list[str], device: torch.device) -> dict[str, nn.Module]:
    """The named shipped models and the patch-token model ('patch'), frozen, on ``device``."""
    out = {name: load_world_model(name, device=device) for name in names if name != "patch"}
    if "patch" in names:
        out["patch"] = PatchTokenModel(**cfg["patch"]).to(device)
    return {k: m.eval().requires_grad_(False) for k, m in out.items()}


def run(args: GpuBenchOptions) -> dict[str, Any]:
    """All sections; the record is written after each one (see the module docstring)."""
    cfg = dict(PROFILES[args.profile])
    if args.horizons:
        cfg["horizons"] = args.horizons
    if args.compile_modes is not None:
        cfg["compile_modes"] = args.compile_modes
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.matmul_precision)
    device = resolve_device(args.device)
    t_start = time.perf_counter()
    record: dict[str, Any] = {
        "run": args.name,
        "created": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "gpu_measurement": device.type == "cuda",
        "machine": machine_info(),
        "versions": versions(),
        "device": str(device),
        "device_info": gpu_bench_report.device_info(device),
        "config": {**dataclasses.asdict(args), "out": str(args.out), **cfg},
        "errors": {},
    }
    nets = models(cfg, args.models, device)
    ends = {name: _ends(m, device) for name, m in nets.items()}
    record["models"] = {
        k: {"class": type(m).__name__, "latent_shape": list(m.latent_shape)}
        for k, m in nets.items()
    }
    pop, hs, reps = cfg["population"], cfg["horizons"], cfg["repeats"]
    record["planner_configs"] = {
        p: dataclasses.asdict(M.build(p, next(iter(nets.values())), hs[0], pop, 1).config)
        for p in P2_PLANNERS
    }
    windows, h5 = cfg["windows"], cfg["replan_horizon"]

    def timings(net: nn.Module, m: str, planners: tuple[str, ...], horizons: list[int]) -> Any:
        return {
            p: {
                str(h): M.ms_per_iteration(net, p, h, ends[m], pop, windows[p], reps)
                for h in horizons
            }
            for p in planners
        }

    def p2() -> dict[str, Any]:
        return {m: timings(net, m, P2_PLANNERS, hs) for m, net in nets.items()}

    def p4() -> dict[str, Any]:
        replays = cfg["graph_replays"]
        return {
            m: {str(h): M.launch_floor(nets[m], h, ends[m], pop, replays, device) for h in hs}
            for m in ("wall", "patch")
            if m in nets
        }

    def p5() -> dict[str, Any]:
        return {
            "replans": M.replans(nets["patch"], h5, ends["patch"], pop, cfg["replans"], device)
            if "patch" in nets
            else None,
            "closed_loop": [M.closed_loop(env, cfg, device) for env in SHIPPED if env in nets],
        }

    def compiled() -> dict[str, Any]:
        out: dict[str, Any] = {}
        record["compile"] = out
        section_start = time.perf_counter()
        pairs = [(mode, m) for m in ("wall", "patch") if m in nets for mode in cfg["compile_modes"]]
        for mode, m in pairs:
            t0 = time.perf_counter()
            if t0 - section_start > cfg["compile_budget_s"]:
                out[f"{mode}/{m}"] = {"error": "not run: the section's time budget was spent"}
                continue
            try:  # a mode that fails is a result, not the end of the run
                net = CompiledForward(nets[m], mode)
                timings(net, m, COMPILED_PLANNERS, [h5])  # the first plans compile; not kept
                compile_s = time.perf_counter() - t0
                out[f"{mode}/{m}"] = {
                    "compile_s": compile_s,
                    **timings(net, m, COMPILED_PLANNERS, [h5]),
                }
            except Exception as exc:
                out[f"{mode}/{m}"] = {"error": f"{type(exc).__name__}: {exc}"}
            gpu_bench_report.write(record, args.out)  # compiling is slow: keep each mode
        return out

    chosen = {"p2": p2, "p4": p4, "p5": p5, "compile": compiled}
    for key, section in ((k, chosen[k]) for k in SECTIONS if k in args.sections):
        print(f"gpu_bench: {key} ...", file=sys.stderr, flush=True)
        try:
            record[key] = section()
        except Exception as exc:
            record[key] = None
            record["errors"][key] = f"{type(exc).__name__}: {exc}"
        record["wall_time_s"] = time.perf_counter() - t_start
        gpu_bench_report.write(record, args.out)
    return record


@dataclass
class GpuBenchOptions:
    """The GPU benchmark's options; sizes and counts come from the ``--profile``."""

    profile: str = option(
        "gpu",
        "'gpu': the measurement (a few minutes on an H200); 'quick': tiny sizes for a smoke "
        "run (default: gpu)",
        choices=sorted(PROFILES),
    )
    device: str = option("auto", "cpu, cuda, cuda:N or auto (cuda when present) (default: auto)")
    horizons: list[int] | None = option(
        None, "comma-separated horizons (default: the profile's)", type=csv_type(int)
    )
    compile_modes: list[str] | None = option(
        None,
        "comma-separated torch.compile modes to time, 'off' for none (default: the profile's)",
        type=csv_type(str, list(COMPILE_MODES)),
    )
    threads: int = option(1, "torch CPU threads, 0 keeps torch's default (default: 1)", type=int)
    sections: list[str] = option(
        list(SECTIONS),
        "comma-separated sections to run (default: all: p2,p4,p5,compile)",
        type=csv_type(str, list(SECTIONS)),
    )
    models: list[str] = option(
        [*SHIPPED, "patch"],
        "comma-separated models: shipped names and 'patch' (default: all); P4, P5 and compile "
        "use those of wall and patch that are chosen",
        type=csv_type(str, [*SHIPPED, "patch"]),
    )
    matmul_precision: str = option(
        "highest",
        "torch float32 matmul precision; 'high' allows TF32 tensor cores (default: highest)",
        choices=list(MATMUL_PRECISIONS),
    )
    out: Path = option(Path("bench/results"), "output folder (default: bench/results)", type=Path)
    name: str | None = option(None, "stem of the output files (default: gpu-PROFILE-DEVICE-TIME)")

    def __post_init__(self) -> None:
        if self.compile_modes is not None:
            self.compile_modes = [m for m in self.compile_modes if m != "off"]
        kind = self.device.split(":")[0]
        if kind == "auto":
            kind = "cuda" if torch.cuda.is_available() else "cpu"
        self.name = self.name or f"gpu-{self.profile}-{kind}-{time.strftime('%Y%m%d-%H%M%S')}"

    def problems(self) -> list[str]:
        """What is wrong with these options, the first thing first."""
        rules = [
            (
                self.device in ("auto", "cpu") or self.device.startswith("cuda"),
                f"--device {self.device!r}: use cpu, cuda, cuda:N or auto",
            ),
            (
                not self.device.startswith("cuda") or torch.cuda.is_available(),
                f"--device {self.device}: no CUDA GPU is available here; use --device cpu",
            ),
            (
                self.profile != "gpu"
                or self.device.startswith("cuda")
                or torch.cuda.is_available(),
                "--profile gpu needs a CUDA GPU (on a CPU it would run for hours); "
                "use --profile quick --device cpu for a smoke run",
            ),
            (all(h >= 1 for h in self.horizons or [1]), "--horizons must be positive integers"),
            (self.threads >= 0, "--threads must be 0 or more"),
        ]
        return [message for ok, message in rules if not ok]


def parse_args(argv: list[str] | None) -> GpuBenchOptions:
    parser = argparse.ArgumentParser(
        prog="python -m grasp_ros.research.gpu_bench",
        description="Time GRASP, GD and CEM on a device (P2 ms per iteration vs horizon, P4 the "
        "CUDA-graph floor, P5 memory, replans per second and the 30 Hz closed loop, torch.compile "
        "modes). Writes NAME.json and NAME.md into --out. A CPU run is a smoke test only.",
    )
    add_options(parser, GpuBenchOptions)
    return parse(GpuBenchOptions, parser, argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = run(args)
    print(f"wrote {args.out / (args.name + '.json')} and .md")
    if not record["gpu_measurement"]:
        print("note: a CPU run; this is a smoke test, not the GPU measurement")
    return 1 if record["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
