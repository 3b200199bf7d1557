"""grasp-ros-replay: run the planner over a recorded bag, offline, exactly as the node would.

Robotics users test a planner on their own logs before it drives. This tool feeds a bag's
camera and goal images through the same :class:`PlannerRuntime` the node uses, on bag time:

- Ticks run at the configured ``control_rate`` in bag time, from the bag's first message to
  its last. Before each tick every message received up to the tick is fed in bag order; the
  runtime keeps only the newest image and judges its age (header stamp to tick) with its
  watchdog, as the node does with ``ros2 bag play --clock``.
- Deterministic by default: the runtime's fixed-iterations budget never reads the clock, so
  the same bag, parameters and seed give byte-identical actions on any machine.
  ``--realtime-budget`` uses the robot's wall-clock deadline instead.
- The output bag (MCAP) holds the input topics that were read plus the planner's ``action``,
  ``plan`` and ``status``, written with the package's own message definitions, so Foxglove
  and ``ros2 bag`` can open it; it is written atomically and never over an existing path
  unless asked. The input is only ever read.
- Damaged input is handled, not crashed on: undecodable images are skipped and counted; a
  truncated bag is read up to where it breaks (MCAP files that rosbags cannot open are
  scanned record by record) and the report says where reading stopped.

Reads rosbag2 directories and single ``.mcap``/``.db3`` files (through
:class:`grasp_ros.io.bags.BagReader`) and ROS 1 ``.bag`` files (rosbags' rosbag1 reader; the
images are converted to their ROS 2 form for the output bag).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import struct
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import yaml
from tqdm import tqdm

from grasp_ros.control import Command, PlannerRuntime, Status
from grasp_ros.control import params as P
from grasp_ros.control.outputs import action_fields, status_fields, trajectory_fields
from grasp_ros.io.bags import BagError, BagMessage, BagReader, BagWriter, write_bag
from grasp_ros.io.images import ImageConversionError, image_msg_to_rgb
from grasp_ros.io.messages import (
    ACTION_COMMAND,
    COMPRESSED_IMAGE,
    IMAGE,
    PLANNER_STATUS,
    VIRTUAL_TRAJECTORY,
    action_command_msg,
    planner_status_msg,
    time_to_sec,
    typestore,
    virtual_trajectory_msg,
)
from grasp_ros.tools import sim_topics

DEFAULT_IMAGE_TOPICS = (sim_topics.CAMERA_TOPIC, "image")
DEFAULT_GOAL_TOPIC = sim_topics.GOAL_TOPIC
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
_NS = 1_000_000_000


# -- parameters (shared with grasp-ros-record-sim) ----------------------------------------------
def add_param_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` and repeatable ``-p NAME=VALUE``, as both simulator tools take them."""
    parser.add_argument(
        "--params",
        metavar="YAML",
        help="ROS 2 parameters file, e.g. config/planner.yaml (default: every parameter at "
        "its default)",
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override one parameter (YAML value), e.g. -p seed=3 -p grasp.goal_weight=0.5 "
        "-p model=path/to/model.pt; repeatable",
    )


def params_from_cli(path: str | None, overrides: Sequence[str]) -> dict[str, Any]:
    """Flat parameters: the schema defaults, then the file, then the ``NAME=VALUE`` overrides.

    Raises:
        ValueError: a malformed override or an unknown or invalid parameter.
        FileNotFoundError: the parameters file does not exist.
    """
    values = P.defaults()
    if path:
        values.update(P.validate(P.load_params_file(path)))
    for item in overrides:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise ValueError(f"-p {item!r}: expected NAME=VALUE, e.g. -p horizon=20")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"-p {item!r}: the value is not valid YAML: {exc}") from exc
        values.update(P.validate({name.strip(): value}))
    return values


# -- reading bags -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopPoint:
    """Where reading a damaged bag ended: everything before it was processed."""

    reason: str
    file: str
    offset: int | None = None
    file_size: int | None = None


class BagSource:
    """One bag, whatever its format: topic types, message counts and a message stream.

    ``stop`` is set when the stream ended early at damage; the messages before it are valid.
    """

    storage = ""
    salvaged = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.topics: dict[str, str] = {}
        self.counts: dict[str, int] | None = {}
        self.stop: StopPoint | None = None

    def _messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        raise NotImplementedError

    def messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        """Messages on ``topics`` in bag order; damage ends the stream and sets ``stop``.

        Whatever the storage library raises part-way (rosbags' ReaderError, a corrupt sqlite
        page, an undecodable record) marks the end of the readable part of the bag.
        """
        stream = self._messages(topics)  # a wrong topic or type raises here, not as damage
        while True:
            try:
                msg = next(stream)
            except StopIteration:
                return
            except Exception as exc:
                self.stop = StopPoint(f"{type(exc).__name__}: {exc}", str(self.path))
                return
            yield msg

    def close(self) -> None:
        """Release the files."""


