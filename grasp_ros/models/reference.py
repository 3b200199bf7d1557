"""The reference world model shipped with grasp_ros, trained on the reference worlds.

Latents are ``latent_dim``-vectors (64 by default): large enough that planning in them is
planning in a learned, redundant space rather than in the 2-D position, small enough that the
dynamics is an MLP fast enough for GRASP's batched calls (population x horizon latents per call,
hundreds of calls per second on a CPU).

- ``encode``: a small strided CNN, image to latent.
- ``forward``: residual MLP dynamics, ``z' = z + f([z, a])`` (a blocked move is ``f = 0``).
  With ``action_gated`` the MLP outputs a matrix ``M(z, a)`` and ``f = M a``, so a zero action
  leaves the latent exactly where it is: a robot told to stand still does not drift in the
  model (without it, 40 zero actions moved the predicted agent 3.5-4 units).
- ``decode``: transposed CNN, latent to image, for pictures of GRASP's virtual states.
- ``project``: MLP head, latent to the agent position ``(x, y, 0)`` in world units (image
  column and row scaled to the world), for RViz markers.
- ``cost_to_go`` (optional, ``None`` in checkpoints trained without it): the learned
  steps-to-goal head of :mod:`grasp_ros.models.cost_to_go`, which planners use as their goal
  cost when present.

:func:`grasp_ros.research.train.main` trains it so that latent distance tracks state distance
(smooth goal costs for the planners) and multi-step predictions stay accurate.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from grasp_ros.models.base import WorldModel
from grasp_ros.models.cost_to_go import CostToGoHead

FORMAT = "grasp_ros.reference/1"
#: The CNNs work at this resolution; inputs are area-resampled to it (a CPU-speed choice: the
#: dot's sub-pixel position survives in the averaged intensities).
WORK_SIZE = 32


class ReferenceWorldModel(WorldModel):
    """CNN encoder/decoder around a residual MLP dynamics on a vector latent.

    Args:
        image_size: side of the square images ``decode`` returns (and ``encode`` expects).
        latent_dim: size of the latent vector.
        action_dim: size of an action.
        channels: channels of the first conv layer (doubled by each of the next two).
        hidden_dim, depth: width and number of hidden layers of the dynamics MLP.
        world_size: side of the world in world units (``project`` scales to it).
        env_name: the reference world the model was trained on (``''`` if none).
        action_low, action_high: the action box the model was trained on.
        action_gated: dynamics ``f(z, a) = M(z, a) a``, exactly still at ``a = 0`` (for
            worlds where nothing moves unless the robot acts, like the reference worlds).
    """

    def __init__(
        self,
        image_size: int = 64,
        latent_dim: int = 64,
        action_dim: int = 2,
        channels: int = 16,
        hidden_dim: int = 256,
        depth: int = 3,
        world_size: float = 64.0,
        env_name: str = "",
        action_low: float | list[float] = -1.0,
        action_high: float | list[float] = 1.0,
        action_gated: bool = False,
    ) -> None:
        super().__init__((latent_dim,), action_dim, action_low, action_high)
        if image_size < WORK_SIZE:
            raise ValueError(f"image_size must be at least {WORK_SIZE}, got {image_size}")
        self.config: dict[str, Any] = {
            "image_size": image_size,
            "latent_dim": latent_dim,
            "action_dim": action_dim,
            "channels": channels,
            "hidden_dim": hidden_dim,
            "depth": depth,
            "world_size": world_size,
            "env_name": env_name,
            "action_low": action_low,
            "action_high": action_high,
            "action_gated": action_gated,
        }
        self.image_size = image_size
        self.env_name = env_name
        self.world_size = world_size
        self.action_gated = action_gated
        c = channels
        flat = 4 * c * 4 * 4
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1),
            nn.SiLU(),
            nn.Conv2d(c, 2 * c, 4, 2, 1),
            nn.SiLU(),
            nn.Conv2d(2 * c, 4 * c, 4, 2, 1),
            nn.SiLU(),
            nn.Flatten(),
            nn.Linear(flat, 256),
            nn.SiLU(),
            nn.Linear(256, latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 256),
            nn.SiLU(),
            nn.Linear(256, flat),
            nn.SiLU(),
            nn.Unflatten(1, (4 * c, 4, 4)),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1),
            nn.SiLU(),
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1),
            nn.SiLU(),
            nn.ConvTranspose2d(c, 3, 4, 2, 1),
        )
        layers: list[nn.Module] = []
        width = latent_dim + action_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden_dim), nn.SiLU()]
            width = hidden_dim
        last = nn.Linear(width, latent_dim * (action_dim if action_gated else 1))
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.dynamics = nn.Sequential(*layers, last)
        self.head = nn.Sequential(nn.Linear(latent_dim, 128), nn.SiLU(), nn.Linear(128, 2))
        self.cost_to_go: CostToGoHead | None = None

    def representation_parameters(self) -> list[nn.Parameter]:
        """Encoder, decoder and position head: what training's stage 1 fits."""
        return [*self.encoder.parameters(), *self.decoder.parameters(), *self.head.parameters()]

    def dynamics_parameters(self) -> list[nn.Parameter]:
        """The dynamics MLP: what stage 2 fits on frozen latents."""
        return list(self.dynamics.parameters())

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(images, size=(WORK_SIZE, WORK_SIZE), mode="area")
        return self.encoder(small * 2 - 1)

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        delta = self.dynamics(torch.cat([latents, actions], dim=-1))
        if self.action_gated:
            gain = delta.unflatten(-1, (latents.shape[-1], actions.shape[-1]))
            delta = (gain * actions.unsqueeze(-2)).sum(-1)
        return latents + delta

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(latents))

    def decode_logits(self, latents: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid decoder output at ``image_size`` (training uses it for a stable loss)."""
        size = (self.image_size, self.image_size)
        return F.interpolate(self.decoder(latents), size=size, mode="bilinear", align_corners=False)

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        xy = self.head(latents) * self.world_size
        return torch.cat([xy, torch.zeros_like(xy[:, :1])], dim=1)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A ``torch.load(..., weights_only=True)``-safe dict: format, config, weights, extras.

        The cost-to-go head, when present, is its own ``cost_to_go`` entry, so the world
        model's ``state_dict`` is the same with or without it.
        """
        state = {
            k: v.detach().cpu().clone()
            for k, v in self.state_dict().items()
            if not k.startswith("cost_to_go.")
        }
        ckpt = {"format": FORMAT, "config": dict(self.config), "state_dict": state}
        if self.cost_to_go is not None:
            ckpt["cost_to_go"] = self.cost_to_go.checkpoint()
        return {**ckpt, **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> ReferenceWorldModel:
        """Rebuild a model from :meth:`checkpoint`'s dict (strict: every weight must match);
        checkpoints without a ``cost_to_go`` entry load with ``cost_to_go = None``.

        The network the config declares is first built on the meta device (no memory) and
        compared with the weights the file holds, so a config asking for a huge network is
        refused before anything is allocated.
        """
        with torch.device("meta"):
            declared = {k: tuple(v.shape) for k, v in cls(**ckpt["config"]).state_dict().items()}
        held = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
        if declared != held:
            wrong = next(k for k in (*declared, *held) if declared.get(k) != held.get(k))
            raise ValueError(
                f"its config declares {_count(declared):,} weights but holds {_count(held):,} "
                f"(first difference: {wrong}, declared {declared.get(wrong)}, held "
                f"{held.get(wrong)}); refused before building the network"
            )
        model = cls(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        if "cost_to_go" in ckpt:
            model.cost_to_go = CostToGoHead.from_checkpoint(ckpt["cost_to_go"])
        return model


def _count(shapes: dict[str, tuple[int, ...]]) -> int:
    return sum(math.prod(shape) for shape in shapes.values())
