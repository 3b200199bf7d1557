"""Analytic, differentiable world models for tests and examples: no training, exact dynamics.

`PointWallModel` is a point in the square [-1, 1]^2 split by a vertical wall at x = 0 with a
door around ``door_y``. Its latent is the position lifted through a fixed random nonlinear map,
``z = [p, tanh(W p + b)]``, reshaped to ``latent_shape`` (a vector, or ``[N, D]`` tokens), so a
planner sees a high-dimensional, curved latent and never the plain 2-D position. A move that
would cross the wall outside the door stops at the wall face; the door's edge is smooth
(``softness``) so the action gradient carries a little information about where the door is.
"""

from __future__ import annotations

import math

import torch

from .base import WorldModel


class PointWallModel(WorldModel):
    """A point agent, a wall with a door, and a nonlinear latent lift (see module docstring)."""

    def __init__(
        self,
        latent_shape: tuple[int, ...] = (32,),
        door_y: float = 0.0,
        door_half_width: float = 0.2,
        speed: float = 0.1,
        wall: bool = True,
        softness: float = 0.05,
        seed: int = 0,
    ) -> None:
        super().__init__(latent_shape, 2, -1.0, 1.0)
        size = math.prod(self.latent_shape)
        if size < 3:
            raise ValueError("latent_shape must hold at least 3 elements")
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("lift_w", torch.randn(size - 2, 2, generator=gen) * 1.5)
        self.register_buffer("lift_b", torch.randn(size - 2, generator=gen) * 0.5)
        self.door_y, self.door_half_width = door_y, door_half_width
        self.speed, self.wall, self.softness = speed, wall, softness
        self.wall_margin = 0.02

    def lift(self, positions: torch.Tensor) -> torch.Tensor:
        """Positions ``[B, 2]`` to latents ``[B, *latent_shape]``."""
        feats = torch.tanh(positions @ self.lift_w.T + self.lift_b)
        return torch.cat([positions, feats], -1).reshape(-1, *self.latent_shape)

    def position(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents to positions ``[B, 2]`` (the first two latent elements)."""
        return latents.reshape(latents.shape[0], -1)[:, :2]

    def move(self, positions: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """True dynamics on positions: step, stop at the wall outside the door, stay in bounds."""
        new = positions + self.speed * actions
        if self.wall:
            side = torch.where(positions[:, 0] < 0, -1.0, 1.0)
            crossing = new[:, 0] * side < self.wall_margin
            off_door = (new[:, 1] - self.door_y).abs() - self.door_half_width
            open_ = torch.sigmoid(-off_door / self.softness)
            stopped = open_ * new[:, 0] + (1 - open_) * side * self.wall_margin
            new = torch.stack([torch.where(crossing, stopped, new[:, 0]), new[:, 1]], -1)
        return new.clamp(-1.0, 1.0)

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.lift(self.move(self.position(latents), actions))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images rendered by :meth:`render` back to latents (the dot's intensity centroid)."""
        weight = images.mean(1)
        h, w = weight.shape[-2:]
        ys = torch.linspace(1.0, -1.0, h, device=images.device)
        xs = torch.linspace(-1.0, 1.0, w, device=images.device)
        total = weight.sum((-2, -1)).clamp_min(1e-8)
        x = (weight.sum(-2) * xs).sum(-1) / total
        y = (weight.sum(-1) * ys).sum(-1) / total
        return self.lift(torch.stack([x, y], -1))

    def render(self, positions: torch.Tensor, size: int = 32) -> torch.Tensor:
        """Positions ``[B, 2]`` to images ``[B, 3, size, size]``: a Gaussian dot on black."""
        ys = torch.linspace(1.0, -1.0, size, device=positions.device)
        xs = torch.linspace(-1.0, 1.0, size, device=positions.device)
        dy = ys[None, :, None] - positions[:, 1, None, None]
        dx = xs[None, None, :] - positions[:, 0, None, None]
        dot = torch.exp(-(dx**2 + dy**2) / (2 * 0.08**2))
        return dot[:, None].expand(-1, 3, -1, -1).contiguous()

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        pos = self.position(latents)
        return torch.cat([pos, torch.zeros_like(pos[:, :1])], -1)
