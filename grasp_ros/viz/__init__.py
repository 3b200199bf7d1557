"""What the trajectory visualiser draws, as plain numpy data: no ROS, no drawing library.

A plan is shown in the positions of its states: the model's ``project()`` where it has one, else
a PCA of the latents fitted online (:class:`OnlinePCA`). The virtual states s_0 .. s_T (GRASP's
optimisation variables, the goal last) become a line strip and spheres coloured by time step,
the serial rollout F^t(s_0, a) a second strip, so the gap between the two shows how far the
plan still is from dynamically consistent. :func:`decode_mosaic` shows the virtual states as
the model's decoder sees them. :func:`world_markers` draws the simulator's ground truth (the
agent, Push-T's block and its goal pose). The nodes turn :class:`MarkerSpec` into
visualization_msgs; the colours are those of the demo's overlay
(`grasp_ros.viz.overlay.time_colors`), so a time step has one colour everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from grasp_ros.envs import World
from grasp_ros.models.base import has_decoder
from grasp_ros.viz import overlay

ROLLOUT_RGBA = (*(c / 255 for c in overlay.ROLLOUT_COLOR), 0.9)
GOAL_RGBA = (*(c / 255 for c in overlay.GOAL_COLOR), 0.9)
TEXT_RGBA = (1.0, 1.0, 1.0, 1.0)
AGENT_RGBA = (0.25, 0.41, 0.88, 1.0)
BODY_RGBA = (0.47, 0.53, 0.6, 1.0)


def time_colors(n: int, alpha: float = 1.0) -> np.ndarray:
    """``n`` RGBA colours in [0, 1] (float32), early time steps dark blue to late ones yellow."""
    rgb = overlay.time_colors(n).astype(np.float32) / 255.0
    return np.concatenate([rgb, np.full((len(rgb), 1), alpha, np.float32)], axis=1)


class OnlinePCA:
    """Principal axes of every latent seen so far, for a model without ``project()``.

    The mean and covariance are merged batch by batch (Chan et al.'s parallel update), so the
    axes settle as plans arrive instead of jumping with each one; an axis keeps its sign from
    one update to the next. Latents larger than ``sketch_dim`` elements (DINO-WM patch tokens
    are 98,304) are first folded by a count sketch (each element added, with a random sign,
    into one of ``sketch_dim`` buckets), which keeps inner products in expectation and needs
    memory linear in the latent size, where a full covariance would need its square.
    """

    def __init__(self, components: int = 3, sketch_dim: int = 64, seed: int = 0) -> None:
        if components < 1 or sketch_dim < components:
            raise ValueError(f"need 1 <= components <= sketch_dim, got {components}, {sketch_dim}")
        self.components, self.sketch_dim, self.seed = components, sketch_dim, seed
        self.latent_size: int | None = None
        self.count = 0

    def update(self, latents: np.ndarray | torch.Tensor) -> None:
        """Add latents ``[N, *latent_shape]`` to the fit; a new latent size restarts it."""
        if len(latents) == 0:
            return
        x = self._sketch(latents)
        n = len(x)
        mean = x.mean(0)
        centred = x - mean
        if self.count == 0:
            self._mean, self._m2 = mean, centred.T @ centred
        else:
            total = self.count + n
            delta = mean - self._mean
            self._mean = self._mean + delta * (n / total)
            self._m2 = (
                self._m2 + centred.T @ centred + np.outer(delta, delta) * (self.count * n / total)
            )
        self.count += n
        _, vectors = np.linalg.eigh(self._m2)
        axes = vectors[:, ::-1][:, : self.components].T
        signs = np.sign(np.sum(axes * self._axes[: len(axes)], axis=1))
        self._axes[: len(axes)] = axes * np.where(signs < 0, -1.0, 1.0)[:, None]

    def project(self, latents: np.ndarray | torch.Tensor) -> np.ndarray:
        """Latents ``[N, *latent_shape]`` to ``[N, 3]`` float32 (unused axes are 0)."""
        if self.count == 0:
            raise ValueError("OnlinePCA.project called before update(): fit it on latents first")
        coords = (self._sketch(latents, refit=False) - self._mean) @ self._axes.T
        out = np.zeros((len(coords), 3), np.float32)
        k = min(3, coords.shape[1])
        out[:, :k] = coords[:, :k]
        return out

    def _sketch(self, latents: np.ndarray | torch.Tensor, refit: bool = True) -> np.ndarray:
        if isinstance(latents, torch.Tensor):
            latents = latents.detach().cpu().numpy()
        x = np.asarray(latents, dtype=np.float64)
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.latent_size:
            if not refit:
                raise ValueError(
                    f"latents have {x.shape[1]} elements, the PCA was fitted on {self.latent_size}"
                )
            self._start(x.shape[1])
        if self._buckets is None:
            return x
        y = np.zeros((len(x), self.sketch_dim))
        used = self._bucket_sizes > 0
        y[:, used] = np.add.reduceat((x * self._signs)[:, self._order], self._starts[used], axis=1)
        return y

    def _start(self, size: int) -> None:
        self.latent_size, self.count = size, 0
        dim = min(size, self.sketch_dim)
        self._axes = np.zeros((min(self.components, dim), dim))
        self._buckets = None
        if size > self.sketch_dim:
            rng = np.random.default_rng(self.seed)
            self._buckets = rng.integers(0, self.sketch_dim, size)
            self._signs = rng.choice([-1.0, 1.0], size)
            self._order = np.argsort(self._buckets, kind="stable")
            self._bucket_sizes = np.bincount(self._buckets, minlength=self.sketch_dim)
            self._starts = np.concatenate([[0], np.cumsum(self._bucket_sizes)[:-1]])


def mosaic_indices(n: int, max_tiles: int) -> np.ndarray:
    """At most ``max_tiles`` evenly spaced indices into ``n`` states, always the first and last."""
    if n < 1 or max_tiles < 1:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, min(n, max_tiles)).round().astype(np.int64))


@torch.no_grad()
def decode_images(model: nn.Module, latents: np.ndarray | torch.Tensor) -> np.ndarray:
    """The model's ``decode()`` of latents ``[N, *latent_shape]`` as RGB ``uint8 [N, H, W, 3]``."""
    if not has_decoder(model):
        raise ValueError(f"{type(model).__name__} has no decode(); no images to show")
    z = np.asarray(latents, dtype=np.float32)
    if tuple(z.shape[1:]) != tuple(model.latent_shape):
        raise ValueError(
            f"latents of shape {list(z.shape[1:])} do not fit the model's latent_shape "
            f"{list(model.latent_shape)}: is it the model the planner runs?"
        )
    device = next((t.device for t in (*model.parameters(), *model.buffers())), "cpu")
    z = torch.as_tensor(z, device=device)
    images = model.decode(z).clamp(0, 1).mul(255).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def decode_mosaic(
    model: nn.Module,
    latents: np.ndarray | torch.Tensor,
    columns: int = 8,
    max_tiles: int = 32,
    gap: int = 2,
) -> np.ndarray:
    """A grid of decoded states (row-major, time step colour under each): RGB ``uint8``.

    ``latents`` are a plan's states ``[T+1, *latent_shape]``; at most ``max_tiles`` of them
    (evenly spaced, first and last kept) are decoded, so a long horizon stays one image.
    """
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    pick = mosaic_indices(len(latents), max_tiles)
    if len(pick) == 0:
        raise ValueError("decode_mosaic needs at least one latent")
    images = decode_images(model, np.asarray(latents, dtype=np.float32)[pick])
    colors = overlay.time_colors(len(latents))[pick]
    bar = max(2, images.shape[1] // 16)
    tiles = [
        np.concatenate([img, np.broadcast_to(c, (bar, img.shape[1], 3))], axis=0)
        for img, c in zip(images, colors, strict=True)
    ]
    rows = [tiles[i : i + columns] for i in range(0, len(tiles), columns)]
    return overlay.stack(rows, gap=gap)


@dataclass(frozen=True)
class MarkerSpec:
    """One visualization_msgs/Marker as plain data.

    ``kind`` is ``'line_strip'``, ``'sphere_list'``, ``'sphere'`` or ``'text'``; ``points`` are
    ``[N, 3]`` (one row for a sphere or text); ``colors`` are RGBA ``[N, 4]`` per point or
    ``[1, 4]`` for the whole marker; ``scale`` is the Marker's scale (line width in x, sphere
    diameters, text height in z).
    """

    ns: str
    marker_id: int
    kind: str
    points: np.ndarray
    colors: np.ndarray
    scale: tuple[float, float, float]
    text: str = ""


def trajectory_markers(
    states_xyz: np.ndarray,
    rollout_xyz: np.ndarray | None,
    *,
    size: float,
    planner: str,
    cost: float,
    iterations: int,
) -> list[MarkerSpec]:
    """Markers for one plan: virtual states (strip and spheres by time step), rollout, goal, text.

    ``states_xyz`` are the positions of s_0 .. s_T (the goal last), ``rollout_xyz`` those of
    the serial rollout, in the frame and units the markers are drawn in; ``size`` is the
    sphere diameter, and line widths and the text height follow from it.
    """
    states = _xyz(states_xyz, "states_xyz")
    if len(states) < 2:
        raise ValueError(f"a plan has at least 2 states (s_0 and the goal), got {len(states)}")
    colors = time_colors(len(states))
    markers = [
        MarkerSpec("virtual_states", 0, "line_strip", states, colors, (0.25 * size, 0.0, 0.0)),
        MarkerSpec("virtual_states", 1, "sphere_list", states, colors, (size, size, size)),
        MarkerSpec("goal", 0, "sphere", states[-1:], _rgba(GOAL_RGBA), (2 * size,) * 3),
    ]
    if rollout_xyz is not None and len(rollout_xyz):
        rollout = _xyz(rollout_xyz, "rollout_xyz")
        markers.append(
            MarkerSpec(
                "rollout", 0, "line_strip", rollout, _rgba(ROLLOUT_RGBA), (0.15 * size, 0, 0)
            )
        )
    cost_text = f"{cost:.4g}" if math.isfinite(cost) else "n/a"
    label = f"{planner}  cost {cost_text}  {iterations} it"
    above = states[:1] + np.array([0.0, 0.0, 2.0 * size])
    markers.append(
        MarkerSpec("info", 0, "text", above, _rgba(TEXT_RGBA), (0, 0, 1.5 * size), label)
    )
    return markers


def world_markers(env: World, state: np.ndarray, goal_state: np.ndarray) -> list[MarkerSpec]:
    """Markers for the simulated world's ground truth, in world units on the z = 0 plane.

    The agent is a sphere (its own size, or 1/32 of the world for a point agent); a body with
    an outline (Push-T's block) a closed grey line, and its goal pose the same line in the
    goal's green; a point world's goal is a translucent disc of the success radius.
    """
    state, goal_state = np.asarray(state, np.float64), np.asarray(goal_state, np.float64)
    size = max(2 * env.agent_radius, env.world_size / 32)
    width = env.world_size / 128
    agent = np.array([[*state[:2], 0.0]])
    markers = [MarkerSpec("agent", 0, "sphere", agent, _rgba(AGENT_RGBA), (size,) * 3)]
    goal_outlines = env.outlines(goal_state)
    for i, (name, outline) in enumerate(sorted(env.outlines(state).items())):
        markers.append(
            MarkerSpec(name, i, "line_strip", _closed(outline), _rgba(BODY_RGBA), (width, 0.0, 0.0))
        )
    for i, (name, outline) in enumerate(sorted(goal_outlines.items())):
        markers.append(
            MarkerSpec(
                f"goal_{name}",
                i,
                "line_strip",
                _closed(outline),
                _rgba(GOAL_RGBA),
                (width, 0.0, 0.0),
            )
        )
    if not goal_outlines:
        goal = env.object_pose(goal_state[None])[:, :2]
        disc = (2 * env.success_radius, 2 * env.success_radius, width)
        markers.append(
            MarkerSpec(
                "goal", 0, "sphere", np.c_[goal, np.zeros(1)], _rgba((*GOAL_RGBA[:3], 0.3)), disc
            )
        )
    return markers


def _closed(outline: np.ndarray) -> np.ndarray:
    """A closed polygon ``[K, 2]`` as ``[K + 1, 3]`` points on the z = 0 plane."""
    loop = np.concatenate([outline, outline[:1]])
    return np.c_[loop, np.zeros(len(loop))]


def _xyz(points: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"{name} must be [N, 3] positions, got {list(p.shape)}")
    return p


def _rgba(color: tuple[float, ...]) -> np.ndarray:
    return np.asarray([color], dtype=np.float32)
