"""Shipped world models, the loader's contract checks and error paths, and the trainer."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from grasp_ros.envs import MazeEnv, WallEnv, random_rollouts
from grasp_ros.models import (
    ReferenceWorldModel,
    WorldModel,
    env_for_model,
    has_decoder,
    has_projection,
    list_shipped_models,
    load_world_model,
    resolve_device,
)
from grasp_ros.models.base import to_tensor
from grasp_ros.models.loader import CHECKPOINT_DIR
from grasp_ros.research import cost_to_go, evaluation, train, training
from grasp_ros.research.fidelity import ROLLOUT_STEPS, fidelity
from grasp_ros.research.planner_data import TASK_SEED_OFFSET, planner_episodes

SHIPPED = ["wall", "maze"]


@pytest.fixture(scope="module", params=SHIPPED)
def shipped(request):
    """(name, model, checkpoint dict, env) for each shipped model, loaded once."""
    name = request.param
    model = load_world_model(name, device="cpu")
    ckpt = torch.load(CHECKPOINT_DIR / f"{name}.pt", weights_only=True)
    return name, model, ckpt, env_for_model(model)


def _held_out(env, episodes: int = 64, length: int = 10) -> dict:
    return training.collect(env, episodes, length, seed=987_654)


def test_shipped_models_are_listed_with_cards():
    assert set(SHIPPED) <= set(list_shipped_models())
    for name in SHIPPED:
        assert (CHECKPOINT_DIR / f"{name}.md").is_file()
        assert (CHECKPOINT_DIR / f"{name}.pt").stat().st_size < 10_000_000


def test_shipped_model_encodes_sim_images(shipped):
    name, model, _, env = shipped
    assert isinstance(model, ReferenceWorldModel) and not model.training
    assert isinstance(env, {"wall": WallEnv, "maze": MazeEnv}[name])
    assert has_decoder(model) and has_projection(model)
    assert model.latent_shape == (64,) and model.action_dim == 2
    images = to_tensor(np.stack([env.reset(seed=s) for s in range(4)]))
    with torch.no_grad():
        z = model.encode(images)
        assert z.shape == (4, 64) and torch.isfinite(z).all()
        assert 0.01 < z.pow(2).mean().item() < 10  # roughly unit scale, not collapsed
        assert model(z, torch.zeros(4, 2)).shape == (4, 64)
        decoded = model.decode(z)
        assert decoded.shape == images.shape
        assert 0 <= decoded.min() and decoded.max() <= 1
        assert model.project(z).shape == (4, 3)


def test_shipped_model_predicts_held_out_transitions_as_its_card_states(shipped):
    name, model, ckpt, env = shipped
    stated = ckpt["metrics"]
    card = (CHECKPOINT_DIR / f"{name}.md").read_text()
    assert f"{stated['latent_mse_1step']:.2e}" in card
    assert f"{stated['latent_mse_10step']:.2e}" in card
    measured = evaluation.evaluate(model, env, _held_out(env))
    for key in (
        "latent_mse_1step",
        "latent_mse_10step",
        "projection_error",
        "position_error_10step",
        "decoder_mse",
    ):
        assert measured[key] <= 2 * stated[key] + 1e-6, key


def test_latent_distance_tracks_state_distance(shipped):
    _, model, _, env = shipped
    states = env.random_states(np.random.default_rng(3), 200)
    with torch.no_grad():
        z = model.encode(to_tensor(env.render_states(states)))
    i, j = np.triu_indices(len(states), 1)
    dz = (z[i] - z[j]).pow(2).mean(1).sqrt().numpy()
    ds = np.linalg.norm(states[i] - states[j], axis=1)
    assert np.corrcoef(dz, ds)[0, 1] > 0.8


def test_shipped_dynamics_respects_walls():
    """Pushing into the Wall's wall far from the door should predict (almost) no motion."""
    model = load_world_model("wall", device="cpu")
    env = WallEnv()
    start = np.array([24.0, 10.0, 48.0])
    with torch.no_grad():
        z = model.encode(to_tensor(env.render_states(start[None])))
        for _ in range(10):
            z = model(z, torch.tensor([[1.0, 0.0]]))
        x = model.project(z)[0, 0].item()
    assert x < env.wall_x[0] + 3  # stays on the left, not through the wall


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu").type == "cpu"


def test_missing_spec_says_what_is_accepted():
    with pytest.raises(FileNotFoundError, match="not a shipped model name"):
        load_world_model("no_such_model")
    with pytest.raises(FileNotFoundError, match="not an existing file"):
        load_world_model("/nonexistent/model.pt")


