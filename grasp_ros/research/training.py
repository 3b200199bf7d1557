"""grasp-ros-train's options and stages: data, losses, and the two optimisation loops.

:func:`collect` gathers random-exploration episodes; :func:`train_representation` fits the
encoder, decoder and position head (reconstruction plus the geometry loss that makes latent
distance track state distance); :func:`train_dynamics` fits the dynamics on open-loop rollouts
in latent space, on random episodes mixed with planner episodes (:func:`mixed_pool`). Both loops
save their progress atomically every ``SAVE_EVERY`` steps so a run can resume.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from grasp_ros.cli import option
from grasp_ros.envs import ENVS, PointEnv, random_rollouts
from grasp_ros.models.base import WorldModel, to_tensor


@dataclass
class TrainOptions:
    """grasp-ros-train's options; ``dataclasses.asdict`` of them is the card's ``training``."""

    env: str = option("wall", "reference world to train in", "env", choices=sorted(ENVS))
    model: str = option(
        "auto",
        "world model: 'reference' (64-d latent, MLP dynamics), 'patch' (patch tokens and a "
        "transformer predictor, research.train_patch: its own options, see "
        "`grasp-ros-train ENV --model patch --help`); 'auto': patch for pusht, else reference",
        choices=("auto", "reference", "patch"),
    )
    out: Path = option(Path("out/models"), "output folder", type=Path)
    seed: int = option(0, "seed for data, init and batches", type=int)
    episodes: int = option(1500, "training episodes", type=int)
    episode_length: int = option(64, "steps per episode", type=int)
    eval_episodes: int = option(300, "held-out episodes", type=int)
    representation_steps: int = option(
        5000, "stage 1 (encoder, decoder, position head) iterations", type=int
    )
    dynamics_steps: int = option(6000, "stage 2 iterations", type=int)
    batch_size: int = option(64, "stage 1 frame pairs per step", type=int)
    rollout_batch_size: int = option(96, "stage 2 rollouts per step", type=int)
    rollout_steps: int = option(48, "stage 2 rollout length", type=int)
    lr: float = option(1e-3, "Adam learning rate (cosine decay)", type=float)
    latent_dim: int = option(64, "latent vector size", type=int)
    hidden_dim: int = option(256, "dynamics MLP width", type=int)
    image_size: int = option(64, "image side in pixels", type=int)
    action_gated: bool = option(
        True,
        "dynamics f(z, a) = M(z, a) a: exactly still under a zero action",
        action=argparse.BooleanOptionalAction,
    )
    threads: int = option(
        1, "torch threads; 1 is fastest on a shared CPU (0: torch's default)", type=int
    )
    planning_tasks: int = option(
        20, "tasks in the model card's planning check (0: skip it)", type=int
    )
    planning_horizon: int = option(30, "planning check horizon", type=int)
    still_prob: float = option(
        0.1, "share of held random actions that are zero (standing still)", type=float
    )
    planner_rounds: int = option(
        2, "rounds of planner-in-the-loop data after stage 2 (0: random data only)", type=int
    )
    planner_tasks: int = option(150, "tasks planned and executed per round", type=int)
    round_steps: int = option(1500, "dynamics iterations per planner round", type=int)
    planner_share: float = option(
        0.5, "share of each planner-round batch drawn from planner episodes", type=float
    )
    init: Path | None = option(
        None,
        "start from this checkpoint's weights (with --representation-steps 0: keep its "
        "encoder and retrain the dynamics)",
        type=Path,
    )
    cost_to_go: bool = option(
        True,
        "last stage: train the learned cost-to-go head (grasp_ros.research.cost_to_go)",
        action=argparse.BooleanOptionalAction,
    )
    resume: bool = option(False, "continue from OUT/ENV.train.pt", action="store_true")

    def problems(self) -> list[str]:
        """What is wrong with these options."""
        if self.rollout_steps >= self.episode_length + 1:
            return ["--rollout-steps must be shorter than --episode-length"]
        return []


#: Weight of the reconstruction error on the agent's dot (a few pixels of a mostly plain image).
DOT_WEIGHT = 20.0

SAVE_EVERY = 200

#: Gradient-norm clip of the dynamics stage (backprop through ``--rollout-steps`` model calls).
CLIP_NORM = 1.0


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shipped files private
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def collect(
    env: PointEnv, episodes: int, length: int, seed: int, still_prob: float = 0.0
) -> dict[str, Any]:
    """Random-exploration episodes with their rendered frames (uint8, kept compact)."""
    states, actions = random_rollouts(env, episodes, length, seed, still_prob=still_prob)
    return {
        "states": torch.from_numpy(states).float(),
        "actions": torch.from_numpy(actions).float(),
        "frames": render_episodes(env, states),
    }


def render_episodes(env: PointEnv, states: np.ndarray) -> torch.Tensor:
    """uint8 frames ``[E, T, H, W, 3]`` of states ``[E, T, S]``, rendered in chunks."""
    flat = states.reshape(-1, states.shape[-1])
    frames = np.concatenate(
        [env.render_states(flat[i : i + 2048]) for i in range(0, len(flat), 2048)]
    )
    return torch.from_numpy(frames.reshape(*states.shape[:2], *frames.shape[1:]))


def encode_frames(model: WorldModel, frames: torch.Tensor) -> torch.Tensor:
    """Latents ``[E, T, *latent_shape]`` for uint8 frames ``[E, T, H, W, 3]``, batched,
    without grad."""
    flat = frames.reshape(-1, *frames.shape[2:])
    with torch.no_grad():
        z = torch.cat(
            [model.encode(to_tensor(flat[i : i + 1024].numpy())) for i in range(0, len(flat), 1024)]
        )
    return z.reshape(*frames.shape[:2], *z.shape[1:])


def representation_loss(
    model: WorldModel,
    images: torch.Tensor,
    states: torch.Tensor,
    world_size: float,
    background: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Reconstruction + position + geometry losses on a batch of ``2B`` frames.

    The batch pairs frame ``i`` with frame ``i + B`` (a few steps later in the same episode),
    so the geometry term sees near pairs as well as the far pairs of a random permutation.
    Reconstruction weighs the pixels of what moves ``DOT_WEIGHT`` times more: the red dot, or,
    given a ``background`` image ``[3, H, W]``, every pixel that differs from it.
    """
    latents = model.encode(images)
    logits = model.decode_logits(latents)
    if background is None:
        moving = (images[:, 0] - images[:, 1]).clamp(min=0).unsqueeze(1)
    else:
        moving = (images - background).abs().amax(1, keepdim=True)
    weight = 1 + DOT_WEIGHT * moving
    recon = F.binary_cross_entropy_with_logits(logits, images, weight=weight)
    s = states / world_size
    pos = F.mse_loss(model.project(latents)[:, :2] / world_size, s[:, :2])
    z = latents.flatten(1)  # distances over the whole latent, whatever its shape
    half = len(z) // 2
    perm = torch.randperm(len(z))
    partners = torch.cat([torch.roll(torch.arange(len(z)), half), perm])
    zi, zj = z.repeat(2, 1), z[partners]
    si, sj = s.repeat(2, 1), s[partners]
    dz = (zi - zj).pow(2).mean(1)
    ds = (si - sj).pow(2).sum(1)
    geometry = (torch.sqrt(dz + 1e-8) - torch.sqrt(ds + 1e-8)).pow(2).mean()
    center = z.mean(0).pow(2).mean()
    total = recon + pos + geometry + 0.01 * center
    return {"total": total, "recon": recon, "position": pos, "geometry": geometry}


