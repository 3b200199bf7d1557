"""grasp-ros-demo end to end on a tiny configuration: every output exists and reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from grasp_ros.envs import make_env
from grasp_ros.io import messages
from grasp_ros.io import sim_topics as sim
from grasp_ros.io.bags import LATCHED, BagReader
from grasp_ros.io.images import image_msg_to_rgb
from grasp_ros.models.analytic import PointWallModel
from grasp_ros.tools import demo, demo_outputs

# The analytic world: no checkpoint needed, plans in milliseconds. It was not trained on the
# Wall images, so the test checks the plumbing, not whether the agent gets there.
ANALYTIC = "grasp_ros.models.analytic:PointWallModel"
TINY = ["--model", ANALYTIC, "--horizon", "6", "--episodes", "1", "--max-ticks", "4"]


def test_demo_writes_gif_plot_bag_and_summary(tmp_path, capsys) -> None:
    out = tmp_path / "demo"
    assert demo.main([*TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "episode 1:" in printed and str(out) in printed

    summary = json.loads((out / "summary.json").read_text())
    (episode,) = summary["episodes"]
    assert episode["ticks"] == 4 and episode["end"] in ("tick limit", "success")
    assert episode["final_distance"] >= 0 and episode["optimal_steps"] >= 1
    assert summary["ticks"] == 4 and summary["mode"] == "fast"
    assert summary["params"]["budget"] == "iterations" and summary["params"]["horizon"] == 6
    assert summary["params"]["model"] == ANALYTIC and summary["device"] == "cpu"
    assert set(summary["solve_time_ms"]) == {"p50", "p90", "p99", "max"}
    assert summary["solve_time_ms"]["p50"] > 0
    assert {"torch", "rosbags", "grasp_ros"} <= set(summary["versions"])

    gif = Image.open(out / "demo.gif")
    assert gif.n_frames >= 5  # one per tick and the end card
    assert gif.size[0] == demo_outputs.WIDTH
    assert Image.open(out / "ticks.png").size[0] > 0

    with BagReader(out / "rosbag") as bag:
        assert len(list((out / "rosbag").glob("*.mcap"))) == 1
        assert bag.topics == {
            sim.CAMERA_TOPIC: messages.IMAGE,
            sim.GOAL_TOPIC: messages.IMAGE,
            sim.POSE_TOPIC: sim.POSE_STAMPED,
            sim.OBJECT_POSE_TOPIC: sim.POSE_STAMPED,
            sim.TASK_TOPIC: sim.STRING,
            sim.EXECUTED_ACTION_TOPIC: messages.ACTION_COMMAND,
            demo.ACTION_TOPIC: messages.ACTION_COMMAND,
            demo.PLAN_TOPIC: messages.VIRTUAL_TRAJECTORY,
            demo.STATUS_TOPIC: messages.PLANNER_STATUS,
        }
        planner = (sim.EXECUTED_ACTION_TOPIC, demo.ACTION_TOPIC, demo.PLAN_TOPIC, demo.STATUS_TOPIC)
        assert all(bag.message_counts[t] == 4 for t in planner)
        # The camera and the pose also show where the episode ended.
        assert bag.message_counts[sim.CAMERA_TOPIC] == bag.message_counts[sim.POSE_TOPIC] == 5
        assert bag.message_counts[sim.OBJECT_POSE_TOPIC] == 5
        assert bag.message_counts[sim.GOAL_TOPIC] == bag.message_counts[sim.TASK_TOPIC] == 1
        assert (
            bag.topic_info(sim.GOAL_TOPIC).qos == bag.topic_info(sim.TASK_TOPIC).qos == (LATCHED,)
        )
        assert bag.topic_info(sim.CAMERA_TOPIC).qos == ()
        msgs = list(bag.messages())
    camera = [m for m in msgs if m.topic == sim.CAMERA_TOPIC]
    start = camera[0].stamp_ns
    assert [m.stamp_ns - start for m in camera] == [k * 100_000_000 for k in range(5)]
    assert image_msg_to_rgb(camera[0].msg).shape == (64, 64, 3)
    assert camera[0].msg.header.frame_id == sim.CAMERA_FRAME
    plan = next(m.msg for m in msgs if m.topic == demo.PLAN_TOPIC)
    assert plan.horizon == 6 and list(plan.latent_shape) == [32]
    assert len(plan.virtual_states) == 7 * 32 and len(plan.positions) == 7
    assert plan.header.frame_id == "map"
    task = sim.parse_task(next(m.msg for m in msgs if m.topic == sim.TASK_TOPIC).data)
    assert task.env == "wall" and task.seed == 0 and len(task.goal_state) == 3
    poses = [sim.pose_xy(m.msg) for m in msgs if m.topic == sim.POSE_TOPIC]
    np.testing.assert_allclose(poses[0], task.start_state[:2])
    gap = np.linalg.norm(poses[-1] - task.goal_state[:2])
    np.testing.assert_allclose(gap, episode["final_distance"])
    status = [m.msg.status for m in msgs if m.topic == demo.STATUS_TOPIC]
    assert status == [messages.status_codes()["OK"]] * 4


def test_demo_in_pusht_scores_the_block(tmp_path) -> None:
    """Push-T through the same path: the object pose is the block's, and so is the distance."""
    out = tmp_path / "demo"
    assert demo.main([*TINY, "--env", "pusht", "--out", str(out)]) == 0
    (episode,) = json.loads((out / "summary.json").read_text())["episodes"]
    assert Image.open(out / "demo.gif").n_frames >= 5
    with BagReader(out / "rosbag") as bag:
        msgs = list(bag.messages())
    task = sim.parse_task(next(m.msg for m in msgs if m.topic == sim.TASK_TOPIC).data)
    assert task.env == "pusht" and len(task.goal_state) == 7
    blocks = [sim.planar_pose(m.msg) for m in msgs if m.topic == sim.OBJECT_POSE_TOPIC]
    assert len(blocks) == 5
    np.testing.assert_allclose(blocks[0][:2], task.start_state[2:4])
    turn = (blocks[0][2] - task.start_state[4] + np.pi) % (2 * np.pi) - np.pi
    assert abs(turn) < 1e-9
    gap = np.linalg.norm(blocks[-1][:2] - task.goal_state[2:4])
    np.testing.assert_allclose(gap, episode["final_distance"])