def test_unreadable_and_foreign_files_are_refused(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="cannot read world model checkpoint"):
        load_world_model(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(ValueError, match="not a grasp_ros world model checkpoint"):
        load_world_model(foreign)
    broken = tmp_path / "broken.pt"
    ckpt = ReferenceWorldModel().checkpoint()
    del ckpt["state_dict"]["head.0.weight"]
    torch.save(ckpt, broken)
    with pytest.raises(ValueError, match="does not match ReferenceWorldModel"):
        load_world_model(broken)


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    model = ReferenceWorldModel(image_size=96, latent_dim=32, env_name="maze")
    path = tmp_path / "m.pt"
    training.atomic_save(model.checkpoint(metrics={"x": 1.0}), path)
    loaded = load_world_model(str(path), device="auto")
    assert loaded.latent_shape == (32,) and loaded.image_size == 96
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b.cpu())
    assert env_for_model(loaded).render().shape == (96, 96, 3)
    assert not list(tmp_path.glob("*.tmp"))


class _Tiny(WorldModel):
    """A minimal user model; ``bad`` breaks it in one of the ways the loader must catch."""

    def __init__(self, bad: str = "") -> None:
        super().__init__((8,), 2, -1.0, 1.0)
        self.bad = bad
        self.net = nn.Linear(3, 8)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        z = self.net(images.mean((2, 3)))
        if self.bad == "shape":
            return z[:, :5]
        if self.bad == "nan":
            return z * float("nan")
        return z

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return latents + actions.sum(1, keepdim=True)


def good_factory() -> nn.Module:
    return _Tiny()


def shape_factory() -> nn.Module:
    return _Tiny("shape")


def nan_factory() -> nn.Module:
    return _Tiny("nan")


def not_a_module() -> object:
    return "model"


