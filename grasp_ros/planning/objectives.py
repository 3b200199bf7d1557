"""The cost of a plan: how far a predicted latent is from the goal, in one place.

Every planner scores its candidates with an :class:`Objective`, the runtime's goal test asks
the same objective whether the robot has arrived, and ``Plan.cost`` is its terminal cost, so a
new cost (a learned cost-to-go, a route-aware distance) is one new subclass here and reaches
all of them. The planner takes its objective from the ``objective`` argument, else from the
model's ``objective`` attribute (a model trained with its own cost carries it), else
:class:`LatentMSE`, the paper's cost and the only one today.

Shapes: ``goal`` is one latent ``[*L]``; ``z`` is a batch of latents ``[*B, *L]`` with any
number of leading batch dimensions (population, time); costs come back as ``[*B]``.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn


def latent_mse(a: torch.Tensor, b: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """Squared error averaged over latent elements, so costs do not scale with latent size."""
    dims = tuple(range(batch_dims, a.dim()))
    return (a - b).pow(2).mean(dims) if dims else (a - b).pow(2)


class Objective(abc.ABC):
    """A goal cost over latents, batched over leading dimensions (see the module docstring)."""

    #: How the cost reads in messages and reports ("goal reached: latent MSE 0.001 < ...").
    name: ClassVar[str]

    @abc.abstractmethod
    def terminal(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Cost of ending at ``z`` ``[*B, *L]`` when the goal is ``goal`` ``[*L]``: ``[*B]``."""

    def per_step(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """GRASP's dense goal term on the predicted states ``[P, T, *L]``: ``[P, T]``.

        The terminal cost at every step unless a subclass knows better (a cost-to-go, say,
        whose value at an intermediate state is not a distance to the goal).
        """
        return self.terminal(z, goal)


class LatentMSE(Objective):
    """Mean squared latent error to the goal (Psenka et al., 2026; DINO-WM's objective)."""

    name = "latent MSE"

    def terminal(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return latent_mse(z, goal, z.dim() - goal.dim())


def objective_for(model: nn.Module) -> Objective:
    """The model's own objective when it carries one, else :class:`LatentMSE`."""
    own = getattr(model, "objective", None)
    return own if isinstance(own, Objective) else LatentMSE()
