"""The GPU benchmark's measurements: each function times one thing and returns plain numbers.

Every timed plan gets an infinite deadline, so the planner synchronises CUDA after each
iteration, as the runtime's deadline budget does; :func:`launch_floor` queues its calls back to
back and synchronises once, as a floor should. See :mod:`grasp_ros.research.gpu_bench`.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.control import PlannerRuntime
from grasp_ros.control.episode import EpisodeHooks, Tick, run_episode
from grasp_ros.control.params import SCHEMA
from grasp_ros.models import env_for_model, load_world_model
from grasp_ros.planning import make_planner
from grasp_ros.research.bench_protocol import planner_spec
from grasp_ros.research.closed_loop import episode_limit


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
        for _ in range(1 if kind == "cold" else count):
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
    """GRASP through :class:`PlannerRuntime` at the control rate on the shipped model (P5),
    with the closed-loop benchmark's episode limit (twice the task's optimal steps).

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
            max_ticks=episode_limit(task),
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
