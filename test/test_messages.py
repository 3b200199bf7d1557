"""The .msg files parse with rosbags and round-trip through CDR; the builders check input."""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import get_types_from_msg

from grasp_ros.io import messages
from grasp_ros.io.images import image_msg_to_rgb

MSG_DIR = Path(__file__).resolve().parents[1] / "msg"

# The schema the nodes and tools are written against: (field, type) in order.
EXPECTED_FIELDS = {
    messages.VIRTUAL_TRAJECTORY: [
        ("header", "std_msgs/msg/Header"),
        ("planner", "string"),
        ("horizon", "uint32"),
        ("latent_shape", "uint32[]"),
        ("action_dim", "uint32"),
        ("virtual_states", "float32[]"),
        ("rollout", "float32[]"),
        ("actions", "float32[]"),
        ("positions", "geometry_msgs/msg/Point[]"),
        ("rollout_positions", "geometry_msgs/msg/Point[]"),
        ("cost", "float32"),
        ("iterations", "uint32"),
        ("solve_time", "float32"),
        ("warm_started", "bool"),
    ],
    messages.PLANNER_STATUS: [
        ("header", "std_msgs/msg/Header"),
        ("status", "uint8"),
        ("message", "string"),
        ("tick", "uint64"),
        ("solve_time", "float32"),
        ("iterations", "uint32"),
        ("cost", "float32"),
        ("deadline_misses", "uint64"),
        ("image_age", "float32"),
    ],
    messages.ACTION_COMMAND: [
        ("header", "std_msgs/msg/Header"),
        ("action", "float32[]"),
        ("dt", "float32"),
        ("step_index", "uint32"),
        ("chunk", "float32[]"),
    ],
}


def _type_name(desc: tuple) -> str:
    kind, value = desc
    if kind.name == "NAME":
        return value
    if kind.name == "BASE":
        return value[0]
    assert kind.name == "SEQUENCE", desc
    return _type_name(value[0]) + "[]"


