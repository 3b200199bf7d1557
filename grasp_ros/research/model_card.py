"""The model card shipped beside each checkpoint: how it was trained and how good it is."""

from __future__ import annotations

from typing import Any

from grasp_ros.research.conditioning import conditioning_rows
from grasp_ros.research.cost_to_go import card_section
from grasp_ros.research.fidelity import ROLLOUT_STEPS
from grasp_ros.research.training import DOT_WEIGHT


def model_card(training: dict[str, Any], m: dict[str, float], defaults: dict[str, Any]) -> str:
    """The markdown model card from the training arguments and the measured metrics."""
    t = training
    env = t["env"]
    frames = t["episodes"] * (t["episode_length"] + 1)
    card = f"""# Reference world model: `{env}`

Trained by `{_command(t, defaults)}` (grasp_ros.research.train) in
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

{_accuracy_table(m, point_world=True)}
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
    if "cost_to_go_total_seconds" in m:
        ctg = {k[len("cost_to_go_") :]: v for k, v in m.items() if k.startswith("cost_to_go_")}
        card += card_section(ctg, "the last stage of the command above")
    return card


def _command(t: dict[str, Any], defaults: dict[str, Any]) -> str:
    """The command line that trains this model: the arguments that differ from the defaults."""
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


def patch_model_card(
    name: str, training: dict[str, Any], m: dict[str, float], defaults: dict[str, Any]
) -> str:
    """The markdown model card of a patch-token model (:mod:`grasp_ros.models.patch`)."""
    t = training
    frames = t["episodes"] * (t["episode_length"] + 1)
    g = t["grid"]
    point_world = "idle_drift" in m  # fidelity's checks run in the point worlds only
    moving = "dot pixels" if point_world else "pixels unlike the median frame"
    state = (
        "state"
        if point_world
        else "agent and block position, block angle as a point 60 units from its pivot"
    )
    fidelity = (
        f"""
## Long-horizon fidelity (`grasp_ros.research.fidelity`, world units, median / 90th percentile)
| check | value |
|---|---|
{_fidelity_rows(m)}
"""
        if point_world
        else ""
    )
    return f"""# Patch-token world model: `{name}`

Trained by `{_command(t, defaults)}` (grasp_ros.research.train_patch) in
{m["train_seconds"] / 60:.1f} min on a shared 2-core CPU ({t["threads"]} torch thread).
Load it with `grasp_ros.models.load_world_model('{name}')`; `env_for_model(model)` builds the
matching environment.

## Model
`PatchWorldModel` ({m["parameters"]:,.0f} weights): {t["image_size"]}x{t["image_size"]} RGB image
-> {g * g} patch tokens x {t["dim"]} dims (CNN stem at 32x32 to a {g}x{g} grid, one ViT block so
each token sees the whole image); predictor `z' = z + f(z, a)`: the action embedded and added to
every token, {t["depth"]} pre-norm ViT blocks ({t["heads"]} heads) over the tokens; decoder: each
token to its image patch; position head `project()` on the mean token.

## Data
{_patch_data(t)} x {t["episode_length"]} steps ({frames} frames) in
`{t["env"]}`, seed {t["seed"]}.
Held out: {t["eval_episodes"]} episodes from seed {t["seed"] + 10_000}.

## Training
1. Representation, {_patch_stage1(t)}, encoder trained jointly with the decoder and
   the position head: reconstruction (BCE, {moving} x{DOT_WEIGHT:g}) + position + geometry
   (RMS distance between token grids matched to the distance in {state}).
   Correlation of latent with state distance (held out): \
{m["random_encoder_geometry_corr"]:.3f}
   for the random, untrained encoder (what a frozen random encoder would give the planners'
   cost), {m["geometry_corr"]:.3f} after training.
2. Predictor{_patch_stage2_init(t)}, {t["dynamics_steps"]} steps of
   {t["rollout_batch_size"]} open-loop rollouts of {t["rollout_steps"]} steps on the frozen
   tokens. Final training rollout MSE: \
{m["final_rollout_loss"]:.2e}.

No planner-in-the-loop rounds and no learned cost-to-go head (planners use the latent MSE).

