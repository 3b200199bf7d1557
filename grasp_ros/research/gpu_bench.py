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
- compile: GRASP's ms per iteration with the model's forward under each ``torch.compile`` mode
  (the ``compile`` parameter), and the seconds compiling took.

Every timed plan gets an infinite deadline, so the planner synchronises CUDA after each
iteration as the runtime's deadline budget does. A CPU run is a smoke test of the command, not
the GPU measurement, and its results say so. The models' weights are frozen, as the runtime
freezes them. A section that fails is recorded with its error and the others still run; the
files are rewritten after each section, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.control import PlannerRuntime
from grasp_ros.control.episode import EpisodeHooks, Tick, run_episode
from grasp_ros.models import env_for_model, load_world_model, resolve_device
from grasp_ros.models.base import to_tensor
from grasp_ros.models.compiled import CompiledForward
from grasp_ros.planning import make_planner
from grasp_ros.research import gpu_bench_report
from grasp_ros.research.bench import machine_info, versions
from grasp_ros.research.bench_protocol import planner_spec
from grasp_ros.research.patch_model import PatchTokenModel

P2_PLANNERS = ("grasp", "grasp-nosync", "gd", "cem")
SHIPPED = ("wall", "maze")
PROFILES: dict[str, dict[str, Any]] = {
    "gpu": {
        "horizons": [20, 50, 80],
        "population": 8,
        "patch": {"tokens": 256, "dim": 384, "depth": 2, "heads": 6},
        # (warm-up iterations, timed iterations): GRASP's window is two whole sync cycles.
        "windows": {"grasp": [50, 100], "grasp-nosync": [10, 100], "gd": [2, 20], "cem": [1, 5]},
        "repeats": 3,
        "graph_replays": 200,
        "replan_horizon": 50,
        "replans": 10,
        "control_rate": 30.0,
        "loop_tasks": 3,
        "loop_horizon": 30,
        "compile_modes": ["default", "reduce-overhead"],
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
    },
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(name: str, model: nn.Module, horizon: int, population: int, iters: int) -> Any:
    """Benchmark planner ``name`` (GRASP variants at ``population``) with an iteration cap."""
    base, overrides = planner_spec(name)
    if base == "grasp":
        overrides["population"] = population
    return make_planner(base, model, horizon, iterations=iters, seed=0, **overrides)


def ms_per_iteration(
    model: nn.Module,
    name: str,
    horizon: int,
    ends: tuple[torch.Tensor, torch.Tensor],
    population: int,
    window: tuple[int, int],
    repeats: int,
) -> float:
    """Milliseconds per iteration between iteration ``warm`` and ``warm + n``, best of repeats.

    The warm-up keeps the cold start (sampled plans) and the first iterations out of the figure.
    """
    warm, n = window
    planner = build(name, model, horizon, population, warm + n)
    marks: dict[int, float] = {}

    def mark(it: int, elapsed: float, snapshot: Any) -> bool:
        marks[it] = elapsed
        return False

    best = math.inf
    for _ in range(repeats):
        planner.plan(*ends, deadline=math.inf, callback=mark)
        best = min(best, (marks[warm + n] - marks[warm]) / n)
    return 1000 * best


def _time_calls(fn: Callable[[], Any], n: int, device: torch.device) -> float:
    """Milliseconds per call of ``fn`` over ``n`` calls queued back to back."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return 1000 * (time.perf_counter() - t0) / n


def launch_floor(
    model: nn.Module,
    horizon: int,
    ends: tuple[torch.Tensor, torch.Tensor],
    population: int,
    replays: int,
    device: torch.device,
) -> dict[str, Any]:
    """GRASP's loss forward + backward, eager and replayed as one CUDA graph (P4).

    The loss is the planner's own (:meth:`GraspPlanner.loss` on the state its ``_init`` builds),
    so the graph holds exactly the kernels of an iteration's model call and its gradient; the
    Adam step, the noise and the projection are what an iteration adds on top. Captured as in
    torch's whole-network example: warm-up on a side stream, gradients set to ``None`` so that
    backward allocates them from the graph's pool.
    """
    planner = make_planner(
        "grasp", model, horizon, population=population, init="interpolate", sync_every=0
    )
    st = planner._init(*ends, None)
    leaves = (st.actions, st.virtual)

    def fwd_bwd() -> None:
        for leaf in leaves:
            leaf.grad = None
        planner.loss(st).backward()

    for _ in range(3):
        fwd_bwd()
    out: dict[str, Any] = {"eager_fwd_bwd_ms": _time_calls(fwd_bwd, replays, device)}
    if device.type != "cuda":
        out["graph_fwd_bwd_ms"] = None
        return out
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fwd_bwd()
    torch.cuda.current_stream(device).wait_stream(side)
    for leaf in leaves:
        leaf.grad = None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        planner.loss(st).backward()
    graph.replay()
    out["graph_fwd_bwd_ms"] = _time_calls(graph.replay, replays, device)
    return out


def replans(
    model: nn.Module,
    horizon: int,
    ends: tuple[torch.Tensor, torch.Tensor],
    population: int,
    count: int,
    device: torch.device,
) -> dict[str, Any]:
    """Full replans per second and peak GPU memory at ``horizon`` (P5), with the runtime's
    default iteration counts: a cold plan from sampled starts, then warm-started ticks."""
    from grasp_ros.control.params import SCHEMA

    cold_iters = SCHEMA["cold_start_iterations"].default
    warm_iters = SCHEMA["iterations"].default
    planner = build("grasp", model, horizon, population, cold_iters)
    planner.plan(*ends, max_iters=2)  # first-call costs (allocator, kernels) out of the figures
    out: dict[str, Any] = {"cold_iterations": cold_iters, "warm_iterations": warm_iters}
    plan = None
    for kind in ("cold", "warm"):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = []
        for _ in range(max(1, count // 3) if kind == "cold" else count):
            warm = plan.shift(1) if kind == "warm" else None
            iters = warm_iters if kind == "warm" else cold_iters
            start = time.perf_counter()
            plan = planner.plan(*ends, warm_start=warm, max_iters=iters, deadline=math.inf)
            _sync(device)
            seconds.append(time.perf_counter() - start)
        out[f"{kind}_replan_s"] = statistics.median(seconds)
        out[f"{kind}_replans_per_s"] = 1 / statistics.median(seconds)
        out[f"{kind}_peak_memory_gb"] = (
            torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
        )
    return out


class _TickLog(EpisodeHooks):
    def __init__(self) -> None:
        self.ticks: list[Tick] = []

    def on_tick(self, tick: Tick) -> None:
        self.ticks.append(tick)


def closed_loop(env_name: str, cfg: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """GRASP through :class:`PlannerRuntime` at the control rate on the shipped model (P5).

    The runtime plans every tick under its deadline budget (wall clock), on a simulated clock
    for the world, exactly as the benchmark's closed loop; a tick is inside the period when the
    runtime's whole tick (encode, plan, result) took at most one period of wall clock.
    """
    model = load_world_model(env_name, device=device)
    runtime = PlannerRuntime(
        model, {"control_rate": cfg["control_rate"], "horizon": cfg["loop_horizon"]}
    )
    runtime.warmup()
    env = env_for_model(model)
    log, successes, clock = _TickLog(), 0, 0.0
    for seed in range(cfg["loop_tasks"]):
        task = env.sample_task(cfg["loop_horizon"], seed=seed)
        outcome = run_episode(
            env,
            task,
            runtime,
            period=runtime.period,
            max_ticks=task.horizon,
            hooks=log,
            start_time=clock,
        )
        successes += outcome.success
        clock = outcome.end_stamp + 1.0  # one shared clock: the next task's images are newer
    planned = [t for t in log.ticks if t.command is not None and t.command.plan is not None]
    warm = [t for t in planned if t.command.plan.warm_started]
    cold = [t for t in planned if not t.command.plan.warm_started]
    times = np.array([t.tick_time for t in log.ticks])
    return {
        "env": env_name,
        "control_rate": cfg["control_rate"],
        "period_ms": 1000 * runtime.period,
        "tasks": cfg["loop_tasks"],
        "successes": successes,
        "ticks": len(log.ticks),
        "inside_period": int((times <= runtime.period).sum()),
        "warm_iterations_median": statistics.median(t.command.iterations for t in warm)
        if warm
        else None,
        "cold_iterations_median": statistics.median(t.command.iterations for t in cold)
        if cold
        else None,
        "tick_ms_p50": 1000 * float(np.percentile(times, 50)),
        "tick_ms_p99": 1000 * float(np.percentile(times, 99)),
        "tick_ms_max": 1000 * float(times.max()),
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


def models(cfg: dict[str, Any], device: torch.device) -> dict[str, nn.Module]:
    """The shipped models and the patch-token model, frozen, on ``device``."""
    out = {name: load_world_model(name, device=device) for name in SHIPPED}
    out["patch"] = PatchTokenModel(**cfg["patch"]).to(device)
    return {k: m.eval().requires_grad_(False) for k, m in out.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All sections; the record is written after each one (see the module docstring)."""
    cfg = dict(PROFILES[args.profile])
    if args.horizons:
        cfg["horizons"] = args.horizons
    if args.compile_modes is not None:
        cfg["compile_modes"] = args.compile_modes
    if args.threads:
        torch.set_num_threads(args.threads)
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
        "config": {"profile": args.profile, **cfg, "threads": args.threads},
        "errors": {},
    }
    nets = models(cfg, device)
    ends = {name: _ends(m, device) for name, m in nets.items()}
    record["models"] = {
        k: {"class": type(m).__name__, "latent_shape": list(m.latent_shape)}
        for k, m in nets.items()
    }
    pop, hs, windows = cfg["population"], cfg["horizons"], cfg["windows"]

    def p2() -> dict[str, Any]:
        return {
            m: {
                p: {
                    str(h): ms_per_iteration(
                        nets[m], p, h, ends[m], pop, windows[p], cfg["repeats"]
                    )
                    for h in hs
                }
                for p in P2_PLANNERS
            }
            for m in nets
        }

    def p4() -> dict[str, Any]:
        return {
            m: {
                str(h): launch_floor(nets[m], h, ends[m], pop, cfg["graph_replays"], device)
                for h in hs
            }
            for m in ("wall", "patch")
        }

    def p5() -> dict[str, Any]:
        h = cfg["replan_horizon"]
        return {
            "replans": replans(nets["patch"], h, ends["patch"], pop, cfg["replans"], device),
            "closed_loop": [closed_loop(env, cfg, device) for env in SHIPPED],
        }

    def compiled() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for mode in cfg["compile_modes"]:
            for m in ("wall", "patch"):
                t0 = time.perf_counter()
                try:
                    wrapped = CompiledForward(nets[m], mode)
                    first = {"grasp": windows["grasp"], "grasp-nosync": windows["grasp-nosync"]}
                    for h in hs:  # the first plans compile every shape; not timed
                        for p, (warm, n) in first.items():
                            build(p, wrapped, h, pop, warm + n).plan(*ends[m], deadline=math.inf)
                    compile_s = time.perf_counter() - t0
                    out[f"{mode}/{m}"] = {
                        "compile_s": compile_s,
                        **{
                            p: {
                                str(h): ms_per_iteration(
                                    wrapped, p, h, ends[m], pop, windows[p], cfg["repeats"]
                                )
                                for h in hs
                            }
                            for p in first
                        },
                    }
                except Exception as exc:  # a failing mode is a result, not the end of the run
                    out[f"{mode}/{m}"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    for key, section in (("p2", p2), ("p4", p4), ("p5", p5), ("compile", compiled)):
        print(f"gpu_bench: {key} ...", file=sys.stderr, flush=True)
        try:
            record[key] = section()
        except Exception as exc:
            record[key] = None
            record["errors"][key] = f"{type(exc).__name__}: {exc}"
        record["wall_time_s"] = time.perf_counter() - t_start
        gpu_bench_report.write(record, args.out)
    return record


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m grasp_ros.research.gpu_bench",
        description="Time GRASP, GD and CEM on a device (P2 ms per iteration vs horizon, P4 the "
        "CUDA-graph floor, P5 memory, replans per second and the 30 Hz closed loop, torch.compile "
        "modes). Writes NAME.json and NAME.md into --out. A CPU run is a smoke test only.",
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="gpu",
        help="'gpu': the measurement (a few minutes on an H200); 'quick': tiny "
        "sizes for a smoke run (default: gpu)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    p.add_argument(
        "--horizons",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated horizons (default: the profile's)",
    )
    p.add_argument(
        "--compile-modes",
        type=lambda s: [x for x in s.split(",") if x],
        help="comma-separated torch.compile modes to time ('' for none; default: the profile's)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results"),
        help="output folder (default: bench/results)",
    )
    p.add_argument("--name", help="stem of the output files (default: gpu-PROFILE-DEVICE-TIME)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {args.device}: no CUDA GPU is available here; use --device cpu")
    device = resolve_device(args.device)
    args.name = args.name or f"gpu-{args.profile}-{device.type}-{time.strftime('%Y%m%d-%H%M%S')}"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    record = run(args)
    print(f"wrote {args.out / (args.name + '.json')} and .md")
    if not record["gpu_measurement"]:
        print("note: a CPU run; this is a smoke test, not the GPU measurement")
    return 1 if record["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
