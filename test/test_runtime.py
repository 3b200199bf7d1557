"""PlannerRuntime driven with a simulated clock and the analytic world (no ROS, no training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from grasp_ros.control import PlannerRuntime, Status, params
from grasp_ros.models.analytic import PointWallModel

FAST = {"horizon": 10, "budget": "iterations", "iterations": 5, "cold_start_iterations": 30}


class FlakyModel(PointWallModel):
    """Raises or returns NaN on demand, to exercise the runtime's failure handling."""

    mode = "ok"

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.mode == "raise":
            raise RuntimeError("simulated model failure")
        out = super().forward(latents, actions)
        return out * math.nan if self.mode == "nan" else out


def image(model: PointWallModel, xy: tuple[float, float]) -> np.ndarray:
    rendered = model.render(torch.tensor([xy]), 32)[0].permute(1, 2, 0)
    return (rendered.numpy() * 255).astype(np.uint8)


@pytest.fixture
def world():
    model = FlakyModel(wall=False)
    runtime = PlannerRuntime(model, FAST)
    return model, runtime


def test_missing_and_stale_inputs_stop_and_recover(world) -> None:
    model, rt = world
    cmd = rt.tick(0.0)
    assert cmd.status is Status.NO_IMAGE and not cmd.action.any() and cmd.plan is None
    rt.on_image(image(model, (-0.4, 0.0)), 0.0)
    assert rt.tick(0.1).status is Status.NO_GOAL
    rt.on_goal(image(model, (0.4, 0.0)), 0.1)
    assert rt.tick(0.2).status is Status.OK
    stale = rt.tick(0.2 + rt.params["image_timeout"] + 0.01)
    assert stale.status is Status.STALE_IMAGE and not stale.action.any()
    assert "old" in stale.message
    rt.on_image(image(model, (-0.3, 0.0)), 1.0)
    assert rt.tick(1.0).status is Status.OK


def test_warm_start_is_shifted_by_the_steps_executed(world) -> None:
    model, rt = world
    rt.on_image(image(model, (-0.4, 0.1)), 0.0)
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    first = rt.tick(0.0)
    assert first.status is Status.OK and not first.plan.warm_started
    # plan = the warm start itself (no iterations, no other members): the shift is visible
    rt.set_params({"iterations": 0, "grasp.reseed": 0, "grasp.population": 1})
    rt.on_image(image(model, (-0.35, 0.1)), 0.1)
    second = rt.tick(0.1)
    assert second.plan.warm_started
    torch.testing.assert_close(second.plan.actions[:-1], first.plan.actions[1:])
    third = rt.tick(0.4)  # three periods later (two ticks missed): shift by three
    torch.testing.assert_close(third.plan.actions[:-3], second.plan.actions[3:])
    assert (third.plan.actions[-3:] == 0).all()


def test_a_new_goal_drops_the_warm_start(world) -> None:
    model, rt = world
    rt.on_image(image(model, (-0.4, 0.1)), 0.0)
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    rt.tick(0.0)
    rt.on_goal(image(model, (0.0, 0.5)), 0.05)
    assert not rt.tick(0.1).plan.warm_started


def test_the_same_goal_again_keeps_the_warm_start(world) -> None:
    model, rt = world
    rt.on_image(image(model, (-0.4, 0.1)), 0.0)
    assert rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    rt.tick(0.0)
    assert not rt.on_goal(image(model, (0.4, -0.1)), 0.05)  # a republished goal topic
    assert rt.tick(0.1).plan.warm_started


@pytest.mark.parametrize("mode", ["raise", "nan"])
def test_planner_failure_stops_then_recovers(world, mode: str) -> None:
    model, rt = world
    rt.on_image(image(model, (-0.4, 0.1)), 0.0)
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    model.mode = mode
    cmd = rt.tick(0.0)
    assert cmd.status is Status.PLANNER_ERROR and not cmd.action.any()
    assert ("simulated" in cmd.message) if mode == "raise" else ("non-finite" in cmd.message)
    model.mode = "ok"
    ok = rt.tick(0.1)
    assert ok.status is Status.OK and not ok.plan.warm_started


def test_stop_action_is_configurable_and_bounded(world) -> None:
    _, rt = world
    assert rt.set_params({"stop_action": [0.5, 3.0]}) == (True, "")
    np.testing.assert_allclose(rt.tick(0.0).action, [0.5, 1.0])  # clamped to the bounds
    ok, reason = rt.set_params({"stop_action": [0.1, 0.2, 0.3]})
    assert not ok and "stop_action" in reason


