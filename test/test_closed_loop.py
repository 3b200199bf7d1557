"""Closed loop through detours: the cost-to-go objective, warm starts that keep the best and
keep exploring, and stall detection, on analytic models and a simulated clock."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.control.stall import StallDetector
from grasp_ros.models.analytic import PointWallModel
from grasp_ros.planning import (
    PLANNERS,
    CostToGo,
    GraspPlanner,
    LatentMSE,
    make_objective,
    make_planner,
)
from grasp_ros.planning.objectives import objective_for


class DoorSteps(nn.Module):
    """The analytic wall's exact cost-to-go in steps: straight, or through the door."""

    def __init__(self, model: PointWallModel) -> None:
        super().__init__()
        self.door_y, self.half, self.speed = model.door_y, model.door_half_width / 2, model.speed
        self.step_length = 0.1

    def forward(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        p = z.reshape(*z.shape[: z.dim() - goal.dim()], -1)[..., :2]
        q = goal.reshape(-1)[:2].expand_as(p)
        door_y = p[..., 1].clamp(self.door_y - self.half, self.door_y + self.half)
        door = torch.stack([torch.zeros_like(door_y), door_y], -1)
        around = (p - door).norm(dim=-1) + (door - q).norm(dim=-1)
        across = (p[..., 0] * q[..., 0]) < 0
        return torch.where(across, around, (p - q).norm(dim=-1)) / self.speed


def lift(model: PointWallModel, *xy: tuple[float, float]) -> torch.Tensor:
    return model.lift(torch.tensor(xy))


def image(model: PointWallModel, xy: tuple[float, float]) -> np.ndarray:
    rendered = model.render(torch.tensor([xy]), 32)[0].permute(1, 2, 0)
    return (rendered.numpy() * 255).astype(np.uint8)


# -- the objective ---------------------------------------------------------------------------
def test_cost_to_go_prefers_the_door_where_latent_mse_prefers_the_wall_face() -> None:
    model = PointWallModel(door_y=0.6)
    goal = lift(model, (0.5, -0.6))[0]
    face, door = lift(model, (-0.05, -0.6), (-0.1, 0.6))
    latent, learned = LatentMSE(), CostToGo(DoorSteps(model))
    assert latent.terminal(face, goal) < latent.terminal(door, goal)
    assert learned.terminal(face, goal) > learned.terminal(door, goal)
    batch = lift(model, (-0.05, -0.6), (-0.1, 0.6)).reshape(2, 1, -1)
    assert learned.per_step(batch, goal).shape == (2, 1)


def test_cost_to_go_keeps_the_latent_scale_where_the_way_is_free() -> None:
    model = PointWallModel(wall=False)
    goal = lift(model, (0.3, 0.0))[0]
    z = lift(model, (0.1, 0.0))
    assert torch.equal(
        CostToGo(DoorSteps(model), 0.0).terminal(z, goal), LatentMSE().terminal(z, goal)
    )
    steps = float(DoorSteps(model)(z, goal)[0])
    assert steps == pytest.approx(2.0)
    extra = CostToGo(DoorSteps(model)).terminal(z, goal) - LatentMSE().terminal(z, goal)
    assert float(extra[0]) == pytest.approx((steps * 0.1) ** 2)


def test_cost_to_go_penalises_predicted_paths_through_walls() -> None:
    """A predicted path whose cost-to-go falls faster than a step per step has passed where
    the robot cannot (a leak of the world model through the wall)."""
    model = PointWallModel(door_y=0.6)
    goal = lift(model, (0.5, -0.6))[0]
    real = lift(model, *[(x, -0.6) for x in (0.1, 0.2, 0.3, 0.4)])[None]
    leak = lift(model, *[(x, -0.6) for x in (-0.3, -0.1, 0.1, 0.3)])[None]
    objective = CostToGo(DoorSteps(model))
    assert float(objective.path_penalty(real, goal)[0]) == 0.0
    assert float(objective.path_penalty(leak, goal)[0]) > 0.1
    assert torch.equal(
        objective.trajectory(leak, goal),
        objective.terminal(leak[:, -1], goal) + objective.path_penalty(leak, goal),
    )
    chain = torch.cat([leak, real], 0)
    once = objective.dense(chain, goal)
    twice = objective.per_step(chain[:, 1:], goal).sum() + objective.path_penalty(chain, goal).sum()
    assert float(once) == pytest.approx(float(twice))
    assert float(CostToGo(DoorSteps(model), leak_weight=0).path_penalty(leak, goal)[0]) == 0.0
    assert float(LatentMSE().path_penalty(leak, goal)[0]) == 0.0


def test_objectives_by_name_and_the_models_own() -> None:
    plain, carrying = PointWallModel(), PointWallModel()
    carrying.cost_to_go = DoorSteps(carrying)
    assert isinstance(make_objective("auto", plain), LatentMSE)
    assert isinstance(make_objective("auto", carrying), CostToGo)
    assert isinstance(make_objective("latent_mse", carrying), LatentMSE)
    assert make_objective("cost_to_go", carrying, 3.0).weight == 3.0
    assert isinstance(objective_for(carrying), CostToGo)
    with pytest.raises(ValueError, match="cost-to-go head"):
        make_objective("cost_to_go", plain)
    with pytest.raises(ValueError, match="unknown objective"):
        make_objective("geodesic", plain)


def test_the_runtime_objective_is_a_live_parameter() -> None:
    model = PointWallModel()
    model.cost_to_go = DoorSteps(model)
    rt = PlannerRuntime(model, {"budget": "iterations"})
    assert isinstance(rt.planner.objective, CostToGo)
    assert rt.set_params({"objective": "latent_mse"}) == (True, "")
    assert isinstance(rt.planner.objective, LatentMSE)
    ok, reason = PlannerRuntime(PointWallModel(), {}).set_params({"objective": "cost_to_go"})
    assert not ok and "cost-to-go head" in reason


def test_grasp_with_the_cost_to_go_goes_through_the_door() -> None:
    model = PointWallModel(door_y=0.5, speed=0.1)
    start, goal = lift(model, (-0.4, -0.5), (0.4, -0.5))
    plans = {
        name: GraspPlanner(model, 20, objective=obj, iterations=150, seed=0).plan(start, goal)
        for name, obj in (("latent", LatentMSE()), ("learned", CostToGo(DoorSteps(model))))
    }
    ends = {k: model.position(p.rollout[-1:])[0] for k, p in plans.items()}
    assert (ends["learned"] - torch.tensor([0.4, -0.5])).norm() < 0.25
    assert ends["latent"][0] < 0  # the paper's cost stops at the wall face


# -- warm starts -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PLANNERS))
@pytest.mark.parametrize("seed", range(4))
def test_a_warm_start_never_loses_the_previous_best(name: str, seed: int) -> None:
    """Whatever the warm plan and however few iterations, the answer is never rated worse
    than going on with the shifted previous plan."""
    gen = torch.Generator().manual_seed(seed)
    model = PointWallModel(door_y=0.3)
    start, goal = lift(model, (-0.5, -0.4), (0.5, 0.4))
    planner = make_planner(name, model, 12, iterations=40, seed=seed)
    previous = planner.plan(start, goal)
    previous.actions = (torch.rand(12, 2, generator=gen) * 2 - 1) if seed % 2 else previous.actions
    warm = previous.shift(1)
    moved = model.forward(start[None], previous.actions[:1])[0]
    for iters in (0, 1, 3, 10):
        plan = planner.plan(moved, goal, warm_start=warm, max_iters=iters)
        kept = planner.rollout(moved[None], warm.actions[None])
        assert plan.cost <= float(planner.objective.trajectory(kept, goal)[0]) + 1e-6


def test_warm_grasp_carries_its_population_and_reseeds_part_of_it() -> None:
    """Member 0 is the previous best, the rest carry on; a warm tick's answer hands on its
    population with the last ``reseed`` members replaced by the best of fresh random plans
    (new draws each tick), rolled out in the answer's own batch."""
    model = PointWallModel(door_y=0.3)
    start, goal = lift(model, (-0.5, -0.4), (0.5, 0.4))
    planner = GraspPlanner(model, 12, iterations=20, population=6, reseed=2, seed=1)
    first = planner.plan(start, goal)
    assert first.members is not None and first.members[0].shape == (6, 12, 2)
    warm = first.shift(1)
    st = planner._init(start, goal, planner._fit_warm(warm, goal))
    assert torch.equal(st.actions[0].detach(), warm.actions)  # the previous best is member 0
    assert torch.equal(st.actions[1:].detach(), warm.members[0][1:])  # the rest carried on
    calls = planner.model_calls
    answers = [planner.plan(start, goal, warm_start=warm, max_iters=0) for _ in range(2)]
    assert planner.model_calls - calls == 2 * 12  # one serial rollout a tick, fresh plans too
    handed = [a.members[0] for a in answers]
    for members in handed:
        assert torch.equal(members[:4], answers[0].members[0][:4])  # optimised members kept
        assert members[4:].abs().sum() > 0 and (members[4:].abs() <= 1).all()
        assert not torch.equal(members[4:], warm.members[0][4:])
    assert not torch.equal(handed[0][4:], handed[1][4:])  # fresh draws each tick
    assert (answers[0].members[1][4:, -1] == goal).all()  # their states end at the goal
    cold = planner.plan(start, goal, max_iters=0)  # a cold plan's population is all sampled
    assert cold.members is not None and planner._reseeds == 2
    none = GraspPlanner(model, 12, population=6, reseed=0).plan(start, goal, warm, max_iters=0)
    assert torch.equal(none.members[0][1:], warm.members[0][1:])


def test_shift_moves_the_population_with_the_plan() -> None:
    model = PointWallModel()
    start, goal = lift(model, (-0.5, -0.4), (0.5, 0.4))
    plan = GraspPlanner(model, 8, iterations=5, population=3).plan(start, goal)
    shifted = plan.shift(3)
    assert torch.equal(shifted.members[0][:, :5], plan.members[0][:, 3:])
    assert (shifted.members[0][:, 5:] == 0).all()
    assert torch.equal(shifted.members[1][:, -1], plan.members[1][:, -1])
    longer = plan.shift(0, horizon=10).members
    assert longer[0].shape == (3, 10, 2) and longer[1].shape[:2] == (3, 11)


# -- stall detection -------------------------------------------------------------------------
def test_stall_detector_counts_ticks_without_progress() -> None:
    det = StallDetector(ticks=3, progress=0.1)
    assert not any(det.update(c, None, None) for c in (10.0, 8.0, 6.0, 4.0))
    assert [det.update(3.9, None, None) for _ in range(3)] == [False, False, True]
    assert det.still == 0 and det.best == float("inf")  # counts restart after a stall


def test_stall_detector_counts_ticks_pushing_against_an_obstacle() -> None:
    det = StallDetector(ticks=2, progress=0.0, motion=0.5)
    cost = iter(np.linspace(10, 1, 20))  # always progressing: only motion can stall
    assert not det.update(next(cost), 1.0, 1.0)
    assert not det.update(next(cost), 0.1, 1.0)
    assert not det.update(next(cost), None, 1.0)  # no new image: no evidence
    assert det.update(next(cost), 0.1, 1.0)
    assert not StallDetector(ticks=0).update(1.0, 0.0, 1.0)


def test_runtime_plans_afresh_when_the_robot_is_stuck() -> None:
    model = PointWallModel(door_y=0.6)
    params = {
        "horizon": 10,
        "budget": "iterations",
        "iterations": 3,
        "cold_start_iterations": 10,
        "stall_ticks": 4,
    }
    rt = PlannerRuntime(model, params)
    rt.on_goal(image(model, (0.5, -0.6)))
    camera = image(model, (-0.3, -0.6))  # the robot never moves: every tick is a stall tick
    fresh, messages = [], []
    for k in range(10):
        rt.on_image(camera, 0.1 * k)
        cmd = rt.tick(0.1 * k)
        assert cmd.status is Status.OK
        fresh.append(not cmd.plan.warm_started)
        messages.append(cmd.message)
    assert fresh == [True, False, False, False, True, False, False, False, True, False]
    assert all("no progress" in messages[k] for k in (4, 8))
    assert rt.set_params({"stall_ticks": 0}) == (True, "")
    for k in range(10, 16):
        rt.on_image(camera, 0.1 * k)
        assert rt.tick(0.1 * k).plan.warm_started


# -- the shipped heads -------------------------------------------------------------------------
@pytest.mark.parametrize("env_name", ["wall", "maze"])
def test_shipped_cost_to_go_falls_along_true_shortest_paths(env_name: str) -> None:
    """Through the Wall's door and along the Maze's corridors, where the latent MSE does not."""
    from grasp_ros.models import env_for_model, load_world_model
    from grasp_ros.research.cost_to_go import evaluate

    model = load_world_model(env_name, device="cpu")
    assert model.cost_to_go is not None
    env = env_for_model(model)
    learned = evaluate(model.cost_to_go, model, env, horizons=(40,), tasks=3)
    latent = evaluate(None, model, env, horizons=(40,), tasks=3)
    assert learned["rank_corr"] > 0.95 and learned["monotone"] > 0.9
    assert latent["rank_corr"] < learned["rank_corr"]


def test_checkpoints_with_and_without_the_head_load() -> None:
    from grasp_ros.models.cost_to_go import CostToGoHead
    from grasp_ros.models.reference import ReferenceWorldModel

    model = ReferenceWorldModel(latent_dim=8, hidden_dim=16)
    old = model.checkpoint()
    assert "cost_to_go" not in old
    assert ReferenceWorldModel.from_checkpoint(old).cost_to_go is None
    assert isinstance(objective_for(ReferenceWorldModel.from_checkpoint(old)), LatentMSE)
    model.cost_to_go = CostToGoHead(8, hidden_dim=16, step_length=0.5)
    new = model.checkpoint()
    assert set(new["state_dict"]) == set(old["state_dict"])  # the world model's weights alike
    loaded = ReferenceWorldModel.from_checkpoint(new)
    z = torch.randn(4, 8)
    assert torch.equal(loaded.cost_to_go(z, z[0]), model.cost_to_go(z, z[0]))
    assert not any(p.requires_grad for p in loaded.cost_to_go.parameters())
    assert isinstance(objective_for(loaded), CostToGo)


def test_the_closed_loop_benchmark_writes_its_table(tmp_path) -> None:
    import json

    from grasp_ros.research import closed_loop

    argv = ["--env", "wall", "--horizons", "20", "--tasks", "1", "--variants", "grasp-paper"]
    argv += ["--budget", "iterations", "--max-steps", "3", "--out", str(tmp_path)]
    argv += ["--set", "cold_start_iterations=7", "--set", "iterations=3"]
    assert closed_loop.main([*argv, "--name", "t"]) == 0
    run = json.loads((tmp_path / "t.json").read_text())
    cell = run["results"]["wall"]["20"]["grasp-paper"]
    assert cell["summary"]["tasks"] == 1 and 1 <= len(cell["tasks"][0]["solve_times"]) <= 3
    assert cell["tasks"][0]["iterations"][:2] == [7, 3][: len(cell["tasks"][0]["iterations"])]
    assert run["variants"]["grasp-paper"]["objective"] == "latent_mse"
    table = (tmp_path / "t.md").read_text()
    assert "| wall | 20 | grasp-paper |" in table and "at most 3 steps per episode" in table
    assert f"wall `{run['models']['wall']['spec']}` (sha256 " in table
    assert "except the variant's, cold_start_iterations=7, iterations=3;" in table
    with pytest.raises(SystemExit):  # a name the schema does not know, before anything runs
        closed_loop.parse_args(["--set", "iteration=3", "--name", "t"])


def test_the_closed_loop_targets_are_checked_on_the_run() -> None:
    from grasp_ros.research import closed_loop

    def cell(wins: int, n: int, misses: int = 0) -> dict:
        return {
            "summary": {
                "successes": wins,
                "tasks": n,
                "success_rate": wins / n,
                "ticks": 100,
                "deadline_misses": misses,
            }
        }

    results = {
        "wall": {
            "20": {"grasp": cell(19, 20, 1), "gd": cell(20, 20)},
            "40": {"grasp": cell(20, 20, 2), "cem": cell(3, 20)},
        },
        "maze": {"80": {"grasp": cell(17, 20)}, "100": {"grasp": cell(0, 20)}},
    }
    run = {"results": results, "config": {"budget": "deadline"}}
    rows = "\n".join(closed_loop._targets_section(run))
    assert (
        "| wall success (target over H 20-40; this run: H 20, 40) | >= 95% | 39/40 = 98% " in rows
    )
    assert "(87-100) | met |" in rows
    assert "maze success (target over H 20-80; this run: H 80) | >= 90% | 17/20 = 85%" in rows
    assert "| missed |" in rows
    assert "wall H=20: GRASP >= GD | same tasks | 19/20 vs 20/20 | missed" in rows
    assert "wall H=40: GRASP >= CEM | same tasks | 20/40" not in rows
    assert "| deadline misses (GRASP) | <= 1% | 3/400 = 0.8% | met |" in rows
    run["config"]["budget"] = "iterations"  # the clock waits: nothing to miss
    rows = "\n".join(closed_loop._targets_section(run))
    assert "deadline misses" not in rows and "not the target" in rows
