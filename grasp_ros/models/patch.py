"""A patch-token world model: DINO-WM's shape (patch tokens, a ViT predictor) in miniature.

DINO-WM plans in DINOv2 patch tokens (256 tokens x 384 dims) with a transformer predictor; the
paper's headline experiment is GRASP on that model. The reference model's 64-d MLP latent is
smooth and nearly flat, so GD through its serial rollout is well conditioned; this model keeps
the structure that makes the paper's problem hard (a token grid, attention mixing the tokens,
a residual predictor composed 40-80 times) at a size a CPU trains in minutes.

- ``encode``: a strided CNN stem to a ``grid x grid`` token grid, position embeddings, one
  ViT block (so every token sees the whole image, as DINO's tokens do), a linear map to
  ``dim``: latents ``[grid * grid, dim]``.
- ``forward``: ``z' = z + f(z, a)``: the action is embedded and added to every token (as in
  :mod:`grasp_ros.research.patch_model`), ``depth`` pre-norm ViT blocks mix the tokens, and a
  zero-initialised linear head gives each token's change.
- ``decode``: each token to its image patch (MAE-style linear patch head) and a 3x3 conv that
  smooths the seams; pictures of GRASP's virtual states.
- ``project``: mean-pooled tokens to the agent position ``(x, y, 0)`` in world units.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from grasp_ros.models.base import WorldModel

FORMAT = "grasp_ros.patch/1"
#: Inputs are area-resampled to this side first by default (a CPU-speed choice, as in the
#: reference model); ``work_size`` changes it.
WORK_SIZE = 32


class Block(nn.Module):
    """A pre-norm ViT block: self-attention over the tokens, then an MLP, both residual.

    Written out (rather than ``nn.TransformerEncoderLayer``, whose inference fast path
    ``torch.compile`` failed to lower on the CPU) with ``scaled_dot_product_attention``, which
    picks a fused attention kernel on a GPU.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        attn = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        x = x + self.proj(attn.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class PatchWorldModel(WorldModel):
    """Patch-token encoder, transformer predictor and patch decoder (see the module docstring).

    Args:
        image_size: side of the square images ``encode`` takes and ``decode`` returns.
        grid: tokens per side (``grid * grid`` tokens); must divide ``work_size``.
        work_size: side the encoder resamples images to before its stem. At 32 a pixel of
            Push-T's 512-unit board is 16 units, about the agent's radius, and the contact that
            decides whether a push moves the block is below a pixel; 64 keeps a 64-pixel
            image whole (the predictor's cost does not change, the encoder's grows 4x).
        dim: token size.
        depth: transformer blocks in the predictor.
        heads: attention heads per block.
        mlp_ratio: width of each block's MLP, in multiples of ``dim``.
        channels: channels of the encoder's CNN stem.
        action_dim: size of an action.
        world_size: side of the world in world units (``project`` scales to it).
        env_name: the reference world the model was trained in (``''`` if none).
        action_low, action_high: the action box the model was trained on.
    """

    def __init__(
        self,
        image_size: int = 64,
        grid: int = 8,
        dim: int = 32,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        channels: int = 32,
        action_dim: int = 2,
        world_size: float = 64.0,
        env_name: str = "",
        action_low: float | list[float] = -1.0,
        action_high: float | list[float] = 1.0,
        work_size: int = WORK_SIZE,
    ) -> None:
        super().__init__((grid * grid, dim), action_dim, action_low, action_high)
        if work_size % grid or grid > work_size // 2:
            raise ValueError(f"grid={grid} must divide {work_size} and be at most {work_size // 2}")
        if dim % heads or channels % heads:
            raise ValueError(
                f"dim={dim} and channels={channels} must be multiples of heads={heads}"
            )
        self.config: dict[str, Any] = {
            "image_size": image_size,
            "grid": grid,
            "dim": dim,
            "depth": depth,
            "heads": heads,
            "mlp_ratio": mlp_ratio,
            "channels": channels,
            "action_dim": action_dim,
            "world_size": world_size,
            "env_name": env_name,
            "action_low": action_low,
            "action_high": action_high,
            "work_size": work_size,
        }
        self.image_size = image_size
        self.env_name = env_name
        self.world_size = world_size
        self.grid = grid
        self.work_size = work_size
        self.patch = work_size // grid
        c = channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c, 3, 1, 1),
            nn.SiLU(),
            nn.Conv2d(c, c, self.patch, self.patch),
        )
        self.encoder_pos = nn.Parameter(torch.randn(1, grid * grid, c) * 0.02)
        self.encoder_block = Block(c, heads, mlp_ratio)
        self.encoder_out = nn.Sequential(nn.LayerNorm(c), nn.Linear(c, dim))
        self.action_embed = nn.Linear(action_dim, dim)
        self.predictor_pos = nn.Parameter(torch.randn(1, grid * grid, dim) * 0.02)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio) for _ in range(depth))
        self.predictor_out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        nn.init.zeros_(self.predictor_out[1].weight)
        nn.init.zeros_(self.predictor_out[1].bias)
        self.patch_head = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.SiLU(), nn.Linear(2 * dim, 3 * self.patch**2)
        )
        self.refine = nn.Conv2d(3, 3, 3, 1, 1)
        self.head = nn.Sequential(nn.Linear(dim, 128), nn.SiLU(), nn.Linear(128, 2))

    # The parameter groups training optimises separately (representation, then dynamics).
    def representation_parameters(self) -> list[nn.Parameter]:
        """Encoder, decoder and position head: what stage 1 trains."""
        skip = {id(p) for p in self.dynamics_parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    def dynamics_parameters(self) -> list[nn.Parameter]:
        """The predictor: what stage 2 trains on frozen tokens."""
        return [
            self.predictor_pos,
            *self.action_embed.parameters(),
            *self.blocks.parameters(),
            *self.predictor_out.parameters(),
        ]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        size = (self.work_size, self.work_size)
        small = F.interpolate(images, size=size, mode="area")
        x = self.stem(small * 2 - 1).flatten(2).transpose(1, 2) + self.encoder_pos
        return self.encoder_out(self.encoder_block(x))

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = latents + self.predictor_pos + self.action_embed(actions).unsqueeze(-2)
        for block in self.blocks:
            x = block(x)
        return latents + self.predictor_out(x)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(latents))

    def decode_logits(self, latents: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid decoder output at ``image_size`` (training uses it for a stable loss)."""
        b, g, p = latents.shape[0], self.grid, self.patch
        patches = self.patch_head(latents).view(b, g, g, 3, p, p)
        image = patches.permute(0, 3, 1, 4, 2, 5).reshape(b, 3, g * p, g * p)
        image = image + self.refine(image)
        size = (self.image_size, self.image_size)
        return F.interpolate(image, size=size, mode="bilinear", align_corners=False)

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        xy = self.head(latents.mean(-2)) * self.world_size
        return torch.cat([xy, torch.zeros_like(xy[:, :1])], dim=1)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """A ``torch.load(..., weights_only=True)``-safe dict: format, config, weights, extras."""
        state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        return {"format": FORMAT, "config": dict(self.config), "state_dict": state, **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> PatchWorldModel:
        """Rebuild a model from :meth:`checkpoint`'s dict; the declared network is built on the
        meta device first and compared with the held weights, so a config asking for a huge
        network is refused before anything is allocated."""
        with torch.device("meta"):
            declared = {k: tuple(v.shape) for k, v in cls(**ckpt["config"]).state_dict().items()}
        held = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items()}
        if declared != held:
            wrong = next(k for k in (*declared, *held) if declared.get(k) != held.get(k))
            count = sum(math.prod(s) for s in held.values())
            raise ValueError(
                f"its config does not match the {count:,} weights it holds (first difference: "
                f"{wrong}, declared {declared.get(wrong)}, held {held.get(wrong)}); refused "
                "before building the network"
            )
        model = cls(**ckpt["config"])
        model.load_state_dict(ckpt["state_dict"])
        return model
