"""grasp-ros-replay: bag time, determinism, faithful reproduction, outputs and damaged bags.

The planner is the analytic test world (no training); its encoder reads any image, so these
tests check the plumbing, not planning quality: what the planner sees, when, and what is written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from grasp_ros.control import PlannerRuntime, Status
from grasp_ros.control.cli_params import params_from_cli
from grasp_ros.envs import make_env
from grasp_ros.io import messages
from grasp_ros.io.bag_source import open_bag
from grasp_ros.io.bags import LATCHED, BagError, BagReader, deserialize, write_bag
from grasp_ros.io.images import rgb_to_image_fields
from grasp_ros.io.messages import (
    ACTION_COMMAND,
    COMPRESSED_IMAGE,
    IMAGE,
    PLANNER_STATUS,
    VIRTUAL_TRAJECTORY,
    image_msg,
    make_header,
    stamp_to_ns,
    typestore,
)
from grasp_ros.tools import record_sim
from grasp_ros.tools import replay as R

ANALYTIC = "grasp_ros.models.analytic:PointWallModel"
FAST = {"model": ANALYTIC, "horizon": 6, "iterations": 2, "cold_start_iterations": 5}
FAST_ARGS = [arg for k, v in FAST.items() for arg in ("-p", f"{k}={v}")]
T0 = 1_700_000_000.0
T0_NS = 1_700_000_000_000_000_000


def record(path: Path, *args: str) -> Path:
    assert record_sim.main([str(path), "--quiet", *args]) == 0
    return path


def run(bag, **kw) -> R.ReplayResult:
    return R.replay(bag, {**params_from_cli(None, []), **FAST}, **kw)


@pytest.fixture(scope="module")
def bags(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bags")
    return {
        "mcap": record(root / "mcap", "--duration", "2"),
        "sqlite3": record(root / "sqlite3", "--duration", "2", "--storage", "sqlite3"),
        "planner": record(
            root / "planner",
            "--agent",
            "planner",
            "--duration",
            "2",
            "--dropout",
            "0.8:0.7",
            *FAST_ARGS,
        ),
        "big": record(root / "big", "--duration", "2", "--image-size", "128"),
    }


def frames(n: int = 12) -> list[np.ndarray]:
    env = make_env("wall", image_size=32)
    states = np.stack([np.linspace(10, 50, n), np.full(n, 20.0), np.full(n, 30.0)], axis=1)
    return list(env.render_states(states))


def image_bag(
    path: Path, encode=None, topic="camera/image_raw", goal="goal_image", extra=None, **kw
) -> Path:
    """Camera frames at 20 Hz (and a goal at the start), each message built by ``encode``;
    ``extra(bag, i, t)`` writes more after frame ``i`` (taken at ``t``)."""
    encode = encode or (lambda rgb, t: image_msg(rgb, t, "camera"))
    imgs = frames()
    with write_bag(path, **kw) as bag:
        if goal:
            bag.write(goal, image_msg(imgs[-1], T0, "camera"), stamp_to_ns(T0))
        for i, rgb in enumerate(imgs):
            t = T0 + 0.05 * i
            bag.write(topic, encode(rgb, t), stamp_to_ns(t + 0.002))
            if extra is not None:
                extra(bag, i, t)
    return path


def raw(rgb: np.ndarray, t: float, **fields) -> object:
    values = {**rgb_to_image_fields(rgb, "rgb8"), **fields}
    return typestore().types[IMAGE](header=make_header(t, "camera"), **values)


def compressed(rgb: np.ndarray, t: float, ext: str) -> object:
    _, data = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]))
    return typestore().types[COMPRESSED_IMAGE](
        header=make_header(t, "camera"), format=f"rgb8; {ext[1:]} compressed bgr8", data=data
    )


def rgb16(rgb: np.ndarray, t: float) -> object:
    data = (rgb.astype(np.uint16) * 257).astype("<u2").tobytes()
    w = rgb.shape[1]
    return raw(rgb, t, encoding="rgb16", step=w * 6, data=np.frombuffer(data, np.uint8))


def digest(path: Path) -> str:
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


# -- bag time and determinism -------------------------------------------------------------------
def test_mcap_and_sqlite3_recordings_replay_to_the_same_actions(bags) -> None:
    a, b = run(bags["mcap"]), run(bags["sqlite3"])
    assert len(a.actions) == 21  # ticks at 10 Hz from the first to the last message (2 s)
    assert a.actions.tobytes() == b.actions.tobytes()
    np.testing.assert_allclose(np.diff(a.stamps), 0.1, atol=1e-6)
    assert a.stamps[0] == T0 and a.statuses[0] is Status.NO_IMAGE
    assert a.statuses[1:] == [Status.OK] * 20
    assert a.report["storage"] == "mcap" and b.report["storage"] == "sqlite3"


def test_replay_is_deterministic(bags) -> None:
    first, second = run(bags["planner"]), run(bags["planner"])
    assert first.actions.tobytes() == second.actions.tobytes()
    assert np.abs(first.actions).sum() > 0


def test_replay_reproduces_a_planner_driven_recording_exactly(bags) -> None:
    """Same data, same clock, same parameters: the replay sends what the recorded agent did."""
    result = run(bags["planner"])
    agreement = result.report["ground_truth"]["executed_action_agreement"]
    assert agreement["ticks_compared"] == 20
    assert agreement["max_abs_diff"] == [0.0, 0.0]


def test_watchdog_runs_on_bag_time(bags) -> None:
    result = run(bags["planner"])
    stale = result.stamps[[s is Status.STALE_IMAGE for s in result.statuses]] - T0
    # Camera gap 0.8-1.5 s; image_timeout 0.5 s: the last frame before it is ~0.77 s old.
    assert len(stale) >= 2 and np.all((stale > 1.25) & (stale < 1.55))
    stops = result.actions[[s is not Status.OK for s in result.statuses]]
    assert not stops.any()
    assert result.report["status_counts"]["STALE_IMAGE"] == len(stale)


def test_report_holds_the_figures(bags, tmp_path) -> None:
    report_path = tmp_path / "report.json"
    assert R.main([str(bags["mcap"]), "--report", str(report_path), "--quiet", *FAST_ARGS]) == 0
    report = json.loads(report_path.read_text())
    assert report["ticks"] == 21 and report["status_counts"] == {"OK": 20, "NO_IMAGE": 1}
    assert set(report["solve_time"]) == {"p50", "p90", "p99"}
    assert 0 < report["solve_time"]["p50"] <= report["solve_time"]["p99"]
    assert report["actions"]["count"] == 20 and len(report["actions"]["mean"]) == 2
    assert report["budget"] == "iterations" and report["params"]["horizon"] == 6
    assert report["messages"]["/camera/image_raw"] == 60 and report["truncated"] is None
    truth = report["ground_truth"]
    assert truth["recorded_success"] is True and truth["env"] == "wall"
    assert truth["executed_action_agreement"]["ticks_compared"] == 20
    assert 0.005 <= report["image_latency"]["p50"] < 0.05


def test_pusht_recording_is_scored_on_the_block(tmp_path) -> None:
    """Push-T's success needs the block's pose: sim/object_pose carries it to the report."""
    bag = record(tmp_path / "pusht", "--env", "pusht", "--task-horizon", "10")
    report_path = tmp_path / "report.json"
    assert R.main([str(bag), "--report", str(report_path), "--quiet", *FAST_ARGS]) == 0
    truth = json.loads(report_path.read_text())["ground_truth"]
    assert truth["env"] == "pusht" and truth["recorded_success"] is True
    (episode,) = truth["episodes"]
    assert episode["final_distance"] < make_env("pusht").success_radius


# -- outputs --------------------------------------------------------------------------------------
def test_output_bag_is_readable_with_the_custom_messages(bags, tmp_path) -> None:
    out = tmp_path / "out"
    before = digest(bags["mcap"])
    result = run(bags["mcap"], out=out)
    assert digest(bags["mcap"]) == before
    with BagReader(out) as bag:
        assert bag.topics["/action"] == ACTION_COMMAND
        assert bag.topics["/plan"] == VIRTUAL_TRAJECTORY
        assert bag.topics["/status"] == PLANNER_STATUS
        assert bag.message_counts["/status"] == bag.message_counts["/action"] == 21
        assert bag.message_counts["/plan"] == 20
        assert bag.message_counts["/camera/image_raw"] == 60
        msgs = list(bag.messages(["/action", "/plan", "/status", "/camera/image_raw"]))
    actions = np.stack([m.msg.action for m in msgs if m.topic == "/action"])
    assert actions.tobytes() == result.actions.tobytes()
    plan = next(m.msg for m in msgs if m.topic == "/plan")
    assert plan.horizon == 6 and list(plan.latent_shape) == [32] and len(plan.positions) == 7
    assert plan.header.frame_id == "map"
    statuses = [m.msg.status for m in msgs if m.topic == "/status"]
    assert statuses == [int(s) for s in result.statuses]
    with BagReader(bags["mcap"]) as original:
        first = next(original.messages(["/camera/image_raw"])).msg
    copied = next(m.msg for m in msgs if m.topic == "/camera/image_raw")
    assert copied.header == first.header and np.array_equal(copied.data, first.data)


def test_every_input_topic_is_copied_verbatim_with_its_definition_and_qos(bags, tmp_path) -> None:
    """Custom types the replay does not know travel too, and latched topics stay latched."""
    store = messages.build_typestore(messages.find_msg_dir())
    store.register(get_types_from_msg("float64 volts", "robot_msgs/msg/Battery"))
    bag = tmp_path / "robot"
    with BagReader(bags["mcap"]) as src, write_bag(bag, store=store) as dst:
        for topic in src.topics:
            dst.add_raw_topic(src.topic_info(topic))
        for m in src.raw_messages():
            dst.write_raw(m.topic, m.data, m.stamp_ns)
        for i in range(4):
            dst.write("/battery", store.types["robot_msgs/msg/Battery"](volts=12.0 - i), T0_NS + i)
    run(bag, out=tmp_path / "out")
    with BagReader(bag, store) as src, BagReader(tmp_path / "out", store) as out:
        assert set(out.topics) == set(src.topics) | {"/action", "/plan", "/status"}
        for topic in src.topics:
            assert out.topic_info(topic) == src.topic_info(topic), topic
            assert [bytes(m.data) for m in out.raw_messages([topic])] == [
                bytes(m.data) for m in src.raw_messages([topic])
            ], topic
        assert out.topic_info("/goal_image").qos == (LATCHED,)
        assert [m.msg.volts for m in out.messages(["/battery"])] == [12.0, 11.0, 10.0, 9.0]


def test_an_input_with_an_older_definition_of_an_output_type_is_not_copied(tmp_path) -> None:
    """One bag holds one definition per type: the planner's own outputs keep theirs."""
    old = get_typestore(Stores.ROS2_HUMBLE)
    old.register(get_types_from_msg("float32[] action", ACTION_COMMAND))

    def old_action(bag, _i, t) -> None:
        action = old.types[ACTION_COMMAND](action=np.zeros(2, np.float32))
        bag.write("/old/action", action, stamp_to_ns(t))

    result = run(image_bag(tmp_path / "old", extra=old_action, store=old), out=tmp_path / "out")
    assert "a bag holds one definition per type" in result.report["not_copied"]["/old/action"]
    with BagReader(tmp_path / "out") as out:
        assert "/old/action" not in out.topics and len(list(out.messages(["/action"]))) == 6