def assert_msg_equal(a: object, b: object, path: str = "msg") -> None:
    """Field-by-field equality for rosbags messages holding numpy arrays."""
    if dataclasses.is_dataclass(a):
        assert type(a).__msgtype__ == type(b).__msgtype__, path
        for f in dataclasses.fields(a):
            assert_msg_equal(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_msg_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def roundtrip(msg: object, little_endian: bool = True) -> object:
    store = messages.typestore()
    msgtype = type(msg).__msgtype__
    raw = store.serialize_cdr(msg, msgtype, little_endian=little_endian)
    return store.deserialize_cdr(raw, msgtype)


def trajectory(horizon: int = 5, latent_shape: tuple[int, ...] = (16, 8), **overrides) -> object:
    rng = np.random.default_rng(0)
    kwargs = dict(
        stamp_sec=1_700_000_000.25,
        frame_id="world",
        planner="grasp",
        latent_shape=latent_shape,
        action_dim=2,
        virtual_states=rng.normal(size=(horizon + 1, *latent_shape)),
        rollout=rng.normal(size=(horizon + 1, *latent_shape)),
        actions=rng.uniform(-1, 1, size=(horizon, 2)),
        positions=rng.normal(size=(horizon + 1, 2)),
        rollout_positions=rng.normal(size=(horizon + 1, 3)),
        cost=0.125,
        iterations=750,
        solve_time=0.042,
        warm_started=True,
    )
    kwargs.update(overrides)
    return messages.virtual_trajectory_msg(**kwargs)


@pytest.mark.parametrize("path", sorted(MSG_DIR.glob("*.msg")), ids=lambda p: p.name)
def test_every_msg_file_parses(path: Path) -> None:
    name = f"grasp_ros/msg/{path.stem}"
    types = get_types_from_msg(path.read_text(encoding="utf-8"), name)
    assert name in types


def test_msg_dir_holds_exactly_the_registered_types() -> None:
    assert sorted(p.stem for p in MSG_DIR.glob("*.msg")) == sorted(messages.MSG_NAMES)


@pytest.mark.parametrize("msgtype", sorted(EXPECTED_FIELDS))
def test_schema(msgtype: str) -> None:
    _, fields = messages.typestore().fielddefs[msgtype]
    assert [(name, _type_name(desc)) for name, desc in fields] == EXPECTED_FIELDS[msgtype]


def test_status_constants_have_the_runtime_values() -> None:
    expected = {
        "OK": 0,
        "NO_GOAL": 1,
        "NO_IMAGE": 2,
        "STALE_IMAGE": 3,
        "PLANNER_ERROR": 4,
        "GOAL_REACHED": 5,
        "STOPPED": 6,
    }
    assert messages.status_codes() == expected
    cls = messages.typestore().types[messages.PLANNER_STATUS]
    assert {name: getattr(cls, name) for name in expected} == expected


def test_typestore_is_cached_and_has_the_standard_types() -> None:
    store = messages.typestore()
    assert store is messages.typestore()
    for msgtype in (messages.IMAGE, messages.COMPRESSED_IMAGE, "nav_msgs/msg/Path"):
        assert msgtype in store.types


@pytest.mark.parametrize("little_endian", [True, False])
def test_virtual_trajectory_roundtrip(little_endian: bool) -> None:
    msg = trajectory()
    back = roundtrip(msg, little_endian)
    assert_msg_equal(msg, back)
    assert back.horizon == 5 and list(back.latent_shape) == [16, 8]
    states = back.virtual_states.reshape(back.horizon + 1, *back.latent_shape)
    assert states.shape == (6, 16, 8)
    assert back.positions[0].z == 0.0 and len(back.rollout_positions) == 6


def test_virtual_trajectory_patch_token_latents() -> None:
    """DINO-WM-style [N, D] latents keep their shape; horizon 2 keeps the test fast."""
    back = roundtrip(trajectory(horizon=2, latent_shape=(256, 384), positions=None))
    assert list(back.latent_shape) == [256, 384]
    assert back.virtual_states.size == 3 * 256 * 384
    assert back.positions == []


def test_a_lean_virtual_trajectory_has_no_latents() -> None:
    empty = np.zeros(0)
    back = roundtrip(trajectory(latent_shape=(256, 384), virtual_states=empty, rollout=empty))
    assert list(back.latent_shape) == [256, 384] and back.virtual_states.size == 0
    assert back.rollout.size == 0 and len(back.positions) == 6


def test_virtual_trajectory_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="virtual_states"):
        trajectory(virtual_states=np.zeros((5, 16, 8)))
    with pytest.raises(ValueError, match="rollout"):
        trajectory(rollout=np.zeros((6, 8, 16)))
    with pytest.raises(ValueError, match="actions"):
        trajectory(actions=np.zeros((5, 3)))
    with pytest.raises(ValueError, match="positions"):
        trajectory(positions=np.zeros((4, 2)))
    with pytest.raises(ValueError, match="positions"):
        trajectory(positions=np.zeros((6, 4)))


def test_planner_status_roundtrip_and_defaults() -> None:
    msg = messages.planner_status_msg(
        stamp_sec=12.5, status=messages.status_codes()["STALE_IMAGE"], message="old", tick=2**40
    )
    back = roundtrip(msg)
    assert_msg_equal(msg, back)
    assert back.status == 3 and back.tick == 2**40
    assert math.isnan(back.cost) and math.isnan(back.image_age)
    with pytest.raises(ValueError, match="status 9"):
        messages.planner_status_msg(stamp_sec=0.0, status=9, tick=0)