{_accuracy_table(m, point_world=False)}{fidelity}{_expert_section(m)}
## Conditioning of the serial rollout (`grasp_ros.research.conditioning`)
{int(m["conditioning_rollouts"])} rollouts of {int(m["conditioning_horizon"])} random exploration
steps from encoded start frames.

| figure | value |
|---|---|
{conditioning_rows(m)}

## Speed (CPU, batch 200, 1 thread)
`forward`: {m["forward_ms_b200"]:.2f} ms; forward + backward: \
{m["forward_backward_ms_b200"]:.2f} ms.
"""


def _patch_stage1(t: dict[str, Any]) -> str:
    if t["representation_steps"] == 0 and t.get("init"):
        return f"taken unchanged from `{t['init']}` (`--init`)"
    return f"{t['representation_steps']} steps of {2 * t['batch_size']} frames"


def _patch_data(t: dict[str, Any]) -> str:
    n_expert = round(t.get("expert_share", 0.0) * t["episodes"])
    random = (
        f"{t['episodes'] - n_expert} random-exploration episodes (`random_rollouts`, a share "
        f"{t['still_prob']:g} of zero actions)"
    )
    if not n_expert:
        return random
    return (
        f"{random} and {n_expert} episodes of the scripted pushing expert "
        f"(`expert_rollouts`: `PushExpert`, action noise std {t['expert_noise']:g}), each"
    )


def _patch_stage2_init(t: dict[str, Any]) -> str:
    return f" (starting from `{t['init']}`)" if t.get("init") else ""


def _expert_section(m: dict[str, float]) -> str:
    """The card's pushing check (:func:`grasp_ros.research.evaluation.expert_check`)."""
    if "push_recall" not in m:
        return ""
    return f"""
## Does it know pushing? (`grasp_ros.research.evaluation.expert_check`)
{int(m["expert_tasks"])} held-out tasks at H = {int(m["expert_horizon"])}; the scripted expert's
actions solve each one in the true world.

| figure | value |
|---|---|
| latent MSE to the goal: start | {m["expert_start_mse"]:.4f} |
| ... the model's rollout of the expert's actions (mean / largest) | \
{m["expert_final_mse"]:.4f} / {m["expert_final_mse_max"]:.4f} |
| ... the true final frame with the block left unmoved | {m["expert_still_mse"]:.4f} |
| one-step predictions that move the block when it moves ({int(m["push_steps"])} steps) | \
{100 * m["push_recall"]:.0f}% |
"""


def _accuracy_table(m: dict[str, float], *, point_world: bool) -> str:
    """The held-out accuracy section of both cards; the one-step position error and the
    decoded dot's error only for the reference models of the point worlds."""
    rows = [
        ("latent variance (mean per element)", f"{m['latent_variance']:.4f}"),
        (
            "1-step latent MSE (normalised)",
            f"{m['latent_mse_1step']:.2e} ({m['latent_nmse_1step']:.2e})",
        ),
        (
            "10-step open-loop latent MSE (normalised)",
            f"{m['latent_mse_10step']:.2e} ({m['latent_nmse_10step']:.2e})",
        ),
    ]
    if point_world:
        rows.append(
            (
                "1-step predicted position error (via `project`)",
                f"{m['position_error_1step']:.2f} units",
            )
        )
    rows += [
        (
            "10-step predicted position error (via `project`)",
            f"{m['position_error_10step']:.2f} units",
        ),
        ("`project()` error on encoded frames", f"{m['projection_error']:.2f} units"),
        ("decoder MSE / PSNR", f"{m['decoder_mse']:.2e} / {m['decoder_psnr_db']:.1f} dB"),
    ]
    if point_world:
        rows.append(("decoded dot position error", f"{m['decoded_dot_error']:.2f} units"))
    rows += [
        ("corr(latent distance, state distance)", f"{m['geometry_corr']:.3f}"),
        ("latent variance in top 3 principal directions", f"{100 * m['variance_top3']:.1f}%"),
    ]
    body = "\n".join(f"| {label} | {value} |" for label, value in rows)
    return f"## Held-out accuracy\n| metric | value |\n|---|---|\n{body}\n"
