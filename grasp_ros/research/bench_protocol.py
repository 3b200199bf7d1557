"""The open-loop benchmark protocol: one planner, one task, one measured outcome.

The planner plans from the start image's latent to the goal image's latent under a wall-clock
budget and an iteration cap, runs to the end of the budget, and its final plan is executed once,
blindly, in the true environment: that plan's success is the headline, the figure a robot that
plans once and executes would see.

Beside it, named as such, the *oracle*: every ``check_every`` seconds of planner time the plan
so far (``snapshot()``) is executed in the true environment too, and the first snapshot that
succeeds gives the oracle's success and time to success. No robot can do this (it would need
the true world to try each plan in), so it is an upper bound on what stopping early could give,
not a result. Checks are pure (see :data:`grasp_ros.planning.base.Callback`): they change
neither the search nor the final plan. Checking time is excluded from the planner's clock and
the checks' model calls are subtracted, so time and calls are the planner's own.

The closed loop (a robot replanning at its control rate) is :mod:`grasp_ros.research.closed_loop`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.control.outputs import positions
from grasp_ros.envs import PointEnv, Task, World
from grasp_ros.models.base import to_tensor
from grasp_ros.planning import PLANNERS, Plan, Planner, make_planner

#: GRASP's ablations: each removes one ingredient of the method (see GraspConfig).
ABLATIONS: dict[str, dict[str, Any]] = {
    "grasp-nonoise": {"state_noise": 0.0},
    "grasp-nostopgrad": {"stop_grad": False},
    "grasp-nogoal": {"goal_weight": 0.0},
    "grasp-nosync": {"sync_every": 0},
    # No sampled starts: every member on the straight line s_0 -> g, zero actions (the start
    # GD and CEM have by default; the population of 8 differs only by the state noise).
    "grasp-line": {"init": "interpolate"},
}
#: Baseline variants: GD and CEM started from the best of the same random plans GRASP samples
#: its population from (same seed, same draws), to separate the start from the optimiser.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "gd-sample": ("gd", {"init": "sample"}),
    "cem-sample": ("cem", {"init": "sample"}),
}
#: Planners compared from equal starts: (label, GRASP's name, the rivals' names). The claim
#: check reads these; ``grasp`` against plain ``gd``/``cem`` (unequal starts) is the paper's.
START_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sampled starts", "grasp", ("gd-sample", "cem-sample")),
    ("straight-line starts", "grasp-line", ("gd", "cem")),
    ("as shipped (GRASP sampled, GD and CEM straight line)", "grasp", ("gd", "cem")),
)
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


#: Clocks a benchmark can budget on: the wall clock (the paper's), or this process's CPU time,
#: which other work on a shared machine does not eat.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def build_planner(
    name: str, model: nn.Module, horizon: int, max_iters: int, seed: int, clock: str = "wall"
) -> Planner:
    """The planner called ``name`` (ablations included) with the shared iteration cap, timing
    on ``clock`` (one of :data:`CLOCKS`)."""
    base, overrides = planner_spec(name)
    planner = make_planner(base, model, horizon, iterations=max_iters, seed=seed, **overrides)
    planner.use_clock(CLOCKS[clock])
    return planner


@torch.no_grad()
def encode_tasks(
    model: nn.Module, tasks: list[Task], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Start and goal latents ``[N, *L]`` of the tasks' images, encoded in one batch."""
    images = np.stack([im for t in tasks for im in (t.start_image, t.goal_image)])
    z = model.encode(to_tensor(images).to(device))
    return z[0::2], z[1::2]


def execute(env: World, start_state: np.ndarray, actions: torch.Tensor) -> np.ndarray:
    """Final true state after running ``actions`` ``[T, A]`` open loop from ``start_state``."""
    state = np.asarray(start_state, dtype=np.float64)[None]
    for a in actions.detach().cpu().numpy().astype(np.float64):
        state = env.step_states(state, a[None])
    return state[0]


