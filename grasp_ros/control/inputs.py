"""What PlannerRuntime accepts from its callers: images, stamps and goals, checked.

Every check raises ValueError saying what was expected, before the runtime changes anything,
so a caller's mistake (a NaN clock, ``None`` as a goal) is one clear error, not a NaN image
age that keeps the watchdog from ever firing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def check_time(name: str, value: Any) -> float:
    """``value`` as float seconds, or ValueError: NaN would defeat every age comparison."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
    raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")


def check_image(image: Any) -> np.ndarray:
    """``image`` if it is an RGB ``uint8 [H, W, 3]`` array, else ValueError."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be RGB uint8 [H, W, 3], got {image.dtype} {list(image.shape)}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: {list(image.shape)}")
    return image


def check_goal(goal: Any, latent_shape: tuple[int, ...]) -> np.ndarray | torch.Tensor:
    """A goal image (RGB ``uint8 [H, W, 3]``) or a finite float latent of ``latent_shape``."""
    expected = (
        f"an RGB uint8 image [H, W, 3] or a latent of the model's latent_shape {latent_shape}"
    )
    if isinstance(goal, np.ndarray) and goal.dtype == np.uint8:
        try:
            return check_image(goal)
        except ValueError as exc:
            raise ValueError(f"goal must be {expected}: {exc}") from None
    if not isinstance(goal, (np.ndarray, torch.Tensor)):
        raise ValueError(f"goal must be {expected}, got {type(goal).__name__}")
    latent = torch.as_tensor(goal, dtype=torch.float32)
    if tuple(latent.shape) != latent_shape:
        raise ValueError(f"goal must be {expected}, got shape {tuple(latent.shape)}")
    if not torch.isfinite(latent).all():
        raise ValueError("goal must be finite: the latent contains NaN or inf")
    return latent


def same_goal(goal: np.ndarray | torch.Tensor, current: np.ndarray | torch.Tensor | None) -> bool:
    """Whether ``goal`` (checked by :func:`check_goal`) is the ``current`` one again: a goal
    topic republished unchanged, which must not drop the warm start."""
    if isinstance(goal, np.ndarray) and isinstance(current, np.ndarray):
        return np.array_equal(goal, current)
    if isinstance(goal, torch.Tensor) and isinstance(current, torch.Tensor):
        return goal.shape == current.shape and torch.equal(goal, current.to(goal.device))
    return False
