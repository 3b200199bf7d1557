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
from grasp_ros.io.frames import to_map
from grasp_ros.models.base import has_projection
from grasp_ros.planning import Plan


def positions(model: nn.Module, latents: torch.Tensor) -> np.ndarray | None:
    """``project()`` of a latent sequence ``[N, *L]`` as ``[N, 3]`` float32, or None."""
    if not has_projection(model):
        return None
    with torch.no_grad():
        return model.project(latents).detach().cpu().numpy().astype(np.float32)


def trajectory_fields(
    plan: Plan, model: nn.Module, *, latents: bool = True, world_scale: float | None = None
) -> dict[str, Any]:
    """VirtualTrajectory fields (all but the header) for ``plan``.

    Without ``latents`` the two latent arrays are empty: the plan message stays a few kB for
    any latent size (the planner node's default, ``plan_latents``). With ``world_scale`` the
    positions are REP-103 metres (`grasp_ros.io.frames.to_map`); without, the model's own units, as
    the offline tools draw them on the image.
    """
    empty = np.zeros(0, np.float32)
    xyz = [positions(model, plan.states), positions(model, plan.rollout)]
    if world_scale is not None:
        xyz = [None if p is None else to_map(p, world_scale) for p in xyz]
    return {
        "planner": plan.planner,
        "latent_shape": [int(d) for d in model.latent_shape],
        "action_dim": int(model.action_dim),
        "virtual_states": _numpy(plan.states) if latents else empty,
        "rollout": _numpy(plan.rollout) if latents else empty,
        "actions": _numpy(plan.actions),
        "positions": xyz[0],
        "rollout_positions": xyz[1],
        "cost": float(plan.cost),
        "iterations": int(plan.iterations),
        "solve_time": float(plan.solve_time),
        "warm_started": bool(plan.warm_started),
    }


def _numpy(values: torch.Tensor) -> np.ndarray:
    return values.detach().cpu().numpy().astype(np.float32)


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


def action_fields(cmd: Command) -> dict[str, Any]:
    """ActionCommand fields (all but the header): the action to apply now for ``dt`` seconds,
    and the chunk of the plan's first ``action_chunk`` actions it starts (``dt`` apart)."""
    return {
        "action": np.asarray(cmd.action, dtype=np.float32),
        "dt": float(cmd.dt),
        "step_index": 0,
        "chunk": np.asarray(cmd.actions, dtype=np.float32),
    }