def test_action_command_roundtrip() -> None:
    msg = messages.action_command_msg(
        stamp_sec=3.0, frame_id="base", action=[0.5, -0.25], dt=0.1, step_index=4
    )
    back = roundtrip(msg)
    assert_msg_equal(msg, back)
    assert back.action.dtype == np.float32 and back.step_index == 4
    np.testing.assert_array_equal(back.chunk, [0.5, -0.25])
    chunk = [[0.5, -0.25], [0.25, 0.0], [0.0, 0.0]]
    msg = messages.action_command_msg(
        stamp_sec=3.0, action=chunk[0], dt=0.1, step_index=0, chunk=chunk
    )
    np.testing.assert_array_equal(roundtrip(msg).chunk.reshape(3, 2), chunk)
    with pytest.raises(ValueError, match="vector"):
        messages.action_command_msg(stamp_sec=0.0, action=np.zeros((2, 2)), dt=0.1, step_index=0)
    with pytest.raises(ValueError, match="chunk"):
        messages.action_command_msg(
            stamp_sec=0.0, action=[0.0, 0.0], dt=0.1, step_index=0, chunk=np.zeros((2, 3))
        )


def test_image_msg_roundtrip() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    for encoding in ("rgb8", "bgr8"):
        back = roundtrip(messages.image_msg(rgb, 5.0, "camera", encoding))
        assert back.encoding == encoding and back.header.frame_id == "camera"
        np.testing.assert_array_equal(image_msg_to_rgb(back), rgb)


def test_time_conversions() -> None:
    t = messages.make_time(1_700_000_000.5)
    assert (t.sec, t.nanosec) == (1_700_000_000, 500_000_000)
    assert messages.time_to_sec(t) == 1_700_000_000.5
    assert messages.stamp_to_ns(2.000000001) == 2_000_000_001
    header = messages.make_header(0.25, "map")
    assert (header.stamp.nanosec, header.frame_id) == (250_000_000, "map")
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="stamp"):
            messages.stamp_to_ns(bad)


def test_msg_dir_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    share = tmp_path / "install" / "share" / "grasp_ros" / "msg"
    share.mkdir(parents=True)
    for path in MSG_DIR.glob("*.msg"):
        shutil.copy(path, share)
    monkeypatch.setenv("AMENT_PREFIX_PATH", f"/nonexistent:{tmp_path / 'install'}")
    candidates = messages.msg_dir_candidates()
    # First the tree this module was imported from (the checkout, or a built package's).
    own = Path(messages.__file__).resolve().parents[2] / "msg"
    assert candidates[0] == own and candidates[-1] == share
    assert messages.find_msg_dir([tmp_path / "nothing", share]) == share
    with pytest.raises(FileNotFoundError, match="searched") as err:
        messages.find_msg_dir([tmp_path / "nothing", tmp_path])
    assert str(tmp_path / "nothing") in str(err.value)


def test_map_frame_positions_are_metres_with_y_up_and_invert() -> None:
    from grasp_ros.io import frames

    xyz = np.array([[10.0, 20.0, 1.0], [64.0, 0.0, 0.0]])
    np.testing.assert_allclose(frames.to_map(xyz, 0.05), [[0.5, -1.0, 0.05], [3.2, 0.0, 0.0]])
    np.testing.assert_allclose(frames.from_map(frames.to_map(xyz[:, :2], 0.05), 0.05), xyz[:, :2])


def test_a_live_task_says_its_poses_are_map_metres_and_they_read_back_in_world_units() -> None:
    from grasp_ros.envs import make_env
    from grasp_ros.io import frames, sim_topics

    env = make_env("wall", image_size=32)
    task = env.sample_task(10, 0)
    offline = sim_topics.parse_task(sim_topics.task_json(env, task))
    live = sim_topics.parse_task(sim_topics.task_json(env, task, 0.05))
    assert offline.world_scale is None and live.world_scale == 0.05
    pose = np.array([10.0, 20.0, 0.5])
    np.testing.assert_array_equal(offline.world_pose(pose), pose)
    on_wire = np.append(frames.to_map(pose[:2], 0.05), -pose[2])
    np.testing.assert_allclose(live.world_pose(on_wire), pose)
