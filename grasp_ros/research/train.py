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
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch

from grasp_ros.cli import add_options, parse
from grasp_ros.envs import ENVS, PointEnv, make_env
from grasp_ros.models.reference import ReferenceWorldModel
from grasp_ros.research import cost_to_go, train_patch
from grasp_ros.research.evaluation import evaluate, forward_timing, log_fidelity, planning_check
from grasp_ros.research.fidelity import fidelity
from grasp_ros.research.model_card import model_card
from grasp_ros.research.planner_data import planner_episodes
from grasp_ros.research.train_patch import model_kind
from grasp_ros.research.training import (
    TrainOptions,
    atomic_save,
    collect,
    concat_episodes,
    encode_frames,
    mixed_pool,
    train_dynamics,
    train_representation,
)


def parse_args(argv: list[str] | None) -> TrainOptions:
    parser = argparse.ArgumentParser(
        prog="grasp-ros-train",
        description="Train grasp_ros's reference world model in a reference world and write "
        "OUT/ENV.pt (weights-only checkpoint) and OUT/ENV.md (model card).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_options(parser, TrainOptions)
    return parse(TrainOptions, parser, argv)


def _initial_model(args: TrainOptions, env: PointEnv) -> ReferenceWorldModel:
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


def run(args: TrainOptions) -> dict[str, Any]:
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
        measured = log_fidelity(model, env, "after stage 2")
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
            planner_data = new if planner_data is None else concat_episodes(planner_data, new)
            gap = new["gaps"].nanmedian().item()
            print(f"planner round {r}: median plan end error {gap:.2f} units", file=sys.stderr)
        pool = mixed_pool(model, env, latents, data["actions"], planner_data, args)
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
        measured = log_fidelity(model, env, f"after planner round {r}")
    train_seconds = time.time() - t_start

    metrics = evaluate(model, env, held_out)
    metrics.update(measured if measured is not None else fidelity(model, env))
    metrics.update(forward_timing(model))
    metrics["final_rollout_loss"] = float(loss.item())
    metrics["train_seconds"] = train_seconds
    if args.planning_tasks:
        metrics.update(planning_check(model, env, args.planning_horizon, args.planning_tasks))
    if args.cost_to_go:
        model.cost_to_go, ctg = cost_to_go.build(model.eval(), env, seed=args.seed)
        metrics.update({f"cost_to_go_{k}": v for k, v in ctg.items()})
    options = dataclasses.asdict(args)
    training = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
    ckpt = model.eval().checkpoint(metrics=metrics, training=training)
    atomic_save(ckpt, out / f"{args.env}.pt")
    card = model_card(training, metrics, defaults=dataclasses.asdict(parse_args([args.env])))
    (out / f"{args.env}.md").write_text(card, encoding="utf-8")
    progress_path.unlink(missing_ok=True)
    return ckpt


def _trains_patch_model(argv: list[str] | None) -> bool:
    """Whether the command line asks for the patch-token model (``--model``, or the world's
    default), which :mod:`grasp_ros.research.train_patch` trains with its own options."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("env", nargs="?")
    pre.add_argument("--model", default="auto")
    known, _ = pre.parse_known_args(argv)
    return known.env in ENVS and model_kind(known.env, known.model) == "patch"


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status."""
    if _trains_patch_model(argv):
        return train_patch.main(argv)
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