class _Rosbag2Source(BagSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._bag = BagReader(path)
        self.topics, self.counts = dict(self._bag.topics), dict(self._bag.message_counts)
        self.storage = _storage_of(path)

    def _messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        return self._bag.messages(topics)

    def close(self) -> None:
        self._bag.close()


class _Rosbag1Source(BagSource):
    """A ROS 1 bag; messages are turned into their ROS 2 form (same fields, no header seq)."""

    storage = "rosbag1"

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag1 import Reader, ReaderError
        from rosbags.typesys import Stores, get_typestore

        super().__init__(path)
        self._ros1 = get_typestore(Stores.ROS1_NOETIC)
        self._reader = Reader(path)
        try:
            self._reader.open()
        except ReaderError as exc:
            raise BagError(f"cannot open ROS 1 bag {path}: {exc}") from exc
        for conn in self._reader.connections:
            self.topics[conn.topic] = conn.msgtype
            self.counts[conn.topic] = self.counts.get(conn.topic, 0) + conn.msgcount

    def _messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        wanted = set(topics)
        conns = [c for c in self._reader.connections if c.topic in wanted]
        for conn in conns:
            if conn.msgtype not in self._ros1.types or conn.msgtype not in typestore().types:
                raise BagError(f"topic {conn.topic} has type {conn.msgtype}, unknown to ROS 2")
        return (
            BagMessage(c.topic, c.msgtype, t, _to_ros2(self._ros1.deserialize_ros1(raw, c.msgtype)))
            for c, t, raw in self._reader.messages(connections=conns)
        )

    def close(self) -> None:
        self._reader.close()


def _to_ros2(msg: Any) -> Any:
    """A rosbags ROS 1 message as the same type from the ROS 2 typestore (drops header.seq)."""
    msgtype = getattr(msg, "__msgtype__", None)
    if msgtype is None:
        return msg
    cls = typestore().types[msgtype]
    names = [f.name for f in dataclasses.fields(cls)]
    return cls(**{n: _to_ros2(getattr(msg, n)) for n in names if n != "__msgtype__"})


_MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = 2, 3, 4, 5, 6, 15


class _DamageError(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.offset = offset


class _McapSalvageSource(BagSource):
    """MCAP files that rosbags cannot open, read record by record up to the first damage.

    rosbags needs the summary at the end of an MCAP file; a recorder that was killed, a full
    disk or an interrupted copy leaves none (and often no ``metadata.yaml``). The data section
    before the damage is still valid: this reads it sequentially, following the MCAP
    specification (https://mcap.dev/spec), in two passes: the first finds the channels, the
    message counts and where the file breaks; the second yields messages. Messages inside a
    chunk are sorted by time; chunks are taken in file order, which is the recording order.
    """

    storage = "mcap"
    salvaged = True

    def __init__(self, path: Path, files: list[Path]) -> None:
        super().__init__(path)
        self._files = files
        self._channels: dict[tuple[int, int], tuple[str, str]] = {}
        self.counts = {}
        for _ in self._scan(count=True):
            pass
        self.topics = {t: m for t, m in self._channels.values()}

    def _messages(self, topics: Sequence[str]) -> Iterator[BagMessage]:
        wanted = set(topics)
        store = typestore()
        for topic, msgtype, stamp, raw in self._scan(count=False):
            if topic in wanted:
                yield BagMessage(topic, msgtype, stamp, store.deserialize_cdr(raw, msgtype))

    def _scan(self, count: bool) -> Iterator[tuple[str, str, int, bytes]]:
        for index, path in enumerate(self._files):
            with path.open("rb") as f:
                try:
                    yield from self._file_messages(index, f, count)
                except _DamageError as exc:
                    self.stop = StopPoint(str(exc), str(path), exc.offset, path.stat().st_size)
                    return

    def _file_messages(
        self, index: int, f: BinaryIO, count: bool
    ) -> Iterator[tuple[str, str, int, bytes]]:
        if f.read(8) != _MCAP_MAGIC:
            raise _DamageError("not an MCAP file (bad magic bytes)", 0)
        schemas: dict[int, str] = {}
        for op, body, offset in _mcap_records(f):
            if op in (_OP_FOOTER, _OP_DATA_END):
                return
            records = [(op, body)]
            if op == _OP_CHUNK:
                records = list(_chunk_records(body, offset))
            batch = []
            for rop, rbody in records:
                if rop == _OP_SCHEMA:
                    (sid,), (name, _) = _unpack(rbody, "<H", 2, offset)
                    schemas[sid] = name
                elif rop == _OP_CHANNEL:
                    (cid, sid), (topic, _) = _unpack(rbody, "<HH", 2, offset)
                    if sid in schemas:
                        self._channels[(index, cid)] = (topic, schemas[sid])
                elif rop == _OP_MESSAGE and len(rbody) >= 22:
                    cid, _, log_time, _ = struct.unpack_from("<HIQQ", rbody)
                    channel = self._channels.get((index, cid))
                    if channel is not None:
                        batch.append((log_time, channel, rbody[22:]))
            batch.sort(key=lambda m: m[0])
            for log_time, (topic, msgtype), raw in batch:
                if count:
                    self.counts[topic] = self.counts.get(topic, 0) + 1
                yield topic, msgtype, log_time, raw
        raise _DamageError("the file ends without an MCAP footer", f.tell())


def _mcap_records(f: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """``(opcode, body, offset)`` of each top-level record; a cut-off record is damage."""
    while True:
        offset = f.tell()
        head = f.read(9)
        if not head:
            return
        if len(head) < 9:
            raise _DamageError("a record header is cut off", offset)
        op, length = struct.unpack("<BQ", head)
        body = f.read(length)
        if len(body) < length:
            raise _DamageError(f"a record is cut off ({len(body)} of {length} bytes)", offset)
        yield op, body, offset


def _chunk_records(chunk: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    """The records inside an MCAP chunk, decompressed and checksum-verified."""
    try:
        _, _, size, crc = struct.unpack_from("<QQQI", chunk)
        (clen,) = struct.unpack_from("<I", chunk, 28)
        compression = chunk[32 : 32 + clen].decode()
        (dlen,) = struct.unpack_from("<Q", chunk, 32 + clen)
        data = _decompress(chunk[40 + clen : 40 + clen + dlen], compression, size)
    except (struct.error, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        raise _DamageError(f"a chunk cannot be decoded: {exc}", offset) from exc
    if len(data) != size or (crc and zlib.crc32(data) != crc):
        raise _DamageError("a chunk fails its size or CRC check", offset)
    pos = 0
    while pos + 9 <= len(data):
        op, length = struct.unpack_from("<BQ", data, pos)
        yield op, data[pos + 9 : pos + 9 + length]
        pos += 9 + length


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    """A chunk's records, with the decompressors rosbags reads MCAP with (0.11.0 to today).

    Their modules changed between rosbags versions (zstandard, then backports.zstd), so the
    table is taken from rosbags rather than imported here.
    """
    from rosbags.rosbag2.storage_mcap import DECOMPRESSORS

    if compression not in DECOMPRESSORS:
        raise ValueError(f"unknown chunk compression {compression!r}")
    return DECOMPRESSORS[compression](data, size)


def _unpack(body: bytes, fmt: str, strings: int, offset: int) -> tuple[tuple[Any, ...], list[str]]:
    """The fixed fields by ``fmt`` and the ``strings`` length-prefixed strings after them."""
    try:
        fixed = struct.unpack_from(fmt, body)
        pos = struct.calcsize(fmt)
        texts = []
        for _ in range(strings):
            (n,) = struct.unpack_from("<I", body, pos)
            texts.append(body[pos + 4 : pos + 4 + n].decode())
            pos += 4 + n
    except (struct.error, UnicodeDecodeError) as exc:
        raise _DamageError(f"a schema or channel record is malformed: {exc}", offset) from exc
    return fixed, texts


def _storage_of(path: Path) -> str:
    files = [path] if path.is_file() else sorted(path.iterdir())
    suffixes = {p.suffix for p in files}
    for suffix, name in ((".mcap", "mcap"), (".db3", "sqlite3"), (".bag", "rosbag1")):
        if suffix in suffixes:
            return name
    return "unknown"


def open_bag(path: str | os.PathLike[str]) -> BagSource:
    """Open a rosbag2 directory, ``.mcap``/``.db3`` file or ROS 1 ``.bag`` for reading.

    A rosbag2 MCAP bag that rosbags cannot open (cut off, no summary, no ``metadata.yaml``)
    is salvaged record by record; any other failure is a BagError naming the problem.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no bag at {path}")
    if path.is_file() and path.suffix == ".bag":
        return _Rosbag1Source(path)
    try:
        return _Rosbag2Source(path)
    except BagError as exc:
        files = [path] if path.suffix == ".mcap" else sorted(path.glob("*.mcap"))
        if not files or not all(f.is_file() for f in files):
            raise
        salvage = _McapSalvageSource(path, files)
        if not salvage.topics:
            stop = salvage.stop
            why = f": {stop.reason} at byte {stop.offset} of {stop.file}" if stop else ""
            raise BagError(f"{exc}; reading it record by record found no messages{why}") from exc
        return salvage


def resolve_topic(topics: Mapping[str, str], name: str) -> str | None:
    """``name`` as the bag spells it: ``camera/image_raw`` matches ``/camera/image_raw``."""
    if name in topics:
        return name
    bare = name.lstrip("/")
    return next((t for t in topics if t.lstrip("/") == bare), None)


# -- the replay loop ----------------------------------------------------------------------------
@dataclass
class ReplayResult:
    """The actions the planner would have sent, tick by tick, and the report."""

    stamps: np.ndarray
    actions: np.ndarray
    statuses: list[Status]
    report: dict[str, Any]


@dataclass
class _Skipped:
    count: int = 0
    first_error: str = ""
    first_stamp: float | None = None

    def add(self, error: str, stamp: float) -> None:
        if not self.count:
            self.first_error, self.first_stamp = error, stamp
        self.count += 1


@dataclass
class _GroundTruth:
    """What a simulator bag says really happened."""

    task: sim_topics.SimTask | None = None
    pose: np.ndarray | None = None
    executed: tuple[int, int, np.ndarray] | None = None  # stamp (ns), dt (ns), action
    diffs: list[np.ndarray] = field(default_factory=list)


class _Replay:
    """One pass over a bag: feeds the runtime, ticks it on bag time, writes what it publishes."""

    def __init__(
        self,
        runtime: PlannerRuntime,
        image_topic: str,
        goal_topic: str | None,
        writer: BagWriter | None,
        output_topics: Mapping[str, str],
        rate_scale: float,
        tick_hook: Callable[[Command], None] | None,
    ) -> None:
        self.rt, self.image_topic, self.goal_topic = runtime, image_topic, goal_topic
        self.writer, self.out = writer, output_topics
        self.scale = rate_scale
        self.period_ns = round(_NS / (runtime.params["control_rate"] / rate_scale))
        self.tick_hook = tick_hook
        self.frame_id = runtime.params["frame_id"]
        self.commands: list[Command] = []
        self.skipped: dict[str, _Skipped] = {}
        self.latencies: list[float] = []
        self.counts: dict[str, int] = {}
        self.truth = _GroundTruth()
        self.goal: np.ndarray | None = None
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.ticks = 0

    def run(self, messages: Iterator[BagMessage], progress: tqdm) -> None:
        for m in messages:
            if self.first_ns is None:
                self.first_ns = m.stamp_ns
            while self._next_tick() < m.stamp_ns:
                self._tick(self._next_tick())
            self._feed(m)
            self.last_ns = max(self.last_ns or m.stamp_ns, m.stamp_ns)
            progress.update()
            progress.set_postfix(ticks=self.ticks, refresh=False)
        while self.first_ns is not None and self._next_tick() <= self.last_ns:
            self._tick(self._next_tick())

    def _next_tick(self) -> int:
        return self.first_ns + self.ticks * self.period_ns

    def _feed(self, m: BagMessage) -> None:
        self.counts[m.topic] = self.counts.get(m.topic, 0) + 1
        if self.writer is not None:
            self.writer.write(m.topic, m.msg, m.stamp_ns)
        if m.topic == self.image_topic or m.topic == self.goal_topic:
            # The header stamp, as the node uses it: a driver that leaves it at zero makes
            # every image stale there, and so here.
            stamp = time_to_sec(m.msg.header.stamp)
            try:
                rgb = image_msg_to_rgb(m.msg)
            except (ImageConversionError, TypeError, ValueError) as exc:
                self.skipped.setdefault(m.topic, _Skipped()).add(str(exc), stamp)
                return
            if m.topic == self.image_topic:
                self.latencies.append(m.stamp_ns / _NS - stamp)
                self.rt.on_image(rgb, stamp / self.scale)
            elif self.goal is None or not np.array_equal(self.goal, rgb):
                # Like the node: a republished, unchanged goal must not drop the warm start.
                self.rt.on_goal(rgb, stamp / self.scale)
                self.goal = rgb
        elif m.topic.lstrip("/") == sim_topics.TASK_TOPIC:
            try:
                self.truth.task = sim_topics.parse_task(m.msg.data)
            except ValueError as exc:
                self.skipped.setdefault(m.topic, _Skipped()).add(str(exc), m.stamp_ns / _NS)
        elif m.topic.lstrip("/") == sim_topics.POSE_TOPIC:
            self.truth.pose = sim_topics.pose_xy(m.msg)
        elif m.topic.lstrip("/") == sim_topics.EXECUTED_ACTION_TOPIC:
            dt_ns = round(float(m.msg.dt) * _NS)
            self.truth.executed = (m.stamp_ns, dt_ns, np.asarray(m.msg.action, dtype=np.float32))

    def _tick(self, now_ns: int) -> None:
        now = now_ns / _NS
        cmd = self.rt.tick(now / self.scale)
        if self.scale != 1.0:  # back from the runtime's sped-up clock to bag time
            cmd = dataclasses.replace(
                cmd, stamp=now, dt=cmd.dt * self.scale, image_age=cmd.image_age * self.scale
            )
        self.ticks += 1
        self.commands.append(dataclasses.replace(cmd, plan=None))  # plans can be large: not kept
        if self.truth.executed is not None:
            stamp_ns, dt_ns, executed = self.truth.executed
            # In effect over [stamp, stamp + dt); 1 us absorbs dt's float32 rounding.
            if now_ns < stamp_ns + dt_ns - 1000 and executed.shape == cmd.action.shape:
                self.truth.diffs.append(np.abs(cmd.action - executed))
        if self.writer is not None:
            self._publish(cmd, now, now_ns)
        if self.tick_hook is not None:
            self.tick_hook(cmd)

    def _publish(self, cmd: Command, now: float, now_ns: int) -> None:
        w, out = self.writer, self.out
        w.write(out["action"], action_command_msg(stamp_sec=now, **action_fields(cmd)), now_ns)
        status = status_fields(cmd, self.rt.stats)
        w.write(out["status"], planner_status_msg(stamp_sec=now, **status), now_ns)
        if cmd.plan is not None:
            image_stamp = now - cmd.image_age if math.isfinite(cmd.image_age) else now
            fields = trajectory_fields(cmd.plan, self.rt.model)
            msg = virtual_trajectory_msg(stamp_sec=image_stamp, frame_id=self.frame_id, **fields)
            w.write(out["plan"], msg, now_ns)


def replay(
    bag: str | os.PathLike[str],
    params: Mapping[str, Any],
    *,
    image_topic: str | None = None,
    goal_topic: str | None = DEFAULT_GOAL_TOPIC,
    goal_image: np.ndarray | None = None,
    out: str | os.PathLike[str] | None = None,
    output_prefix: str = "",
    overwrite: bool = False,
    realtime_budget: bool = False,
    rate_scale: float = 1.0,
    progress: bool = False,
    tick_hook: Callable[[Command], None] | None = None,
) -> ReplayResult:
    """Replay ``bag`` through a PlannerRuntime built from ``params``; see the module docstring.

    Args:
        image_topic: camera topic; default ``camera/image_raw``, else ``image``.
        goal_topic: topic of goal images; used when the bag has it, else ``goal_image`` (an
            RGB ``uint8 [H, W, 3]``) is the goal, set before the first tick.
        out: output bag directory (MCAP), or None for none.
        output_prefix: prepended to the output topics ``/action``, ``/plan``, ``/status``.
        realtime_budget: plan with the wall-clock deadline budget (as on the robot) instead of
            the deterministic fixed-iterations budget.
        rate_scale: with ``realtime_budget``, play the bag this many times faster than real
            time: each tick's wall-clock budget is the control period divided by it.
        tick_hook: called with every tick's Command (progress displays, tests).

    Raises:
        FileNotFoundError, FileExistsError, BagError, ValueError: with a message that says
            what is wrong and how to fix it.
    """
    started = time.perf_counter()
    bag_path = Path(bag)
    if out is not None:
        _check_output(Path(out), bag_path, overwrite)
    values = dict(params)
    values["budget"] = "deadline" if realtime_budget else "iterations"
    _check_rate_scale(values, rate_scale, realtime_budget)
    source = open_bag(bag_path)
    try:
        image_topic, goal_topic = _pick_topics(source, image_topic, goal_topic, goal_image)
        truth_topics = _truth_topics(source.topics)
        topics = [image_topic, *([goal_topic] if goal_topic else []), *truth_topics]
        output_topics = {n: _qualified(output_prefix + n) for n in ("action", "plan", "status")}
        if out is not None:
            _check_clashes(output_topics, topics)
        runtime = PlannerRuntime.from_params(
            {
                **values,
                "control_rate": values["control_rate"] * rate_scale,
                "image_timeout": values["image_timeout"] / rate_scale,
            }
        )
        if goal_image is not None and goal_topic is None:
            runtime.on_goal(goal_image)
        total = sum(source.counts.get(t, 0) for t in topics) if source.counts else None
        with write_bag(out, overwrite=overwrite) if out else contextlib.nullcontext() as writer:
            if writer is not None:
                for topic in topics:
                    writer.add_topic(topic, source.topics[topic])
                for name, msgtype in (
                    ("action", ACTION_COMMAND),
                    ("plan", VIRTUAL_TRAJECTORY),
                    ("status", PLANNER_STATUS),
                ):
                    writer.add_topic(output_topics[name], msgtype)
            loop = _Replay(
                runtime, image_topic, goal_topic, writer, output_topics, rate_scale, tick_hook
            )
            with tqdm(
                total=total, unit="msg", desc="replaying", disable=not progress, leave=False
            ) as bar:
                loop.run(source.messages(topics), bar)
            if loop.counts.get(image_topic, 0) == 0:
                where = f" (reading stopped: {source.stop.reason})" if source.stop else ""
                raise BagError(f"no readable message on {image_topic} in {bag_path}{where}")
    finally:
        source.close()
    report = _report(
        loop,
        source,
        values,
        image_topic=image_topic,
        goal_topic=goal_topic,
        out=out,
        rate_scale=rate_scale,
        wall_time=time.perf_counter() - started,
    )
    dim = int(runtime.model.action_dim)
    return ReplayResult(
        stamps=np.array([c.stamp for c in loop.commands], dtype=np.float64),
        actions=np.array([c.action for c in loop.commands], dtype=np.float32).reshape(-1, dim),
        statuses=[c.status for c in loop.commands],
        report=report,
    )


def _check_output(out: Path, bag: Path, overwrite: bool) -> None:
    o, b = out.resolve(), bag.resolve()
    if o == b or o in b.parents or b in o.parents:
        raise ValueError(f"output {out} would overwrite or sit inside the input bag {bag}")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --force to replace it")


def _check_rate_scale(values: Mapping[str, Any], scale: float, realtime: bool) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"--rate-scale must be a positive number, got {scale}")
    if scale != 1.0 and not realtime:
        raise ValueError(
            "--rate-scale only changes the wall-clock budget, so it needs --realtime-budget "
            "(the default fixed-iterations replay does not depend on speed)"
        )
    for name in ("control_rate", "image_timeout"):
        spec, value = (
            P.SCHEMA[name],
            values[name] * (scale if name == "control_rate" else 1 / scale),
        )
        if not spec.low <= value <= spec.high:
            raise ValueError(
                f"--rate-scale {scale} makes the effective {name} {value:g}, outside "
                f"[{spec.low}, {spec.high}]"
            )


def _describe(topics: Mapping[str, str]) -> str:
    return ", ".join(f"{t} ({m})" for t, m in sorted(topics.items())) or "none"


def _pick_topics(
    source: BagSource, image_topic: str | None, goal_topic: str | None, goal_image: Any
) -> tuple[str, str | None]:
    """The bag's camera and goal topics, checked; BagError lists what the bag has instead."""
    images = {t: m for t, m in source.topics.items() if m in IMAGE_TYPES}
    if image_topic is None:
        found = [t for name in DEFAULT_IMAGE_TOPICS if (t := resolve_topic(source.topics, name))]
        if not found:
            raise BagError(
                f"bag {source.path} has none of the default camera topics "
                f"{', '.join(DEFAULT_IMAGE_TOPICS)}; pass --image-topic. Image topics in the "
                f"bag: {_describe(images)}"
            )
        image = found[0]
    else:
        image = _checked_topic(source, image_topic, "--image-topic")
    goal = None
    if goal_image is None:
        if goal_topic is None or resolve_topic(source.topics, goal_topic) is None:
            raise BagError(
                f"bag {source.path} has no goal topic {goal_topic}; pass --goal-topic, or "
                f"--goal-image PNG for a goal from a file. Image topics in the bag: "
                f"{_describe(images)}"
            )
        goal = _checked_topic(source, goal_topic, "--goal-topic")
    return image, goal


def _checked_topic(source: BagSource, name: str, option: str) -> str:
    topic = resolve_topic(source.topics, name)
    if topic is None:
        raise BagError(
            f"bag {source.path} has no topic {name} ({option}); its topics: "
            f"{_describe(source.topics)}"
        )
    if source.topics[topic] not in IMAGE_TYPES:
        raise BagError(
            f"topic {topic} in {source.path} has type {source.topics[topic]}, expected "
            f"{' or '.join(IMAGE_TYPES)}"
        )
    return topic


def _truth_topics(topics: Mapping[str, str]) -> list[str]:
    """The simulator's ground-truth topics present with their contract types."""
    wanted = (
        (sim_topics.TASK_TOPIC, sim_topics.STRING),
        (sim_topics.POSE_TOPIC, sim_topics.POSE_STAMPED),
        (sim_topics.EXECUTED_ACTION_TOPIC, ACTION_COMMAND),
    )
    found = [(resolve_topic(topics, name), msgtype) for name, msgtype in wanted]
    return [t for t, msgtype in found if t is not None and topics[t] == msgtype]


def _qualified(topic: str) -> str:
    """The name as ``ros2 bag record`` stores a root-namespace topic: with a leading slash."""
    return "/" + topic.lstrip("/")


def _check_clashes(outputs: Mapping[str, str], inputs: Sequence[str]) -> None:
    taken = {t.lstrip("/"): t for t in inputs}
    for name in outputs.values():
        if name.lstrip("/") in taken:
            raise ValueError(
                f"output topic {name} would clash with the input topic {taken[name.lstrip('/')]}"
                " copied into the output bag; pass --output-prefix, e.g. --output-prefix replay/"
            )


# -- the report ---------------------------------------------------------------------------------
def _finite(value: float) -> float | None:
    """JSON has no NaN: missing values are null."""
    return float(value) if value is not None and math.isfinite(value) else None


def _stats(values: np.ndarray) -> dict[str, Any]:
    if not len(values):
        return {"count": 0}
    return {
        "count": len(values),
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "min": values.min(0).tolist(),
        "max": values.max(0).tolist(),
    }


def _report(
    loop: _Replay,
    source: BagSource,
    values: Mapping[str, Any],
    *,
    image_topic: str,
    goal_topic: str | None,
    out: Any,
    rate_scale: float,
    wall_time: float,
) -> dict[str, Any]:
    cmds = loop.commands
    ok = [c for c in cmds if c.status is Status.OK]
    solve = np.array([c.solve_time for c in ok])
    latency = np.array(loop.latencies)
    start = loop.first_ns / _NS if loop.first_ns is not None else None
    end = loop.last_ns / _NS if loop.last_ns is not None else None
    messages = sum(loop.counts.values())
    return {
        "bag": str(source.path),
        "storage": source.storage,
        "salvaged": source.salvaged,
        "truncated": dataclasses.asdict(source.stop) if source.stop else None,
        "image_topic": image_topic,
        "goal_topic": goal_topic,
        "output_bag": None if out is None else str(out),
        "messages": dict(sorted(loop.counts.items())),
        "skipped": {t: dataclasses.asdict(s) for t, s in sorted(loop.skipped.items())},
        "image_latency": {
            "p50": _finite(np.percentile(latency, 50)) if len(latency) else None,
            "max": _finite(latency.max()) if len(latency) else None,
        },
        "start": start,
        "end": end,
        "duration": None if start is None else end - start,
        "ticks": len(cmds),
        "status_counts": dict(Counter(c.status.name for c in cmds)),
        "deadline_misses": loop.rt.stats.deadline_misses,
        "solve_time": {
            f"p{q}": _finite(np.percentile(solve, q)) if len(solve) else None for q in (50, 90, 99)
        },
        "iterations_mean": _finite(np.mean([c.iterations for c in ok])) if ok else None,
        "cost_last": _finite(ok[-1].cost) if ok else None,
        "actions": _stats(np.stack([c.action for c in ok]) if ok else np.zeros((0, 0))),
        "ground_truth": _ground_truth(loop.truth, cut_off=source.stop is not None),
        "budget": values["budget"],
        "rate_scale": rate_scale,
        "params": dict(values),
        "wall_time": wall_time,
        "messages_per_second": messages / wall_time if wall_time > 0 else None,
    }


def _ground_truth(truth: _GroundTruth, cut_off: bool) -> dict[str, Any] | None:
    if truth.task is None and truth.pose is None and not truth.diffs:
        return None
    result: dict[str, Any] = {}
    if truth.task is not None and truth.pose is not None:
        env = truth.task.make_env()
        goal = truth.task.goal_state
        result.update(
            env=truth.task.env,
            task_seed=truth.task.seed,
            optimal_steps=truth.task.optimal_steps,
            recorded_success=env.success(truth.pose, goal),
            final_distance=float(np.linalg.norm(truth.pose - goal[:2])),
        )
        if cut_off:
            result["note"] = (
                "the bag is cut off: success and distance are at the last readable pose, "
                "which may not be the end of the recorded run"
            )
    if truth.diffs:
        diffs = np.stack(truth.diffs)
        result["executed_action_agreement"] = {
            "ticks_compared": len(diffs),
            "mean_abs_diff": diffs.mean(0).tolist(),
            "max_abs_diff": diffs.max(0).tolist(),
            "note": (
                "Each tick's replayed action against the action the recorded agent executed at "
                "that time. Replay is open loop: the planner's actions never move the recorded "
                "agent, so this measures how differently it would have acted, not whether it "
                "would have succeeded. It is 0 when the recording was driven by this planner "
                "with the same parameters and seed (a reproduction check)."
            ),
        }
    return result


# -- command line -------------------------------------------------------------------------------
EXAMPLES = """\
examples:
  grasp-ros-record-sim sim_bag
  grasp-ros-replay sim_bag --params config/planner.yaml --out replayed --report report.json
  grasp-ros-replay robot_bag --image-topic /front/image_raw --goal-image goal.png -p seed=1
  grasp-ros-replay robot_bag.mcap --realtime-budget --rate-scale 2 --report stress.json
"""


def build_parser() -> argparse.ArgumentParser:
    """The grasp-ros-replay argument parser."""
    parser = argparse.ArgumentParser(
        prog="grasp-ros-replay",
        description="Run the planner over a recorded bag offline, on bag time, exactly as the "
        "planner node would see it (newest image only, image watchdog on bag time). "
        "Reads rosbag2 (MCAP, sqlite3) and ROS 1 bags; writes an MCAP bag with the planner's "
        "action, plan and status added, and a JSON report.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bag", help="rosbag2 directory, .mcap or .db3 file, or ROS 1 .bag file")
    parser.add_argument(
        "--image-topic",
        help="camera topic, sensor_msgs/Image or CompressedImage "
        f"(default: {DEFAULT_IMAGE_TOPICS[0]}, else {DEFAULT_IMAGE_TOPICS[1]})",
    )
    parser.add_argument(
        "--goal-topic", default=DEFAULT_GOAL_TOPIC, help="goal image topic (default: %(default)s)"
    )
    parser.add_argument(
        "--goal-image",
        metavar="PNG",
        help="goal from an image file, e.g. for bags without a goal topic (overrides --goal-topic)",
    )
    parser.add_argument("--out", metavar="OUT_BAG", help="output bag directory (MCAP)")
    parser.add_argument("--report", metavar="JSON", help="write the report to this file")
    parser.add_argument(
        "--output-prefix",
        default="",
        metavar="PREFIX",
        help="prefix of the output topics /action, /plan, /status (e.g. replay/)",
    )
    parser.add_argument(
        "--realtime-budget",
        action="store_true",
        help="plan within the wall-clock deadline, as the robot does (results then depend on "
        "this machine's speed); default: the fixed-iterations budget, deterministic",
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=1.0,
        metavar="X",
        help="with --realtime-budget: play the bag X times faster than real time, so each "
        "tick's wall-clock budget is the control period / X (X < 1 emulates a faster "
        "computer); the tick schedule in bag time does not change (default: 1)",
    )
    parser.add_argument("--force", action="store_true", help="replace existing outputs")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_param_arguments(parser)
    return parser


def read_image_file(path: str) -> np.ndarray:
    """An image file (PNG, JPEG, ...) as RGB ``uint8 [H, W, 3]``."""
    import cv2

    if not Path(path).is_file():
        raise FileNotFoundError(f"no image file {path}")
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read {path} as an image (PNG, JPEG, ...)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def write_json(data: Mapping[str, Any], path: Path, overwrite: bool) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _summary(report: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in report["status_counts"].items())
    line = f"{report['ticks']} ticks over {report['duration'] or 0:.2f} s of bag time ({counts})"
    p50 = report["solve_time"]["p50"]
    if p50 is not None:
        line += f"; solve time p50 {p50 * 1e3:.1f} ms"
    truth = report["ground_truth"] or {}
    if "recorded_success" in truth:
        line += f"; recorded run {'succeeded' if truth['recorded_success'] else 'failed'}"
        line += " (at the last readable pose)" if "note" in truth else ""
    return line


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``grasp-ros-replay``; returns the exit status."""
    args = build_parser().parse_args(argv)
    prog = "grasp-ros-replay"
    try:
        if any(p.partition("=")[0].strip() == "budget" for p in args.param):
            raise ValueError("set the budget with --realtime-budget, not -p budget=...")
        if args.report:
            report_path = Path(args.report)
            _check_output(report_path, Path(args.bag), args.force)
        values = params_from_cli(args.params, args.param)
        goal = read_image_file(args.goal_image) if args.goal_image else None
        result = replay(
            args.bag,
            values,
            image_topic=args.image_topic,
            goal_topic=args.goal_topic,
            goal_image=goal,
            out=args.out,
            output_prefix=args.output_prefix,
            overwrite=args.force,
            realtime_budget=args.realtime_budget,
            rate_scale=args.rate_scale,
            progress=not args.quiet,
        )
        if args.report:
            write_json(result.report, report_path, args.force)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; unfinished outputs were not written", file=sys.stderr)
        return 130
    except (BagError, OSError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    report = result.report
    stop = report["truncated"]
    if stop:
        where = f" at byte {stop['offset']} of {stop['file_size']}" if stop["offset"] else ""
        print(
            f"{prog}: warning: {args.bag} is damaged: {stop['reason']} ({stop['file']}{where}); "
            f"replayed the {sum(report['messages'].values())} messages before it",
            file=sys.stderr,
        )
    for topic, skipped in report["skipped"].items():
        print(
            f"{prog}: warning: skipped {skipped['count']} undecodable message(s) on {topic}, "
            f"first: {skipped['first_error']}",
            file=sys.stderr,
        )
    print(_summary(report))
    for label, path in (("bag", args.out), ("report", args.report)):
        if path:
            print(f"wrote {label} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
