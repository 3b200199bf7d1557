"""Planner tests on analytic world models (exact dynamics, no training, CPU, seconds)."""

from __future__ import annotations

import math

import pytest
import torch

from grasp_ros.models.analytic import PointWallModel
from grasp_ros.planning import PLANNERS, GraspPlanner, Plan, make_planner


def task(model: PointWallModel, start: tuple[float, float], goal: tuple[float, float]):
    return model.lift(torch.tensor([start]))[0], model.lift(torch.tensor([goal]))[0]


def final_position(model: PointWallModel, plan: Plan) -> torch.Tensor:
    return model.position(plan.rollout[-1:])[0]


class CountingModel(PointWallModel):
    """Records every forward call's batch size and whether its latent input carried grad."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)
        self.calls: list[int] = []
        self.input_requires_grad: list[bool] = []

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        self.calls.append(latents.shape[0])
        self.input_requires_grad.append(latents.requires_grad)
        return super().forward(latents, actions)


@pytest.mark.parametrize("name", sorted(PLANNERS))
@pytest.mark.parametrize("latent_shape", [(32,), (4, 8)])
def test_every_planner_reaches_an_easy_goal(name: str, latent_shape: tuple[int, ...]) -> None:
    model = PointWallModel(latent_shape=latent_shape, wall=False)
    start, goal = task(model, (-0.3, 0.1), (0.3, -0.2))
    plan = make_planner(name, model, 10).plan(start, goal)
    assert plan.actions.shape == (10, 2)
    assert plan.states.shape == plan.rollout.shape == (11, *latent_shape)
    assert torch.dist(final_position(model, plan), torch.tensor([0.3, -0.2])) < 0.05
    assert plan.cost < 1e-3
    assert plan.planner == name and plan.iterations > 0 and plan.solve_time > 0


def test_grasp_solves_a_long_ill_conditioned_task_that_gd_from_zero_does_not() -> None:
    # A high-frequency latent lift makes the terminal cost full of local minima along the way:
    # GD on the serial rollout stalls, GRASP's local per-step problems do not.
    model = PointWallModel(wall=False)
    model.lift_w *= 8 / 1.5
    start, goal = task(model, (-0.8, -0.7), (0.8, 0.7))
    target = torch.tensor([0.8, 0.7])
    gd = make_planner("gd", model, 40, iterations=300).plan(start, goal)
    grasp = make_planner("grasp", model, 40).plan(start, goal)
    assert torch.dist(final_position(model, gd), target) > 1.0
    assert torch.dist(final_position(model, grasp), target) < 0.4
    assert grasp.cost < gd.cost / 100


def test_grasp_plans_through_the_door() -> None:
    model = PointWallModel(door_y=0.1, softness=0.1)
    start, goal = task(model, (-0.6, -0.5), (0.6, -0.5))
    plan = GraspPlanner(model, 40).plan(start, goal)
    path = model.position(plan.rollout)
    crossing = (path[:-1, 0] < 0) & (path[1:, 0] >= 0)
    assert crossing.any(), "the rollout never crossed the wall"
    # it crossed where the door is open (half-width 0.2 plus two softness widths)
    assert (path[1:][crossing][:, 1] - 0.1).abs().max() < 0.4
    assert torch.dist(final_position(model, plan), torch.tensor([0.6, -0.5])) < 0.05


def test_stop_gradient_cuts_the_state_input_path() -> None:
    model = CountingModel()
    start, goal = task(model, (-0.5, 0.0), (0.5, 0.0))
    for stop_grad in (True, False):
        planner = GraspPlanner(model, 6, stop_grad=stop_grad, population=1, sync_every=0)
        st = planner._init(start, goal, None)
        model.input_requires_grad.clear()
        planner.loss(st).backward()
        assert model.input_requires_grad == [not stop_grad]
    # With the stop-gradient, a virtual state gets gradient only as a target of L_dyn:
    # dL/ds_{t+1} = 2 (s_{t+1} - F(s_t, a_t)) / n, nothing through F's state input.
    planner = GraspPlanner(model, 6, population=1, sync_every=0)
    st = planner._init(start, goal, None)
    with torch.no_grad():
        st.actions.normal_(0, 0.5)
    planner.loss(st).backward()
    with torch.no_grad():
        states = planner._states(st)[0]
        pred = model(states[:-1], st.actions[0])
        expected = 2 * (states[1:-1] - pred[:-1]) / states[0].numel()
    torch.testing.assert_close(st.virtual.grad[0], expected)


def test_one_batched_model_call_per_grasp_iteration() -> None:
    model = CountingModel()
    start, goal = task(model, (-0.5, 0.0), (0.5, 0.0))
    planner = GraspPlanner(model, 12, population=3, sync_every=0)
    st = planner._init(start, goal, None)
    model.calls.clear()
    for it in range(5):
        planner._step(st, it)
    assert model.calls == [3 * 12] * 5


def test_sync_runs_serial_steps_on_the_terminal_loss() -> None:
    model = CountingModel()
    start, goal = task(model, (-0.5, 0.0), (0.5, 0.0))
    planner = GraspPlanner(model, 5, population=2, sync_every=2, sync_steps=3)
    st = planner._init(start, goal, None)
    model.calls.clear()
    planner._step(st, 0)
    planner._step(st, 1)  # sync after the second iteration: 3 steps x 5 serial calls
    assert model.calls == [10, 10] + [2] * 15


def test_anneal_decays_goal_weight_and_noise_within_each_sync_period() -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.5, 0.0), (0.5, 0.0))
    planner = GraspPlanner(model, 6, population=1, sync_every=10, anneal=True, state_noise=0.1)
    st = planner._init(start, goal, None)
    seen = []
    for it in range(12):
        before = st.virtual.detach().clone()
        planner._step(st, it)
        seen.append(st.scale)
        if it == 9:  # the last iteration of a period: the noise is a tenth of state_noise
            moved = (st.virtual.detach() - before).std().item()
    assert seen == pytest.approx([1 - k / 10 for k in range(10)] + [1.0, 0.9])
    assert moved < 0.05
    dyn_only = GraspPlanner(model, 6, population=1, goal_weight=0.0)
    st.scale = 0.25  # the loss is L_dyn + goal_weight * scale * L_goal
    full = planner.loss(st).item()
    st.scale = 0.0
    assert planner.loss(st).item() == pytest.approx(dyn_only.loss(st).item())
    st.scale = 1.0
    assert full == pytest.approx(0.75 * dyn_only.loss(st).item() + 0.25 * planner.loss(st).item())


def test_sampled_starts_are_the_best_random_plans_and_seed_grasp_and_gd() -> None:
    model = PointWallModel()
    start, goal = task(model, (-0.6, 0.5), (0.6, 0.5))  # the door is at y = 0: a detour
    planner = GraspPlanner(model, 30, population=5, init_samples=64, sync_every=0)
    actions, roll = planner.sampled_starts(start, goal, 4, 64)
    assert actions.shape == (4, 30, 2) and roll.shape == (4, 31, 32)
    assert actions.abs().max() <= 1
    assert (actions[:, 1:] != actions[:, :-1]).any(-1).sum(1).max() <= 2  # three held actions
    torch.testing.assert_close(roll, planner.rollout(start.expand(4, -1), actions))
    costs = ((roll[:, -1] - goal) ** 2).mean(-1)
    assert torch.all(costs[:-1] <= costs[1:])  # best first
    zero_cost = ((planner.rollout(start[None], torch.zeros(1, 30, 2))[0, -1] - goal) ** 2).mean()
    assert costs[0] < zero_cost  # 64 random plans beat standing still on this task
    again, _ = planner.sampled_starts(start, goal, 4, 64)
    assert torch.equal(again, actions)  # seeded
    st = planner._init(start, goal, None)
    assert (st.actions[0] == 0).all()  # member 0: zero actions on the straight line
    torch.testing.assert_close(st.actions[1:], actions)
    torch.testing.assert_close(st.virtual[1:], roll[:, 1:30])
    gd = make_planner("gd", model, 30, init="sample", init_samples=64)
    torch.testing.assert_close(gd._init(start, goal, None).actions[0], actions[0])
    assert (make_planner("gd", model, 30)._init(start, goal, None).actions == 0).all()


def test_shift_drops_executed_steps_and_pads_the_tail() -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.0), (0.3, 0.0))
    plan = GraspPlanner(model, 6, iterations=20).plan(start, goal)
    shifted = plan.shift(2)
    assert shifted.actions.shape == plan.actions.shape
    torch.testing.assert_close(shifted.actions[:4], plan.actions[2:])
    assert (shifted.actions[4:] == 0).all()
    torch.testing.assert_close(shifted.states[:5], plan.states[2:])
    torch.testing.assert_close(shifted.states[5:], goal.expand(2, -1))
    last = plan.shift(2, pad="last")
    torch.testing.assert_close(last.actions[4:], plan.actions[-1:].expand(2, -1))
    assert plan.shift(0).actions.equal(plan.actions)
    assert (plan.shift(99).actions == 0).all()
    longer = plan.shift(2, pad="last", horizon=9)  # a new horizon: the tail fills the same way
    torch.testing.assert_close(longer.actions[:4], plan.actions[2:])
    torch.testing.assert_close(longer.actions[4:], plan.actions[-1:].expand(5, -1))
    assert longer.states.shape == longer.rollout.shape == (10, *plan.states.shape[1:])
    torch.testing.assert_close(longer.states[4:], goal.expand(6, -1))
    with pytest.raises(ValueError, match="pad"):
        plan.shift(1, pad="mirror")


def test_warm_start_is_used_and_resized_to_the_horizon() -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.0), (0.3, 0.0))
    first = GraspPlanner(model, 8).plan(start, goal)
    again = GraspPlanner(model, 8).plan(start, goal, warm_start=first, max_iters=0)
    assert again.warm_started and again.iterations == 0
    torch.testing.assert_close(again.actions, first.actions)
    longer = GraspPlanner(model, 12).plan(start, goal, warm_start=first, max_iters=0)
    assert longer.actions.shape == (12, 2)
    torch.testing.assert_close(longer.actions[:8], first.actions)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_actions_stay_inside_the_bounds(name: str) -> None:
    model = PointWallModel(wall=False, speed=0.02)  # far goal: unbounded plans would overshoot
    start, goal = task(model, (-0.9, -0.9), (0.9, 0.9))
    plan = make_planner(name, model, 5, iterations=30).plan(start, goal)
    assert plan.actions.min() >= -1.0 and plan.actions.max() <= 1.0


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_same_seed_same_plan(name: str) -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.2), (0.3, -0.2))
    plans = [make_planner(name, model, 8, seed=7, iterations=20).plan(start, goal) for _ in "ab"]
    assert torch.equal(plans[0].actions, plans[1].actions)


def test_different_seeds_give_different_grasp_noise() -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.2), (0.3, -0.2))
    a, b = (GraspPlanner(model, 8, seed=s, iterations=20).plan(start, goal) for s in (1, 2))
    assert not torch.equal(a.states, b.states)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_deadline_returns_the_best_plan_so_far(name: str) -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.2), (0.3, -0.2))
    plan = make_planner(name, model, 10, iterations=100_000).plan(start, goal, deadline=0.05)
    assert 0 < plan.iterations < 100_000
    assert math.isfinite(plan.cost) and torch.isfinite(plan.actions).all()
    zero = make_planner(name, model, 10).plan(start, goal, deadline=0.0)
    assert zero.iterations == 0 and zero.actions.shape == (10, 2)


def test_callback_sees_snapshots_and_can_stop() -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.2), (0.3, -0.2))
    seen: list[tuple[int, float]] = []

    def callback(it: int, elapsed: float, snapshot):
        seen.append((it, snapshot().cost))
        return it >= 30

    plan = GraspPlanner(model, 10).plan(start, goal, callback=callback, callback_every=10)
    assert [it for it, _ in seen] == [10, 20, 30] and plan.iterations == 30
    assert plan.cost == seen[-1][1]  # stopped at 30: the answer is the snapshot it saw there


def test_bad_input_gives_clear_errors() -> None:
    model = PointWallModel(wall=False)
    start, goal = task(model, (-0.3, 0.2), (0.3, -0.2))
    planner = GraspPlanner(model, 5)
    with pytest.raises(ValueError, match="latent_shape"):
        planner.plan(start[:10], goal)
    with pytest.raises(ValueError, match="goal latent contains NaN"):
        planner.plan(start, goal * float("nan"))
    with pytest.raises(ValueError, match="horizon"):
        GraspPlanner(model, 0)
    with pytest.raises(ValueError, match="unknown grasp setting"):
        GraspPlanner(model, 5, gamma=1.0)
    with pytest.raises(ValueError, match="state_noise"):
        GraspPlanner(model, 5, state_noise=-1.0)
    with pytest.raises(ValueError, match="unknown planner"):
        make_planner("mppi", model, 5)
    with pytest.raises(ValueError, match="elites"):
        make_planner("cem", model, 5, samples=10, elites=20)


class NaNModel(PointWallModel):
    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return super().forward(latents, actions) * float("nan")


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_a_model_returning_nan_is_an_error_not_a_plan(name: str) -> None:
    model = NaNModel(wall=False)
    start, goal = task(model, (-0.3, 0.2), (0.3, -0.2))
    with pytest.raises(ValueError, match="non-finite"):
        make_planner(name, model, 5, iterations=3).plan(start, goal)
