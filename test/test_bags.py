"""Bags: written atomically (MCAP and sqlite3), read back intact or raw, copied verbatim with
their definitions and QoS, and errors that say why."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader
from rosbags.typesys import get_types_from_msg

from grasp_ros.io import messages
from grasp_ros.io.bags import (
    BAG_VERSION,
    LATCHED,
    BagError,
    BagReader,
    describe_topic,
    deserialize,
    write_bag,
)
from grasp_ros.io.images import image_msg_to_rgb

STORAGES = {"mcap": ".mcap", "sqlite3": ".db3"}
T0 = 1_700_000_000_000_000_000
FRAMES = [np.full((4, 6, 3), 40 * i, dtype=np.uint8) for i in range(3)]


def compressed_msg(rgb: np.ndarray, stamp_sec: float) -> object:
    _, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    cls = messages.typestore().types[messages.COMPRESSED_IMAGE]
    return cls(header=messages.make_header(stamp_sec, "cam"), format="png", data=buf.reshape(-1))


def write_sample(path: Path, storage: str) -> None:
    """Three control ticks: camera images, a plan, a status and an action per tick."""
    with write_bag(path, storage=storage) as bag:
        bag.add_topic("/unused", messages.ACTION_COMMAND)
        for i, frame in enumerate(FRAMES):
            stamp_ns = T0 + i * 100_000_000
            sec = stamp_ns / 1e9
            bag.write("/camera/image_raw", messages.image_msg(frame, sec, "cam"), stamp_ns)
            bag.write("/camera/compressed", compressed_msg(frame, sec), stamp_ns + 1)
            plan = messages.virtual_trajectory_msg(
                stamp_sec=sec,
                frame_id="world",
                planner="grasp",
                latent_shape=(2, 3),
                action_dim=2,
                virtual_states=np.full((4, 2, 3), i, dtype=np.float32),
                rollout=np.zeros((4, 2, 3)),
                actions=np.zeros((3, 2)),
                cost=0.5,
                iterations=10,
                solve_time=0.01,
                warm_started=i > 0,
            )
            bag.write("/grasp/plan", plan, stamp_ns + 3)
            status = messages.planner_status_msg(stamp_sec=sec, status=0, tick=i)
            bag.write("/grasp/status", status, stamp_ns + 2)
            action = messages.action_command_msg(
                stamp_sec=sec, action=[0.1 * i, 0.0], dt=0.1, step_index=0
            )
            bag.write("/grasp/action", action, stamp_ns + 4)


@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_write_and_read_back(tmp_path: Path, storage: str) -> None:
    path = tmp_path / "run"
    write_sample(path, storage)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no staging left behind
    with BagReader(path) as bag:
        assert bag.topics == {
            "/camera/compressed": messages.COMPRESSED_IMAGE,
            "/camera/image_raw": messages.IMAGE,
            "/grasp/action": messages.ACTION_COMMAND,
            "/grasp/plan": messages.VIRTUAL_TRAJECTORY,
            "/grasp/status": messages.PLANNER_STATUS,
            "/unused": messages.ACTION_COMMAND,
        }
        assert bag.message_counts["/grasp/plan"] == 3 and bag.message_counts["/unused"] == 0
        everything = list(bag.messages())
        stamps = [m.stamp_ns for m in everything]
        assert stamps == sorted(stamps) and len(stamps) == 15
        images = [m for m in bag.messages(["/camera/image_raw", "/camera/compressed"])]
        assert [m.topic for m in images] == ["/camera/image_raw", "/camera/compressed"] * 3
        for i, m in enumerate(images):
            np.testing.assert_array_equal(image_msg_to_rgb(m.msg), FRAMES[i // 2])
        plans = list(bag.messages(["/grasp/plan"]))
        assert [m.msg.warm_started for m in plans] == [False, True, True]
        assert plans[2].msg.virtual_states.reshape(4, 2, 3)[0, 0, 0] == 2.0
        assert plans[0].stamp_ns == T0 + 3 and plans[0].msgtype == messages.VIRTUAL_TRAJECTORY
        assert [m.msg.tick for m in bag.messages(["/grasp/status"])] == [0, 1, 2]
        assert list(bag.messages([])) == []


@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_metadata_is_version_8_and_a_single_storage_file_reads(
    tmp_path: Path, storage: str
) -> None:
    """Version 8 keeps the QoS profiles a string, which Humble's ros2 bag needs."""
    path = tmp_path / "run"
    write_sample(path, storage)
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == BAG_VERSION == 8
    assert info["storage_identifier"] == storage
    assert info["relative_file_paths"] == [f"run{STORAGES[storage]}"]
    assert all(
        isinstance(t["topic_metadata"]["offered_qos_profiles"], str)
        for t in info["topics_with_message_count"]
    )
    with BagReader(path / f"run{STORAGES[storage]}") as bag:
        assert len(list(bag.messages(["/grasp/action"]))) == 3


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "out" / "run"
    with pytest.raises(RuntimeError, match="boom"), write_bag(path) as bag:
        bag.write("/grasp/status", messages.planner_status_msg(stamp_sec=1.0, status=0, tick=0), 1)
        raise RuntimeError("boom")
    assert not path.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "run"
    write_sample(path, "mcap")
    with pytest.raises(FileExistsError, match="overwrite=True"), write_bag(path):
        pass
    with write_bag(path, storage="sqlite3", overwrite=True) as bag:
        bag.write("/only", messages.planner_status_msg(stamp_sec=1.0, status=5, tick=9), 5)
    with BagReader(path) as bag:
        assert list(bag.topics) == ["/only"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_failed_overwrite_keeps_the_old_bag(tmp_path: Path) -> None:
    path = tmp_path / "run"
    write_sample(path, "mcap")
    with pytest.raises(RuntimeError), write_bag(path, overwrite=True):
        raise RuntimeError("interrupted")
    with BagReader(path) as bag:
        assert "/grasp/plan" in bag.topics


def test_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="unknown bag storage 'rosbag1'"):
        with write_bag(tmp_path / "a", storage="rosbag1"):
            pass
    status = messages.planner_status_msg(stamp_sec=1.0, status=0, tick=0)
    with pytest.raises(BagError, match="already has type"), write_bag(tmp_path / "b") as bag:
        bag.write("/x", status, 1)
        bag.write("/x", messages.make_header(1.0), 2)
    with pytest.raises(BagError, match="not a rosbags message"), write_bag(tmp_path / "c") as bag:
        bag.write("/x", {"status": 0}, 1)
    with pytest.raises(BagError, match="not in the typestore"), write_bag(tmp_path / "d") as bag:
        bag.add_topic("/x", "my_msgs/msg/Unknown")
    assert list(tmp_path.iterdir()) == []


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no bag at"):
        BagReader(tmp_path / "missing")
    with pytest.raises(BagError, match=r"without metadata\.yaml"):
        BagReader(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match="cannot open bag"):
        BagReader(tmp_path / "notes.txt")
    path = tmp_path / "run"
    write_sample(path, "mcap")
    with BagReader(path) as bag:
        with pytest.raises(BagError, match=r"no topic /camera/image;.*/camera/image_raw"):
            bag.messages(["/camera/image"])
        assert bag.check_topic("/camera/image_raw", messages.IMAGE) == messages.IMAGE
        both = (messages.IMAGE, messages.COMPRESSED_IMAGE)
        assert bag.check_topic("/camera/compressed", both) == messages.COMPRESSED_IMAGE
        with pytest.raises(BagError, match="has type sensor_msgs/msg/Image, expected"):
            bag.check_topic("/camera/image_raw", messages.PLANNER_STATUS)