def test_goal_reached_by_latent_threshold(world) -> None:
    model, rt = world
    rt.set_params({"goal_threshold": 1e-3})
    rt.on_image(image(model, (0.2, 0.2)), 0.0)
    rt.on_goal(image(model, (0.2, 0.2)), 0.0)
    cmd = rt.tick(0.0)
    assert cmd.status is Status.GOAL_REACHED and not cmd.action.any()


def test_closed_loop_reaches_the_goal_and_actions_stay_in_bounds(world) -> None:
    model, rt = world
    rt.on_goal(image(model, (0.5, -0.3)), 0.0)
    pos = torch.tensor([-0.5, 0.3])
    for k in range(30):
        now = k * rt.period
        rt.on_image(image(model, tuple(pos.tolist())), now)
        cmd = rt.tick(now)
        assert cmd.status is Status.OK
        assert np.all(np.abs(cmd.action) <= 1.0) and cmd.actions.shape == (1, 2)
        pos = model.move(pos[None], torch.from_numpy(cmd.action)[None])[0]
    assert torch.dist(pos, torch.tensor([0.5, -0.3])) < 0.1


def test_fixed_iteration_budget_is_deterministic() -> None:
    def run() -> list[np.ndarray]:
        model = PointWallModel(wall=False)
        rt = PlannerRuntime(model, {**FAST, "seed": 3})
        rt.on_goal(image(model, (0.5, -0.3)), 0.0)
        out = []
        for k in range(5):
            rt.on_image(image(model, (-0.5 + 0.05 * k, 0.3)), k * 0.1)
            out.append(rt.tick(k * 0.1).action)
        return out

    for a, b in zip(run(), run(), strict=True):
        assert a.tobytes() == b.tobytes()


def test_deadline_budget_plans_within_a_tick(world) -> None:
    model, rt = world
    assert rt.set_params({"budget": "deadline", "iterations": 100000})[0]
    rt.on_image(image(model, (-0.4, 0.1)), 0.0)
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    cmd = rt.tick(0.0)
    assert cmd.status is Status.OK and 0 < cmd.iterations < 100000


def test_memory_stays_bounded_over_many_ticks(world) -> None:
    model, rt = world
    rt.set_params({"iterations": 0, "cold_start_iterations": 0})
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    frame = image(model, (-0.4, 0.1))
    for k in range(1500):
        rt.on_image(frame, k * 0.01)
        rt.on_image(frame, k * 0.01 + 0.005)
        rt.tick(k * 0.01 + 0.006)
    assert rt.stats.ticks == 1500
    assert len(rt.stats.solve_times) == rt.stats.window == 1000
    assert all(len(getattr(rt.stats, n)) <= 1000 for n in ("tick_times", "iterations", "costs"))


def test_bad_images_are_rejected_without_losing_the_held_one(world) -> None:
    model, rt = world
    good = image(model, (0.0, 0.0))
    rt.on_image(good, 1.0)
    for bad in (good.astype(np.float32), good[..., :2], good[0], "image"):
        with pytest.raises(ValueError, match="image"):
            rt.on_image(bad, 2.0)
    rt.on_image(image(model, (0.5, 0.5)), 0.5)  # out of order: ignored
    assert rt._image is good
    with pytest.raises(ValueError, match="latent_shape"):
        rt.on_goal(np.zeros(5, dtype=np.float32))


def test_set_params_validates_and_applies_nothing_on_rejection(world) -> None:
    _, rt = world
    before = dict(rt.params)
    planner = rt.planner
    for change, words in [
        ({"horizon": 0}, "horizon"),
        ({"control_rate": "fast"}, "control_rate"),
        ({"grasp.state_noise": -1.0}, "state_noise"),
        ({"no_such_param": 1}, "unknown"),
        ({"model": "maze"}, "read-only"),
        ({"planner": "cem", "cem.samples": 10, "cem.elites": 20}, "elites"),
        ({"horizon": 20, "image_timeout": -1.0}, "image_timeout"),
    ]:
        ok, reason = rt.set_params(change)
        assert not ok and words in reason, (change, reason)
    assert rt.params == before and rt.planner is planner
    assert rt.set_params({"horizon": 20, "planner": "cem", "cem.samples": 50}) == (True, "")
    assert rt.planner.name == "cem" and rt.planner.horizon == 20
    assert rt.planner.config.samples == 50


def test_status_values_match_the_message_definition() -> None:
    from grasp_ros.io.messages import status_codes

    assert status_codes() == {s.name: s.value for s in Status}


