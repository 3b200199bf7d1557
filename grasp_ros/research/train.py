"""grasp-ros-train: collect data in a reference world, train a world model, evaluate, ship.

Training has three stages:

1. Representation: encoder, decoder and position head on single frames of random exploration
   (:func:`random_rollouts`, a share of it standing still). Besides reconstruction, a geometry
   loss makes latent distance track ground-truth state distance (``mean((z_i - z_j)^2) ~
   |s_i - s_j|^2`` with ``s`` in arena units), so the planners' latent MSE to the goal falls
   smoothly as the agent approaches it; the position head is supervised by the true position.
2. Dynamics: encoder frozen, every frame encoded once, then the (action-gated) residual MLP is
   trained on ``--rollout-steps``-step open-loop rollouts in latent space (planners roll it out
   50-80 steps, so one-step accuracy is not enough), with the gradient norm clipped.
3. Planner rounds (:mod:`grasp_ros.research.planner_data`): GRASP, GD and CEM plan sampled tasks
   in the current model, the plans run in the true world, and the dynamics keeps training on a
   mix of those episodes and the random ones. Planners seek out the model's errors (a leaky
   wall is a shortcut); this puts data exactly there.

The run ends with a held-out evaluation, a weights-only checkpoint ``ENV.pt`` and a model card
``ENV.md``. Progress is saved atomically to ``ENV.train.pt`` every ``SAVE_EVERY`` steps, so an
interrupted run loses at most that much; ``--resume`` continues from it. Every file is written
to a temporary name and renamed, so a checkpoint is never left half-written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from grasp_ros.envs import ENVS, PointEnv, make_env, random_rollouts
from grasp_ros.models.base import to_tensor
from grasp_ros.models.reference import ReferenceWorldModel
from grasp_ros.research.fidelity import ROLLOUT_STEPS, fidelity
from grasp_ros.research.planner_data import planner_episodes

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


def encode_frames(model: ReferenceWorldModel, frames: torch.Tensor) -> torch.Tensor:
    """Latents ``[E, T, D]`` for uint8 frames ``[E, T, H, W, 3]``, batched, without grad."""
    flat = frames.reshape(-1, *frames.shape[2:])
    with torch.no_grad():
        z = torch.cat(
            [model.encode(to_tensor(flat[i : i + 1024].numpy())) for i in range(0, len(flat), 1024)]
        )
    return z.reshape(*frames.shape[:2], -1)


def representation_loss(
    model: ReferenceWorldModel, images: torch.Tensor, states: torch.Tensor, world_size: float
) -> dict[str, torch.Tensor]:
    """Reconstruction + position + geometry losses on a batch of ``2B`` frames.

    The batch pairs frame ``i`` with frame ``i + B`` (a few steps later in the same episode),
    so the geometry term sees near pairs as well as the far pairs of a random permutation.
    """
    z = model.encode(images)
    logits = model.decode_logits(z)
    dot = (images[:, 0] - images[:, 1]).clamp(min=0).unsqueeze(1)
    weight = 1 + DOT_WEIGHT * dot
    recon = F.binary_cross_entropy_with_logits(logits, images, weight=weight)
    s = states / world_size
    pos = F.mse_loss(model.project(z)[:, :2] / world_size, s[:, :2])
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


def rollout_loss(
    model: ReferenceWorldModel, latents: torch.Tensor, actions: torch.Tensor
) -> torch.Tensor:
    """Mean latent MSE of an open-loop rollout from ``latents[:, 0]`` over ``actions``."""
    z = latents[:, 0]
    loss = latents.new_zeros(())
    for k in range(actions.shape[1]):
        z = model(z, actions[:, k])
        loss = loss + F.mse_loss(z, latents[:, k + 1])
    return loss / actions.shape[1]


def evaluate(
    model: ReferenceWorldModel,
    env: PointEnv,
    data: dict[str, Any],
    steps: tuple[int, ...] = (1, 10),
) -> dict[str, float]:
    """Held-out metrics: k-step latent error, decoder quality, position head error, geometry."""
    model.eval()
    z = encode_frames(model, data["frames"])
    states, actions = data["states"], data["actions"]
    out: dict[str, float] = {}
    variance = z.reshape(-1, z.shape[-1]).var(0).mean().item()
    out["latent_variance"] = variance
    with torch.no_grad():
        pred = z[:, 0]
        for k in range(1, max(steps) + 1):
            pred = model(pred, actions[:, k - 1])
            if k in steps:
                mse = F.mse_loss(pred, z[:, k]).item()
                out[f"latent_mse_{k}step"] = mse
                out[f"latent_nmse_{k}step"] = mse / variance
                pos = model.project(pred)[:, :2]
                out[f"position_error_{k}step"] = (pos - states[:, k, :2]).norm(dim=1).mean().item()
        flat_z = z.reshape(-1, z.shape[-1])
        flat_s = states.reshape(-1, states.shape[-1])
        out["projection_error"] = (
            (model.project(flat_z)[:, :2] - flat_s[:, :2]).norm(dim=1).mean().item()
        )
        images = to_tensor(data["frames"][:, 0].numpy())
        decoded = model.decode(z[:, 0])
        mse = F.mse_loss(decoded, images).item()
        out["decoder_mse"] = mse
        out["decoder_psnr_db"] = 10 * math.log10(1 / max(mse, 1e-12))
        out["decoded_dot_error"] = _dot_error(decoded, states[:, 0, :2], env.world_size)
        i, j = torch.randperm(len(flat_z), generator=torch.Generator().manual_seed(0))[:2000].chunk(
            2
        )
        dz = (flat_z[i] - flat_z[j]).pow(2).mean(1)
        ds = ((flat_s[i] - flat_s[j]) / env.world_size).pow(2).sum(1)
        out["geometry_corr"] = float(np.corrcoef(dz.sqrt().numpy(), ds.sqrt().numpy())[0, 1])
        sv = torch.linalg.svdvals(flat_z - flat_z.mean(0))
        out["variance_top3"] = (sv[:3].pow(2).sum() / sv.pow(2).sum()).item()
    return out


def _dot_error(images: torch.Tensor, positions: torch.Tensor, world_size: float) -> float:
    """Mean distance (world units) from the red-dot centroid of decoded images to the truth."""
    red = (images[:, 0] - images[:, 1]).clamp(min=0)
    red = torch.where(red > 0.5 * red.amax((1, 2), keepdim=True), red, torch.zeros_like(red))
    size = images.shape[-1]
    c = (torch.arange(size) + 0.5) * world_size / size
    mass = red.sum((1, 2)).clamp(min=1e-8)
    x = (red.sum(1) * c).sum(1) / mass
    y = (red.sum(2) * c).sum(1) / mass
    return (torch.stack([x, y], 1) - positions).norm(dim=1).mean().item()


def forward_timing(
    model: ReferenceWorldModel, batch: int = 200, repeats: int = 50
) -> dict[str, float]:
    """Median milliseconds of ``forward`` (and forward + backward) on a ``batch`` of latents."""
    z = torch.randn(batch, *model.latent_shape)
    a = torch.zeros(batch, model.action_dim, requires_grad=True)
    fwd, both = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        with torch.no_grad():
            model(z, a)
        fwd.append(time.perf_counter() - t)
        t = time.perf_counter()
        model(z, a).pow(2).sum().backward()
        both.append(time.perf_counter() - t)
    return {
        "forward_ms_b200": 1e3 * float(np.median(fwd)),
        "forward_backward_ms_b200": 1e3 * float(np.median(both)),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="grasp-ros-train",
        description="Train grasp_ros's reference world model in a reference world and write "
        "OUT/ENV.pt (weights-only checkpoint) and OUT/ENV.md (model card).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("env", choices=sorted(ENVS), help="reference world to train in")
    p.add_argument("--out", type=Path, default=Path("out/models"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed for data, init and batches")
    p.add_argument("--episodes", type=int, default=1500, help="training episodes")
    p.add_argument("--episode-length", type=int, default=64, help="steps per episode")
    p.add_argument("--eval-episodes", type=int, default=300, help="held-out episodes")
    p.add_argument(
        "--representation-steps",
        type=int,
        default=5000,
        help="stage 1 (encoder, decoder, position head) iterations",
    )
    p.add_argument("--dynamics-steps", type=int, default=6000, help="stage 2 iterations")
    p.add_argument("--batch-size", type=int, default=64, help="stage 1 frame pairs per step")
    p.add_argument("--rollout-batch-size", type=int, default=96, help="stage 2 rollouts per step")
    p.add_argument("--rollout-steps", type=int, default=48, help="stage 2 rollout length")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (cosine decay)")
    p.add_argument("--latent-dim", type=int, default=64, help="latent vector size")
    p.add_argument("--hidden-dim", type=int, default=256, help="dynamics MLP width")
    p.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    p.add_argument(
        "--action-gated",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="dynamics f(z, a) = M(z, a) a: exactly still under a zero action",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; 1 is fastest on a shared CPU (0: torch's default)",
    )
    p.add_argument(
        "--planning-tasks",
        type=int,
        default=20,
        help="tasks in the model card's planning check (0: skip it)",
    )
    p.add_argument("--planning-horizon", type=int, default=30, help="planning check horizon")
    p.add_argument(
        "--still-prob",
        type=float,
        default=0.1,
        help="share of held random actions that are zero (standing still)",
    )
    p.add_argument(
        "--planner-rounds",
        type=int,
        default=2,
        help="rounds of planner-in-the-loop data after stage 2 (0: random data only)",
    )
    p.add_argument(
        "--planner-tasks", type=int, default=150, help="tasks planned and executed per round"
    )
    p.add_argument(
        "--round-steps", type=int, default=1500, help="dynamics iterations per planner round"
    )
    p.add_argument(
        "--planner-share",
        type=float,
        default=0.5,
        help="share of each planner-round batch drawn from planner episodes",
    )
    p.add_argument(
        "--init",
        type=Path,
        default=None,
        help="start from this checkpoint's weights (with --representation-steps 0: keep its "
        "encoder and retrain the dynamics)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/ENV.train.pt")
    args = p.parse_args(argv)
    if args.rollout_steps >= args.episode_length + 1:
        p.error("--rollout-steps must be shorter than --episode-length")
    return args


def _lr(args: argparse.Namespace, step: int, total: int) -> float:
    return args.lr * 0.5 * (1 + math.cos(math.pi * min(step / max(total, 1), 1.0)))


def _save_progress(
    path: Path,
    model: ReferenceWorldModel,
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


def _initial_model(args: argparse.Namespace, env: PointEnv) -> ReferenceWorldModel:
    """A fresh model, or the weights of ``--init`` (which must be a model of the same shape)."""
    model = ReferenceWorldModel(
        image_size=args.image_size,
        latent_dim=args.latent_dim,
        hidden_dim=args.hidden_dim,
        world_size=env.world_size,
        env_name=args.env,
        action_gated=args.action_gated,
    )
    if args.init is not None:
        ckpt = torch.load(args.init, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
            raise SystemExit(f"--init {args.init}: not a grasp_ros reference checkpoint")
        own = model.state_dict()
        fits = {k: v for k, v in ckpt["state_dict"].items() if k in own and own[k].shape == v.shape}
        if not fits:
            raise SystemExit(f"--init {args.init}: no weight fits this model's shapes")
        model.load_state_dict(fits, strict=False)
        fresh = sorted(k for k in own if k not in fits)
        if fresh:
            print(f"--init: kept fresh (shape changed): {', '.join(fresh)}", file=sys.stderr)
    return model


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole pipeline; returns the checkpoint dict it wrote."""
    if args.threads:
        torch.set_num_threads(args.threads)
    env = make_env(args.env, image_size=args.image_size)
    out = args.out
    progress_path = out / f"{args.env}.train.pt"
    t_start = time.time()
    data = collect(env, args.episodes, args.episode_length, args.seed, args.still_prob)
    held_out = collect(env, args.eval_episodes, max(10, args.rollout_steps), args.seed + 10_000)
    torch.manual_seed(args.seed)
    model = _initial_model(args, env)
    stage, start = "representation", 0
    saved_opt, planner_data = None, None
    if args.resume and progress_path.exists():
        saved = torch.load(progress_path, weights_only=True)
        model.load_state_dict(saved["model"]["state_dict"])
        stage, start, saved_opt = saved["stage"], saved["step"], saved["optimizer"]
        planner_data = saved.get("planner_data")
        print(f"resuming {stage} at step {start} from {progress_path}", file=sys.stderr)

    if stage == "representation":
        train_representation(args, model, env, data, progress_path, start, saved_opt)
        stage, start, saved_opt = "dynamics", 0, None

    latents = encode_frames(model, data["frames"])
    loss = torch.zeros(())
    measured = None  # the fidelity of the model as it is now, once measured
    if stage == "dynamics":
        pool = (latents, data["actions"], torch.ones(len(latents)))
        loss = train_dynamics(
            args, model, pool, progress_path, stage, args.dynamics_steps, start, saved_opt
        )
        stage, start, saved_opt = "planner-0", 0, None
        measured = _log_fidelity(model, env, "after stage 2")
    for r in range(int(stage.split("-")[1]), args.planner_rounds):
        collected = 0 if planner_data is None else len(planner_data["actions"])
        if collected < (r + 1) * args.planner_tasks:
            new = planner_episodes(
                model,
                env,
                args.planner_tasks,
                args.episode_length,
                args.seed * 100 + r,
                min_horizon=min(20, args.episode_length),
            )
            planner_data = new if planner_data is None else _cat(planner_data, new)
            gap = new["gaps"].nanmedian().item()
            print(f"planner round {r}: median plan end error {gap:.2f} units", file=sys.stderr)
        pool = _mixed_pool(model, env, latents, data["actions"], planner_data, args)
        loss = train_dynamics(
            args,
            model,
            pool,
            progress_path,
            f"planner-{r}",
            args.round_steps,
            start,
            saved_opt,
            planner_data,
        )
        start, saved_opt = 0, None
        measured = _log_fidelity(model, env, f"after planner round {r}")
    train_seconds = time.time() - t_start

    metrics = evaluate(model, env, held_out)
    metrics.update(measured if measured is not None else fidelity(model, env))
    metrics.update(forward_timing(model))
    metrics["final_rollout_loss"] = float(loss.item())
    metrics["train_seconds"] = train_seconds
    if args.planning_tasks:
        metrics.update(planning_check(model, env, args.planning_horizon, args.planning_tasks))
    training = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    ckpt = model.eval().checkpoint(metrics=metrics, training=training)
    atomic_save(ckpt, out / f"{args.env}.pt")
    (out / f"{args.env}.md").write_text(model_card(training, metrics), encoding="utf-8")
    progress_path.unlink(missing_ok=True)
    return ckpt