def test_factory_specs(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    model = load_world_model("test_models:good_factory")
    assert isinstance(model, _Tiny) and not model.training
    assert not has_decoder(model)
    with pytest.raises(ValueError, match=r"load-time check.*shape \(2, 5\)"):
        load_world_model("test_models:shape_factory")
    with pytest.raises(ValueError, match="non-finite"):
        load_world_model("test_models:nan_factory")
    with pytest.raises(ValueError, match=r"expected a torch\.nn\.Module"):
        load_world_model("test_models:not_a_module")
    with pytest.raises(ValueError, match="cannot import"):
        load_world_model("no_such_package.models:build")
    with pytest.raises(ValueError, match="no env_name"):
        env_for_model(model)


class _Scriptable(nn.Module):
    """A user model as TorchScript sees it: a plain module with the contract's attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_shape = (8,)
        self.action_dim = 2
        self.net = nn.Linear(3, 8)

    @torch.jit.export
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.mean((2, 3)))

    @torch.jit.export
    def project(self, latents: torch.Tensor) -> torch.Tensor:
        return latents[:, :3]

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return latents + actions.sum(1, keepdim=True)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_models_load_behind_the_contract(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(_Scriptable()), str(path))
    model = load_world_model(path)
    assert model.latent_shape == (8,) and model.action_dim == 2
    assert not has_decoder(model) and has_projection(model)
    assert model.action_high is None
    z = model.encode(torch.rand(3, 3, 64, 64))
    assert model(z, torch.zeros(3, 2)).shape == (3, 8)
    assert model.project(z).shape == (3, 3)


def _tiny_run(out) -> list[str]:
    return [
        "wall",
        "--out",
        str(out),
        "--episodes",
        "6",
        "--episode-length",
        "12",
        "--eval-episodes",
        "4",
        "--representation-steps",
        "2",
        "--dynamics-steps",
        "2",
        "--batch-size",
        "4",
        "--rollout-batch-size",
        "4",
        "--rollout-steps",
        "4",
        "--planning-tasks",
        "0",
        "--planner-rounds",
        "1",
        "--planner-tasks",
        "2",
        "--round-steps",
        "2",
    ]


def _tiny_cost_to_go(monkeypatch):
    """The cost-to-go stage at toy size: its defaults (16 layouts x 200 episodes, 3000 steps)
    take minutes, and this run checks the pipeline, not the head's quality."""
    build = cost_to_go.build
    tiny = functools.partial(build, groups=2, per_group=6, sources=16, hidden_dim=16, steps=5)
    monkeypatch.setattr(cost_to_go, "build", tiny)


def test_trainer_smoke_run_writes_a_loadable_checkpoint_and_card(tmp_path, monkeypatch):
    _tiny_cost_to_go(monkeypatch)
    assert train.main(_tiny_run(tmp_path)) == 0
    model = load_world_model(tmp_path / "wall.pt")
    assert model.env_name == "wall"
    card = (tmp_path / "wall.md").read_text()
    assert model.cost_to_go is not None and "Learned cost-to-go" in card
    assert "10-step open-loop latent MSE" in card and "forward + backward" in card
    assert "drift over 40 zero actions" in card and "Planner-in-the-loop data (1 rounds" in card
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wall.md", "wall.pt"]


def test_trainer_resumes_after_an_interrupt(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = training.rollout_loss

    def interrupt_second_call(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(training, "SAVE_EVERY", 1)
    monkeypatch.setattr(training, "rollout_loss", interrupt_second_call)
    _tiny_cost_to_go(monkeypatch)
    assert train.main(_tiny_run(tmp_path)) == 130
    progress = torch.load(tmp_path / "wall.train.pt", weights_only=True)
    assert progress["stage"] == "dynamics" and progress["step"] == 1
    assert not (tmp_path / "wall.pt").exists()
    assert train.main([*_tiny_run(tmp_path), "--resume"]) == 0
    assert (tmp_path / "wall.pt").exists() and not (tmp_path / "wall.train.pt").exists()


def test_planning_check_reports_every_planner():
    model = ReferenceWorldModel(env_name="wall")
    result = evaluation.planning_check(model, WallEnv(), horizon=4, tasks=1, planners=("grasp",))
    assert set(result) == {
        "planning_horizon",
        "planning_tasks",
        "planning_success_grasp",
        "planning_seconds_grasp",
    }
    assert 0 <= result["planning_success_grasp"] <= 1


def test_rollouts_feed_the_trainer_shapes():
    states, actions = random_rollouts(MazeEnv(), 3, 5, seed=0)
    data = training.collect(MazeEnv(), 3, 5, seed=0)
    np.testing.assert_allclose(data["states"].numpy(), states.astype(np.float32))
    assert data["frames"].shape == (3, 6, 64, 64, 3) and data["frames"].dtype == torch.uint8
    assert data["actions"].shape == actions.shape


class _Still(ReferenceWorldModel):
    """The shipped encoder with dynamics that never move: a model that cannot drift."""

    def forward(self, latents, actions):
        return latents


class _Drifting(ReferenceWorldModel):
    def forward(self, latents, actions):
        return latents + 0.05


def _with_weights(cls, model):
    other = cls(**model.config)
    other.load_state_dict(model.checkpoint()["state_dict"])  # the world model, not its heads
    return other.eval()


def test_fidelity_measures_drift_leaks_and_compounding_error(shipped):
    _, model, _, env = shipped
    good = fidelity(model, env, samples=60)
    still = fidelity(_with_weights(_Still, model), env, samples=60)
    drifting = fidelity(_with_weights(_Drifting, model), env, samples=60)
    keys = {f"rollout_error_{k}" for k in ROLLOUT_STEPS} | {"idle_drift", "wall_leak"}
    assert set(good) == keys | {f"{k}_p90" for k in keys}
    assert all(np.isfinite(v) and v >= 0 for v in good.values())
    assert still["idle_drift"] == 0.0  # standing still exactly
    assert still["rollout_error_20"] > 2 * good["rollout_error_20"]  # but never moving
    assert drifting["idle_drift"] > 5 * max(good["idle_drift"], 1.0)
    assert good["wall_leak"] < 3.0  # pushes the true world blocks stay (roughly) blocked


def test_fidelity_needs_positions():
    with pytest.raises(ValueError, match="project"):
        fidelity(torch.nn.Identity(), WallEnv(), samples=4)


def test_planner_episodes_are_real_executions_of_plans(shipped):
    _, model, _, env = shipped
    data = planner_episodes(model, env, tasks=3, length=12, seed=0, min_horizon=8)
    states, actions = data["states"].numpy(), data["actions"].numpy()
    assert states.shape[:2] == (3, 13) and actions.shape == (3, 12, 2)
    assert np.all(np.abs(actions) <= 1)
    for e in range(3):  # the recorded states are the true world's answer to the actions
        for t in range(12):
            expected = env.step_states(states[e, t][None].astype(np.float64), actions[e, t][None])
            np.testing.assert_allclose(states[e, t + 1], expected[0], atol=1e-4)
    assert np.all(np.isfinite(data["gaps"].numpy())) and np.all(data["gaps"].numpy() >= 0)
    for episode in actions:  # the plan (8 to 12 noisy steps), then standing still
        moving = np.flatnonzero(np.any(episode != 0, axis=1))
        assert 8 <= len(moving) <= 12 and np.array_equal(moving, np.arange(len(moving)))
    first = env.sample_task(8, seed=TASK_SEED_OFFSET)
    assert first.seed not in range(1000)  # never the benchmark's task seeds
    with pytest.raises(ValueError, match="min_horizon"):
        planner_episodes(model, env, tasks=1, length=5, seed=0, min_horizon=8)


def test_action_gated_dynamics_stand_exactly_still_at_zero_action(tmp_path):
    torch.manual_seed(0)
    model = ReferenceWorldModel(env_name="wall", action_gated=True)
    nn.init.normal_(model.dynamics[-1].weight)  # the zero init would hide a missing gate
    z = torch.randn(6, 64)
    assert torch.equal(model(z, torch.zeros(6, 2)), z)
    assert (model(z, torch.full((6, 2), 0.5)) - z).abs().max() > 0.1
    path = tmp_path / "gated.pt"
    training.atomic_save(model.checkpoint(), path)
    again = load_world_model(path)
    ones = torch.ones(6, 2)
    assert again.action_gated and torch.equal(again(z, ones), model(z, ones))