def test_reading_a_type_the_typestore_lacks(tmp_path: Path) -> None:
    store = messages.build_typestore(messages.find_msg_dir())
    store.register(get_types_from_msg("float64 value", "other_msgs/msg/Reading"))
    with write_bag(tmp_path / "run", store=store) as bag:
        bag.write("/reading", store.types["other_msgs/msg/Reading"](value=1.5), 1)
    with BagReader(tmp_path / "run", store) as bag:
        assert [m.msg.value for m in bag.messages()] == [1.5]
    with BagReader(tmp_path / "run") as bag:
        with pytest.raises(BagError, match="other_msgs/msg/Reading, which the typestore"):
            bag.messages()


# -- raw copies -----------------------------------------------------------------------------------
def custom_store():
    """The package typestore plus a type no one else has, with a nested custom type."""
    store = messages.build_typestore(messages.find_msg_dir())
    store.register(get_types_from_msg("float64 value\nstring unit", "other_msgs/msg/Reading"))
    store.register(
        get_types_from_msg(
            "std_msgs/Header header\nother_msgs/Reading[] readings", "other_msgs/msg/Readings"
        )
    )
    return store


def write_custom(path: Path, storage: str = "mcap") -> None:
    store = custom_store()
    types = store.types
    with write_bag(path, storage=storage, store=store) as bag:
        bag.add_topic("/latched", messages.PLANNER_STATUS, qos=[LATCHED])
        for i in range(3):
            readings = [types["other_msgs/msg/Reading"](value=i + 0.5, unit="V")] * (i + 1)
            msg = types["other_msgs/msg/Readings"](
                header=messages.make_header(i, "probe"), readings=readings
            )
            bag.write("/readings", msg, T0 + i)
            bag.write("/latched", messages.planner_status_msg(stamp_sec=i, status=0, tick=i), T0)