def rollout_loss(model: WorldModel, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Mean latent MSE of an open-loop rollout from ``latents[:, 0]`` over ``actions``."""
    z = latents[:, 0]
    loss = latents.new_zeros(())
    for k in range(actions.shape[1]):
        z = model(z, actions[:, k])
        loss = loss + F.mse_loss(z, latents[:, k + 1])
    return loss / actions.shape[1]


def _lr(args: TrainOptions, step: int, total: int) -> float:
    return args.lr * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def _save_progress(
    path: Path,
    model: WorldModel,
    opt: torch.optim.Optimizer,
    stage: str,
    step: int,
    planner_data: dict[str, torch.Tensor] | None = None,
) -> None:
    atomic_save(
        {
            "model": model.checkpoint(),
            "optimizer": opt.state_dict(),
            "stage": stage,
            "step": step,
            "planner_data": planner_data,
        },
        path,
    )


def train_representation(
    args: TrainOptions,
    model: WorldModel,
    env: PointEnv,
    data: dict[str, Any],
    progress_path: Path,
    start: int,
    saved_opt: dict[str, Any] | None,
    background: torch.Tensor | None = None,
) -> None:
    """Stage 1: encoder, decoder and position head on single frames (pairs for geometry);
    ``background`` as in :func:`representation_loss`."""
    frames, states = data["frames"], data["states"]
    episodes, length = states.shape[:2]
    opt = torch.optim.Adam(model.representation_parameters(), lr=args.lr)
    if saved_opt is not None:
        opt.load_state_dict(saved_opt)
    model.train()
    bar = tqdm(
        range(start, args.representation_steps),
        desc="representation",
        mininterval=5,
        initial=start,
        total=args.representation_steps,
    )
    for step in bar:
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + step)
        e = torch.randint(episodes, (args.batch_size,), generator=g)
        t = torch.randint(length, (args.batch_size,), generator=g)
        t2 = (t + torch.randint(1, 9, (args.batch_size,), generator=g)).clamp(max=length - 1)
        e, t = torch.cat([e, e]), torch.cat([t, t2])
        for group in opt.param_groups:
            group["lr"] = _lr(args, step, args.representation_steps)
        losses = representation_loss(
            model, to_tensor(frames[e, t].numpy()), states[e, t], env.world_size, background
        )
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        bar.set_postfix({k: f"{v.item():.4f}" for k, v in losses.items()}, refresh=False)
        if (step + 1) % SAVE_EVERY == 0:
            _save_progress(progress_path, model, opt, "representation", step + 1)
    _save_progress(progress_path, model, opt, "dynamics", 0)


def train_dynamics(
    args: TrainOptions,
    model: WorldModel,
    pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    progress_path: Path,
    stage: str,
    steps: int,
    start: int,
    saved_opt: dict[str, Any] | None,
    planner_data: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Stage 2 (and each planner round): open-loop rollouts on frozen latents.

    ``pool`` is ``(latents [E, L+1, D], actions [E, L, A], weights)``: rollouts start in
    episodes drawn in proportion to ``weights [E]`` at a uniform step, or, for ``weights
    [E, L - rollout_steps + 1]``, at the (episode, step) drawn in proportion to it. Returns the
    last batch's loss.
    """
    latents, actions, weights = pool
    length = actions.shape[1]
    params = model.dynamics_parameters()
    opt = torch.optim.Adam(params, lr=args.lr)
    if saved_opt is not None:
        opt.load_state_dict(saved_opt)
    k = args.rollout_steps
    salt = sum(map(ord, stage)) * 7919
    bar = tqdm(range(start, steps), desc=stage, initial=start, mininterval=5, total=steps)
    loss = torch.zeros(())
    for step in bar:
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + 500_009 + salt + step)
        if weights.dim() == 2:
            n = args.rollout_batch_size
            pick = torch.multinomial(weights.flatten(), n, replacement=True, generator=g)
            e, t0 = pick // weights.shape[1], pick % weights.shape[1]
        else:
            e = torch.multinomial(weights, args.rollout_batch_size, replacement=True, generator=g)
            t0 = torch.randint(length - k + 1, (args.rollout_batch_size,), generator=g)
        idx = t0[:, None] + torch.arange(k + 1)
        for group in opt.param_groups:
            group["lr"] = _lr(args, step, steps)
        loss = rollout_loss(model, latents[e[:, None], idx], actions[e[:, None], idx[:, :-1]])
        opt.zero_grad()
        loss.backward()
        # Long rollouts are backprop through time: one bad batch can explode the gradient.
        nn.utils.clip_grad_norm_(params, CLIP_NORM)
        opt.step()
        bar.set_postfix(rollout_mse=f"{loss.item():.5f}", refresh=False)
        if (step + 1) % SAVE_EVERY == 0:
            _save_progress(progress_path, model, opt, stage, step + 1, planner_data)
    return loss


def concat_episodes(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    return {k: torch.cat([a[k], b[k]]) for k in a}


def mixed_pool(
    model: WorldModel,
    env: PointEnv,
    latents: torch.Tensor,
    actions: torch.Tensor,
    planner_data: dict[str, torch.Tensor],
    args: TrainOptions,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random and planner episodes in one pool; planner episodes drawn ``planner_share``."""
    planned = encode_frames(model, render_episodes(env, planner_data["states"].numpy()))
    n, m = len(latents), len(planned)
    share = args.planner_share
    weights = torch.cat([torch.full((n,), (1 - share) / n), torch.full((m,), share / m)])
    return (
        torch.cat([latents, planned]),
        torch.cat([actions, planner_data["actions"]]),
        weights,
    )
