"""grasp-ros-bench: the protocol judges the final plan in the true environment (the oracle's
checks beside it change nothing), planners compared start alike, claims never "hold" on
undefined comparisons, the CLI writes well-formed results with intervals, and bad input is
refused with one clear line. No timing assertions."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from grasp_ros.envs import Task, WallEnv
from grasp_ros.models import ReferenceWorldModel, WorldModel
from grasp_ros.planning import make_planner
from grasp_ros.research import bench, bench_report, bench_stats, closed_loop
from grasp_ros.research.bench_protocol import (
    BENCH_PLANNERS,
    build_planner,
    encode_tasks,
    planner_spec,
    run_open_loop,
)
from grasp_ros.research.closed_loop import VARIANTS

CPU = torch.device("cpu")


class DotModel(WorldModel):
    """An exact world model of the Wall world's left room, or of the arena without walls
    (``room=False``): the latent is the red dot's position (from the image) in arena units / 64,
    an action moves it ``2 * a`` units, and the room's walls stop it 0.5 units short."""

    image_size = 64

    def __init__(self, room: bool = True) -> None:
        super().__init__((2,), 2, -1.0, 1.0)
        self.room = room

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        red = (images[:, 0] - images[:, 1]).clamp(min=0)
        c = (torch.arange(images.shape[-1]) + 0.5) / images.shape[-1]
        mass = red.sum((1, 2)).clamp(min=1e-8)
        return torch.stack([(red.sum(1) * c).sum(1), (red.sum(2) * c).sum(1)], 1) / mass[:, None]

    def forward(self, latents: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        moved = latents + actions.clamp(-1, 1) * 2 / 64
        if not self.room:
            return moved
        low, high = torch.tensor([2.5, 2.5]) / 64, torch.tensor([28.5, 61.5]) / 64
        return torch.maximum(torch.minimum(moved, high), low)

    def project(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.cat([latents * 64, torch.zeros_like(latents[:, :1])], 1)


def make_task(
    env: WallEnv,
    start: tuple[float, float],
    goal: tuple[float, float],
    horizon: int,
    door: float = 20.0,
) -> Task:
    s, g = np.array([*start, door]), np.array([*goal, door])
    images = env.render_states(np.stack([s, g]))
    return Task(
        start_state=s,
        goal_state=g,
        start_image=images[0],
        goal_image=images[1],
        horizon=horizon,
        optimal_steps=env.optimal_steps(s, g),
        non_greedy=False,
        seed=3,
    )


def plan_task(
    name: str,
    start: tuple[float, float],
    goal: tuple[float, float],
    horizon: int,
    budget: float = 2.0,
    room: bool = True,
    max_iters: int = 2000,
    check_every: float = 0.01,
):
    env, model = WallEnv(), DotModel(room)
    task = make_task(env, start, goal, horizon)
    s, g = encode_tasks(model, [task], CPU)
    planner = build_planner(name, model, horizon, max_iters=max_iters, seed=0)
    return run_open_loop(planner, env, task, s[0], g[0], budget=budget, check_every=check_every)


@pytest.mark.parametrize("name", ["grasp", "gd", "cem", "grasp-nosync"])
def test_open_loop_success_is_checked_in_the_true_environment(name: str) -> None:
    res = plan_task(name, (8, 10), (20, 50), horizon=24)  # same room: the model is exact
    assert res.success and res.distance < WallEnv.success_radius
    assert res.model_success and res.model_distance == pytest.approx(res.distance, abs=0.5)
    assert res.oracle_success and res.oracle_time_to_success is not None
    assert 0 < res.oracle_time_to_success <= res.solve_time
    assert 1 <= res.oracle_iterations <= res.iterations and res.model_calls >= 1
    assert res.optimal_steps <= 24 and res.seed == 3


def test_a_plan_the_model_likes_but_the_wall_blocks_is_a_failure() -> None:
    # The model knows no wall: its straight plan reaches the goal in the model, not in the env.
    # An iteration budget, not a wall-clock one, so the answer does not depend on the machine's
    # load (at 80 iterations the model distance is 0.39, at 40 still 2.2; 300 converge).
    res = plan_task(
        "grasp", (10, 50), (54, 50), 28, math.inf, room=False, max_iters=300, check_every=math.inf
    )
    assert not res.success and not res.oracle_success and res.oracle_time_to_success is None
    assert res.model_success and res.model_distance < 1  # the model believes it arrives...
    assert res.distance > 20  # ...the true agent is stopped at the wall, far from the goal


@pytest.mark.parametrize(
    "name, config", [("grasp", {"action_lr": 1.0, "state_noise": 0.3}), ("gd", {}), ("cem", {})]
)
def test_the_oracles_checks_change_neither_the_search_nor_the_final_plan(
    name: str, config: dict
) -> None:
    """A snapshot is scored like an answer but not remembered: GRASP offers its candidates to
    the best-so-far record only at syncs and at the end, so a remembered check would make the
    checked run's final plan better than a robot's (here: a noisy, oscillating GRASP)."""
    model = DotModel(room=False)
    start, goal = torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.7])
    seen: list = []
    checked = make_planner(name, model, 16, iterations=30, seed=0, **config).plan(
        start, goal, callback=lambda i, t, snapshot: seen.append(snapshot())
    )
    plain = make_planner(name, model, 16, iterations=30, seed=0, **config).plan(start, goal)
    assert len(seen) == 30 and torch.equal(checked.actions, plain.actions)
    assert checked.cost == plain.cost
    if name == "grasp":  # the case the purity matters for: some check saw a better plan
        assert min(p.cost for p in seen) < plain.cost


