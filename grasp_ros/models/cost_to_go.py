"""A learned cost-to-go: how many steps the robot needs from latent ``z`` to latent ``g``.

The paper's goal cost, the latent distance to the goal, is smallest at the face of a wall that
stands between robot and goal, so every planner that follows it pushes into the wall (measured:
closed-loop GRASP 10% at H=40 on the Wall world). This head estimates the number of
full-speed steps along the way the robot can actually go, so it falls along the route through a
door and rises where the straight line is blocked. It is a small MLP on two frozen latents,
trained by ``grasp_ros.research.cost_to_go`` from the world model's own exploration data (graph
distances over observed transitions, distilled), and shipped inside the model checkpoint.

Planners use it through :class:`grasp_ros.planning.objectives.CostToGo` as terminal cost and
in GRASP's dense goal term; ``step_length`` converts steps to the latent's RMS units, so that
cost is on the same scale as the latent MSE (``(steps * step_length)^2`` equals the latent MSE
where the straight line is free).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class CostToGoHead(nn.Module):
    """``d(z, g) >= 0`` in steps, for latents ``[*B, D]`` and a goal ``[D]`` or ``[*B, D]``.

    Args:
        latent_dim: size of a latent vector.
        hidden_dim, depth: width and number of hidden layers of the MLP.
        step_length: RMS latent distance of one full-speed step (measured on the data).
    """

    def __init__(
        self, latent_dim: int, hidden_dim: int = 256, depth: int = 3, step_length: float = 1.0
    ) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "latent_dim": latent_dim,
            "hidden_dim": hidden_dim,
            "depth": depth,
            "step_length": step_length,
        }
        self.step_length = float(step_length)
        layers: list[nn.Module] = []
        width = 3 * latent_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), nn.SiLU()]
            width = hidden_dim
        self.mlp = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        goal = goal.expand_as(z)
        x = torch.cat([z, goal, z - goal], dim=-1)
        return F.softplus(self.mlp(x)[..., 0])

    def checkpoint(self) -> dict[str, Any]:
        """``config`` and weights, for the ``cost_to_go`` entry of a model checkpoint."""
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        return {"config": dict(self.config), "state_dict": state}

    @classmethod
    def from_checkpoint(cls, entry: dict[str, Any]) -> CostToGoHead:
        """The trained head, frozen: planners take gradients through it, never into it."""
        head = cls(**entry["config"])
        head.load_state_dict(entry["state_dict"])
        return head.requires_grad_(False).eval()
