"""The benchmark protocol: one planner, one task, one measured outcome.

Open loop (the paper's protocol): the planner plans from the start image's latent to the goal
image's latent under a wall-clock budget and an iteration cap. Every ``check_every`` seconds of
planner time its current answer (``snapshot()``, the plan it would return if stopped now) is
executed blindly in the true environment; the first snapshot that ends within the
environment's success radius gives the time to success and stops the planner. Checking time is
excluded from the planner's clock by :meth:`Planner.plan`, and the model calls made by the
checks are subtracted, so the figures are the planner's own. A check only reads the iterate
(it may update the best-so-far record, as stopping there would); it never changes the search.

Closed loop (``--closed-loop``): :class:`PlannerRuntime` replans at its control rate from each
new camera image with warm starts, exactly as the ROS node does, for at most ``horizon``
environment steps; success is reaching the goal on the way.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.control.episode import EpisodeHooks, Tick, run_episode
from grasp_ros.control.outputs import positions
from grasp_ros.envs import PointEnv, Task
from grasp_ros.models.base import to_tensor
from grasp_ros.planning import PLANNERS, Plan, Planner, make_planner

#: GRASP's ablations: each removes one ingredient of the method (see GraspConfig).
ABLATIONS: dict[str, dict[str, Any]] = {
    "grasp-nonoise": {"state_noise": 0.0},
    "grasp-nostopgrad": {"stop_grad": False},
    "grasp-nogoal": {"goal_weight": 0.0},
    "grasp-nosync": {"sync_every": 0},
    # No sampled starts: every member on the straight line s_0 -> g (grasp_ros's first default).
    "grasp-line": {"init": "interpolate", "population": 4},
}
#: Baseline variants: GD started from the same sampled plans as GRASP, to separate the start
#: from the optimiser.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {"gd-sample": ("gd", {"init": "sample"})}
BENCH_PLANNERS = (
    *sorted(PLANNERS, key=("grasp", "gd", "cem", "collocation").index),
    *ABLATIONS,
    *VARIANTS,
)

#: Iterations timed per planner for the per-iteration cost: whole GRASP sync cycles (2 x 50),
#: and enough iterations of the serial planners that one run lasts well over a timer tick.
TIMING_ITERATIONS = {"grasp": 100, "gd": 20, "cem": 5, "collocation": 100}


def planner_spec(name: str) -> tuple[str, dict[str, Any]]:
    """``(planner, config overrides)`` for a benchmark planner name such as 'grasp-nosync'."""
    if name in PLANNERS:
        return name, {}
    if name in ABLATIONS:
        return "grasp", dict(ABLATIONS[name])
    if name in VARIANTS:
        base, overrides = VARIANTS[name]
        return base, dict(overrides)
    raise ValueError(f"unknown planner {name!r}; choose from {', '.join(BENCH_PLANNERS)}")


def build_planner(name: str, model: nn.Module, horizon: int, max_iters: int, seed: int) -> Planner:
    """The planner called ``name`` (ablations included) with the shared iteration cap."""
    base, overrides = planner_spec(name)
    return make_planner(base, model, horizon, iterations=max_iters, seed=seed, **overrides)


@torch.no_grad()
def encode_tasks(
    model: nn.Module, tasks: list[Task], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and goal latents ``[N, *L]`` of the tasks' images, encoded in one batch."""
    images = np.stack([im for t in tasks for im in (t.start_image, t.goal_image)])
    z = model.encode(to_tensor(images).to(device))
    return z[0::2], z[1::2]


def execute(env: PointEnv, start_state: np.ndarray, actions: torch.Tensor) -> np.ndarray:
    """Final true state after running ``actions`` ``[T, A]`` open loop from ``start_state``."""
    state = np.asarray(start_state, dtype=np.float64)[None]
    for a in actions.detach().cpu().numpy().astype(np.float64):
        state = env.step_states(state, a[None])
    return state[0]


@dataclass
class TaskResult:
    """What one planner did on one task.

    Attributes:
        seed, optimal_steps, non_greedy: the task (``env.sample_task(horizon, seed)``).
        success: the planner's plan reached the goal in the true environment in the budget.
        time_to_success: planner-clock seconds until the first successful snapshot (``None``
            on failure); closed loop: planning seconds summed over the ticks until success.
        iterations, model_calls: to success, or in the whole budget on failure (closed loop:
            summed over ticks).
        solve_time: planner-clock seconds spent (closed loop: summed over ticks).
        cost: latent MSE of the final (or first successful) plan's rollout to the goal.
        distance: true distance from the executed plan's end (closed loop: the last state)
            to the goal, in world units.
        model_distance: where the model believes the plan ends (``project`` of the rollout's
            last latent) to the goal, in world units; ``None`` without ``project`` or in
            closed loop. Small ``model_distance`` with large ``distance`` means the planner
            solved the model's problem and the model was wrong.
        model_success: the environment's success test applied to that predicted end: the
            plan succeeds in the model (``None`` when ``model_distance`` is).
        steps: environment steps taken (closed loop only; open loop: the horizon).
        error: the runtime's message when a tick failed (closed loop only).
    """

    seed: int
    optimal_steps: int
    non_greedy: bool
    success: bool
    time_to_success: float | None
    iterations: int
    model_calls: int
    solve_time: float
    cost: float
    distance: float
    steps: int
    model_distance: float | None = None
    model_success: bool | None = None
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _distance(state: np.ndarray, goal_state: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(state)[:2] - np.asarray(goal_state)[:2]))


