"""Long-horizon fidelity of a world model in its reference world: the errors planners exploit.

One-step accuracy says little about open-loop plans of 50-80 steps. These checks measure, in
world units through the model's ``project()`` head, the three errors that made long-horizon
plans fail in the true world (README, benchmark section):

- ``rollout_error_K``: open-loop position error after K steps of random exploration actions
  (errors compound along a plan);
- ``idle_drift``: how far the predicted agent moves over ``idle_steps`` zero actions (a plan
  with spare steps must stand still somewhere; the true agent does not move);
- ``wall_leak``: predicted position error after pushing ``push_steps`` steps into a wall that
  stops the true agent (a leaky wall is a shortcut that only exists in the model).

Each figure is the median over many starts, with the 90th percentile beside it. The states are
drawn with a fixed seed from the world's own samplers, so two models of the same world are
compared on the same starts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from grasp_ros.envs import PointEnv, random_rollouts
from grasp_ros.models.base import to_tensor

#: Rollout lengths reported by :func:`fidelity` (the benchmark's horizons).
ROLLOUT_STEPS = (20, 40, 60, 80)


@torch.no_grad()
def _rollout_positions(
    model: nn.Module, env: PointEnv, starts: np.ndarray, actions: np.ndarray
) -> np.ndarray:
    """Predicted ``(x, y)`` ``[N, T + 1, 2]``: encode the start frames, roll the model out."""
    z = model.encode(to_tensor(env.render_states(starts)))
    out = [model.project(z)[:, :2]]
    a = torch.from_numpy(np.asarray(actions, dtype=np.float32))
    for t in range(a.shape[1]):
        z = model(z, a[:, t])
        out.append(model.project(z)[:, :2])
    return torch.stack(out, 1).numpy()


def _true_positions(env: PointEnv, starts: np.ndarray, actions: np.ndarray) -> np.ndarray:
    states = [starts]
    for t in range(actions.shape[1]):
        states.append(env.step_states(states[-1], actions[:, t]))
    return np.stack(states, 1)[..., :2]


def _stats(name: str, errors: np.ndarray) -> dict[str, float]:
    return {name: float(np.median(errors)), f"{name}_p90": float(np.percentile(errors, 90))}


def fidelity(
    model: nn.Module,
    env: PointEnv,
    samples: int = 300,
    seed: int = 20_000,
    idle_steps: int = 40,
    push_steps: int = 10,
) -> dict[str, float]:
    """The long-horizon errors above, in world units (the model needs ``project``)."""
    if not callable(getattr(model, "project", None)):
        raise ValueError("fidelity needs a model with project() (positions in world units)")
    model.eval()
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}

    states, actions = random_rollouts(env, samples, max(ROLLOUT_STEPS), seed)
    pred = _rollout_positions(model, env, states[:, 0], actions)
    err = np.linalg.norm(pred - states[..., :2], axis=-1)
    for k in ROLLOUT_STEPS:
        out.update(_stats(f"rollout_error_{k}", err[:, k]))

    starts = env.random_states(rng, samples)
    idle = np.zeros((samples, idle_steps, env.action_dim), dtype=np.float32)
    pred = _rollout_positions(model, env, starts, idle)
    out.update(_stats("idle_drift", np.linalg.norm(pred[:, -1] - pred[:, 0], axis=-1)))

    out.update(_stats("wall_leak", _wall_leak(model, env, rng, samples, push_steps)))
    return out


def _wall_leak(
    model: nn.Module, env: PointEnv, rng: np.random.Generator, samples: int, push_steps: int
) -> np.ndarray:
    """Predicted-vs-true end error for full-speed pushes the true world blocks early.

    Candidates push in a random direction for ``push_steps`` steps; a push counts when the true
    agent covers less than a third of the free distance (a wall stopped it for most of the push).
    """
    found_s, found_a, found_end = [], [], []
    for _ in range(50):
        starts = env.random_states(rng, 4 * samples)
        angle = rng.uniform(0, 2 * np.pi, size=len(starts))
        a = np.stack([np.cos(angle), np.sin(angle)], 1)
        a = (a / np.abs(a).max(1, keepdims=True)).astype(np.float32)
        pushes = np.repeat(a[:, None], push_steps, axis=1)
        true = _true_positions(env, starts, pushes)
        free = np.linalg.norm(env.step_states(starts, a)[:, :2] - starts[:, :2], axis=1)
        moved = np.linalg.norm(true[:, -1] - true[:, 0], axis=1)
        blocked = moved < free * push_steps / 3
        found_s.append(starts[blocked])
        found_a.append(pushes[blocked])
        found_end.append(true[blocked, -1])
        if sum(len(s) for s in found_s) >= samples:
            break
    starts, pushes = np.concatenate(found_s)[:samples], np.concatenate(found_a)[:samples]
    pred = _rollout_positions(model, env, starts, pushes)
    return np.linalg.norm(pred[:, -1] - np.concatenate(found_end)[:samples], axis=-1)
