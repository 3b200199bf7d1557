"""grasp-ros-train for the patch-token model (:mod:`grasp_ros.models.patch`).

``grasp-ros-train pusht`` trains it (it is Push-T's model), ``grasp-ros-train wall --model
patch`` trains one for another world and names it ``wall-patch``. Same data and stages as the
reference model (:mod:`grasp_ros.research.train`), sized for a CPU:

1. Representation: the encoder (CNN stem and one ViT block), the patch decoder and the position
   head, jointly on single frames: reconstruction, the position of the agent, and the geometry
   loss that makes the distance between whole token grids track the ground-truth state distance
   (so the planners' latent MSE to the goal falls as the world approaches the goal). The run
   records the same geometry figure for the untrained (random, frozen) encoder, the measurement
   behind training the encoder rather than freezing a random one.
2. Dynamics: encoder frozen, the transformer predictor on ``--rollout-steps``-step open-loop
   rollouts over the tokens, gradient norm clipped.

No planner rounds and no cost-to-go head (the reference model's stage 3 and last stage): each
would cost more CPU time than the run's budget. The run ends with the held-out evaluation, the
conditioning diagnostic (:mod:`grasp_ros.research.conditioning`), a weights-only checkpoint
``NAME.pt`` and its model card ``NAME.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grasp_ros.cli import add_options, option, parse
from grasp_ros.envs import ENVS, PointEnv, make_env
from grasp_ros.envs.pusht import PUSH_MOVE, PushExpert, pushing_steps
from grasp_ros.models.base import to_tensor
from grasp_ros.models.patch import PatchWorldModel
from grasp_ros.research.conditioning import conditioning
from grasp_ros.research.evaluation import evaluate, expert_check, forward_timing
from grasp_ros.research.fidelity import fidelity
from grasp_ros.research.model_card import patch_model_card
from grasp_ros.research.training import (
    atomic_save,
    collect,
    concat_episodes,
    encode_frames,
    render_episodes,
    train_dynamics,
    train_representation,
)

#: The world model each world trains by default (``--model auto``); others: the reference model.
DEFAULT_MODEL = {"pusht": "patch"}
MODELS = ("auto", "reference", "patch")


def model_kind(env: str, model: str) -> str:
    """``'reference'`` or ``'patch'``: what ``grasp-ros-train ENV --model MODEL`` trains."""
    return DEFAULT_MODEL.get(env, "reference") if model == "auto" else model


def output_name(env: str, model: str) -> str:
    """``ENV`` for the world's default model, else ``ENV-MODEL`` (``wall-patch``)."""
    kind = model_kind(env, model)
    return env if kind == DEFAULT_MODEL.get(env, "reference") else f"{env}-{kind}"


@dataclass
class PatchTrainOptions:
    """grasp-ros-train's options for the patch-token model (the card's ``training``)."""

    env: str = option("pusht", "reference world to train in", "env", choices=sorted(ENVS))
    model: str = option("auto", "world model to train", choices=MODELS)
    out: Path = option(Path("out/models"), "output folder", type=Path)
    seed: int = option(0, "seed for data, init and batches", type=int)
    episodes: int = option(800, "training episodes", type=int)
    episode_length: int = option(32, "steps per episode", type=int)
    eval_episodes: int = option(100, "held-out episodes", type=int)
    representation_steps: int = option(1500, "stage 1 (encoder, decoder, head) steps", type=int)
    dynamics_steps: int = option(2500, "stage 2 (predictor) steps", type=int)
    batch_size: int = option(32, "stage 1 frame pairs per step", type=int)
    rollout_batch_size: int = option(32, "stage 2 rollouts per step", type=int)
    rollout_steps: int = option(12, "stage 2 rollout length", type=int)
    lr: float = option(1e-3, "Adam learning rate (cosine decay)", type=float)
    grid: int = option(8, "tokens per side (grid x grid tokens)", type=int)
    dim: int = option(32, "token size", type=int)
    depth: int = option(2, "predictor transformer blocks", type=int)
    heads: int = option(4, "attention heads", type=int)
    image_size: int = option(64, "image side in pixels", type=int)
    work_size: int = option(
        32, "side the encoder resamples images to (64: Push-T's contacts above a pixel)", type=int
    )
    still_prob: float = option(0.1, "share of held random actions that are zero", type=float)
    threads: int = option(1, "torch threads (0: torch's default)", type=int)
    conditioning_horizon: int = option(50, "rollout length of the conditioning check", type=int)
    expert_share: float = option(
        0.0,
        "share of the training episodes driven by Push-T's scripted pushing expert "
        "(PushExpert, with --expert-noise) instead of random exploration",
        type=float,
    )
    expert_noise: float = option(
        0.3, "std of the Gaussian noise added to the expert's actions (action bound 1)", type=float
    )
    push_weight: float = option(
        0.0,
        "Push-T: predictor rollouts that start with a push (a point of the block moves over "
        f"{PUSH_MOVE:g} units) are drawn 1 + this many times as often",
        type=float,
    )
    init: Path | None = option(
        None,
        "start from these weights (a patch-token checkpoint or a NAME.train.pt progress file "
        "of the same shape); with --representation-steps 0 its encoder is kept",
        type=Path,
    )

    def problems(self) -> list[str]:
        """What is wrong with these options."""
        if model_kind(self.env, self.model) != "patch":
            return [f"--model {self.model} does not train the patch-token model"]
        if self.rollout_steps >= self.episode_length + 1:
            return ["--rollout-steps must be shorter than --episode-length"]
        if not 0.0 <= self.expert_share <= 1.0:
            return ["--expert-share must be in [0, 1]"]
        if self.push_weight < 0:
            return ["--push-weight must be >= 0"]
        if self.push_weight and self.env != "pusht":
            return ["--push-weight needs --env pusht (the only world with a block to push)"]
        if self.expert_share and self.env != "pusht":
            return ["--expert-share needs --env pusht (the only world with a pushing expert)"]
        return []


