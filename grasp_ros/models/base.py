"""The world-model contract every planner in grasp_ros plans through.

A world model maps images to latents (``encode``) and predicts the next latent from a latent and
an action (``forward``): s_{t+1} = F(s_t, a_t) in GRASP's notation. Latents may have any shape
(a vector, a feature map, DINO-WM-style patch tokens ``[N, D]``); planners never flatten them
into assumptions about their meaning.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def to_tensor(images: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 images ``[..., H, W, 3]`` as the contract's floats ``[..., 3, H, W]`` in [0, 1].

    The bytes move to ``device`` before the conversion: a quarter of the float32 traffic.
    """
    t = torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255)
    return t.movedim(-1, -3)


class WorldModel(nn.Module):
    """Base class for world models.

    Attributes:
        latent_shape: shape of one latent, without the batch dimension.
        action_dim: size of one action vector.
        action_low, action_high: ``[action_dim]`` tensors (registered buffers, so they follow
            ``.to(device)``) or ``None`` when actions are unbounded.

    Subclasses implement ``encode`` and ``forward``; ``decode`` (latents to images) and
    ``project`` (latents to a 3-D position, for visualisation) are optional and raise
    ``NotImplementedError`` here so callers can test for them with :func:`has_decoder` and
    :func:`has_projection`.
    """

    latent_shape: tuple[int, ...]
    action_dim: int
    action_low: torch.Tensor | None
    action_high: torch.Tensor | None

    def __init__(
        self,
        latent_shape: tuple[int, ...],
        action_dim: int,
        action_low: torch.Tensor | list[float] | None = None,
        action_high: torch.Tensor | list[float] | None = None,
    ) -> None:
        super().__init__()
        self.latent_shape = tuple(int(d) for d in latent_shape)
        self.action_dim = int(action_dim)
        self.register_buffer("action_low", _bound(action_low, self.action_dim), persistent=False)
        self.register_buffer("action_high", _bound(action_high, self.action_dim), persistent=False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Float images ``[B, 3, H, W]`` in ``[0, 1]`` to latents ``[B, *latent_shape]``."""
        raise NotImplementedError

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, *latent_shape]`` and actions ``[B, action_dim]`` to next latents."""
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, *latent_shape]`` to images ``[B, 3, H, W]`` in ``[0, 1]`` (optional)."""
        raise NotImplementedError

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, *latent_shape]`` to positions ``[B, 3]`` for visualisation (optional)."""
        raise NotImplementedError


def _bound(value: torch.Tensor | list[float] | None, dim: int) -> torch.Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32).reshape(-1)
    if t.numel() == 1:
        t = t.expand(dim).clone()
    if t.shape != (dim,):
        raise ValueError(f"action bound has shape {tuple(t.shape)}, expected ({dim},)")
    return t


def has_decoder(model: nn.Module) -> bool:
    """True when ``model.decode`` is implemented (not the base-class placeholder)."""
    return _overrides(model, "decode")


def has_projection(model: nn.Module) -> bool:
    """True when ``model.project`` is implemented (not the base-class placeholder)."""
    return _overrides(model, "project")


def _overrides(model: nn.Module, name: str) -> bool:
    method = getattr(type(model), name, None)
    if method is None:
        return False
    return method is not getattr(WorldModel, name)


def check_world_model(model: nn.Module, image_size: tuple[int, int] = (64, 64)) -> None:
    """Dry-run ``encode`` and ``forward`` on dummy input and check the contract.

    Raises ``ValueError`` naming the first problem found: missing attributes, wrong output
    shapes or dtypes, or non-finite outputs. Used by the loader so that a broken model fails
    at load time with one clear message instead of deep inside a planning step.
    """
    for attr in ("latent_shape", "action_dim", "encode", "forward"):
        if not hasattr(model, attr):
            raise ValueError(f"world model {type(model).__name__} has no '{attr}' attribute")
    latent_shape = tuple(model.latent_shape)
    device = device_of(model)
    h, w = image_size
    with torch.no_grad():
        images = torch.rand(2, 3, h, w, device=device)
        try:
            z = model.encode(images)
        except Exception as exc:
            raise ValueError(f"encode() failed on a [2, 3, {h}, {w}] image batch: {exc}") from exc
        _check_tensor("encode()", z, (2, *latent_shape))
        a = torch.zeros(2, int(model.action_dim), device=device)
        try:
            z_next = model(z, a)
        except Exception as exc:
            raise ValueError(f"forward() failed on latents {tuple(z.shape)}: {exc}") from exc
        _check_tensor("forward()", z_next, (2, *latent_shape))


def _check_tensor(what: str, t: object, shape: tuple[int, ...]) -> None:
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{what} returned {type(t).__name__}, expected a torch.Tensor")
    if tuple(t.shape) != shape:
        raise ValueError(f"{what} returned shape {tuple(t.shape)}, expected {shape}")
    if not t.is_floating_point():
        raise ValueError(f"{what} returned dtype {t.dtype}, expected a floating-point tensor")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} returned non-finite values (NaN or inf)")


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer; CPU for a model with none."""
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")