def test_output_prefix_and_topic_clash(bags, tmp_path) -> None:
    out = tmp_path / "prefixed"
    run(bags["mcap"], out=out, output_prefix="replay/")
    with BagReader(out) as bag:
        assert {"/replay/action", "/replay/plan", "/replay/status"} <= set(bag.topics)
    clash = image_bag(tmp_path / "clash", topic="/status")
    with pytest.raises(ValueError, match="clash with the input topic /status"):
        run(clash, image_topic="status", out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_existing_output_is_refused_unless_forced(bags, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    args = [str(bags["mcap"]), "--out", str(out), "--quiet", *FAST_ARGS]
    assert R.main(args) == 0
    assert R.main(args) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert R.main([*args, "--force"]) == 0
    assert R.main([str(bags["mcap"]), "--out", str(bags["mcap"]), "--force", *FAST_ARGS]) == 1
    assert "would overwrite" in capsys.readouterr().err


def test_interrupted_run_leaves_no_output(bags, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"

    def interrupt(cmd) -> None:
        if cmd.tick == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(bags["mcap"], out=out, tick_hook=interrupt)
    assert list(tmp_path.iterdir()) == []
    calls = {"n": 0}
    real_tick = PlannerRuntime.tick

    def tick(self, now):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_tick(self, now)

    monkeypatch.setattr(PlannerRuntime, "tick", tick)
    report = tmp_path / "r.json"
    args = [str(bags["mcap"]), "--out", str(out), "--report", str(report), "--quiet"]
    assert R.main([*args, *FAST_ARGS]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- inputs ---------------------------------------------------------------------------------------
def test_every_image_encoding_gives_the_same_planner_input(tmp_path) -> None:
    reference = run(image_bag(tmp_path / "rgb8")).actions
    same = {
        "bgr8": lambda rgb, t: image_msg(rgb, t, "camera", encoding="bgr8"),
        "rgba8": lambda rgb, t: image_msg(rgb, t, "camera", encoding="rgba8"),
        "rgb16": rgb16,
        "png": lambda rgb, t: compressed(rgb, t, ".png"),
    }
    for name, encode in same.items():
        result = run(image_bag(tmp_path / name, encode))
        assert result.report["skipped"] == {}, name
        assert result.actions.tobytes() == reference.tobytes(), name
    for name, encode in {
        "mono8": lambda rgb, t: image_msg(rgb, t, "camera", encoding="mono8"),
        "jpeg": lambda rgb, t: compressed(rgb, t, ".jpg"),
    }.items():
        result = run(image_bag(tmp_path / name, encode))
        assert result.report["skipped"] == {} and result.report["status_counts"] == {
            "NO_IMAGE": 1,
            "OK": 5,
        }


def test_undecodable_images_are_skipped_and_counted(tmp_path) -> None:
    def sometimes_broken(rgb, t):
        if round((t - T0) / 0.05) % 3 == 1:
            return raw(rgb, t, encoding="8UC3")
        return image_msg(rgb, t, "camera")

    result = run(image_bag(tmp_path / "bag", sometimes_broken))
    skipped = result.report["skipped"]["camera/image_raw"]
    assert skipped["count"] == 4 and "8UC3" in skipped["first_error"]
    assert skipped["first_stamp"] == pytest.approx(T0 + 0.05)
    assert result.report["status_counts"] == {"NO_IMAGE": 1, "OK": 5}


def test_a_corrupt_message_in_the_middle_is_skipped_counted_and_copied(tmp_path, capsys) -> None:
    """Reading goes on past a message that does not deserialise; the copy stays verbatim."""
    garbage = b"\x00\x01\x00\x00\xff\xff\xff\x7f"

    def corrupt(bag, i, t) -> None:
        if i == 5:
            bag.write_raw("camera/image_raw", garbage, stamp_to_ns(t + 0.01))

    image_bag(tmp_path / "bag", extra=corrupt)
    clean = run(image_bag(tmp_path / "clean"))
    result = run(tmp_path / "bag", out=tmp_path / "out")
    skipped = result.report["skipped"]["camera/image_raw"]
    assert skipped["count"] == skipped["corrupt"] == 1
    assert skipped["first_error"].startswith("cannot deserialise a sensor_msgs/msg/Image")
    assert skipped["first_stamp"] == pytest.approx(T0 + 0.26)
    assert result.report["messages"]["camera/image_raw"] == 13 and not result.report["truncated"]
    assert result.actions.tobytes() == clean.actions.tobytes()  # the planner saw every image
    with BagReader(tmp_path / "out") as out:
        copied = [bytes(m.data) for m in out.raw_messages(["camera/image_raw"])]
    assert len(copied) == 13 and copied[6] == garbage
    assert R.main([str(tmp_path / "bag"), "--quiet", *FAST_ARGS]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped 1 unusable message(s) on camera/image_raw (1 corrupt)" in err


def test_a_republished_goal_keeps_the_warm_start_a_new_one_drops_it(tmp_path) -> None:
    """As the node does: only a goal that differs from the current one restarts planning."""
    imgs = frames()
    with write_bag(tmp_path / "bag") as bag:
        for i, rgb in enumerate(imgs):
            t = T0 + 0.05 * i
            goal = imgs[-1] if i < 8 else imgs[0]
            bag.write("/goal_image", image_msg(goal, t, "camera"), stamp_to_ns(t))
            bag.write("/camera/image_raw", image_msg(rgb, t, "camera"), stamp_to_ns(t))
    run(tmp_path / "bag", out=tmp_path / "out")
    with BagReader(tmp_path / "out") as out:
        plans = [(m.stamp_ns, m.msg.warm_started) for m in out.messages(["/plan"])]
    assert [warm for _, warm in plans] == [False, True, True, True, False, True]


def test_leading_slash_topics_goal_image_file_and_ros1(tmp_path) -> None:
    slashed = image_bag(tmp_path / "slashed", topic="/camera/image_raw", goal="/goal_image")
    result = run(slashed)
    assert result.report["image_topic"] == "/camera/image_raw"
    no_goal = image_bag(tmp_path / "no_goal", goal=None)
    with pytest.raises(BagError, match="no goal topic goal_image; pass --goal-topic, or --goal"):
        run(no_goal)
    png = tmp_path / "goal.png"
    cv2.imwrite(str(png), np.ascontiguousarray(frames()[-1][:, :, ::-1]))
    from_file = run(no_goal, goal_image=R.read_image_file(str(png)))
    assert from_file.statuses == [Status.OK] * 6  # the goal is set before the first tick
    ros1 = write_ros1_bag(tmp_path / "robot.bag")
    out = tmp_path / "from_ros1"
    from_ros1 = run(ros1, out=out)
    assert from_ros1.report["storage"] == "rosbag1"
    assert (
        "robot_msgs/msg/Weird, which cannot be converted to ROS 2: its ROS 1 definition"
        in (from_ros1.report["not_copied"]["/weird"])
    )
    assert from_ros1.actions.tobytes() == result.actions.tobytes()
    with BagReader(out) as bag:
        image = next(bag.messages(["/camera/image_raw"])).msg
        assert bag.topic_info("/goal_image").qos == (LATCHED,)  # latched in ROS 1
        assert bag.topic_info("/camera/image_raw").qos == ()
        volts = [deserialize(m, ros1_custom_store()).volts for m in bag.raw_messages(["/battery"])]
    assert image.header.frame_id == "camera" and image.encoding == "rgb8"
    assert volts == [12.5, 12.0]  # a type only the ROS 1 bag defines


def ros1_custom_store():
    store = messages.build_typestore(messages.find_msg_dir())
    store.register(get_types_from_msg("Header header\nfloat32 volts", "robot_msgs/msg/Battery"))
    return store


def write_ros1_bag(path: Path) -> Path:
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    types = store.types

    def msg(rgb, t):
        sec, nsec = divmod(stamp_to_ns(t), 10**9)
        stamp = types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)
        header = types["std_msgs/msg/Header"](seq=0, stamp=stamp, frame_id="camera")
        return types[IMAGE](header=header, **rgb_to_image_fields(rgb, "rgb8"))

    battery = "robot_msgs/msg/Battery"
    store.register(get_types_from_msg("Header header\nfloat32 volts", battery))
    imgs = frames()
    with Writer(path) as bag:
        cam = bag.add_connection("/camera/image_raw", IMAGE, typestore=store)
        goal = bag.add_connection("/goal_image", IMAGE, typestore=store, latching=1)
        power = bag.add_connection("/battery", battery, typestore=store)
        weird = bag.add_connection(
            "/weird", "robot_msgs/msg/Weird", msgdef="no_such/Type t", md5sum="0" * 32
        )
        bag.write(weird, stamp_to_ns(T0), b"\x00")
        bag.write(goal, stamp_to_ns(T0), store.serialize_ros1(msg(imgs[-1], T0), IMAGE))
        for i, volts in enumerate((12.5, 12.0)):
            header = types["std_msgs/msg/Header"](
                seq=i, stamp=types["builtin_interfaces/msg/Time"](sec=i, nanosec=0), frame_id=""
            )
            data = store.serialize_ros1(types[battery](header=header, volts=volts), battery)
            bag.write(power, stamp_to_ns(T0 + 0.1 * i), data)
        for i, rgb in enumerate(imgs):
            t = T0 + 0.05 * i
            data = store.serialize_ros1(msg(rgb, t), IMAGE)
            bag.write(cam, stamp_to_ns(t + 0.002), data)
    return path


# -- bad bags -------------------------------------------------------------------------------------
def cut(src: Path, dst: Path, keep: float) -> Path:
    """A copy of an MCAP bag with only the first ``keep`` fraction of its data file."""
    shutil.copytree(src, dst)
    data = next(dst.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: int(keep * data.stat().st_size)])
    return dst


def test_truncated_mcap_is_replayed_up_to_the_cut(bags, tmp_path, capsys) -> None:
    bag = cut(bags["big"], tmp_path / "cut", 0.6)
    report = tmp_path / "report.json"
    out = tmp_path / "out"
    args = [str(bag), "--report", str(report), "--out", str(out), "--quiet", *FAST_ARGS]
    assert R.main(args) == 0
    err = capsys.readouterr().err
    assert err.startswith("grasp-ros-replay: warning:") and "is damaged" in err
    data = json.loads(report.read_text())
    stop = data["truncated"]
    assert data["salvaged"] and stop["reason"].startswith("a record is cut off")
    assert 0 < stop["offset"] < stop["file_size"] == next(bag.glob("*.mcap")).stat().st_size
    assert 0 < data["messages"]["/camera/image_raw"] < 60
    assert data["ticks"] > 5 and "note" in data["ground_truth"]
    with BagReader(out) as replayed, BagReader(bags["big"]) as original:
        assert replayed.message_counts["/camera/image_raw"] == data["messages"]["/camera/image_raw"]
        for topic in original.topics:  # salvaged definitions and QoS, as the intact bag has them
            assert replayed.topic_info(topic) == original.topic_info(topic), topic
    (bag / "metadata.yaml").unlink()  # a killed recorder often leaves none
    assert run(bag).report["truncated"]["offset"] == stop["offset"]


def test_a_small_mcap_cut_in_its_only_chunk_keeps_the_whole_messages_before_the_cut(
    bags, tmp_path
) -> None:
    """Issue 15, item 7: the records of a cut-off chunk before the cut are salvaged."""
    from mcap.records import Chunk, Message
    from mcap.stream_reader import StreamReader, breakup_chunk

    intact = next(bags["mcap"].glob("*.mcap"))
    with intact.open("rb") as f:
        chunks = [r for r in StreamReader(f, emit_chunks=True).records if isinstance(r, Chunk)]
    assert len(chunks) == 1  # the case: all messages in one chunk
    in_file_order = [r for r in breakup_chunk(chunks[0]) if isinstance(r, Message)]
    bag = cut(bags["mcap"], tmp_path / "half", 0.5)
    (bag / "metadata.yaml").unlink()
    with open_bag(bag) as source:
        salvaged = list(source.raw_messages(list(source.topics)))
        assert source.salvaged and source.stop.reason.startswith("a record is cut off")
    n = len(salvaged)
    assert 0.3 * len(in_file_order) < n < len(in_file_order)
    assert sorted((m.stamp_ns, m.data) for m in salvaged) == sorted(
        (m.log_time, m.data) for m in in_file_order[:n]
    )


def test_truncated_zstd_mcap_as_ros2_bag_record_writes_it(bags, tmp_path) -> None:
    """ros2 bag record's MCAP chunks are zstd-compressed by default."""
    from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

    path = tmp_path / "zstd"
    writer = Writer(path, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with BagReader(bags["big"]) as src, writer:
        conns = {
            t: writer.add_connection(t, m, typestore=typestore()) for t, m in src.topics.items()
        }
        for m in src.messages():
            writer.write(conns[m.topic], m.stamp_ns, typestore().serialize_cdr(m.msg, m.msgtype))
    complete = run(path)
    data = next(path.glob("*.mcap"))
    data.write_bytes(data.read_bytes()[: int(0.7 * data.stat().st_size)])
    (path / "metadata.yaml").unlink()
    cut_off = run(path).report
    assert cut_off["salvaged"] and cut_off["truncated"]["offset"] > 0
    assert 0 < cut_off["messages"]["/camera/image_raw"] < 60
    assert complete.report["messages"]["/camera/image_raw"] == 60


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda b, t: t / "missing", "no bag at"),
        (lambda b, t: _write(t / "notes.txt", b"hello"), "Unrecognized storage format '.txt'"),
        (lambda b, t: cut(b["big"], t / "stub", 0.02), "reading stopped: a record is cut off"),
        (lambda b, t: _cut_sqlite(b["sqlite3"], t / "db"), "malformed"),
    ],
)
def test_unreadable_bags_give_one_error_line(bags, tmp_path, capsys, make, needle) -> None:
    bag = make(bags, tmp_path)
    assert R.main([str(bag), "--quiet", *FAST_ARGS]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("grasp-ros-replay: error:") and needle in err
    assert len(err.splitlines()) == 1


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _cut_sqlite(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    data = next(dst.glob("*.db3"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    return dst


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--image-topic", "front/rgb"], "has no topic front/rgb (--image-topic); its topics:"),
        (["--image-topic", "sim/task"], "has type std_msgs/msg/String, expected sensor_msgs"),
        (["--goal-topic", "sim/pose"], "has type geometry_msgs/msg/PoseStamped, expected"),
        (["--rate-scale", "2"], "--rate-scale only changes the wall-clock budget"),
        (["--realtime-budget", "--rate-scale", "2000"], "effective control_rate 20000"),
        (["--goal-image", "missing.png"], "no image file missing.png"),
    ],
)
def test_bad_arguments_give_one_error_line(bags, capsys, args, needle) -> None:
    assert R.main([str(bags["mcap"]), "--quiet", *FAST_ARGS, *args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("grasp-ros-replay: error:") and needle in err, err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "budget=deadline"], "set the budget with --realtime-budget"),
        (["-p", "horizon"], "expected NAME=VALUE"),
        (["--params", "missing.yaml"], "parameters file missing.yaml does not exist"),
    ],
)
def test_bad_parameters_exit_with_usage_status(bags, capsys, args, needle) -> None:
    assert R.main([str(bags["mcap"]), "--quiet", *FAST_ARGS, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("grasp-ros-replay: error:") and needle in err, err
    assert len(err.splitlines()) == 1


def test_default_camera_topic_missing_lists_the_image_topics(tmp_path) -> None:
    bag = image_bag(tmp_path / "bag", topic="/front/rgb")
    with pytest.raises(
        BagError, match=r"pass --image-topic. Image topics in the bag: .*/front/rgb"
    ):
        run(bag)
    assert run(bag, image_topic="front/rgb").report["image_topic"] == "/front/rgb"


def test_realtime_budget_with_rate_scale_runs_on_the_bag_clock(bags) -> None:
    result = run(bags["mcap"], realtime_budget=True, rate_scale=2.0)
    assert result.report["budget"] == "deadline" and result.report["rate_scale"] == 2.0
    assert len(result.actions) == 21
    np.testing.assert_allclose(np.diff(result.stamps), 0.1, atol=1e-6)
    assert result.report["params"]["control_rate"] == 10.0


def test_help_describes_the_options(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        R.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--image-topic", "--goal-image", "--realtime-budget", "--rate-scale", "--force"):
        assert option in text