def test_rerun_replaces_outputs_and_realtime_uses_the_deadline_budget(tmp_path) -> None:
    out = tmp_path / "demo"
    assert demo.main([*TINY, "--out", str(out)]) == 0
    args = [*TINY, "--episodes", "2", "--max-ticks", "2", "--realtime", "--no-gif"]
    assert demo.main([*args, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "realtime" and summary["params"]["budget"] == "deadline"
    assert [e["seed"] for e in summary["episodes"]] == [0, 1]
    assert not (out / "demo.gif").exists()  # no stale animation from the first run
    with BagReader(out / "rosbag") as bag:
        assert bag.message_counts[demo.STATUS_TOPIC] == 4
        assert bag.message_counts[sim.TASK_TOPIC] == 2


def test_params_file_and_flags_set_the_runtime(tmp_path) -> None:
    params = tmp_path / "p.yaml"
    params.write_text(
        "/**:\n  ros__parameters:\n    planner: cem\n    cem:\n      samples: 20\n      elites: 4\n"
    )
    out = tmp_path / "demo"
    assert demo.main([*TINY, "--params", str(params), "--no-gif", "--out", str(out)]) == 0
    used = json.loads((out / "summary.json").read_text())["params"]
    assert used["planner"] == "cem" and used["cem.samples"] == 20
    assert demo.main([*TINY, "--params", str(params), "--planner", "gd", "--out", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["params"]["planner"] == "gd"


@pytest.mark.parametrize(
    ("argv", "message", "status"),
    [
        (["--model", "no_such_model"], "no world model 'no_such_model'", 1),
        (["--model", ANALYTIC, "--params", "missing.yaml"], "missing.yaml does not exist", 2),
    ],
)
def test_bad_input_gives_one_error_line(tmp_path, capsys, argv, message, status) -> None:
    assert demo.main([*argv, "--out", str(tmp_path / "o")]) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("grasp-ros-demo: error:") and message in err[0]


def test_bad_flags_exit_with_usage(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--episodes", "0"])
    assert exit_info.value.code == 2
    assert "--episodes must be at least 1" in capsys.readouterr().err


def test_a_model_for_another_world_or_action_box_is_refused() -> None:
    env = make_env("wall")
    model = PointWallModel()
    demo.check_env_fits(model, env, "wall")
    model.env_name = "maze"
    with pytest.raises(ValueError, match="trained in 'maze', not 'wall'; pass --env maze"):
        demo.check_env_fits(model, env, "wall")
    model.env_name = "wall"
    model.action_high = torch.tensor([2.0, 2.0])
    with pytest.raises(ValueError, match=r"action_high \[2.0, 2.0\] differs"):
        demo.check_env_fits(model, env, "wall")


def test_the_default_demo_plans_with_the_shipped_wall_model(tmp_path) -> None:
    out = tmp_path / "demo"
    argv = ["--episodes", "1", "--max-ticks", "3", "--horizon", "8", "--out", str(out)]
    assert demo.main(argv) == 0, "needs grasp_ros/models/checkpoints/wall.pt (grasp-ros-train)"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["params"]["model"] == "wall" and summary["env"] == "wall"
    assert summary["episodes"][0]["ticks"] >= 1
    with BagReader(out / "rosbag") as bag:
        plan = next(m.msg for m in bag.messages([demo.PLAN_TOPIC]))
    assert plan.horizon == 8 and len(plan.positions) == 9  # the model projects its latents
