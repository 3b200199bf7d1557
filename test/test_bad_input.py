"""Bad input that an adversarial run found getting through (issue 15): each case reproduces one.

Every case checks the caller gets a clear ValueError (or, from a command line, one error line
and an exit status) instead of a traceback, a silent wrong value or an unbounded cost.
"""

from __future__ import annotations

import json
import math
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.control import params as schema
from grasp_ros.control.cli_params import params_from_cli
from grasp_ros.control.memory import plan_bytes, saved_bytes_per_sample
from grasp_ros.envs import make_env
from grasp_ros.io.bags import write_bag
from grasp_ros.io.images import (
    ImageConversionError,
    compressed_image_size,
    image_msg_to_rgb,
    rgb_to_image_fields,
)
from grasp_ros.io.messages import (
    COMPRESSED_IMAGE,
    image_msg,
    make_header,
    stamp_to_ns,
    typestore,
)
from grasp_ros.models import load_world_model
from grasp_ros.models.analytic import PointWallModel
from grasp_ros.models.loader import CHECKPOINT_DIR
from grasp_ros.planning import PLANNERS, make_planner
from grasp_ros.planning import base as planning_base
from grasp_ros.tools import demo, record_sim
from grasp_ros.tools import replay as R

ANALYTIC = "grasp_ros.models.analytic:PointWallModel"
T0 = 1_700_000_000.0
FAST = {"horizon": 10, "budget": "iterations", "iterations": 5, "cold_start_iterations": 30}


# -- 1. a malformed --params file ---------------------------------------------------------------
def _run_demo(argv: list[str], tmp_path: Path) -> int:
    return demo.main(["--model", ANALYTIC, "--episodes", "1", "--out", str(tmp_path / "o"), *argv])


def _run_replay(argv: list[str], tmp_path: Path) -> int:
    return R.main([str(tmp_path / "no_bag"), "--quiet", *argv])


def _run_record(argv: list[str], tmp_path: Path) -> int:
    return record_sim.main([str(tmp_path / "bag"), "--quiet", *argv])


@pytest.mark.parametrize(
    ("tool", "prog"),
    [
        (_run_demo, "grasp-ros-demo"),
        (_run_replay, "grasp-ros-replay"),
        (_run_record, "grasp-ros-record-sim"),
    ],
)
def test_malformed_params_file_is_one_error_line_naming_the_file(
    tool, prog, tmp_path, capsys
) -> None:
    path = tmp_path / "robot.yaml"
    path.write_text("/**:\n  ros__parameters:\n    horizon: [1, 2\n")
    assert tool(["--params", str(path)], tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"{prog}: error: {path}") and "not valid YAML" in err[0]
    assert "line 4" in err[0] and "<unicode string>" not in err[0]


# -- 2. an invalid device name ------------------------------------------------------------------
@pytest.mark.parametrize("device", ["bogus", "CPU", "cuda:x", "cpu:0:1", ""])
def test_invalid_device_is_a_value_error_saying_what_is_valid(device) -> None:
    with pytest.raises(ValueError, match=r"device=.*'auto', 'cpu', 'cuda' or 'cuda:N'"):
        PlannerRuntime.from_params({"model": ANALYTIC, "device": device})
    with pytest.raises(ValueError, match=r"'auto', 'cpu', 'cuda' or 'cuda:N'"):
        load_world_model(ANALYTIC, device=device)


def test_a_cuda_index_beyond_the_machine_is_refused() -> None:
    with pytest.raises(ValueError, match="cuda:99"):
        PlannerRuntime.from_params({"model": ANALYTIC, "device": "cuda:99"})