def train_representation(
    args: argparse.Namespace,
    model: ReferenceWorldModel,
    env: PointEnv,
    data: dict[str, Any],
    progress_path: Path,
    start: int,
    saved_opt: dict[str, Any] | None,
) -> None:
    """Stage 1: encoder, decoder and position head on single frames (pairs for geometry)."""
    frames, states = data["frames"], data["states"]
    episodes, length = states.shape[:2]
    params = [*model.encoder.parameters(), *model.decoder.parameters(), *model.head.parameters()]
    opt = torch.optim.Adam(params, lr=args.lr)
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
            model, to_tensor(frames[e, t].numpy()), states[e, t], env.world_size
        )
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        bar.set_postfix({k: f"{v.item():.4f}" for k, v in losses.items()}, refresh=False)
        if (step + 1) % SAVE_EVERY == 0:
            _save_progress(progress_path, model, opt, "representation", step + 1)
    _save_progress(progress_path, model, opt, "dynamics", 0)


def train_dynamics(
    args: argparse.Namespace,
    model: ReferenceWorldModel,
    pool: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    progress_path: Path,
    stage: str,
    steps: int,
    start: int,
    saved_opt: dict[str, Any] | None,
    planner_data: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Stage 2 (and each planner round): open-loop rollouts on frozen latents.

    ``pool`` is ``(latents [E, L+1, D], actions [E, L, A], weights [E])``: episodes are drawn
    with probability proportional to their weight. Returns the last batch's loss.
    """
    latents, actions, weights = pool
    length = actions.shape[1]
    opt = torch.optim.Adam(model.dynamics.parameters(), lr=args.lr)
    if saved_opt is not None:
        opt.load_state_dict(saved_opt)
    k = args.rollout_steps
    salt = sum(map(ord, stage)) * 7919
    bar = tqdm(range(start, steps), desc=stage, initial=start, mininterval=5, total=steps)
    loss = torch.zeros(())
    for step in bar:
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + 500_009 + salt + step)
        e = torch.multinomial(weights, args.rollout_batch_size, replacement=True, generator=g)
        t0 = torch.randint(length - k + 1, (args.rollout_batch_size,), generator=g)
        idx = t0[:, None] + torch.arange(k + 1)
        for group in opt.param_groups:
            group["lr"] = _lr(args, step, steps)
        loss = rollout_loss(model, latents[e[:, None], idx], actions[e[:, None], idx[:, :-1]])
        opt.zero_grad()
        loss.backward()
        # Long rollouts are backprop through time: one bad batch can explode the gradient.
        nn.utils.clip_grad_norm_(model.dynamics.parameters(), CLIP_NORM)
        opt.step()
        bar.set_postfix(rollout_mse=f"{loss.item():.5f}", refresh=False)
        if (step + 1) % SAVE_EVERY == 0:
            _save_progress(progress_path, model, opt, stage, step + 1, planner_data)
    return loss


def _log_fidelity(model: ReferenceWorldModel, env: PointEnv, when: str) -> dict[str, float]:
    """Measure :func:`fidelity`, print its headline figures, return all of them."""
    f = fidelity(model, env)
    print(
        f"{when}: idle drift {f['idle_drift']:.2f}, wall leak {f['wall_leak']:.2f}, "
        f"60-step error {f['rollout_error_60']:.2f} (p90 {f['rollout_error_60_p90']:.2f}) units",
        file=sys.stderr,
    )
    return f


def _cat(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([a[k], b[k]]) for k in a}


def _mixed_pool(
    model: ReferenceWorldModel,
    env: PointEnv,
    latents: torch.Tensor,
    actions: torch.Tensor,
    planner_data: dict[str, torch.Tensor],
    args: argparse.Namespace,
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


def planning_check(
    model: ReferenceWorldModel,
    env: PointEnv,
    horizon: int,
    tasks: int,
    planners: tuple[str, ...] = ("grasp", "gd", "cem"),
) -> dict[str, float]:
    """Open-loop success rate of each planner (default settings) on sampled tasks.

    Task ``i`` is ``env.sample_task(horizon, seed=i)``; the plan from the start image's latent
    to the goal image's latent is executed blindly in the true environment and succeeds if the
    final state is within the environment's success radius of the goal.
    """
    from grasp_ros.planning import make_planner

    model.eval()
    out: dict[str, float] = {"planning_horizon": float(horizon), "planning_tasks": float(tasks)}
    sampled = [env.sample_task(horizon, seed=i) for i in range(tasks)]
    with torch.no_grad():
        z = model.encode(
            to_tensor(np.stack([im for t in sampled for im in (t.start_image, t.goal_image)]))
        )
    for name in planners:
        planner = make_planner(name, model, horizon)
        wins, times = 0, []
        for i, task in enumerate(tqdm(sampled, desc=f"planning check {name}", mininterval=5)):
            plan = planner.plan(z[2 * i], z[2 * i + 1])
            state = task.start_state[None]
            for a in plan.actions.detach().cpu().numpy():
                state = env.step_states(state, a[None])
            wins += env.success(state[0], task.goal_state)
            times.append(plan.solve_time)
        out[f"planning_success_{name}"] = wins / tasks
        out[f"planning_seconds_{name}"] = float(np.median(times))
    return out


def model_card(training: dict[str, Any], m: dict[str, float]) -> str:
    """The markdown model card from the training arguments and the measured metrics."""
    t = training
    env = t["env"]
    frames = t["episodes"] * (t["episode_length"] + 1)
    card = f"""# Reference world model: `{env}`

Trained by `{_command(t)}` (grasp_ros.research.train) in
{m["train_seconds"] / 60:.1f} min on a shared 2-core CPU ({t["threads"]} torch thread).
Load it with `grasp_ros.models.load_world_model('{env}')`; `env_for_model(model)` builds the
matching environment.

## Model
`ReferenceWorldModel`: {t["image_size"]}x{t["image_size"]} RGB image -> {t["latent_dim"]}-d
latent (CNN at 32x32), residual MLP dynamics `z' = z + f([z, a])` (3 x {t["hidden_dim"]}, SiLU{
        ", action-gated: f = M(z, a) a, exactly still at a = 0" if t.get("action_gated") else ""
    }),
transposed-CNN decoder, position head `project()` returning `(x, y, 0)` in world units (64-unit
arena, x = image column, y = image row).

## Data
{t["episodes"]} random-exploration episodes x {t["episode_length"]} steps ({frames} frames) in
`{env}` (`random_rollouts`: starts from `env.exploration_states`, actions half uniform in
[-1, 1]^2 and half full speed, a share {t.get("still_prob", 0.0):g} zero (standing still), held for
a random number of steps with switch probability 0.15), seed {t["seed"]}. Held out:
{t["eval_episodes"]} episodes from seed {t["seed"] + 10_000}.

## Training
{_representation_text(t)}2. Dynamics, {t["dynamics_steps"]} steps of {
        t["rollout_batch_size"]
    } open-loop rollouts of
   {t["rollout_steps"]} steps on frozen latents.
{_planner_rounds_text(t)}Final training rollout MSE: {m["final_rollout_loss"]:.2e}.{_init_text(t)}

## Held-out accuracy
| metric | value |
|---|---|
| latent variance (mean per element) | {m["latent_variance"]:.4f} |
| 1-step latent MSE (normalised) | {m["latent_mse_1step"]:.2e} ({m["latent_nmse_1step"]:.2e}) |
| 10-step open-loop latent MSE (normalised) | {m["latent_mse_10step"]:.2e} \
({m["latent_nmse_10step"]:.2e}) |
| 1-step predicted position error (via `project`) | {m["position_error_1step"]:.2f} units |
| 10-step predicted position error (via `project`) | {m["position_error_10step"]:.2f} units |
| `project()` error on encoded frames | {m["projection_error"]:.2f} units |
| decoder MSE / PSNR | {m["decoder_mse"]:.2e} / {m["decoder_psnr_db"]:.1f} dB |
| decoded dot position error | {m["decoded_dot_error"]:.2f} units |
| corr(latent distance, state distance) | {m["geometry_corr"]:.3f} |
| latent variance in top 3 principal directions | {100 * m["variance_top3"]:.1f}% |

Normalised MSE is MSE divided by the latent variance. One step moves the agent up to 2 units.

## Long-horizon fidelity (`grasp_ros.research.fidelity`, world units, median / 90th percentile)
| check | value |
|---|---|
{_fidelity_rows(m)}

Open-loop plans of 50-80 steps only work if these stay well inside the success radius.

## Speed (CPU, batch 200, 1 thread)
`forward`: {m["forward_ms_b200"]:.2f} ms; forward + backward: \
{m["forward_backward_ms_b200"]:.2f} ms.
"""
    if "planning_horizon" in m:
        h, n = int(m["planning_horizon"]), int(m["planning_tasks"])
        rows = "\n".join(
            f"| {name} | {100 * m[f'planning_success_{name}']:.0f}% | "
            f"{m[f'planning_seconds_{name}']:.2f} s |"
            for name in ("grasp", "gd", "cem")
            if f"planning_success_{name}" in m
        )
        card += f"""
## Planning check
{n} tasks `env.sample_task({h}, seed=i)`, i < {n}; each planner with its default settings plans
from the start image's latent to the goal image's latent at horizon {h}, and the plan is run open
loop in the true environment (success: final position within the success radius).

| planner | success | median solve time |
|---|---|---|
{rows}
"""
    return card


def _command(t: dict[str, Any]) -> str:
    """The command line that trains this model: the arguments that differ from the defaults."""
    defaults = vars(parse_args([t["env"]]))
    words = [f"grasp-ros-train {t['env']}", f"--seed {t['seed']}"]
    for key, value in t.items():
        if key in ("env", "seed", "out", "resume") or defaults.get(key) == value:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else "--no-" + flag[2:])
        else:
            words.append(f"{flag} {value}")
    return " ".join(words)


def _planner_rounds_text(t: dict[str, Any]) -> str:
    rounds = t.get("planner_rounds", 0)
    if not rounds:
        return ""
    return (
        f"3. Planner-in-the-loop data ({rounds} rounds, `grasp_ros.research.planner_data`): each "
        f"round GRASP, GD and CEM plan {t['planner_tasks']} sampled tasks (seeds far from the "
        f"benchmark's) in the current model, the plans run in the true world with N(0, 0.1) "
        f"action noise, and the dynamics trains {t['round_steps']} more steps with "
        f"{100 * t['planner_share']:.0f}% of each batch from these episodes.\n"
    )


def _representation_text(t: dict[str, Any]) -> str:
    if t["representation_steps"] == 0 and t.get("init"):
        return (
            f"1. Representation: encoder, decoder and position head taken unchanged from "
            f"`{t['init']}` (`--init`; see that model's card for how they were trained).\n"
        )
    return (
        f"1. Representation, {t['representation_steps']} steps of {2 * t['batch_size']} "
        f"frames:\n   reconstruction (BCE, dot pixels x{DOT_WEIGHT:g}) + position head + "
        f"geometry loss\n   (latent RMS distance matched to state distance in arena units).\n"
    )


def _init_text(t: dict[str, Any]) -> str:
    if not t.get("init") or t["representation_steps"] == 0:
        return ""
    return f"\nInitial weights: `{t['init']}` (`--init`)."


def _fidelity_rows(m: dict[str, float]) -> str:
    rows = [(f"position error after {k} random steps", f"rollout_error_{k}") for k in ROLLOUT_STEPS]
    rows += [
        ("drift over 40 zero actions", "idle_drift"),
        ("error after 10 steps pushing into a wall", "wall_leak"),
    ]
    return "\n".join(
        f"| {label} | {m[key]:.2f} / {m[key + '_p90']:.2f} |" for label, key in rows if key in m
    )


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; progress is in {args.out / (args.env + '.train.pt')}, "
            "continue with --resume",
            file=sys.stderr,
        )
        return 130
    print(f"wrote {args.out / (args.env + '.pt')} and {args.out / (args.env + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
