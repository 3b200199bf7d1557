"""grasp-ros-record-sim: the bags it writes keep the topic contract, the timing model and the
ground truth, and the same arguments always give the same bag."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from grasp_ros.envs import make_env
from grasp_ros.envs.agents import expert_policy
from grasp_ros.io import sim_topics
from grasp_ros.io.bags import LATCHED, BagReader
from grasp_ros.io.messages import ACTION_COMMAND, IMAGE, time_to_sec
from grasp_ros.tools import record_sim
from grasp_ros.tools.record_sim import CameraModel, main

ANALYTIC = "grasp_ros.models.analytic:PointWallModel"
FAST = ["-p", "horizon=6", "-p", "iterations=2", "-p", "cold_start_iterations=5"]
CAMERA, GOAL, TASK, POSE, OBJECT_POSE, EXECUTED = (
    record_sim.CAMERA,
    record_sim.GOAL,
    record_sim.TASK,
    record_sim.POSE,
    record_sim.OBJECT_POSE,
    record_sim.EXECUTED,
)
CONTRACT = {
    CAMERA: IMAGE,
    GOAL: IMAGE,
    TASK: sim_topics.STRING,
    POSE: sim_topics.POSE_STAMPED,
    OBJECT_POSE: sim_topics.POSE_STAMPED,
    EXECUTED: ACTION_COMMAND,
}


def read_all(path) -> list:
    with BagReader(path) as bag:
        return list(bag.messages())


@pytest.fixture(scope="module")
def expert_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "expert"
    assert main([str(path), "--duration", "2", "--quiet"]) == 0
    return path


def test_bag_keeps_the_topic_contract_and_camera_timing(expert_bag) -> None:
    with BagReader(expert_bag) as bag:
        assert bag.topics == CONTRACT
        assert bag.message_counts[CAMERA] == 60  # 2 s at 30 Hz
        assert bag.message_counts[EXECUTED] == 20  # 2 s at 10 Hz
        assert bag.message_counts[POSE] == 21  # every step, and the end
    msgs = read_all(expert_bag)
    start = record_sim.DEFAULT_START_TIME
    camera = [m for m in msgs if m.topic == CAMERA]
    captures = np.array([time_to_sec(m.msg.header.stamp) for m in camera])
    delays = np.array([m.stamp_ns / 1e9 for m in camera]) - captures
    assert {m.msg.encoding for m in camera} == {"rgb8"}
    assert {m.msg.header.frame_id for m in camera} == {sim_topics.CAMERA_FRAME}
    assert np.all(delays >= 0.005 - 1e-6) and np.all(delays < 0.05)
    gaps = np.diff(captures)
    assert np.all(gaps > 0) and abs(gaps.mean() - 1 / 30) < 1e-3 and gaps.std() > 0
    first = [m for m in msgs if m.stamp_ns == round(start * 1e9)]
    assert {m.topic for m in first} >= {GOAL, TASK}
    poses = [m.msg for m in msgs if m.topic == POSE]
    assert {p.header.frame_id for p in poses} == {sim_topics.MAP_FRAME}


def test_goal_and_task_are_latched_so_ros2_bag_play_republishes_them_latched(expert_bag) -> None:
    """Stored as Humble's ros2 bag record stores a transient-local publisher (a YAML string)."""
    info = yaml.safe_load((expert_bag / "metadata.yaml").read_text())
    offered = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
        for t in info["rosbag2_bagfile_information"]["topics_with_message_count"]
    }
    for topic in (GOAL, TASK):
        (profile,) = yaml.safe_load(offered[topic])
        assert (profile["durability"], profile["reliability"]) == (1, 1), topic
    assert offered[CAMERA] == offered[POSE] == offered[EXECUTED] == ""
    with BagReader(next(expert_bag.glob("*.mcap"))) as bag:  # the MCAP channels hold it too
        assert bag.topic_info(GOAL).qos == bag.topic_info(TASK).qos == (LATCHED,)
        assert bag.topic_info(CAMERA).qos == ()


def test_ground_truth_says_the_expert_reached_the_goal(expert_bag) -> None:
    msgs = read_all(expert_bag)
    task = sim_topics.parse_task(next(m.msg.data for m in msgs if m.topic == TASK))
    final = sim_topics.pose_xy([m.msg for m in msgs if m.topic == POSE][-1])
    env = task.make_env()
    assert task.env == "wall" and task.image_size == 64
    assert env.success(final, task.goal_state)
    start_pose = sim_topics.pose_xy(next(m.msg for m in msgs if m.topic == POSE))
    np.testing.assert_allclose(start_pose, task.start_state[:2])
    actions = np.stack([m.msg.action for m in msgs if m.topic == EXECUTED])
    assert actions.shape == (20, 2) and np.abs(actions).max() <= 1.0


