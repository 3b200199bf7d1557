"""A world model with DINO-WM-size latents (256 patch tokens of 384) that plans in milliseconds.

The plan-message test needs the latent shape of a patch-token model, not its cost: a random
ViT predictor at this size takes seconds a tick on a CPU. Here ``encode`` pools the image to a
16 x 16 grid and lifts each patch's colour to 384 dimensions with a fixed projection, and
``forward`` adds an embedded action to every token. Model ``patch_sized_model:PatchSizedModel``
(the launcher puts this folder on the nodes' PYTHONPATH).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from grasp_ros.models import WorldModel

GRID, DIM = 16, 384


class PatchSizedModel(WorldModel):
    def __init__(self) -> None:
        super().__init__((GRID * GRID, DIM), 2, -1.0, 1.0)
        self.image_size = 32
        generator = torch.Generator().manual_seed(0)
        self.register_buffer("lift", torch.randn(3, DIM, generator=generator) / DIM**0.5)
        self.register_buffer("push", torch.randn(2, DIM, generator=generator) / DIM**0.5)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        patches = F.adaptive_avg_pool2d(images, GRID).flatten(2).transpose(1, 2)
        return patches @ self.lift

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return latents + (actions @ self.push).unsqueeze(1)

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        return latents.mean(1)[:, :3]
