"""Random piecewise-constant plans: where sampled starts and re-seeded members come from."""

from __future__ import annotations

import torch


def random_plans(
    samples: int,
    horizon: int,
    action_dim: int,
    low: torch.Tensor | None,
    high: torch.Tensor | None,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """``[samples, horizon, action_dim]`` plans that each hold three random actions in turn.

    Switch times are uniform, so each plan travels: gradient planners started from the best
    few begin in several basins (a detour through a door, say) instead of only on the way
    straight to the goal, which runs into whatever lies between. Actions are uniform in the
    box ``[low, high]``, or standard normal when the model has no bounds.
    """
    shape = (samples, 3, action_dim)
    if low is not None and high is not None:
        segments = low + torch.rand(shape, generator=gen, device=device) * (high - low)
    else:
        segments = torch.randn(shape, generator=gen, device=device)
    cuts = torch.rand(samples, 2, generator=gen, device=device).sort(1).values * horizon
    t = torch.arange(horizon, device=device)
    which = (t[None, :] >= cuts[:, :1]).long() + (t[None, :] >= cuts[:, 1:]).long()
    return torch.gather(segments, 1, which[..., None].expand(-1, -1, action_dim))
