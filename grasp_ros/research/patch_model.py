"""A DINO-WM-sized world model with random weights, for timing planners at real latent scale.

DINO-WM plans in DINOv2 patch tokens: 256 tokens of 384 dimensions per image (a 16 x 16 grid),
with a ViT predictor over the tokens. The shipped models have 64-d latents, so they cannot show
what a planner costs at that scale (memory, and whether a GPU keeps GRASP's batched call over
population x horizon cheap). This model has the same latent shape and a small transformer
predictor; its weights are random, which is fine for timing: the arithmetic and the kernel
launches do not depend on the values. Its plans mean nothing.

- ``encode``: a strided convolution, image to a ``grid x grid`` patch grid (DINO-WM's patch
  embedding, without the pretrained ViT behind it).
- ``forward``: ``z' = z + scale * f(z + E(a))``: the action is embedded and added to every
  token, ``depth`` pre-norm ViT blocks (attention over all tokens, MLP 4x wide) mix the
  tokens, and the residual is scaled down so that 80-step rollouts stay finite.

The blocks are the trained patch-token model's (:class:`grasp_ros.models.patch.Block`); that
model (:mod:`grasp_ros.models.patch`) is the small trained one, this is the DINO-WM-sized one.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from grasp_ros.models import WorldModel
from grasp_ros.models.patch import Block


class PatchTokenModel(WorldModel):
    """Random-weight patch-token world model following the :class:`WorldModel` contract.

    Args:
        tokens: tokens per latent (a square number: the patch grid).
        dim: token size.
        depth: transformer blocks in the predictor.
        heads: attention heads per block.
        action_dim: size of an action (bounds [-1, 1]).
        image_size: side of the square images ``encode`` takes.
        seed: seed of the random weights.
    """

    def __init__(
        self,
        tokens: int = 256,
        dim: int = 384,
        depth: int = 2,
        heads: int = 6,
        action_dim: int = 2,
        image_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__((tokens, dim), action_dim, -1.0, 1.0)
        grid = math.isqrt(tokens)
        if grid * grid != tokens or image_size % grid:
            raise ValueError(
                f"tokens={tokens} must be a square grid dividing image_size={image_size}"
            )
        if dim % heads:
            raise ValueError(f"dim={dim} must be a multiple of heads={heads}")
        self.image_size = image_size
        self.scale = 0.1
        with torch.random.fork_rng(devices=[]):  # the same weights, the caller's RNG untouched
            torch.manual_seed(seed)
            patch = image_size // grid
            self.patch_embed = nn.Conv2d(3, dim, patch, patch)
            self.action_embed = nn.Linear(action_dim, dim)
            self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(images * 2 - 1).flatten(2).transpose(1, 2)

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = latents + self.action_embed(actions).unsqueeze(1)
        for block in self.blocks:
            x = block(x)
        return latents + self.scale * x
