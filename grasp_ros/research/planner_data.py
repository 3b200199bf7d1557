"""Planner-in-the-loop training data: episodes that go where planners take the robot.

A model trained on random exploration is accurate where random actions go. Planners optimise
against the model, so they seek out exactly the places where it is wrong (a leaky wall is a
shortcut) and long open-loop plans end far from where the model predicts. The remedy, as in
iterative model-based RL (DAgger-style data aggregation): plan with the current model on
sampled tasks, execute the plans in the true world (with a little action noise, so the data
covers the neighbourhood of each plan), and train the dynamics on what really happened.

Tasks use seeds from :data:`TASK_SEED_OFFSET` up, far from the benchmark's seeds (0..N), so a
model is never trained on the benchmark's own tasks. GRASP, GD and CEM plans are mixed in
equal shares, so no planner gets a model tuned to its own mistakes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from grasp_ros.control.outputs import positions
from grasp_ros.envs import PointEnv
from grasp_ros.models.base import to_tensor
from grasp_ros.planning import Plan, make_planner
from grasp_ros.research.bench_protocol import execute

#: First task seed used for training data (the benchmark samples seeds 0, 1, 2, ...).
TASK_SEED_OFFSET = 1_000_000
#: Planners whose plans are collected, in equal shares (each with its default settings).
DATA_PLANNERS = ("grasp", "gd", "cem")


def planner_episodes(
    model: nn.Module,
    env: PointEnv,
    tasks: int,
    length: int,
    seed: int,
    min_horizon: int = 20,
    action_noise: float = 0.1,
    planners: tuple[str, ...] = DATA_PLANNERS,
) -> dict[str, Any]:
    """``tasks`` planned-and-executed episodes of ``length`` steps: states, actions, gaps.

    Task ``i`` has a horizon drawn from ``[min_horizon, length]`` and seed
    ``TASK_SEED_OFFSET + seed * tasks + i``; planner ``planners[i % len(planners)]`` plans
    from its start image to its goal image in ``model``; the plan plus N(0, action_noise)
    noise (clipped to the action box) is executed in ``env``, then the agent stands still
    (zero actions) for the rest of the episode. ``gaps`` is, per task, the distance in world
    units between the end of the (noise-free) plan predicted by the model and its true end:
    the model error the planners found, which the data is meant to remove.
    """
    if not 1 <= min_horizon <= length:
        raise ValueError(f"need 1 <= min_horizon ({min_horizon}) <= length ({length})")
    rng = np.random.default_rng(TASK_SEED_OFFSET + seed)
    low, high = env.action_low, env.action_high
    states = np.empty((tasks, length + 1, env.random_states(rng, 1).shape[1]))
    actions = np.zeros((tasks, length, env.action_dim), dtype=np.float32)
    gaps = np.full(tasks, np.nan)
    model.eval()
    for i in tqdm(range(tasks), desc="planner data", mininterval=5):
        horizon = int(rng.integers(min_horizon, length + 1))
        task = env.sample_task(horizon, seed=TASK_SEED_OFFSET + seed * tasks + i)
        with torch.no_grad():
            z = model.encode(to_tensor(np.stack([task.start_image, task.goal_image])))
        planner = make_planner(planners[i % len(planners)], model, horizon, seed=seed + i)
        result = planner.plan(z[0], z[1])
        plan = result.actions.detach().cpu().numpy()
        gaps[i] = _model_gap(model, env, task.start_state, result)
        noisy = plan + rng.normal(0.0, action_noise, size=plan.shape)
        actions[i, :horizon] = np.clip(noisy, low, high)
        states[i, 0] = task.start_state
    for t in range(length):  # every episode at once: the world steps batches
        states[:, t + 1] = env.step_states(states[:, t], actions[:, t])
    return {
        "states": torch.from_numpy(states).float(),
        "actions": torch.from_numpy(actions),
        "gaps": torch.from_numpy(gaps).float(),
    }


def _model_gap(model: nn.Module, env: PointEnv, start_state: np.ndarray, plan: Plan) -> float:
    """World units between where the model says the plan ends and where it really ends."""
    end = positions(model, plan.rollout[-1:])
    if end is None:
        return float("nan")
    return float(np.linalg.norm(end[0, :2] - execute(env, start_state, plan.actions)[:2]))
