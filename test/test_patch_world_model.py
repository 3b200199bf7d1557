"""The patch-token world model: shapes, gradients, checkpoints, every planner, the diagnostic."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grasp_ros.envs import make_env
from grasp_ros.models import WorldModel, has_decoder, has_projection, load_world_model
from grasp_ros.models.loader import CHECKPOINT_DIR
from grasp_ros.models.patch import PatchWorldModel
from grasp_ros.planning import make_planner
from grasp_ros.research import bench_pusht, train, train_patch
from grasp_ros.research.conditioning import conditioning


def tiny(**kw) -> PatchWorldModel:
    torch.manual_seed(0)
    return PatchWorldModel(grid=4, dim=16, depth=1, heads=2, channels=8, **kw)


def test_latents_are_token_grids_and_gradients_reach_actions_and_states():
    model = tiny()
    images = torch.rand(3, 3, 64, 64)
    z = model.encode(images)
    assert z.shape == (3, 16, 16) and model.latent_shape == (16, 16)
    nn.init.normal_(model.predictor_out[1].weight, std=0.1)  # trained, it is not zero
    a = torch.zeros(3, 2, requires_grad=True)
    s = z.detach().requires_grad_(True)
    model(s, a).pow(2).sum().backward()
    assert a.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    assert model.decode(z).shape == (3, 3, 64, 64)
    assert model.project(z).shape == (3, 3)
    assert has_decoder(model) and has_projection(model)


def test_untrained_predictor_is_the_identity():
    """The predictor's output layer starts at zero: training starts from 'nothing moves'."""
    model = tiny()
    z = torch.randn(2, *model.latent_shape)
    assert torch.equal(model(z, torch.ones(2, 2)), z)


def test_parameter_groups_split_the_model():
    model = tiny()
    rep = {id(p) for p in model.representation_parameters()}
    dyn = {id(p) for p in model.dynamics_parameters()}
    assert not rep & dyn and rep | dyn == {id(p) for p in model.parameters()}


def test_checkpoint_loads_through_the_loader(tmp_path):
    model = tiny(env_name="wall")
    path = tmp_path / "m.pt"
    torch.save(model.checkpoint(metrics={"x": 1.0}), path)
    loaded = load_world_model(path, device="cpu")
    assert isinstance(loaded, PatchWorldModel) and loaded.env_name == "wall"
    images = torch.rand(2, 3, 64, 64)
    assert torch.equal(loaded.encode(images), model.eval().encode(images))


def test_the_encoders_work_size_travels_in_the_checkpoint(tmp_path):
    model = tiny(work_size=64)
    assert model.patch == 64 // model.grid
    torch.save(model.checkpoint(), tmp_path / "m.pt")
    images = torch.rand(2, 3, 64, 64)
    loaded = load_world_model(tmp_path / "m.pt", device="cpu")
    assert torch.equal(loaded.encode(images), model.eval().encode(images))
    older = tiny().checkpoint()  # written before work_size existed: the encoder's 32
    del older["config"]["work_size"]
    assert PatchWorldModel.from_checkpoint(older).work_size == 32


def test_a_checkpoint_whose_config_does_not_match_its_weights_is_refused(tmp_path):
    ckpt = tiny().checkpoint()
    ckpt["config"]["dim"] = 4096
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="refused before building"):
        load_world_model(tmp_path / "m.pt", device="cpu")


@pytest.mark.parametrize("name", ["grasp", "gd", "cem", "collocation"])
def test_every_planner_plans_over_token_latents(name):
    model = tiny().eval()
    with torch.no_grad():
        start, goal = model.encode(torch.rand(2, 3, 64, 64))
    planner = make_planner(name, model, horizon=5, iterations=3)
    plan = planner.plan(start, goal)
    assert plan.actions.shape == (5, 2)
    assert plan.states.shape == (6, *model.latent_shape)
    assert torch.isfinite(plan.actions).all()


class _Scale(WorldModel):
    """z' = k z: every Jacobian is k I, so the figures are known exactly."""

    def __init__(self, k: float) -> None:
        super().__init__((4, 3), 2)
        self.k = k
        self.w = nn.Parameter(torch.ones(2))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images[:, :1, :4, :3].reshape(len(images), 4, 3) + 1

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.k * latents + (actions * self.w).sum(-1)[:, None, None]


def test_conditioning_measures_known_jacobians():
    out = conditioning(_Scale(1.1), make_env("wall"), horizon=10, rollouts=3, iters=5)
    assert out["jacobian_step_median"] == pytest.approx(1.1, rel=1e-4)
    assert out["jacobian_rollout_max"] == pytest.approx(1.1**10, rel=1e-4)
    # dL/da_t is scaled by k^(T-1-t): earliest over latest is k^9
    assert out["grad_spread_median"] == pytest.approx(1.1**9, rel=1e-3)


def test_train_cli_hands_the_patch_model_to_its_trainer():
    assert train._trains_patch_model(["wall", "--model", "patch"])
    assert not train._trains_patch_model(["wall"])
    assert train_patch.output_name("wall", "patch") == "wall-patch"
    assert train_patch.model_kind("wall", "auto") == "reference"


@pytest.mark.parametrize("name", ["wall-patch", "pusht"])
def test_shipped_patch_models_load_with_their_cards(name):
    model = load_world_model(name, device="cpu")
    assert isinstance(model, PatchWorldModel)
    assert (CHECKPOINT_DIR / f"{name}.md").is_file()
    assert (CHECKPOINT_DIR / f"{name}.pt").stat().st_size < 5_000_000


def test_paper_table_cell_and_markdown():
    def run(success, oracle, t):
        return {"success": success, "oracle_success": oracle, "oracle_time_to_success": t}

    tasks = [run(True, True, 2.0), run(False, True, 4.0), run(False, False, None)]
    c = bench_pusht.cell(tasks)
    assert c["success"] == pytest.approx(1 / 3) and c["oracle_success"] == pytest.approx(2 / 3)
    assert c["oracle_median_time_to_success"] == 3.0
    opts = bench_pusht.parse_args(["--horizons", "40", "--planners", "grasp,gd"])
    cond = {f"jacobian_{k}": 1.0 for k in ("step_median", "step_max", "rollout_median")}
    cond |= {"jacobian_rollout_max": 2.0, "grad_spread_median": 3.0, "grad_spread_max": 9.0}
    cond |= {"conditioning_rollouts": 16.0, "conditioning_horizon": 50.0}
    record = {
        "models": {
            "pusht": {
                "class": "PatchWorldModel",
                "latent_shape": [64, 32],
                "cells": {40: {"grasp": c, "gd": c}},
                "iteration_seconds": {"grasp": {"40": 0.01}, "gd": {"40": 0.02}},
                "conditioning": cond,
            }
        }
    }
    text = bench_pusht.markdown(record, opts)
    assert "| H=40 ours | 33% [6-79] (oracle 67% / 3.0s) |" in text
    assert "| H=40 paper | 51.0% / 18.0s | 59.0% / 8.5s |" in text
    assert "| H=40 | 20.0 ms (?) | 10.0 ms (?) |" in text
    assert "CPU, 1 torch thread" in text
    record |= {"device": "cuda", "machine": {"gpu": "NVIDIA H200"}}
    assert "NVIDIA H200 (cuda)" in bench_pusht.markdown(record, opts)