@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_raw_copy_keeps_bytes_definition_hash_and_qos_of_unknown_types(
    tmp_path: Path, storage: str
) -> None:
    write_custom(tmp_path / "src", storage)
    with BagReader(tmp_path / "src") as src:  # the default typestore lacks other_msgs
        infos = {t: src.topic_info(t) for t in src.topics}
        originals = list(src.raw_messages())
        with write_bag(tmp_path / "copy") as out:
            for info in infos.values():
                out.add_raw_topic(info)
            for m in src.raw_messages(["/readings", "/latched"]):
                out.write_raw(m.topic, m.data, m.stamp_ns)
    store = custom_store()
    with BagReader(tmp_path / "copy", store) as copy:
        assert {t: copy.topic_info(t) for t in copy.topics} == infos
        copied = list(copy.raw_messages())
        values = [[r.value for r in m.msg.readings] for m in copy.messages(["/readings"])]
    assert [(m.topic, m.stamp_ns, bytes(m.data)) for m in copied] == [
        (m.topic, m.stamp_ns, bytes(m.data)) for m in originals
    ]
    assert values == [[0.5], [1.5, 1.5], [2.5, 2.5, 2.5]]
    readings = infos["/readings"]
    assert readings.msgtype == "other_msgs/msg/Readings" and "MSG: other_msgs/Reading" in (
        readings.msgdef
    )
    assert readings.rihs01 == store.hash_rihs01("other_msgs/msg/Readings")
    assert readings.qos == () and infos["/latched"].qos == (LATCHED,)


def test_a_missing_type_hash_is_computed_from_the_stored_definition(tmp_path: Path) -> None:
    """A single .mcap file has no metadata.yaml hash (nor has any Humble bag)."""
    write_custom(tmp_path / "src")
    with Reader(tmp_path / "src" / "src.mcap") as plain:
        assert {c.digest for c in plain.connections} == {""}
    with BagReader(tmp_path / "src") as whole, BagReader(tmp_path / "src" / "src.mcap") as file:
        for topic in whole.topics:
            assert file.topic_info(topic) == whole.topic_info(topic)


def test_describe_topic_without_a_stored_definition() -> None:
    """Humble's sqlite3 bags store neither a definition nor a hash."""
    store = messages.typestore()
    info = describe_topic("/image", messages.IMAGE, "", "", [], store)
    assert info.msgdef == store.generate_msgdef(messages.IMAGE, ros_version=2)[0]
    assert info.rihs01 == store.hash_rihs01(messages.IMAGE)
    with pytest.raises(BagError, match="holds no definition of other_msgs/msg/X and the typestore"):
        describe_topic("/x", "other_msgs/msg/X", "", "", [], store)
    with pytest.raises(BagError, match="is not that of the typestore's sensor_msgs/msg/Image"):
        describe_topic("/image", messages.IMAGE, "", "RIHS01_00", [], store)
    idl = "=" * 80 + "\nIDL: other_msgs/msg/X\nmodule other_msgs { module msg {\n"
    idl += "struct X { double value; }; }; };\n"
    msg = get_types_from_msg("float64 value", "other_msgs/msg/X")
    scratch = messages.build_typestore(messages.find_msg_dir())
    scratch.register(msg)
    idl_info = describe_topic("/x", "other_msgs/msg/X", idl, "", [], store)
    assert idl_info.rihs01 == scratch.hash_rihs01("other_msgs/msg/X")  # the same type as .msg
    with pytest.raises(BagError, match="definition of other_msgs/msg/X cannot be read"):
        describe_topic("/x", "other_msgs/msg/X", "float64 value\nno_such/Type t", "", [], store)


