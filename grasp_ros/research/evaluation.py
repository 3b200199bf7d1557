"""How good a trained model is: held-out accuracy, speed, fidelity and a planning check.

The figures go into the checkpoint's metrics and its model card.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from grasp_ros.envs import PointEnv
from grasp_ros.models.base import WorldModel, to_tensor
from grasp_ros.research.fidelity import fidelity
from grasp_ros.research.training import encode_frames


def evaluate(
    model: WorldModel,
    env: PointEnv,
    data: dict[str, Any],
    steps: tuple[int, ...] = (1, 10),
) -> dict[str, float]:
    """Held-out metrics: k-step latent error, decoder quality, position head error, geometry."""
    model.eval()
    z = encode_frames(model, data["frames"])
    states, actions = data["states"], data["actions"]
    out: dict[str, float] = {}
    zf = z.flatten(2)  # one vector per frame, whatever the latent's shape
    variance = zf.reshape(-1, zf.shape[-1]).var(0).mean().item()
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
        flat_z = zf.reshape(-1, zf.shape[-1])
        flat_s = states.reshape(-1, states.shape[-1])
        out["projection_error"] = (
            (model.project(z.flatten(0, 1))[:, :2] - flat_s[:, :2]).norm(dim=1).mean().item()
        )
        images = to_tensor(data["frames"][:, 0].numpy())
        decoded = model.decode(z[:, 0])
        mse = F.mse_loss(decoded, images).item()
        out["decoder_mse"] = mse
        out["decoder_psnr_db"] = 10 * math.log10(1 / max(mse, 1e-12))
        if getattr(env, "dot_color", None) == (1.0, 0.0, 0.0):  # the red-dot worlds
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


def forward_timing(model: WorldModel, batch: int = 200, repeats: int = 50) -> dict[str, float]:
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


def log_fidelity(model: WorldModel, env: PointEnv, when: str) -> dict[str, float]:
    """Measure :func:`fidelity`, print its headline figures, return all of them."""
    f = fidelity(model, env)
    print(
        f"{when}: idle drift {f['idle_drift']:.2f}, wall leak {f['wall_leak']:.2f}, "
        f"60-step error {f['rollout_error_60']:.2f} (p90 {f['rollout_error_60_p90']:.2f}) units",
        file=sys.stderr,
    )
    return f


def planning_check(
    model: WorldModel,
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


def expert_check(
    model: WorldModel, env: Any, tasks: int = 20, horizon: int = 50, seed: int = 50_000
) -> dict[str, float]:
    """Does the model know pushing? Push-T's scripted expert's own solutions, in the model.

    On ``tasks`` held-out tasks (``env.sample_task(horizon, seed + i)``, whose
    ``expert_actions`` reach the goal exactly in the true world):

    - ``expert_final_mse``: latent MSE between the model's open-loop rollout of the expert's
      actions from the start image and the goal image's latent: the planners' cost of a plan
      known to succeed. ``expert_still_mse`` is the same cost for the true final frame with
      the block left at its start pose (the agent where the expert ends): a model whose
      rollout scores no better than that cannot tell a push from a miss. ``expert_start_mse``:
      the start's cost.
    - ``push_recall``: of the expert's steps that move the block (a point of its outline by
      more than 2 units), the share where the model's one-step prediction from the true frame
      lies nearer the true next frame's latent than that of the same frame with the block
      left where it was.
    """
    from grasp_ros.envs.pusht import pushing_steps

    model.eval()
    sampled = [env.sample_task(horizon, seed=seed + i) for i in range(tasks)]
    states = []
    for task in sampled:
        s = [task.start_state]
        for a in task.expert_actions:
            s.append(env.step_states(s[-1][None], a[None])[0])
        states.append(np.stack(s))
    states_ = np.stack(states)  # [N, T+1, 7]
    actions = torch.from_numpy(np.stack([t.expert_actions for t in sampled])).float()
    still = states_[:, 1:].copy()
    still[..., 2:5] = states_[:, :-1, 2:5]  # the block where it was before each step
    end_still = states_[:, -1].copy()
    end_still[:, 2:5] = states_[:, 0, 2:5]
    n, length = actions.shape[:2]

    def encode(s: np.ndarray) -> torch.Tensor:
        chunks = [env.render_states(s[i : i + 512]) for i in range(0, len(s), 512)]
        with torch.no_grad():
            return torch.cat([model.encode(to_tensor(c)) for c in chunks])

    z = encode(states_.reshape(-1, 7)).reshape(n, length + 1, *model.latent_shape)
    z_still = encode(still.reshape(-1, 7)).reshape(n, length, *model.latent_shape)
    z_end_still = encode(end_still)
    z_goal = encode(np.stack([t.goal_state for t in sampled]))

    def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a - b).pow(2).flatten(a.dim() - len(model.latent_shape)).mean(-1)

    with torch.no_grad():
        rollout = z[:, 0]
        for t in range(length):
            rollout = model(rollout, actions[:, t])
        one_step = model(z[:, :-1].flatten(0, 1), actions.flatten(0, 1)).reshape(z_still.shape)
    moved = torch.from_numpy(pushing_steps(states_))
    nearer = mse(one_step, z[:, 1:]) < mse(one_step, z_still)
    return {
        "expert_tasks": float(n),
        "expert_horizon": float(horizon),
        "expert_final_mse": float(mse(rollout, z_goal).mean()),
        "expert_final_mse_max": float(mse(rollout, z_goal).max()),
        "expert_still_mse": float(mse(z_end_still, z_goal).mean()),
        "expert_start_mse": float(mse(z[:, 0], z_goal).mean()),
        "push_steps": float(moved.sum()),
        "push_recall": float(nearer[moved].float().mean()),
    }