@pytest.mark.parametrize(
    ("tool", "argv"),
    [
        (_run_demo, ["--device", "CPU"]),
        (_run_replay, ["-p", "device=bogus"]),
        (_run_record, ["--agent", "planner", "-p", "model=" + ANALYTIC, "-p", "device=bogus"]),
    ],
)
def test_invalid_device_on_a_command_line_is_one_error_line(tool, argv, tmp_path, capsys) -> None:
    assert tool(argv, tmp_path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'auto', 'cpu', 'cuda' or 'cuda:N'" in err[0], err


# -- 4. a non-finite stop_action -----------------------------------------------------------------
def _runtime(**params) -> PlannerRuntime:
    return PlannerRuntime(PointWallModel(wall=False), {**FAST, **params})


@pytest.mark.parametrize(
    ("stop", "needle"),
    [
        ([math.nan, math.nan], "stop_action=[nan, nan] is not finite"),
        ([math.inf, -math.inf], "stop_action=[inf, -inf] is not finite"),
    ],
)
def test_stop_action_must_be_finite(stop, needle) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        _runtime(stop_action=stop)
    rt = _runtime()
    ok, reason = rt.set_params({"stop_action": stop})
    assert not ok and needle in reason
    assert rt.params["stop_action"] == [] and not rt.tick(0.0).action.any()


# -- 5. an empty mapping or other non-scalar junk as a value ------------------------------------
@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"horizon": {}}, "horizon must be an int, got {}"),
        ({"grasp": {"goal_weight": {}}}, "grasp.goal_weight must be a float, got {}"),
        ({"stop_action": {}}, "stop_action must be a list of numbers, got {}"),
        ({"horizon": [30]}, "horizon must be an int, got [30]"),
        ({"model": ["wall"]}, "model must be a string, got ['wall']"),
        ({"warm_start": "yes"}, "warm_start must be a bool"),
    ],
)
def test_non_scalar_values_are_refused_with_the_reason(changes, needle) -> None:
    rt = _runtime()
    before = dict(rt.params)
    ok, reason = rt.set_params(changes)
    assert not ok and needle in reason, reason
    assert rt.params == before
    with pytest.raises(ValueError, match=re.escape(needle)):
        schema.validate(changes)


def test_an_empty_mapping_in_a_params_file_is_refused(tmp_path, capsys) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("/**:\n  ros__parameters:\n    horizon: {}\n")
    with pytest.raises(ValueError, match=re.escape("horizon must be an int, got {}")):
        params_from_cli(str(path), [])
    assert _run_record(["--params", str(path)], tmp_path) == 2


# -- 6. an image stamped in the future (clock skew) ---------------------------------------------
def _image(model: PointWallModel, xy: tuple[float, float]) -> np.ndarray:
    rendered = model.render(torch.tensor([xy]), 32)[0].permute(1, 2, 0)
    return (rendered.numpy() * 255).astype(np.uint8)


def test_an_image_stamped_in_the_future_stops_the_robot_then_recovers() -> None:
    rt = _runtime()
    model = rt.model
    rt.on_goal(_image(model, (0.4, 0.0)))
    rt.on_image(_image(model, (-0.4, 0.0)), 1000.0)  # camera clock 1000 s ahead
    cmds = [rt.tick(0.1 * k) for k in range(41)]  # then the camera goes silent
    assert all(c.status is Status.STALE_IMAGE and not c.action.any() for c in cmds)
    assert "in the future" in cmds[0].message and "clock" in cmds[0].message
    rt.on_image(_image(model, (-0.4, 0.0)), 4.1)  # clocks agree again
    assert rt.tick(4.1).status is Status.OK


def test_a_small_clock_skew_is_tolerated_and_still_goes_stale() -> None:
    rt = _runtime()
    model, timeout = rt.model, rt.params["image_timeout"]
    rt.on_goal(_image(model, (0.4, 0.0)))
    rt.on_image(_image(model, (-0.4, 0.0)), 0.2 * timeout)  # a little ahead: NTP offsets
    assert rt.tick(0.0).status is Status.OK
    assert rt.tick(1.2 * timeout + 0.01).status is Status.STALE_IMAGE


# -- 8. API misuse ------------------------------------------------------------------------------
@pytest.mark.parametrize("stamp", [math.nan, math.inf, -math.inf, "soon", None, True])
def test_bad_times_are_value_errors_that_change_nothing(stamp) -> None:
    rt = _runtime()
    frame = _image(rt.model, (-0.4, 0.0))
    with pytest.raises(ValueError, match="finite number of seconds"):
        rt.on_image(frame, stamp)
    with pytest.raises(ValueError, match="finite number of seconds"):
        rt.tick(stamp)
    with pytest.raises(ValueError, match="finite number of seconds"):
        rt.on_goal(frame, stamp)
    assert rt.tick(0.0).status is Status.NO_IMAGE and rt.stats.ticks == 1


@pytest.mark.parametrize("goal", [None, "goal.png", [1.0, 2.0], np.zeros((4, 4), np.uint8)])
def test_a_bad_goal_is_a_value_error_naming_what_is_expected(goal) -> None:
    rt = _runtime()
    with pytest.raises(ValueError, match="goal must be"):
        rt.on_goal(goal)
    assert rt.tick(0.0).status is Status.NO_IMAGE


