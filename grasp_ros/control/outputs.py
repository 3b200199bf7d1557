"""What the runtime publishes, as plain values: one mapping per message, shared by all callers.

The ROS node fills rclpy messages from these, the demo and the replay tool fill rosbags
messages (`grasp_ros.io.messages`); the field names are those of ``msg/*.msg``, so every
publisher reports the same numbers the same way.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from grasp_ros.control.runtime import Command, RuntimeStats
from grasp_ros.models.base import has_projection
from grasp_ros.planning import Plan


def positions(model: nn.Module, latents: torch.Tensor) -> np.ndarray | None:
    """``project()`` of a latent sequence ``[N, *L]`` as ``[N, 3]`` float32, or None."""
    if not has_projection(model):
        return None
    with torch.no_grad():
        return model.project(latents).detach().cpu().numpy().astype(np.float32)


def trajectory_fields(plan: Plan, model: nn.Module) -> dict[str, Any]:
    """VirtualTrajectory fields (all but the header) for ``plan``."""
    return {
        "planner": plan.planner,
        "latent_shape": [int(d) for d in model.latent_shape],
        "action_dim": int(model.action_dim),
        "virtual_states": plan.states.detach().cpu().numpy().astype(np.float32),
        "rollout": plan.rollout.detach().cpu().numpy().astype(np.float32),
        "actions": plan.actions.detach().cpu().numpy().astype(np.float32),
        "positions": positions(model, plan.states),
        "rollout_positions": positions(model, plan.rollout),
        "cost": float(plan.cost),
        "iterations": int(plan.iterations),
        "solve_time": float(plan.solve_time),
        "warm_started": bool(plan.warm_started),
    }


def plan_stamp(cmd: Command) -> float:
    """Header stamp of a plan message: the time of the camera image it was computed from.

    VirtualTrajectory.msg states it so a viewer can put a plan next to the image it answers;
    the tick time is used when no image has arrived yet (``image_age`` is NaN).
    """
    return cmd.stamp - cmd.image_age if math.isfinite(cmd.image_age) else cmd.stamp


def status_fields(cmd: Command, stats: RuntimeStats) -> dict[str, Any]:
    """PlannerStatus fields (all but the header) for one tick."""
    return {
        "status": int(cmd.status),
        "message": cmd.message,
        "tick": int(cmd.tick),
        "solve_time": float(cmd.solve_time),
        "iterations": int(cmd.iterations),
        "cost": float(cmd.cost),
        "deadline_misses": int(stats.deadline_misses),
        "image_age": float(cmd.image_age),
    }


def action_fields(cmd: Command, step_index: int = 0) -> dict[str, Any]:
    """ActionCommand fields (all but the header): the action to apply for ``dt`` seconds."""
    return {
        "action": np.asarray(cmd.actions[step_index], dtype=np.float32),
        "dt": float(cmd.dt),
        "step_index": int(step_index),
    }
