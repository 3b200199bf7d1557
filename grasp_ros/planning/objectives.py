"""The cost of a plan: how far a predicted latent is from the goal, in one place.

Every planner scores its candidates with an :class:`Objective`, the runtime's goal test asks
the same objective whether the robot has arrived, and ``Plan.cost`` is its terminal cost, so a
new cost (a learned cost-to-go, a route-aware distance) is one new subclass here and reaches
all of them. The planner takes its objective from the ``objective`` argument, else from the
model's ``objective`` attribute (a model trained with its own cost carries it), else
:class:`CostToGo` when the model carries a learned cost-to-go head (``model.cost_to_go``), else
:class:`LatentMSE`, the paper's cost. :func:`make_objective` builds one by name (the runtime's
``objective`` parameter).

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

    def path_penalty(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """A cost on the whole predicted path ``[P, T+1, *L]``: ``[P]`` (none by default)."""
        return states.new_zeros(states.shape[0])

    def trajectory(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """What planners rank rollouts ``[P, T+1, *L]`` by: terminal cost plus path penalty."""
        return self.terminal(states[:, -1], goal) + self.path_penalty(states, goal)

    def dense(self, chain: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """GRASP's whole goal term on ``s_0`` and the predictions ``[P, T+1, *L]``: the
        per-step cost of the predictions plus the path penalty, summed (one number)."""
        return self.per_step(chain[:, 1:], goal).sum() + self.path_penalty(chain, goal).sum()


class LatentMSE(Objective):
    """Mean squared latent error to the goal (Psenka et al., 2026; DINO-WM's objective)."""

    name = "latent MSE"

    def terminal(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return latent_mse(z, goal, z.dim() - goal.dim())


class CostToGo(Objective):
    """Latent MSE plus ``weight`` x a learned cost-to-go, both in latent MSE units.

    ``head(z, goal)`` estimates the full-speed steps from ``z`` to the goal along the way the
    robot can go (:mod:`grasp_ros.models.cost_to_go`); ``(steps * head.step_length)^2`` is the
    squared length of that way in the latent's RMS units, equal to the latent MSE where the
    straight line is free and larger where a wall is in the way. So the cost falls along the
    route through a door, where the latent MSE alone is lowest at the wall face, and it keeps
    the latent MSE's scale (``goal_weight`` and ``goal_threshold`` keep their meaning). The
    latent term stays for precision at the goal, where the head's estimate is coarse.
    """

    name = "latent MSE + cost-to-go"

    def __init__(
        self, head: nn.Module, weight: float = 1.0, slack: float = 1.5, leak_weight: float = 10.0
    ) -> None:
        self.head = head
        self.weight = float(weight)
        self.slack = float(slack)
        self.leak_weight = float(leak_weight)

    def terminal(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        mse = latent_mse(z, goal, z.dim() - goal.dim())
        if self.weight == 0:
            return mse
        steps = self.head(z, goal)
        return mse + self.weight * (steps * self.head.step_length).pow(2)

    def path_penalty(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """Penalise predicted steps that shorten the way by more than ``slack`` steps.

        The head counts the steps of the shortest way, so along any path the robot can really
        take it falls by at most about one per step. A prediction that falls faster has passed
        where the robot cannot: a wall the world model leaks through (measured in the Maze:
        plans straight through a wall block, the robot pushing against it for 30 ticks).
        """
        if self.weight == 0 or self.leak_weight == 0:
            return super().path_penalty(states, goal)
        return self._leak(self.head(states, goal))

    def _leak(self, steps: torch.Tensor) -> torch.Tensor:
        excess = (steps[:, :-1] - steps[:, 1:] - self.slack).clamp(min=0)
        return self.leak_weight * (excess * self.head.step_length).pow(2).sum(1)

    def dense(self, chain: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """As the base class, with one pass of the head over the chain instead of two."""
        if self.weight == 0 or self.leak_weight == 0:
            return super().dense(chain, goal)
        steps = self.head(chain, goal)
        mse = latent_mse(chain[:, 1:], goal, 2)
        cost = mse + self.weight * (steps[:, 1:] * self.head.step_length).pow(2)
        return cost.sum() + self._leak(steps).sum()


#: Names for :func:`make_objective` ('auto': the model's own choice, see the module docstring).
OBJECTIVES = ("auto", "latent_mse", "cost_to_go")


def objective_for(model: nn.Module) -> Objective:
    """The model's own objective, else its cost-to-go head's, else :class:`LatentMSE`."""
    own = getattr(model, "objective", None)
    if isinstance(own, Objective):
        return own
    head = getattr(model, "cost_to_go", None)
    return CostToGo(head) if head is not None else LatentMSE()


def make_objective(
    name: str,
    model: nn.Module,
    cost_to_go_weight: float = 1.0,
    slack: float = 1.5,
    leak_weight: float = 10.0,
) -> Objective:
    """The objective called ``name`` (one of :data:`OBJECTIVES`) for ``model``."""
    head = getattr(model, "cost_to_go", None)
    if name == "latent_mse":
        return LatentMSE()
    if name == "cost_to_go" or (name == "auto" and head is not None):
        if head is None:
            raise ValueError(
                "objective 'cost_to_go' needs a model with a learned cost-to-go head "
                "(model.cost_to_go; python -m grasp_ros.research.cost_to_go adds one)"
            )
        return CostToGo(head, cost_to_go_weight, slack, leak_weight)
    if name == "auto":
        return objective_for(model)
    raise ValueError(f"unknown objective {name!r}; choose one of {list(OBJECTIVES)}")