def _model_end(model: nn.Module, plan: Plan) -> np.ndarray | None:
    """Where the model believes the plan ends: ``project`` of the rollout's last latent."""
    end = positions(model, plan.rollout[-1:])
    return None if end is None else end[0, :2].astype(np.float64)


def run_open_loop(
    planner: Planner,
    env: PointEnv,
    task: Task,
    start: torch.Tensor,
    goal: torch.Tensor,
    budget: float,
    check_every: float,
) -> TaskResult:
    """Plan under ``budget`` seconds, checking the current plan every ``check_every`` seconds.

    The plan at the budget's end is checked too, so a planner whose last iterations succeed is
    not missed between checks.
    """
    calls0 = planner.model_calls
    check_calls = 0
    next_check = 0.0
    outcome: dict[str, Any] = {}

    def judge(plan: Plan, it: int, elapsed: float, calls: int) -> bool:
        final = execute(env, task.start_state, plan.actions)
        ok = env.success(final, task.goal_state)
        outcome.update(plan=plan, it=it, time=elapsed if ok else None, calls=calls, final=final)
        return ok

    def check(it: int, elapsed: float, snapshot: Any) -> bool:
        nonlocal check_calls, next_check
        if elapsed < next_check:
            return False
        next_check = elapsed + check_every
        own_calls = planner.model_calls - calls0 - check_calls
        before = planner.model_calls
        plan = snapshot()
        check_calls += planner.model_calls - before
        return judge(plan, it, elapsed, own_calls)

    last = planner.plan(start, goal, deadline=budget, callback=check, callback_every=1)
    if outcome.get("time") is None:
        judge(last, last.iterations, last.solve_time, planner.model_calls - calls0 - check_calls)
    best = outcome["plan"]
    end = _model_end(planner.model, best)
    return TaskResult(
        seed=int(task.seed or 0),
        optimal_steps=task.optimal_steps,
        non_greedy=task.non_greedy,
        success=outcome["time"] is not None,
        time_to_success=outcome["time"],
        iterations=int(outcome["it"]),
        model_calls=int(outcome["calls"]),
        solve_time=float(last.solve_time),
        cost=float(best.cost),
        distance=_distance(outcome["final"], task.goal_state),
        model_distance=None if end is None else _distance(end, task.goal_state),
        model_success=None if end is None else env.success(end, task.goal_state),
        steps=task.horizon,
    )


def run_closed_loop(
    model: nn.Module, env: PointEnv, task: Task, name: str, max_iters: int, control_rate: float
) -> TaskResult:
    """Drive the true environment with :class:`PlannerRuntime` for at most ``horizon`` steps.

    The runtime plans each tick under its ``'deadline'`` budget (the control period less its
    margin, capped at ``max_iters`` iterations) from the newest image, warm-started from the
    previous tick's plan shifted by one step; stamps come from a simulated clock, so images are
    never stale.
    """
    base, overrides = planner_spec(name)
    params = {
        "planner": base,
        "horizon": task.horizon,
        "seed": int(task.seed or 0),
        "control_rate": control_rate,
        "budget": "deadline",
        "iterations": max_iters,
        "cold_start_iterations": max_iters,
        **{f"{base}.{k}": v for k, v in overrides.items()},
    }
    runtime = PlannerRuntime(model, params)
    effort = _Effort()
    outcome = run_episode(
        env,
        task,
        runtime,
        period=runtime.period,
        max_ticks=task.horizon,
        hooks=effort,
        halt_on=[s for s in Status if s is not Status.OK],
    )
    last = outcome.last.command if outcome.halted and outcome.last else None
    return TaskResult(
        seed=int(task.seed or 0),
        optimal_steps=task.optimal_steps,
        non_greedy=task.non_greedy,
        success=outcome.success,
        time_to_success=effort.planning if outcome.success else None,
        iterations=effort.iterations,
        model_calls=effort.calls,
        solve_time=effort.planning,
        cost=float(effort.cost),
        distance=_distance(outcome.final_state, task.goal_state),
        steps=outcome.ticks,
        error=f"{last.status.name}: {last.message}" if last is not None else "",
    )


class _Effort(EpisodeHooks):
    """Planning effort summed over a closed-loop episode's executed ticks."""

    def __init__(self) -> None:
        self.planning, self.iterations, self.calls, self.cost = 0.0, 0, 0, math.nan

    def on_tick(self, tick: Tick) -> None:
        cmd = tick.command
        self.planning += cmd.solve_time
        self.iterations += cmd.iterations
        self.calls += tick.model_calls
        self.cost = cmd.cost


def iteration_seconds(
    name: str,
    model: nn.Module,
    horizon: int,
    start: torch.Tensor,
    goal: torch.Tensor,
    repeats: int = 5,
) -> float:
    """Wall-clock seconds per iteration at ``horizon``: the fastest of ``repeats`` timed runs.

    Each run is a fixed number of iterations (:data:`TIMING_ITERATIONS`) without checks, so
    GRASP's serial syncs are amortised as in a long solve; an infinite deadline makes the
    planner synchronise CUDA after every iteration, as in the timed tasks. The minimum over
    repeats is the figure least disturbed by other work on a shared machine.
    """
    base, _ = planner_spec(name)
    iters = TIMING_ITERATIONS[base]
    planner = build_planner(name, model, horizon, iters, seed=0)
    elapsed: list[float] = []

    def record(it: int, seconds: float, snapshot: Any) -> bool:
        elapsed.append(seconds)
        return False

    for _ in range(repeats):
        planner.plan(start, goal, deadline=math.inf, callback=record, callback_every=iters)
    return min(elapsed) / iters
