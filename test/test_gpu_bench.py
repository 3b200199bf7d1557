"""The GPU benchmark's command runs end to end on the CPU (quick profile, tiny sizes) and writes
results that say they are not the GPU measurement. No timing assertions: figures only have to
exist, be finite and be labelled."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from grasp_ros.models import check_world_model
from grasp_ros.research import gpu_bench
from grasp_ros.research.patch_model import PatchTokenModel


def test_patch_token_model_follows_the_world_model_contract() -> None:
    model = PatchTokenModel(tokens=16, dim=32, depth=1, heads=2).eval()
    check_world_model(model)
    assert model.latent_shape == (16, 32)
    z = model.encode(torch.rand(3, 3, 64, 64))
    assert z.shape == (3, 16, 32)
    assert torch.equal(
        PatchTokenModel(16, 32, 1, 2).blocks[0].qkv.weight, model.blocks[0].qkv.weight
    )


def test_patch_token_model_default_is_dino_wm_sized() -> None:
    assert PatchTokenModel(depth=1).latent_shape == (256, 384)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"tokens": 15}, "square grid"), ({"dim": 30, "heads": 4}, "multiple of heads")],
)
def test_patch_token_model_refuses_bad_sizes(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PatchTokenModel(**kwargs)


def test_quick_cpu_run_writes_labelled_results(tmp_path: Path) -> None:
    argv = ["--profile", "quick", "--device", "cpu", "--out", str(tmp_path), "--name", "smoke"]
    assert gpu_bench.main(argv) == 0
    run = json.loads((tmp_path / "smoke.json").read_text())
    text = (tmp_path / "smoke.md").read_text()
    assert run["gpu_measurement"] is False
    assert "NOT the GPU measurement" in text
    assert run["errors"] == {}
    assert run["machine"]["cpu"] and run["versions"]["torch"] == torch.__version__
    horizons = [str(h) for h in gpu_bench.PROFILES["quick"]["horizons"]]
    assert set(run["p2"]) == {*gpu_bench.SHIPPED, "patch"}
    for per in run["p2"].values():
        assert set(per) == set(gpu_bench.P2_PLANNERS)
        for by_h in per.values():
            assert list(by_h) == horizons
            assert all(math.isfinite(t) and t > 0 for t in by_h.values())
    for per in run["p4"].values():
        for floor in per.values():
            assert floor["eager_fwd_bwd_ms"] > 0
            assert floor["graph_fwd_bwd_ms"] is None  # no CUDA graphs on a CPU
    replans = run["p5"]["replans"]
    assert replans["warm_replans_per_s"] > 0 and replans["cold_replans_per_s"] > 0
    assert replans["cold_peak_memory_gb"] is None
    for loop in run["p5"]["closed_loop"]:
        assert 0 < loop["ticks"] and 0 <= loop["inside_period"] <= loop["ticks"]
        assert loop["period_ms"] == pytest.approx(1000 / 30, rel=1e-3)
    assert "## P2" in text and "## P4" in text and "## P5" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "cuda", "--profile", "quick"], "no CUDA GPU"),
        (["--device", "cpu"], "--profile gpu needs a CUDA GPU"),
        ([], "--profile gpu needs a CUDA GPU"),
    ],
)
def test_without_a_gpu_the_gpu_measurement_is_refused(argv: list, message: str, capsys) -> None:
    with pytest.raises(SystemExit):
        gpu_bench.main(argv)
    assert message in capsys.readouterr().err


def test_a_part_can_be_re_measured(tmp_path: Path) -> None:
    argv = ["--profile", "quick", "--device", "cpu", "--out", str(tmp_path), "--name", "part"]
    argv += ["--sections", "p2,p5", "--models", "wall", "--matmul-precision", "high"]
    try:
        assert gpu_bench.main(argv) == 0
    finally:
        torch.set_float32_matmul_precision("highest")
    run = json.loads((tmp_path / "part.json").read_text())
    assert set(run["p2"]) == {"wall"} and "p4" not in run and "compile" not in run
    assert run["p5"]["replans"] is None  # no patch model chosen
    assert [loop["env"] for loop in run["p5"]["closed_loop"]] == ["wall"]
    assert run["device_info"]["float32_matmul_precision"] == "high"
    assert "precision `high`" in (tmp_path / "part.md").read_text()
