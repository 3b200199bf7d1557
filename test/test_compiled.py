"""The ``compile`` parameter: off leaves the planning path as it was; on, the planner plans
through the model with its forward compiled, and the plans are the same.

torch.compile's code generation ('inductor') takes about a minute on this project's CPU machine
for the first shape, too slow for ``make test``; the plan-equality test uses the 'aot_eager'
backend, which runs the same graph capture and autograd without generating code. The real
modes are exercised by ``test_cuda.py`` and the GPU benchmark on a GPU.
"""

from __future__ import annotations

import pytest
import torch

from grasp_ros.control import PlannerRuntime
from grasp_ros.models import load_world_model
from grasp_ros.models.compiled import COMPILE_MODES, CompiledForward, compile_forward
from grasp_ros.planning import make_planner


@pytest.fixture(scope="module")
def wall() -> torch.nn.Module:
    return load_world_model("wall", device="cpu").requires_grad_(False)


def test_off_is_the_model_itself(wall: torch.nn.Module) -> None:
    assert compile_forward(wall, "off") is wall
    runtime = PlannerRuntime(wall)
    assert runtime.params["compile"] == "off"
    assert runtime.planner.model is wall


def test_the_wrapper_keeps_the_models_contract(wall: torch.nn.Module) -> None:
    wrapped = CompiledForward(wall, "default")
    assert wrapped.latent_shape == wall.latent_shape
    assert wrapped.action_dim == wall.action_dim
    assert wrapped.action_low is wall.action_low and wrapped.action_high is wall.action_high
    assert wrapped.image_size == wall.image_size
    assert next(wrapped.parameters()) is next(wall.parameters())
    with pytest.raises(ValueError, match="compile mode"):
        CompiledForward(wall, "off")


@pytest.mark.parametrize("name", ["grasp", "gd"])
def test_compiled_forward_plans_as_the_eager_model(wall: torch.nn.Module, name: str) -> None:
    start, goal = torch.randn(2, 64, generator=torch.Generator().manual_seed(1))
    config = {"sync_every": 20, "sync_steps": 3} if name == "grasp" else {}
    plans = [
        make_planner(name, model, 8, seed=3, **config).plan(start, goal, max_iters=25)
        for model in (wall, CompiledForward(wall, "default", backend="aot_eager"))
    ]
    torch.testing.assert_close(plans[1].actions, plans[0].actions, atol=1e-5, rtol=1e-4)
    assert plans[1].cost == pytest.approx(plans[0].cost, rel=1e-4, abs=1e-7)


def test_runtime_plans_through_the_compiled_forward(wall: torch.nn.Module) -> None:
    runtime = PlannerRuntime(wall, {"compile": "reduce-overhead", "planner": "gd"})
    assert isinstance(runtime.planner.model, CompiledForward)
    assert runtime.planner.model.inner is runtime.model is wall
    ok, reason = runtime.set_params({"compile": "off"})
    assert not ok and "read-only" in reason
    ok, _ = runtime.set_params({"horizon": 12})  # a rebuilt planner keeps the compiled forward
    assert ok and isinstance(runtime.planner.model, CompiledForward)


def test_compile_modes_are_the_parameters_choices() -> None:
    from grasp_ros.control.params import SCHEMA

    assert SCHEMA["compile"].choices == COMPILE_MODES
    assert SCHEMA["compile"].default == "off" and SCHEMA["compile"].read_only


def test_runtime_freezes_the_weights_and_plans_the_same() -> None:
    model = load_world_model("wall", device="cpu")
    start, goal = torch.randn(2, 64, generator=torch.Generator().manual_seed(2))
    before = make_planner("grasp", model, 6, seed=1).plan(start, goal, max_iters=5)
    PlannerRuntime(model)
    assert not any(p.requires_grad for p in model.parameters())
    after = make_planner("grasp", model, 6, seed=1).plan(start, goal, max_iters=5)
    assert torch.equal(before.actions, after.actions)