def test_a_corrupt_message_raises_when_deserialised_and_raw_reading_goes_past_it(
    tmp_path: Path,
) -> None:
    status = messages.planner_status_msg(stamp_sec=1.0, status=0, tick=0)
    with write_bag(tmp_path / "run") as bag:
        bag.write("/status", status, 1)
        bag.write_raw("/status", b"\x00\x01\x00\x00\xff\xff\xff\x7f", 2)
        bag.write("/status", status, 3)
    with BagReader(tmp_path / "run") as bag:
        raw = list(bag.raw_messages())
        assert [m.stamp_ns for m in raw] == [1, 2, 3]
        assert deserialize(raw[2]).tick == 0
        with pytest.raises(BagError, match=r"cannot deserialise a grasp_ros/msg/PlannerStatus on "):
            deserialize(raw[1])
        stream = bag.messages()
        assert next(stream).stamp_ns == 1
        with pytest.raises(BagError, match="at 2 ns"):
            next(stream)


def test_raw_writer_errors(tmp_path: Path) -> None:
    with pytest.raises(BagError, match="call add_raw_topic before write_raw"):
        with write_bag(tmp_path / "a") as bag:
            bag.write_raw("/x", b"\x00\x01\x00\x00", 1)
    with pytest.raises(BagError, match="already added with other QoS"):
        with write_bag(tmp_path / "b") as bag:
            bag.add_topic("/goal", messages.IMAGE, qos=[LATCHED])
            bag.add_topic("/goal", messages.IMAGE)
    other = describe_topic("/b", messages.PLANNER_STATUS, "int32 x", "", [], messages.typestore())
    with pytest.raises(BagError, match=r"another definition .* one definition per type"):
        with write_bag(tmp_path / "d") as bag:
            bag.add_topic("/a", messages.PLANNER_STATUS)
            bag.add_raw_topic(other)
    with pytest.raises(BagError, match="timestamp -1 ns is negative"):
        with write_bag(tmp_path / "c") as bag:
            bag.add_topic("/x", messages.PLANNER_STATUS)
            bag.write_raw("/x", b"\x00\x01\x00\x00", -1)
    assert list(tmp_path.iterdir()) == []


# -- QoS ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", sorted(STORAGES))
def test_latched_qos_is_stored_as_rosbag2_humble_records_it(tmp_path: Path, storage: str) -> None:
    """metadata.yaml (version 8) holds the profiles as a YAML string with integer policies,
    the form Humble's ros2 bag parses; the storage file holds the same string."""
    path = tmp_path / "run"
    with write_bag(path, storage=storage) as bag:
        bag.add_topic("/goal_image", messages.IMAGE, qos=[LATCHED])
        bag.write("/goal_image", messages.image_msg(FRAMES[0], 1.0), 1)
        bag.write("/camera/image_raw", messages.image_msg(FRAMES[1], 1.0), 2)
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    stored = {
        t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
        for t in info["topics_with_message_count"]
    }
    assert stored["/camera/image_raw"] == ""  # no offer: ros2 bag play uses its default
    assert isinstance(stored["/goal_image"], str)
    (profile,) = yaml.safe_load(stored["/goal_image"])
    assert profile["reliability"] == 1 and profile["durability"] == 1  # reliable, transient local
    assert profile["history"] == 3 and profile["depth"] == 0  # unknown: play uses its own
    assert profile["liveliness"] == 1 and profile["avoid_ros_namespace_conventions"] is False
    assert profile["deadline"] == profile["lifespan"] == {"sec": 0, "nsec": 0}
    single = path / f"run{STORAGES[storage]}"
    for bag_path in (path, single):
        with BagReader(bag_path) as bag:
            assert bag.topic_info("/goal_image").qos == (LATCHED,)
            assert bag.topic_info("/camera/image_raw").qos == ()
            durability = bag.topic_info("/goal_image").qos[0].durability
            assert durability is QosDurability.TRANSIENT_LOCAL