def test_yaml_and_schema_agree() -> None:
    from pathlib import Path

    path = Path(__file__).parents[1] / "config" / "planner.yaml"
    assert params.load_params_file(path) == params.defaults()
    assert path.read_text() == params.to_yaml()
    for spec in params.SCHEMA.values():
        assert spec.check(spec.default) == spec.default, spec.name


def test_from_params_rejects_unknown_keys_and_builds_from_a_factory() -> None:
    with pytest.raises(ValueError, match="unknown parameter"):
        PlannerRuntime.from_params({"model": "wall", "horizont": 5})
    rt = PlannerRuntime.from_params(
        {
            "model": "grasp_ros.models.analytic:PointWallModel",
            "device": "cpu",
            "horizon": 7,
            "grasp": {"goal_weight": 2.0},
        }
    )
    assert rt.planner.horizon == 7 and rt.planner.config.goal_weight == 2.0


def test_matmul_precision_is_set_at_start_and_read_only() -> None:
    factory = "grasp_ros.models.analytic:PointWallModel"
    try:
        rt = PlannerRuntime.from_params({"model": factory, "matmul_precision": "high"})
        assert torch.get_float32_matmul_precision() == "high"
        ok, reason = rt.set_params({"matmul_precision": "highest"})
        assert not ok and "read-only" in reason
        with pytest.raises(ValueError, match="matmul_precision"):
            PlannerRuntime.from_params({"model": factory, "matmul_precision": "tf32"})
    finally:
        torch.set_float32_matmul_precision("highest")


def test_output_fields_build_valid_messages(world) -> None:
    from grasp_ros.control.outputs import action_fields, status_fields, trajectory_fields
    from grasp_ros.io import messages

    model, rt = world
    rt.on_image(image(model, (-0.4, 0.1)), 0.0)
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    cmd = rt.tick(0.0)
    traj = messages.virtual_trajectory_msg(
        stamp_sec=0.0, frame_id="map", **trajectory_fields(cmd.plan, model)
    )
    assert traj.horizon == 10 and len(traj.positions) == 11 and traj.planner == "grasp"
    assert list(traj.latent_shape) == [32] and len(traj.virtual_states) == 11 * 32
    status = messages.planner_status_msg(stamp_sec=0.0, **status_fields(cmd, rt.stats))
    assert status.status == Status.OK and status.tick == cmd.tick
    action = messages.action_command_msg(stamp_sec=0.0, **action_fields(cmd))
    np.testing.assert_array_equal(action.action, cmd.action)
    assert cmd.goal_cost > 0 and math.isnan(rt.stop_command(0.0, Status.NO_GOAL, "").goal_cost)
    lean = trajectory_fields(cmd.plan, model, latents=False, world_scale=0.5)
    assert lean["virtual_states"].size == lean["rollout"].size == 0
    xyz = trajectory_fields(cmd.plan, model)["positions"]
    np.testing.assert_allclose(lean["positions"], xyz * [0.5, -0.5, 0.5], rtol=1e-6)
    assert rt.set_params({"action_chunk": 3}) == (True, "")
    fields = action_fields(rt.tick(0.1))
    assert fields["chunk"].shape == (3, 2) and fields["step_index"] == 0
    np.testing.assert_array_equal(fields["chunk"][0], fields["action"])
    store = messages.typestore()
    for msg in (traj, status, action):
        data = store.serialize_cdr(msg, msg.__msgtype__)
        assert store.deserialize_cdr(data, msg.__msgtype__).header == msg.header


def test_warmup_runs_a_small_plan_without_changing_state(world) -> None:
    _, rt = world
    assert rt.warmup() > 0
    assert rt.stats.ticks == 0 and rt.tick(0.0).status is Status.NO_IMAGE


def test_cuda_on_a_cpu_only_build_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        PlannerRuntime.from_params(
            {"model": "grasp_ros.models.analytic:PointWallModel", "device": "cuda"}
        )


def test_a_clock_jump_back_is_followed_not_ignored(world) -> None:
    model, rt = world
    rt.on_goal(image(model, (0.4, -0.1)), 0.0)
    rt.on_image(image(model, (-0.4, 0.1)), 50.0)
    assert rt.tick(50.0).status is Status.OK
    rt.on_image(image(model, (0.0, 0.1)), 49.99)  # out of order: ignored
    assert rt._image_stamp == 50.0
    rt.on_image(image(model, (0.0, 0.1)), 1.0)  # the bag looped: a new timeline
    cmd = rt.tick(1.0)
    assert cmd.status is Status.OK and not cmd.plan.warm_started