def parse_args(argv: list[str] | None) -> PatchTrainOptions:
    parser = argparse.ArgumentParser(
        prog="grasp-ros-train",
        description="Train the patch-token world model in a reference world and write "
        "OUT/NAME.pt and OUT/NAME.md (NAME: ENV, or ENV-patch where the world's default "
        "model is the reference model).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(parser, PatchTrainOptions)
    return parse(PatchTrainOptions, parser, argv)


#: Push-T's geometry loss counts a turn of the block as the move of a point this far from its
#: pivot (half the T's bar), so the block's angle weighs like its position (in the raw 7-d
#: state an angle in radians next to positions on a 512-unit board would weigh nothing).
BLOCK_LEVER = 60.0


def state_features(env: Any, states: torch.Tensor) -> torch.Tensor:
    """What the geometry loss matches latent distance to, in world units, agent ``(x, y)``
    first: the state itself in the point worlds; in Push-T agent and block position and the
    block's angle as a point on a circle of radius :data:`BLOCK_LEVER` (velocity left out)."""
    if env.name != "pusht":
        return states
    angle = states[..., 4:5]
    lever = BLOCK_LEVER * torch.cat([torch.cos(angle), torch.sin(angle)], -1)
    return torch.cat([states[..., :4], lever], -1)


def expert_rollouts(
    env: Any, episodes: int, length: int, seed: int, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Push-T episodes driven by :class:`PushExpert` (one per episode, from exploration
    starts), Gaussian ``noise`` on each action: states ``[E, length + 1, 7]``, actions
    ``[E, length, 2]``.

    Random exploration touches the block in ~9% of its steps, and a model trained on it rates
    the expert's own solutions 0.04-0.17 latent MSE from their goals: it barely learned pushing.
    The expert pushes in most of its steps; the noise widens the pushes it shows.
    """
    rng = np.random.default_rng(seed)
    states = np.empty((episodes, length + 1, 7))
    actions = np.empty((episodes, length, env.action_dim), dtype=np.float32)
    states[:, 0] = env.exploration_states(rng, episodes)
    experts = [PushExpert(env, int(s)) for s in rng.integers(2**31, size=episodes)]
    for t in range(length):
        a = np.stack([expert(0.0, s) for expert, s in zip(experts, states[:, t], strict=True)])
        a = a + noise * rng.standard_normal(a.shape)
        actions[:, t] = np.clip(a, env.action_low, env.action_high)
        states[:, t + 1] = env.step_states(states[:, t], actions[:, t])
    return states, actions


def collect_mixed(env: Any, args: PatchTrainOptions) -> dict[str, Any]:
    """The training episodes: ``--expert-share`` of them from :func:`expert_rollouts`, the rest
    random exploration (:func:`~grasp_ros.research.training.collect`)."""
    n_expert = round(args.expert_share * args.episodes)
    data = collect(env, args.episodes - n_expert, args.episode_length, args.seed, args.still_prob)
    if not n_expert:
        return data
    states, actions = expert_rollouts(
        env, n_expert, args.episode_length, args.seed + 20_000, args.expert_noise
    )
    expert = {
        "states": torch.from_numpy(states).float(),
        "actions": torch.from_numpy(actions).float(),
        "frames": render_episodes(env, states),
    }
    return concat_episodes(data, expert)


def rollout_weights(states: torch.Tensor, rollout_steps: int, push_weight: float) -> torch.Tensor:
    """``[E, L - rollout_steps + 1]`` weights of the predictor's rollout starts: 1, plus
    ``push_weight`` where the first step pushes (:func:`~grasp_ros.envs.pusht.pushing_steps`
    of Push-T states ``[E, L + 1, 7]``).

    Under a latent MSE a predictor unsure whether a push lands predicts the mean of moved and
    unmoved, nearer the unmoved block while pushes are the rarer case: the shipped model's
    one-step predictions move the block in 10-16% of the expert's pushes. Drawing pushes more
    often makes them the common case in the loss.
    """
    moved = torch.from_numpy(pushing_steps(states.numpy()))
    starts = moved[:, : moved.shape[1] - rollout_steps + 1]
    return 1.0 + push_weight * starts.float()


def background_image(frames: torch.Tensor) -> torch.Tensor:
    """The per-pixel median of up to 2000 frames ``[..., H, W, 3]``: what does not move,
    ``[3, H, W]`` in [0, 1]."""
    flat = frames.flatten(0, -4)
    sample = flat[:: max(1, len(flat) // 2000)]
    return to_tensor(sample.median(0).values.numpy())


def geometry_corr(model: PatchWorldModel, env: Any, data: dict[str, Any]) -> float:
    """Correlation of whole-latent RMS distance with state distance on 1000 frame pairs."""
    frames = data["frames"].flatten(0, 1)
    states = data["states"].flatten(0, 1)
    g = torch.Generator().manual_seed(0)
    i, j = torch.randperm(len(frames), generator=g)[:2000].chunk(2)
    with torch.no_grad():
        zi = model.encode(to_tensor(frames[i].numpy())).flatten(1)
        zj = model.encode(to_tensor(frames[j].numpy())).flatten(1)
    dz = (zi - zj).pow(2).mean(1).sqrt().numpy()
    ds = ((states[i] - states[j]) / env.world_size).pow(2).sum(1).sqrt().numpy()
    return float(np.corrcoef(dz, ds)[0, 1])


def run(args: PatchTrainOptions) -> dict[str, Any]:
    """The whole pipeline; returns the checkpoint dict it wrote."""
    if args.threads:
        torch.set_num_threads(args.threads)
    name = output_name(args.env, args.model)
    env = make_env(args.env, image_size=args.image_size)
    progress_path = args.out / f"{name}.train.pt"
    t_start = time.time()
    data = collect_mixed(env, args)
    held_out = collect(env, args.eval_episodes, max(10, args.rollout_steps), args.seed + 10_000)
    raw_states = data["states"]
    for d in (data, held_out):
        d["states"] = state_features(env, d["states"])
    point_world = isinstance(env, PointEnv)
    torch.manual_seed(args.seed)
    model = PatchWorldModel(
        image_size=args.image_size,
        work_size=args.work_size,
        grid=args.grid,
        dim=args.dim,
        depth=args.depth,
        heads=args.heads,
        action_dim=env.action_dim,
        world_size=env.world_size,
        env_name=args.env,
        action_low=env.action_low.tolist(),
        action_high=env.action_high.tolist(),
    )
    random_corr = geometry_corr(model, env, held_out)
    print(f"random encoder: geometry corr {random_corr:.3f}", file=sys.stderr)
    if args.init is not None:
        saved = torch.load(args.init, map_location="cpu", weights_only=True)
        model.load_state_dict(saved.get("model", saved)["state_dict"])
    background = None if point_world else background_image(data["frames"])
    train_representation(args, model, env, data, progress_path, 0, None, background)
    latents = encode_frames(model, data["frames"])
    weights = (
        rollout_weights(raw_states, args.rollout_steps, args.push_weight)
        if args.push_weight
        else torch.ones(len(latents))
    )
    pool = (latents, data["actions"], weights)
    loss = train_dynamics(
        args, model, pool, progress_path, "dynamics", args.dynamics_steps, 0, None
    )
    train_seconds = time.time() - t_start

    model.eval()
    metrics = evaluate(model, env, held_out)
    metrics["random_encoder_geometry_corr"] = random_corr
    if point_world:  # its checks (walls, the dot's position) are the point worlds'
        metrics.update(fidelity(model, env))
    else:  # Push-T: the pushing check on the expert's solutions
        metrics.update(expert_check(model, env))
    metrics.update(forward_timing(model))
    metrics.update(conditioning(model, env, horizon=args.conditioning_horizon))
    metrics["final_rollout_loss"] = float(loss.item())
    metrics["train_seconds"] = train_seconds
    metrics["parameters"] = float(sum(p.numel() for p in model.parameters()))
    options = dataclasses.asdict(args)
    training = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    ckpt = model.checkpoint(metrics=metrics, training=training)
    atomic_save(ckpt, args.out / f"{name}.pt")
    defaults = dataclasses.asdict(parse_args([args.env, "--model", args.model]))
    defaults["model"] = "auto"  # the card's command names a --model other than the world's
    card = patch_model_card(name, training, metrics, defaults)
    (args.out / f"{name}.md").write_text(card, encoding="utf-8")
    progress_path.unlink(missing_ok=True)
    return ckpt


def main(argv: list[str] | None = None) -> int:
    """Entry point (``grasp-ros-train`` hands over here for the patch-token model)."""
    args = parse_args(argv)
    run(args)
    name = output_name(args.env, args.model)
    print(f"wrote {args.out / (name + '.pt')} and {args.out / (name + '.md')}")
    return 0