@pytest.mark.parametrize("changes", [None, "horizon=3", [("horizon", 3)], 3])
def test_params_that_are_not_a_mapping_are_a_value_error(changes) -> None:
    rt = _runtime()
    with pytest.raises(ValueError, match="mapping of parameter names to values"):
        rt.set_params(changes)
    with pytest.raises(ValueError, match="mapping of parameter names to values"):
        PlannerRuntime.from_params(changes)


@pytest.mark.parametrize("params", ["horizon=3", [("horizon", 3)], 3])
def test_a_runtime_built_from_junk_params_is_a_value_error(params) -> None:
    with pytest.raises(ValueError, match="mapping of parameter names to values"):
        PlannerRuntime(PointWallModel(), params)


# -- 3. oversized images ------------------------------------------------------------------------
def _encoded(ext: str, side: int = 32, **params: int) -> bytes:
    flags = [item for pair in params.items() for item in (getattr(cv2, pair[0]), pair[1])]
    ok, buf = cv2.imencode(ext, np.full((side, side + 8, 3), 90, np.uint8), flags)
    assert ok
    return buf.tobytes()


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` (the CRC is not fixed up: the
    size must be refused before anything reads further)."""
    data = bytearray(_encoded(".png"))
    data[16:24] = struct.pack(">II", width, height)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "size"),
    [
        (_encoded(".png"), (40, 32)),
        (_encoded(".jpg"), (40, 32)),
        (_encoded(".jpg", IMWRITE_JPEG_PROGRESSIVE=1), (40, 32)),
        (_png_claiming(100_000, 100_000), (100_000, 100_000)),
        (b"\x00\x01\x02\x03", None),
        (_encoded(".bmp"), None),
    ],
)
def test_the_size_is_read_from_the_png_or_jpeg_header(data, size) -> None:
    assert compressed_image_size(data) == size


@pytest.mark.parametrize("claim", [(100_000, 100_000), (12_000, 12_000)])
def test_an_oversized_compressed_image_is_refused_before_decoding(claim) -> None:
    msg = SimpleNamespace(format="png", data=_png_claiming(*claim))
    with pytest.raises(ImageConversionError, match=rf"{claim[0]} x {claim[1]} pixels.*limit"):
        image_msg_to_rgb(msg)


def test_the_pixel_limit_is_configurable_for_compressed_and_raw_images() -> None:
    jpeg = SimpleNamespace(format="jpeg", data=_encoded(".jpg"))
    raw = SimpleNamespace(**rgb_to_image_fields(np.zeros((32, 40, 3), np.uint8)))
    for msg in (jpeg, raw):
        assert image_msg_to_rgb(msg).shape == (32, 40, 3)
        assert image_msg_to_rgb(msg, max_pixels=32 * 40).shape == (32, 40, 3)
        with pytest.raises(ImageConversionError, match=r"40 x 32 pixels.*limit of 1279"):
            image_msg_to_rgb(msg, max_pixels=32 * 40 - 1)


def test_a_format_without_a_readable_size_is_refused() -> None:
    msg = SimpleNamespace(format="bmp", data=_encoded(".bmp"))
    with pytest.raises(ImageConversionError, match="not PNG or JPEG"):
        image_msg_to_rgb(msg)


def _camera_bag(path: Path, bad_frame: int) -> Path:
    """Twelve compressed camera frames at 20 Hz (frame ``bad_frame`` claims 100000 x 100000)
    and a goal image."""
    env = make_env("wall", image_size=32)
    states = np.stack([np.linspace(10, 50, 12), np.full(12, 20.0), np.full(12, 30.0)], axis=1)
    compressed_type = typestore().types[COMPRESSED_IMAGE]
    with write_bag(path) as bag:
        rgbs = list(env.render_states(states))
        bag.write("goal_image", image_msg(rgbs[-1], T0, "camera"), stamp_to_ns(T0))
        for i, rgb in enumerate(rgbs):
            t = T0 + 0.05 * i
            _, png = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
            data = _png_claiming(100_000, 100_000) if i == bad_frame else png.tobytes()
            msg = compressed_type(
                header=make_header(t, "camera"),
                format="rgb8; png compressed bgr8",
                data=np.frombuffer(data, np.uint8),
            )
            bag.write("camera/image_raw", msg, stamp_to_ns(t + 0.002))
    return path


def test_an_oversized_image_in_a_replay_is_skipped_and_counted(tmp_path, capsys) -> None:
    bag = _camera_bag(tmp_path / "bag", bad_frame=5)
    fast = ["-p", f"model={ANALYTIC}", "-p", "horizon=6", "-p", "iterations=2"]
    assert R.main([str(bag), "--quiet", "--report", str(tmp_path / "r.json"), *fast]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    skipped = report["skipped"]["camera/image_raw"]
    assert skipped["count"] == 1 and "100000 x 100000 pixels" in skipped["first_error"]
    assert "skipped 1 unusable message(s)" in capsys.readouterr().err
    params = {**params_from_cli(None, []), "model": ANALYTIC, "horizon": 6, "iterations": 2}
    small = R.replay(bag, params, max_image_pixels=100)
    assert small.report["skipped"]["camera/image_raw"]["count"] == 12
    assert set(small.report["status_counts"]) == {"NO_IMAGE"}


# -- 9. the memory guard ------------------------------------------------------------------------
HUGE = {"horizon": 1000, "grasp.population": 4096}


def test_a_configuration_that_would_not_fit_is_refused_with_the_estimate() -> None:
    with pytest.raises(ValueError, match=r"would need about [\d,]+ MiB, more than the limit"):
        _runtime(**HUGE, memory_limit_mb=1024)
    rt = _runtime(memory_limit_mb=1024)
    before, planner = dict(rt.params), rt.planner
    ok, reason = rt.set_params(HUGE)
    assert not ok and "grasp at horizon 1000" in reason and "memory_limit_mb=1024" in reason
    assert rt.params == before and rt.planner is planner
    assert not rt.set_params({"memory_limit_mb": 0.001})[0]  # the current one would not fit
    assert rt.set_params({"horizon": 50, "cem.samples": 4000, "planner": "cem"})[0]


def test_the_default_limit_is_half_the_device_memory() -> None:
    model = PointWallModel(latent_shape=(256, 384))  # DINO-WM-sized patch tokens
    with pytest.raises(ValueError, match=r"half of the cpu device's memory"):
        PlannerRuntime(model, HUGE)


def test_the_estimate_grows_with_horizon_population_and_latent_size() -> None:
    model = PointWallModel()
    per_sample = saved_bytes_per_sample(model)
    assert per_sample > 0
    base = {**schema.defaults(), "horizon": 10}
    one = plan_bytes(base, model, per_sample)
    assert plan_bytes({**base, "horizon": 20}, model, per_sample) == 2 * one
    assert plan_bytes({**base, "grasp.population": 16}, model, per_sample) > one
    wide = PointWallModel(latent_shape=(64,))
    assert plan_bytes(base, wide, saved_bytes_per_sample(wide)) > one


def test_a_checkpoint_declaring_a_huge_network_is_refused_before_allocating(tmp_path) -> None:
    ckpt = torch.load(CHECKPOINT_DIR / "wall.pt", weights_only=True)
    ckpt["config"] = {**ckpt["config"], "hidden_dim": 2**20}  # 10^12 weights declared
    torch.save(ckpt, tmp_path / "huge.pt")
    with pytest.raises(ValueError, match=r"declares .* weights but holds"):
        load_world_model(tmp_path / "huge.pt")


# -- 10. the deadline bounds everything plan does -----------------------------------------------
class _Clock:
    """A simulated ``time.perf_counter``: only model calls take time, so no test reads a real
    clock and the figures are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _SlowModel(PointWallModel):
    """Each forward call takes 0.5 ms plus 10 us per sample on the simulated clock."""

    clock: _Clock

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        self.clock.now += 5e-4 + 1e-5 * latents.shape[0]
        return super().forward(latents, actions)


@pytest.fixture
def slow(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(planning_base.time, "perf_counter", clock)
    model = _SlowModel(wall=False)
    model.clock = clock
    start, goal = (model.lift(torch.tensor([xy]))[0] for xy in ((-0.3, 0.2), (0.3, -0.2)))
    return model, start, goal


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_a_cold_start_plan_returns_within_its_deadline(slow, name) -> None:
    model, start, goal = slow
    # GRASP's sampled start alone costs 50 serial calls of 256 samples: 153 ms.
    planner = make_planner(name, model, 50, iterations=100_000)
    plan = planner.plan(start, goal, deadline=0.1)
    assert plan.solve_time <= 0.1 and torch.isfinite(plan.actions).all()


def test_serial_syncs_inside_an_iteration_respect_the_deadline(slow) -> None:
    model, start, goal = slow
    # Every iteration ends with 10 serial rollouts of 50 steps: about 0.3 s each.
    planner = make_planner("grasp", model, 50, sync_every=1, sync_steps=10, init="interpolate")
    warm = planner.plan(start, goal, max_iters=0)
    plan = planner.plan(start, goal, warm_start=warm, deadline=0.1)
    assert plan.solve_time <= 0.1 and torch.isfinite(plan.actions).all()
