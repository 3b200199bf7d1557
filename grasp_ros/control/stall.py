"""Stall detection: when warm-started replanning has stopped getting the robot anywhere.

A warm start refines last tick's plan, so a plan that leads into a dead end (a wall face the
model thinks it can pass, a corner of the maze) is refined for ever while the robot pushes
against the obstacle. Two signs say so, each counted in consecutive ticks:

- **no progress**: the cost of where the robot *is* (the objective's terminal cost of the
  current observation) has not fallen by ``progress`` (a fraction) below its best since the
  last fresh plan;
- **blocked**: the robot moved (latent RMS distance between consecutive observations) less than
  ``motion`` times what the last plan predicted for its first step.

After ``ticks`` such ticks the runtime plans the next tick cold, from fresh sampled starts, and
the counts start again (tested on a simulated clock).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

_PARAMS = ("ticks", "progress", "motion")


@dataclass
class StallDetector:
    """Counts ticks without progress or motion (see the module docstring)."""

    ticks: int = 10
    progress: float = 0.02
    motion: float = 0.25
    best: float = math.inf
    still: int = 0
    blocked: int = 0
    last: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the history (a new goal, a fresh plan)."""
        self.best, self.still, self.blocked = math.inf, 0, 0

    def observe(
        self, params: Mapping[str, Any], cost: float, latent: torch.Tensor, fresh: bool, plan: Any
    ) -> bool:
        """:meth:`update` from the runtime's view: its ``stall_*`` parameters, the cost and
        latent of the current observation (``fresh``: a new image since the last tick) and
        the last plan (``None``: none), whose rollout predicted the first step."""
        self.ticks, self.progress, self.motion = (params[f"stall_{k}"] for k in _PARAMS)
        moved = expected = None
        if fresh and self.last is not None:
            moved = float((latent - self.last).pow(2).mean().sqrt())
            if plan is not None:
                expected = float((plan.rollout[1] - plan.rollout[0]).pow(2).mean().sqrt())
        self.last = latent
        return self.update(cost, moved, expected)

    def update(self, cost: float, moved: float | None, expected: float | None) -> bool:
        """Record one tick; True when the next plan should start cold (counts then restart).

        Args:
            cost: the objective's cost of the current observation.
            moved: RMS latent distance from the previous tick's observation (``None``: no new
                observation since then).
            expected: the previous plan's predicted first step, same units (``None``: none).
        """
        if self.ticks <= 0:
            return False
        if cost < self.best * (1.0 - self.progress):
            self.best, self.still = cost, 0
        else:
            self.still += 1
        if moved is not None:  # no new observation: no evidence either way
            pushing = expected is not None and expected > 0 and moved < self.motion * expected
            self.blocked = self.blocked + 1 if pushing else 0
        if self.still >= self.ticks or self.blocked >= self.ticks:
            self.reset()
            return True
        return False