@pytest.mark.parametrize(("name", "horizon"), [("wall", 30), ("maze", 60)])
def test_expert_follows_the_shortest_path(name: str, horizon: int) -> None:
    env = make_env(name)
    for seed in range(4):
        task = env.sample_task(horizon, seed=seed)
        policy, state, steps = expert_policy(env, task), task.start_state, 0
        while not env.success(state, task.goal_state) and steps < task.optimal_steps + 5:
            state = env.step_states(state[None], policy(0.0, state)[None])[0]
            steps += 1
        assert env.success(state, task.goal_state), (name, seed)
        assert steps <= task.optimal_steps + 3


def test_pusht_expert_pushes_the_block_to_its_goal(tmp_path) -> None:
    """Push-T's expert plays the task's own solution; sim/object_pose is the block's pose."""
    path = tmp_path / "pusht"
    assert main([str(path), "--env", "pusht", "--task-horizon", "20", "--quiet"]) == 0
    msgs = read_all(path)
    task = sim_topics.parse_task(next(m.msg.data for m in msgs if m.topic == TASK))
    env = task.make_env()
    blocks = [sim_topics.planar_pose(m.msg) for m in msgs if m.topic == OBJECT_POSE]
    np.testing.assert_allclose(blocks[0][:2], task.start_state[2:4])
    goal = env.object_pose(task.goal_state[None])[0]
    assert not env.reached(blocks[0], goal) and env.reached(blocks[-1], goal)


def test_same_arguments_give_the_same_bag_and_sqlite3_storage(expert_bag, tmp_path) -> None:
    again = tmp_path / "again"
    assert main([str(again), "--duration", "2", "--quiet", "--storage", "sqlite3"]) == 0
    assert list(again.glob("*.db3"))
    a, b = read_all(expert_bag), read_all(again)
    assert [(m.topic, m.stamp_ns) for m in a] == [(m.topic, m.stamp_ns) for m in b]
    images = [(x.msg.data, y.msg.data) for x, y in zip(a, b, strict=True) if x.msgtype == IMAGE]
    assert all(np.array_equal(x, y) for x, y in images)


def test_dropout_leaves_a_gap_in_the_camera_only(tmp_path, capsys) -> None:
    path = tmp_path / "drop"
    assert (
        main([str(path), "--duration", "2", "--dropout", "0.51:0.6", "--jitter", "0", "--quiet"])
        == 0
    )
    assert "18 dropped" in capsys.readouterr().out
    msgs = read_all(path)
    start = record_sim.DEFAULT_START_TIME
    captures = [time_to_sec(m.msg.header.stamp) - start for m in msgs if m.topic == CAMERA]
    assert not [c for c in captures if 0.51 <= c < 1.11]
    assert len(captures) == 60 - 18
    assert sum(m.topic == POSE for m in msgs) == 21


def test_camera_model_frames() -> None:
    rng = np.random.default_rng(0)
    frames = CameraModel(rate=10, jitter=0.0, latency=0.01, dropout=(0.3, 0.2)).frames(1.0, rng)
    assert [round(c, 6) for c, _ in frames] == [0.0, 0.1, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert all(abs(r - c - 0.01) < 1e-12 for c, r in frames)


def test_planner_agent_is_deterministic(tmp_path) -> None:
    runs = []
    for name in ("a", "b"):
        path = tmp_path / name
        args = [str(path), "--agent", "planner", "--duration", "1", "-p", f"model={ANALYTIC}"]
        assert main([*args, *FAST, "--quiet"]) == 0
        actions = [m.msg.action for m in read_all(path) if m.topic == EXECUTED]
        runs.append(np.stack(actions))
    assert runs[0].shape == (10, 2) and np.abs(runs[0]).sum() > 0
    assert runs[0].tobytes() == runs[1].tobytes()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dropout", "soon"], "--dropout 'soon': expected START:LENGTH"),
        (["--camera-rate", "0"], "--camera-rate must be positive"),
        (["--agent", "planner", "-p", "model=missing.pt"], "no world model 'missing.pt'"),
        (["--image-size", "4"], "image_size must be at least 16"),
    ],
)
def test_bad_arguments_give_one_error_line(tmp_path, capsys, args, needle) -> None:
    assert main([str(tmp_path / "bag"), "--quiet", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("grasp-ros-record-sim: error:") and needle in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "bag").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "horizon=-3"], "horizon=-3 is outside"),
        (["-p", "nonsense=1"], "unknown parameter"),
    ],
)
def test_bad_parameters_exit_with_usage_status(tmp_path, capsys, args, needle) -> None:
    assert main([str(tmp_path / "bag"), "--quiet", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grasp-ros-record-sim: error:") and needle in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "bag").exists()


def test_existing_output_is_refused_unless_forced(expert_bag, tmp_path, capsys) -> None:
    path = tmp_path / "bag"
    assert main([str(path), "--duration", "0.5", "--quiet"]) == 0
    assert main([str(path), "--duration", "0.5", "--quiet"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main([str(path), "--duration", "1", "--quiet", "--force"]) == 0
    with BagReader(path) as bag:
        assert bag.message_counts[EXECUTED] == 10