def test_a_cpu_time_budget_is_kept_on_the_process_clock() -> None:
    """On a shared machine the wall clock gives a planner whatever CPU others leave; the CPU
    clock (--clock cpu) budgets this process's own seconds."""
    env, model = WallEnv(), DotModel()
    task = make_task(env, (8, 10), (20, 50), horizon=24)
    s, g = encode_tasks(model, [task], CPU)
    planner = build_planner("gd", model, 24, max_iters=100_000, seed=0, clock="cpu")
    assert planner.clock is time.process_time and planner._deadline.clock is time.process_time
    c0 = time.process_time()
    res = run_open_loop(planner, env, task, s[0], g[0], budget=0.2, check_every=0.05)
    used = time.process_time() - c0
    assert res.iterations > 0 and res.solve_time <= 0.25 and res.solve_time <= used


def test_planners_compared_from_the_same_sampled_start() -> None:
    """gd-sample and cem-sample start from the best of the very random plans GRASP's population
    is drawn from (its member 1); grasp-line, gd and cem all start from zero actions."""
    model = DotModel()
    s, g = torch.tensor([0.1, 0.2]), torch.tensor([0.4, 0.7])

    def first(name: str) -> torch.Tensor:
        planner = build_planner(name, model, 12, max_iters=1, seed=5)
        st = planner._init(s, g, None)
        return (
            st.mean if hasattr(st, "mean") else st.actions[min(1, len(st.actions) - 1)]
        ).detach()

    sampled = first("grasp")
    assert sampled.abs().sum() > 0
    assert torch.equal(first("gd-sample").reshape(12, 2), sampled)
    assert torch.equal(first("cem-sample"), sampled)
    for name in ("grasp-line", "gd", "cem"):
        assert (first(name) == 0).all(), name
    assert make_planner("cem", model, 4, init="sample").config.init_samples == 256


def test_closed_loop_replans_through_the_runtime() -> None:
    env, model = WallEnv(), DotModel()
    task = make_task(env, (8, 10), (30 - 8, 30), horizon=20)
    params = {"planner": "grasp", "budget": "iterations", "iterations": 50, "control_rate": 100.0}
    out = closed_loop.run_task(model, env, task, {**params, "seed": 3}, ticks_per_step=2.0)
    assert out["success"] and 0 < out["ticks"] <= 2 * task.optimal_steps
    assert len(out["solve_times"]) == out["ticks"] and min(out["iterations"]) > 0


