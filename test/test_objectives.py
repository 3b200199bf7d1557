"""The goal cost lives in one place: every planner and the runtime's goal test use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.models.analytic import PointWallModel
from grasp_ros.models.base import to_tensor
from grasp_ros.planning import PLANNERS, LatentMSE, Objective, make_planner


class FirstElement(Objective):
    """A cost that looks only at latent element 0: plans that ignore the rest become cheap."""

    name = "first element"

    def __init__(self) -> None:
        self.calls = 0

    def terminal(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        flat = z.reshape(*z.shape[: z.dim() - goal.dim()], -1)
        return (flat[..., 0] - goal.reshape(-1)[0]).pow(2)


def test_latent_mse_batches_over_leading_dimensions() -> None:
    goal = torch.arange(6.0).reshape(2, 3)
    z = goal + torch.tensor([0.0, 1.0, 2.0]).reshape(3, 1, 1, 1).expand(3, 4, 2, 3)
    cost = LatentMSE().terminal(z, goal)
    assert cost.shape == (3, 4)
    assert torch.equal(cost[:, 0], torch.tensor([0.0, 1.0, 4.0]))
    assert float(LatentMSE().terminal(goal, goal)) == 0.0


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_every_planner_scores_with_its_objective(name: str) -> None:
    model = PointWallModel(wall=False)
    start, goal = model.lift(torch.tensor([[-0.3, 0.1], [0.3, -0.2]]))
    objective = FirstElement()
    plan = make_planner(name, model, 6, objective=objective, iterations=5).plan(start, goal)
    assert objective.calls > 0
    assert plan.cost == pytest.approx(float(objective.terminal(plan.rollout[-1], goal)))


def test_a_model_can_carry_its_own_objective() -> None:
    model = PointWallModel(wall=False)
    model.objective = FirstElement()
    assert make_planner("gd", model, 4).objective is model.objective
    assert isinstance(make_planner("gd", PointWallModel(wall=False), 4).objective, LatentMSE)


def test_the_runtime_goal_test_uses_the_planner_objective() -> None:
    model = PointWallModel(wall=False)
    model.objective = FirstElement()
    runtime = PlannerRuntime(model, {"budget": "iterations", "goal_threshold": 1e-6})
    camera = (model.render(torch.tensor([[0.2, 0.2]]), 32)[0].permute(1, 2, 0) * 255).numpy()
    camera = camera.astype(np.uint8)
    goal = model.encode(to_tensor(camera[None]))[0]
    goal.view(-1)[1:] += 1.0  # far in latent MSE, equal in element 0
    runtime.on_image(camera, 0.0)
    runtime.on_goal(goal)
    cmd = runtime.tick(0.0)
    assert cmd.status is Status.GOAL_REACHED
    assert cmd.message.startswith("goal reached: first element")