@dataclass
class TaskResult:
    """What one planner did on one task (open loop).

    Attributes:
        seed, optimal_steps, non_greedy: the task (``env.sample_task(horizon, seed)``).
        success: the final plan (at the budget's end) reaches the goal when executed once in
            the true environment: the headline.
        oracle_success: some check of the plan so far (or the final plan) reached the goal.
        oracle_time_to_success: planner-clock seconds until the first successful check
            (``None`` when none succeeded).
        oracle_iterations: iterations until that check (``None`` likewise).
        iterations, model_calls, solve_time: the planner's own over the whole budget.
        cost: the final plan's cost (the planner's objective on its rollout).
        distance: true distance from the final plan's end to the goal, in world units
            (``env.distance``: the object's position, the agent's in point worlds).
        model_distance: where the model believes the final plan ends (``project`` of the
            rollout's last latent) to the goal, in world units; ``None`` without ``project``.
            Small ``model_distance`` with large ``distance`` means the planner solved the
            model's problem and the model was wrong.
        model_success: the environment's success test applied to that predicted end (``None``
            when ``model_distance`` is). Both are ``None`` outside the point worlds, where
            ``project`` (the agent) is not what the goal is about.
    """

    seed: int
    optimal_steps: int
    non_greedy: bool
    success: bool
    oracle_success: bool
    oracle_time_to_success: float | None
    oracle_iterations: int | None
    iterations: int
    model_calls: int
    solve_time: float
    cost: float
    distance: float
    model_distance: float | None = None
    model_success: bool | None = None

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
    env: World,
    task: Task,
    start: torch.Tensor,
    goal: torch.Tensor,
    budget: float,
    check_every: float,
) -> TaskResult:
    """Plan for the whole ``budget`` (seconds) and execute the final plan once; meanwhile the
    oracle checks the plan so far every ``check_every`` seconds (``math.inf``: never)."""
    calls0 = planner.model_calls
    check_calls = 0
    next_check = 0.0
    oracle: dict[str, Any] = {}

    def reaches(plan: Plan) -> bool:
        return env.success(execute(env, task.start_state, plan.actions), task.goal_state)

    def check(it: int, elapsed: float, snapshot: Any) -> bool:
        nonlocal check_calls, next_check
        if oracle or elapsed < next_check:
            return False
        next_check = elapsed + check_every
        before = planner.model_calls
        plan = snapshot()
        check_calls += planner.model_calls - before
        if reaches(plan):
            oracle.update(time=elapsed, it=it)
        return False

    final = planner.plan(start, goal, deadline=budget, callback=check, callback_every=1)
    end_state = execute(env, task.start_state, final.actions)
    success = env.success(end_state, task.goal_state)
    if success and not oracle:  # the final plan is the last check
        oracle.update(time=final.solve_time, it=final.iterations)
    # project() is the agent's position: the goal's object only in a point world (not Push-T's
    # block), so the model's own verdict is defined there only.
    end = _model_end(planner.model, final) if isinstance(env, PointEnv) else None
    return TaskResult(
        seed=int(task.seed or 0),
        optimal_steps=task.optimal_steps,
        non_greedy=task.non_greedy,
        success=bool(success),
        oracle_success=bool(oracle),
        oracle_time_to_success=oracle.get("time"),
        oracle_iterations=oracle.get("it"),
        iterations=int(final.iterations),
        model_calls=int(planner.model_calls - calls0 - check_calls),
        solve_time=float(final.solve_time),
        cost=float(final.cost),
        distance=env.distance(end_state, task.goal_state),
        model_distance=None if end is None else _distance(end, task.goal_state),
        model_success=None if end is None else env.success(end, task.goal_state),
    )


def iteration_seconds(
    name: str,
    model: nn.Module,
    horizon: int,
    start: torch.Tensor,
    goal: torch.Tensor,
    repeats: int = 5,
    clock: str = "wall",
) -> float:
    """Wall-clock seconds per iteration at ``horizon``: the fastest of ``repeats`` timed runs.

    Each run is a fixed number of iterations (:data:`TIMING_ITERATIONS`) without checks, so
    GRASP's serial syncs are amortised as in a long solve; an infinite deadline makes the
    planner synchronise CUDA after every iteration, as in the timed tasks. The minimum over
    repeats is the figure least disturbed by other work on a shared machine.
    """
    base, _ = planner_spec(name)
    iters = TIMING_ITERATIONS[base]
    planner = build_planner(name, model, horizon, iters, seed=0, clock=clock)
    elapsed: list[float] = []

    def record(it: int, seconds: float, snapshot: Any) -> bool:
        elapsed.append(seconds)
        return False

    for _ in range(repeats):
        planner.plan(start, goal, deadline=math.inf, callback=record, callback_every=iters)
    return min(elapsed) / iters