def test_the_first_timed_plan_in_a_process_runs_iterations() -> None:
    # torch imports torch._dynamo when the first optimizer is built (about 2 s); planners pay
    # it when constructed, so the first deadline-bounded plan (a benchmark task, the node's
    # first tick) is not the zero plan. A fresh interpreter, since this process paid already.
    code = (
        "import torch\n"
        "from grasp_ros.models.analytic import PointWallModel\n"
        "from grasp_ros.planning import make_planner\n"
        "m = PointWallModel(wall=False)\n"
        "s, g = m.lift(torch.tensor([[-0.3, 0.1], [0.3, -0.2]]))\n"
        "for name in ('grasp', 'gd', 'collocation'):\n"
        "    print(make_planner(name, m, 10).plan(s, g, deadline=1.0).iterations)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert all(int(n) > 0 for n in out.stdout.split()), out.stdout


def test_ablations_are_grasp_with_one_ingredient_removed() -> None:
    assert planner_spec("gd") == ("gd", {})
    assert planner_spec("grasp-nonoise") == ("grasp", {"state_noise": 0.0})
    assert planner_spec("grasp-nostopgrad") == ("grasp", {"stop_grad": False})
    assert planner_spec("grasp-nogoal") == ("grasp", {"goal_weight": 0.0})
    assert planner_spec("grasp-nosync") == ("grasp", {"sync_every": 0})
    assert planner_spec("cem-sample") == ("cem", {"init": "sample"})
    assert set(BENCH_PLANNERS) >= {"grasp", "gd", "cem", "collocation"}
    with pytest.raises(ValueError, match="unknown planner 'mppi'"):
        planner_spec("mppi")
    assert closed_loop.variant_params("gd-sample") == {"planner": "gd", "gd.init": "sample"}
    assert closed_loop.variant_params("grasp-paper")["objective"] == "latent_mse"


def test_wilson_interval() -> None:
    assert bench_stats.wilson_interval(0, 0) == (0.0, 1.0)
    low, high = bench_stats.wilson_interval(10, 20)
    assert low == pytest.approx(0.2993, abs=1e-3) and high == pytest.approx(0.7007, abs=1e-3)
    assert bench_stats.wilson_interval(20, 20)[1] == 1.0
    assert bench_stats.wilson_interval(0, 20)[0] == 0.0


def test_difference_interval_resolves_ten_points_only_with_many_tasks() -> None:
    low, high = bench_stats.difference_interval(6, 20, 4, 20)  # 30% against 20%, 20 tasks
    assert low < 0 < high
    low, high = bench_stats.difference_interval(50, 100, 20, 100)  # 50% against 20%
    assert 0 < low < 0.3 < high
    assert bench_stats.difference_interval(0, 10, 0, 10)[0] < 0


def _cell(wins: int, n: int, time: float, oracle: int | None = None) -> dict:
    seen = wins if oracle is None else oracle
    tasks = [
        {
            "success": i < wins,
            "oracle_success": i < seen,
            "oracle_time_to_success": time if i < seen else None,
            "oracle_iterations": 4 if i < seen else None,
            "iterations": 5,
            "model_calls": 5,
            "distance": 1.0,
            "model_distance": 0.5,
            "model_success": True,
        }
        for i in range(n)
    ]
    return {"summary": bench_stats.summarize(tasks), "tasks": tasks}


def test_summary_reports_the_final_plan_and_the_oracle_apart() -> None:
    s = _cell(2, 4, 2.0, oracle=3)["summary"]
    assert (s["tasks"], s["successes"], s["success_rate"]) == (4, 2, 0.5)
    assert (s["oracle_successes"], s["oracle_success_rate"]) == (3, 0.75)
    assert s["ci95"] == pytest.approx(bench_stats.wilson_interval(2, 4))
    assert s["median_oracle_time_to_success"] == 2.0 and s["median_oracle_iterations"] == 4
    assert s["median_iterations"] == 5
    assert s["model_success_rate"] == 1.0 and s["median_model_distance"] == 0.5
    empty = bench_stats.summarize([{"success": False, "distance": 3.0}])
    assert empty["median_oracle_time_to_success"] is None and empty["model_success_rate"] is None


def test_claim_check_compares_grasp_with_the_better_baseline_from_the_same_start() -> None:
    results = {
        "wall": {
            "20": {"grasp": _cell(1, 10, 9.0), "gd": _cell(9, 10, 1.0), "cem": _cell(9, 10, 1.0)},
            "60": {"grasp": _cell(8, 10, 1.0), "gd": _cell(6, 10, 2.0), "cem": _cell(7, 10, 4.0)},
            "80": {"grasp": _cell(5, 10, 2.0), "gd": _cell(5, 10, 2.0), "cem": _cell(0, 10, 0.0)},
        }
    }
    claims = {c["horizon"]: c for c in bench_stats.check_claims(results, {"wall": ["80"]})}
    assert set(claims) == {"60", "80", ">=50"}  # H=20 is not part of the claim
    assert {c["group"] for c in claims.values()} == {bench_stats.START_GROUPS[2][0]}
    assert claims["60"]["points_ahead"] == pytest.approx(10.0) and claims["60"]["rival"] == "cem"
    assert claims["60"]["points_ci95"][0] < 0 < claims["60"]["points_ci95"][1]  # 10 tasks
    assert claims["60"]["success_ok"] and claims["60"]["time_ok"]  # 1.0 <= 4.0 / 3
    assert not claims["80"]["success_ok"] and claims["80"]["capped"]
    assert claims[">=50"]["capped"] and not claims["60"]["capped"]
    assert claims[">=50"]["grasp_success"] == pytest.approx(0.65)
    assert bench_stats.check_claims({"wall": {"60": {"grasp": _cell(1, 2, 1.0)}}}) == []


def test_a_claim_against_a_cem_that_never_succeeds_is_undefined_not_holding() -> None:
    long = {
        "grasp": _cell(5, 10, 1.0),
        "gd": _cell(0, 10, 0.0),
        "cem": _cell(0, 10, 0.0),
        "grasp-line": _cell(0, 10, 0.0),
    }
    claims = bench_stats.check_claims({"maze": {"80": long}})
    shipped = [c for c in claims if c["group"].startswith("as shipped")]
    line = [c for c in claims if c["group"] == "straight-line starts"]
    assert shipped and all(c["time_ok"] is None and c["time_ratio"] is None for c in shipped)
    assert all(c["success_ok"] for c in shipped)
    assert line and not any(c["success_ok"] or c["time_ok"] for c in line)
    md = bench_report._claims_section(claims)
    assert any("| undefined |" in row for row in md) and not any("| holds |" in r[-10:] for r in md)
    late = bench_stats.check_claims({"maze": {"80": {**long, "cem": _cell(5, 10, 1.0)}}})
    assert late[0]["time_ok"] is False  # a ratio of 1, measured: a real NO


@pytest.fixture(scope="module")
def untrained_models(tmp_path_factory) -> list[str]:
    """Untrained reference-model checkpoints for both worlds (fast, no shipped files needed)."""
    folder = tmp_path_factory.mktemp("models")
    args = []
    for env in ("wall", "maze"):
        torch.manual_seed(0)
        path = folder / f"{env}.pt"
        torch.save(ReferenceWorldModel(env_name=env).checkpoint(), path)
        args += ["--model", f"{env}={path}"]
    return args


def test_cli_writes_well_formed_results(
    tmp_path: Path, untrained_models: list[str], capsys
) -> None:
    argv = [
        "--profile",
        "quick",
        "--env",
        "wall,maze",
        "--planners",
        "grasp,gd,cem,grasp-nogoal",
        "--horizons",
        "12,8",
        "--tasks",
        "2",
        "--budget-per-step",
        "0.004",
        "--out",
        str(tmp_path),
        "--name",
        "smoke",
        *untrained_models,
    ]
    assert bench.main(argv) == 0
    assert "smoke.json" in capsys.readouterr().out
    run = json.loads((tmp_path / "smoke.json").read_text())
    assert run["config"]["horizons"] == [8, 12] and run["config"]["seeds"] == [0, 1]
    assert run["config"]["budgets"] == {"8": 0.032, "12": 0.048}
    assert run["device"] == "cpu" and run["versions"]["torch"] == torch.__version__
    assert run["machine"]["cores"] >= 1 and run["wall_time_s"] > 0
    for env in ("wall", "maze"):
        assert set(run["results"][env]) == {"8", "12"}
        for cells in run["results"][env].values():
            assert list(cells) == ["grasp", "gd", "cem", "grasp-nogoal"]
            for cell in cells.values():
                s = cell["summary"]
                assert s["tasks"] == 2 == len(cell["tasks"])
                assert 0 <= s["success_rate"] <= 1 and s["ci95"][0] <= s["ci95"][1]
                assert all(t["iterations"] >= 0 and t["model_calls"] >= 0 for t in cell["tasks"])
        for per_h in run["iteration_seconds"][env].values():
            assert set(per_h) == {"8", "12"} and all(v > 0 for v in per_h.values())
        assert set(run["tasks"][env]) == {"8", "12"}
    assert run["claims"] == []  # no horizon >= 50 in this run
    assert run["tasks"]["wall"]["8"]["capped"] in (True, False)
    md = (tmp_path / "smoke.md").read_text()
    assert "| Horizon | grasp | gd | cem | grasp-nogoal |" in md
    assert md.count("| H=8") >= 4 and "ratio to the shortest horizon" in md
    assert "Success of the final plan" in md and "Oracle, not a robot's figure" in md
    final = next(line for line in md.splitlines() if line.startswith("| H=8"))
    assert final.count("% (") == 4  # every cell with its interval
    for png in ("smoke_success.png", "smoke_time.png"):
        data = (tmp_path / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_closed_loop_cli_is_the_closed_loop_benchmark(
    tmp_path: Path, untrained_models: list[str]
) -> None:
    argv = ["--env", "wall", "--planners", "gd,grasp-paper", "--horizons", "5", "--tasks", "1"]
    argv += ["--closed-loop", "--control-rate", "200", "--out", str(tmp_path), "--name", "cl"]
    assert bench.main([*argv, *untrained_models[:2]]) == 0
    run = json.loads((tmp_path / "cl.json").read_text())
    assert run["variants"] == {"gd": {"planner": "gd"}, "grasp-paper": VARIANTS["grasp-paper"]}
    task = run["results"]["wall"]["5"]["gd"]["tasks"][0]
    assert run["config"]["control_rate"] == 200 and task["ticks"] >= 1
    assert run["models"]["wall"]["spec"].endswith("wall.pt")
    assert "| wall | 5 | grasp-paper |" in (tmp_path / "cl.md").read_text()


def test_task_lengths_that_stop_growing_are_labelled_capped() -> None:
    env = WallEnv()
    grows, capped = (
        bench.task_stats([env.sample_task(h, seed=s) for s in range(3)], env.min_task_fraction)
        for h in (20, 80)
    )
    assert not grows["capped"] and capped["capped"] and capped["optimal_steps_max"] < 60


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "mars"], "unknown ['mars']"),
        (["--planners", "grasp,mppi"], "unknown ['mppi']"),
        (["--horizons", "20,abc"], "not a list of ints"),
        (["--tasks", "0"], "--tasks must be at least 1"),
        (["--budget-per-step", "-1"], "--budget-per-step must be positive"),
        (["--env", "wall", "--model", "maze=x.pt"], "not among --env"),
        (["--model", "wall"], "expected ENV=SPEC"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--planners", "grasp-paper"], "run in closed loop only"),
        (["--clock", "cpu", "--threads", "2"], "--clock cpu needs --threads 1"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_missing_model_is_one_error_line(tmp_path: Path, capsys) -> None:
    argv = ["--env", "wall", "--model", f"wall={tmp_path / 'nope.pt'}", "--out", str(tmp_path)]
    assert bench.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grasp-ros-bench: error: no world model")
    assert not list(tmp_path.glob("*.json"))


def test_results_are_strict_json_even_with_nan() -> None:
    assert bench_report._json_safe({"a": [math.nan, 1.0, math.inf, 1 / 3], "b": "c"}) == {
        "a": [None, 1.0, None, 0.33333],
        "b": "c",
    }


def test_wilson_interval_is_sound_at_the_extremes():
    low, high = bench_stats.wilson_interval(0, 5)
    assert low == 0.0 and 0.4 < high < 0.5
    low, high = bench_stats.wilson_interval(5, 5)
    assert 0.5 < low < 0.6 and high == 1.0
