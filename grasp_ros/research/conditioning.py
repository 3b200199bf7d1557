"""How well conditioned gradient descent through a world model's serial rollout is.

GRASP's premise (Psenka et al., 2026) is that the serial rollout ``s_T = F^T(s_0, a)`` of a
learned model is ill-conditioned: the gradient that GD takes passes through every state
Jacobian ``D_s F``, so it explodes or vanishes over 40-80 steps and its size differs wildly
between early and late actions. Whether that holds is a property of the model, measured here on
rollouts of random exploration actions from encoded start frames:

- ``jacobian_step_*``: spectral norm of one step's state Jacobian ``D_s F(s_t, a_t)``, over all
  steps and rollouts (median, 90th percentile, largest);
- ``jacobian_rollout_*``: spectral norm of ``d s_T / d s_0`` over the whole rollout (median,
  largest over rollouts);
- ``grad_spread_*``: for GD's terminal loss ``||F^T(s_0, a) - g||^2`` (``g``: the encoded true
  end frame), the ratio of the largest to the smallest per-step action gradient norm
  ``||dL/da_t||`` within one rollout (median, largest over rollouts).

Spectral norms come from power iteration on ``J^T J`` with forward-mode (``jvp``) and
reverse-mode (``vjp``) products, batched over rollouts; attention runs on PyTorch's math
kernel here because the fused CPU kernel has no forward-mode derivative.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import jvp, vjp
from torch.nn.attention import SDPBackend, sdpa_kernel

from grasp_ros.envs import random_rollouts
from grasp_ros.models.base import to_tensor


def _spectral_norm(
    f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, iters: int, seed: int
) -> torch.Tensor:
    """Per-sample largest singular value of the Jacobian of ``f`` (batched, sample-wise) at
    ``x`` ``[B, ...]``: ``[B]``. ``f`` must treat batch elements independently."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(x.shape, generator=g, dtype=x.dtype)
    _, pullback = vjp(f, x)
    sigma = torch.zeros(len(x))
    for _ in range(iters):
        v = v / v.flatten(1).norm(dim=1).clamp(min=1e-30).view(-1, *[1] * (x.dim() - 1))
        _, jv = jvp(f, (x,), (v,))
        sigma = jv.flatten(1).norm(dim=1)
        v = pullback(jv)[0]
    return sigma


def conditioning(
    model: nn.Module,
    env: Any,
    horizon: int = 50,
    rollouts: int = 16,
    seed: int = 30_000,
    iters: int = 20,
) -> dict[str, float]:
    """The figures of the module docstring for ``model`` in its world ``env``.

    ``env`` needs ``render_states`` and the batched random exploration of
    :func:`grasp_ros.envs.random_rollouts` (``random_states``, ``step_states``).
    """
    model.eval()
    states, actions = random_rollouts(env, rollouts, horizon, seed)
    a = torch.from_numpy(actions).float()
    with torch.no_grad():
        z0 = model.encode(to_tensor(env.render_states(states[:, 0])))
        goal = model.encode(to_tensor(env.render_states(states[:, -1])))
    frozen = [p.requires_grad_(False) for p in model.parameters() if p.requires_grad]
    try:
        with sdpa_kernel(SDPBackend.MATH):
            out = _measure(model, z0, a, goal, iters, seed)
    finally:
        for p in frozen:
            p.requires_grad_(True)
    out["conditioning_horizon"] = float(horizon)
    out["conditioning_rollouts"] = float(rollouts)
    return out


def _measure(
    model: nn.Module,
    z0: torch.Tensor,
    a: torch.Tensor,
    goal: torch.Tensor,
    iters: int,
    seed: int,
) -> dict[str, float]:
    horizon = a.shape[1]
    with torch.no_grad():
        chain = [z0]
        for t in range(horizon):
            chain.append(model(chain[-1], a[:, t]))
    visited = torch.stack(chain[:-1], 1).flatten(0, 1)
    flat_a = a.flatten(0, 1)
    step = _spectral_norm(lambda z: model(z, flat_a), visited, iters, seed).numpy()

    def rollout(z: torch.Tensor) -> torch.Tensor:
        for t in range(horizon):
            z = model(z, a[:, t])
        return z

    whole = _spectral_norm(rollout, z0, iters, seed + 1).numpy()

    actions = a.clone().requires_grad_(True)
    z = z0
    for t in range(horizon):
        z = model(z, actions[:, t])
    (z - goal).pow(2).flatten(1).mean(1).sum().backward()
    norms = actions.grad.norm(dim=-1).clamp(min=1e-30)
    spread = (norms.max(1).values / norms.min(1).values).numpy()
    return {
        "jacobian_step_median": float(np.median(step)),
        "jacobian_step_p90": float(np.percentile(step, 90)),
        "jacobian_step_max": float(step.max()),
        "jacobian_rollout_median": float(np.median(whole)),
        "jacobian_rollout_max": float(whole.max()),
        "grad_spread_median": float(np.median(spread)),
        "grad_spread_max": float(spread.max()),
    }


def conditioning_rows(m: dict[str, float]) -> str:
    """The model card's table rows for the figures :func:`conditioning` measured."""
    rows = [
        ("one step, spectral norm of D_s F (median / p90 / largest)", "jacobian_step", True),
        ("whole rollout, spectral norm of d s_T / d s_0 (median / largest)", "jacobian_rollout"),
        (
            "GD gradient size, largest / smallest step in one rollout (median / largest)",
            "grad_spread",
        ),
    ]
    lines = []
    for label, key, *p90 in rows:
        mid = f" / {m[key + '_p90']:.2f}" if p90 else ""
        lines.append(f"| {label} | {m[key + '_median']:.2f}{mid} / {m[key + '_max']:.2f} |")
    return "\n".join(lines)
