"""Any bag a robot leaves behind, read the same way: rosbag2, ROS 1, or a cut-off MCAP file.

:func:`open_bag` returns a :class:`BagSource` whatever the format, with the topics, their
types and message counts, the description a writer needs to copy a topic verbatim
(:meth:`BagSource.topic_info`), and the messages as CDR bytes (:meth:`BagSource.raw_messages`),
deserialised on request (:meth:`BagSource.deserialize`). The caller decides what a corrupt
message means: the replay tool skips and counts it and reads on.

- rosbag2 directories and single ``.mcap``/``.db3`` files go through
  :class:`grasp_ros.io.bags.BagReader`.
- ROS 1 ``.bag`` files are converted to ROS 2 on the wire (rosbags' ``ros1_to_cdr``: same
  fields, no header ``seq``); types the typestore lacks are taken from the bag's own
  definitions, and latched ROS 1 topics are offered latched (transient local).
- A rosbag2 MCAP bag that rosbags cannot open (no summary, no ``metadata.yaml``) is read in
  file order with the ``mcap`` package's stream reader up to the damage, including the whole
  records inside a chunk that is cut off (:func:`read_mcap`).

Damage part-way through (rosbags' ReaderError, a corrupt sqlite page, a cut-off MCAP record, a
ROS 1 message that does not convert) ends the message stream; :attr:`BagSource.stop` then says
where, and everything before it was valid.
"""

from __future__ import annotations

import abc
import contextlib
import io
import os
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from mcap.exceptions import EndOfFile, McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, DataEnd, Footer, McapRecord, Message, Schema
from mcap.stream_reader import StreamReader, breakup_chunk
from rosbags.interfaces import Qos
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.metadata import parse_qos
from rosbags.typesys import TypesysError, get_types_from_msg
from rosbags.typesys.store import Typestore

from grasp_ros.io.bags import (
    LATCHED,
    BagError,
    BagReader,
    RawMessage,
    TopicInfo,
    describe_topic,
    deserialize,
)
from grasp_ros.io.messages import build_typestore, find_msg_dir, typestore


@dataclass(frozen=True)
class StopPoint:
    """Where reading a damaged bag ended: everything before it was read."""

    reason: str
    file: str
    offset: int | None = None
    file_size: int | None = None


class BagSource(abc.ABC):
    """One bag, whatever its format: topic types, message counts and a message stream.

    ``counts`` is None when the format gives no counts up front. ``stop`` is set when the
    stream ended early at damage; the messages before it are valid.
    """

    storage = ""
    salvaged = False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.topics: dict[str, str] = {}
        self.counts: dict[str, int] | None = {}
        self.stop: StopPoint | None = None
        self.store: Typestore = typestore()

    @abc.abstractmethod
    def topic_info(self, topic: str) -> TopicInfo:
        """How to declare ``topic`` in a rosbag2 writer; BagError if it cannot be copied."""

    @abc.abstractmethod
    def _raw(self, topics: Collection[str]) -> Iterator[RawMessage]:
        """The message stream of :meth:`raw_messages`, before damage handling."""

    def raw_messages(self, topics: Collection[str]) -> Iterator[RawMessage]:
        """Messages on ``topics`` in bag order, as CDR bytes; damage ends the stream, sets ``stop``.

        A wrong topic raises BagError here, at the call, not as damage.
        """
        stream = self._raw(topics)
        while True:
            try:
                message = next(stream)
            except StopIteration:
                return
            except Exception as exc:
                self.stop = StopPoint(f"{type(exc).__name__}: {exc}", str(self.path))
                return
            yield message

    def deserialize(self, message: RawMessage) -> Any:
        """The message object; BagError says why a corrupt message does not deserialise."""
        return deserialize(message, self.store)

    def _check(self, topics: Collection[str]) -> None:
        for topic in sorted(set(topics) - set(self.topics)):
            have = ", ".join(f"{t} ({m})" for t, m in sorted(self.topics.items())) or "none"
            raise BagError(f"bag {self.path} has no topic {topic}; its topics: {have}")

    @abc.abstractmethod
    def close(self) -> None:
        """Release the files."""

    def __enter__(self) -> BagSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Rosbag2Source(BagSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._bag = BagReader(path, self.store)
        self.topics, self.counts = dict(self._bag.topics), dict(self._bag.message_counts)
        self.storage = _storage_of(path)

    def topic_info(self, topic: str) -> TopicInfo:
        return self._bag.topic_info(topic)

    def _raw(self, topics: Collection[str]) -> Iterator[RawMessage]:
        return self._bag.raw_messages(topics)

    def close(self) -> None:
        self._bag.close()


class _Rosbag1Source(BagSource):
    """A ROS 1 bag, its messages converted to their ROS 2 form on the wire."""

    storage = "rosbag1"

    def __init__(self, path: Path) -> None:
        from rosbags.rosbag1 import Reader, ReaderError

        super().__init__(path)
        self._reader = Reader(path)
        try:
            self._reader.open()
        except ReaderError as exc:
            raise BagError(f"cannot open ROS 1 bag {path}: {exc}") from exc
        self.store = build_typestore(find_msg_dir())  # a private copy: the bag adds types
        self._unconvertible: dict[str, str] = {}
        for conn in self._reader.connections:
            self.topics[conn.topic] = conn.msgtype
            self.counts[conn.topic] = self.counts.get(conn.topic, 0) + conn.msgcount
            if conn.msgtype not in self.store.types:
                self._register(conn.msgtype, conn.msgdef.data)

    def _register(self, msgtype: str, msgdef: str) -> None:
        """Add a type the typestore lacks from the bag's ROS 1 definition, if it is complete.

        Hashing walks every field type, so a definition that names a type it does not define
        is found here, not when a message is converted.
        """
        try:
            types = get_types_from_msg(msgdef, msgtype)
            self.store.register({k: v for k, v in types.items() if k not in self.store.types})
            self.store.hash_rihs01(msgtype)
        except (TypesysError, KeyError, ValueError) as exc:
            self._unconvertible[msgtype] = f"its ROS 1 definition cannot be read: {exc!r}"

    def _convertible(self, topic: str) -> str:
        msgtype = self.topics[topic]
        if msgtype in self._unconvertible:
            raise BagError(
                f"topic {topic} has type {msgtype}, which cannot be converted to ROS 2: "
                f"{self._unconvertible[msgtype]}"
            )
        return msgtype

    def topic_info(self, topic: str) -> TopicInfo:
        self._check([topic])
        msgtype = self._convertible(topic)
        latched = any(c.ext.latching for c in self._reader.connections if c.topic == topic)
        return describe_topic(topic, msgtype, "", "", [LATCHED] if latched else [], self.store)

    def _raw(self, topics: Collection[str]) -> Iterator[RawMessage]:
        self._check(topics)
        for topic in topics:
            self._convertible(topic)
        conns = [c for c in self._reader.connections if c.topic in set(topics)]
        if not conns:
            return iter(())  # rosbags reads every topic when given no connections
        return (
            RawMessage(c.topic, c.msgtype, t, self.store.ros1_to_cdr(raw, c.msgtype))
            for c, t, raw in self._reader.messages(connections=conns)
        )

    def close(self) -> None:
        self._reader.close()


class _McapSalvageSource(BagSource):
    """MCAP files that rosbags cannot open, read up to the first damage.

    Two passes: the first finds the channels, the message counts and where the files break;
    the second yields messages.
    """

    storage = "mcap"
    salvaged = True

    def __init__(self, path: Path, files: list[Path]) -> None:
        super().__init__(path)
        self._files = files
        self._channels: dict[str, McapChannel] = {}
        self.counts = {}
        for message in self._scan():
            self.counts[message.topic] = self.counts.get(message.topic, 0) + 1
        self.topics = {topic: channel.msgtype for topic, channel in self._channels.items()}

    def topic_info(self, topic: str) -> TopicInfo:
        self._check([topic])
        channel = self._channels[topic]
        return describe_topic(topic, channel.msgtype, channel.msgdef, "", channel.qos, self.store)

    def _raw(self, topics: Collection[str]) -> Iterator[RawMessage]:
        self._check(topics)
        wanted = set(topics)
        return (m for m in self._scan() if m.topic in wanted)

    def close(self) -> None:
        """Nothing stays open: each pass opens and closes the files itself."""

    def _scan(self) -> Iterator[RawMessage]:
        for path in self._files:
            with path.open("rb") as f:
                try:
                    yield from read_mcap(f, self._channels)
                except McapDamageError as exc:
                    self.stop = StopPoint(str(exc), str(path), exc.offset, path.stat().st_size)
                    return


MAGIC = b"\x89MCAP0\r\n"


class McapDamageError(Exception):
    """Where and why an MCAP file stops being readable."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.offset = offset


class McapChannel(NamedTuple):
    """A channel as rosbag2 writes it: message type, definition and offered QoS profiles."""

    msgtype: str
    msgdef: str
    qos: tuple[Qos, ...]


def read_mcap(f: BinaryIO, channels: dict[str, McapChannel]) -> Iterator[RawMessage]:
    """The messages of an open MCAP file up to its footer, filling ``channels`` by topic.

    Messages inside a chunk come sorted by time; chunks in file order, the recording order. A
    chunk cut off by the damage still gives the whole records before the cut.

    Raises:
        McapDamageError: the file breaks before its footer; everything yielded before is valid.
    """
    if f.read(8) != MAGIC:
        raise McapDamageError("not an MCAP file (bad magic bytes)", 0)
    schemas: dict[int, Schema] = {}
    by_id: dict[int, tuple[str, McapChannel]] = {}
    start = f.tell()
    try:
        for record in StreamReader(f, skip_magic=True, emit_chunks=True).records:
            if isinstance(record, (Footer, DataEnd)):
                return
            records = breakup_chunk(record, True) if isinstance(record, Chunk) else [record]
            yield from _messages(records, schemas, by_id, channels)
            start = f.tell()
    except EndOfFile:
        pass
    except McapError as exc:  # a chunk's CRC, a compression mcap cannot read, ...
        raise McapDamageError(f"a record cannot be read: {exc!r}", start) from exc
    f.seek(start)
    head = f.read(9)
    if not head:
        raise McapDamageError("the file ends without an MCAP footer", start)
    if len(head) < 9:
        raise McapDamageError("a record header is cut off", start)
    opcode, length = struct.unpack("<BQ", head)
    body = f.read(length)
    if opcode == Opcode.CHUNK:  # the records before the cut are whole
        yield from _messages(_cut_chunk(body), schemas, by_id, channels)
    raise McapDamageError(f"a record is cut off ({len(body)} of {length} bytes)", start)


def _messages(
    records: list[McapRecord],
    schemas: dict[int, Schema],
    by_id: dict[int, tuple[str, McapChannel]],
    channels: dict[str, McapChannel],
) -> Iterator[RawMessage]:
    """The messages among ``records`` (one chunk's, or one top-level record), sorted by time."""
    batch = []
    for r in records:
        if isinstance(r, Schema):
            schemas[r.id] = r
        elif isinstance(r, Channel) and r.schema_id in schemas:
            schema = schemas[r.schema_id]
            qos = _offered_qos(r.metadata.get("offered_qos_profiles", ""))
            channel = McapChannel(schema.name, schema.data.decode(), qos)
            by_id[r.id] = (r.topic, channel)
            channels.setdefault(r.topic, channel)
        elif isinstance(r, Message) and r.channel_id in by_id:
            batch.append(r)
    batch.sort(key=lambda m: m.log_time)
    for m in batch:
        topic, channel = by_id[m.channel_id]
        yield RawMessage(topic, channel.msgtype, m.log_time, m.data)


def _cut_chunk(body: bytes) -> list[McapRecord]:
    """The whole records at the start of an uncompressed chunk record that is cut off.

    The chunk's header gives where its records start; the stream reader then reads them up to
    the cut. A compressed chunk gives none: its checksummed stream ends at the cut.
    """
    records: list[McapRecord] = []
    with contextlib.suppress(struct.error, UnicodeDecodeError, McapError):
        (size,) = struct.unpack_from("<I", body, 28)  # start and end time, size, CRC
        if body[32 : 32 + size].decode():
            return records
        data = io.BytesIO(body[40 + size :])  # after the compression and the records' length
        for record in StreamReader(data, skip_magic=True).records:
            records.append(record)
    return records


def _offered_qos(text: str) -> tuple[Qos, ...]:
    """The ``offered_qos_profiles`` of a channel; none if absent or unreadable.

    An unreadable profile is not damage: the channel's messages still read, without QoS.
    """
    with contextlib.suppress(ValueError, ReaderError, KeyError, TypeError):
        return tuple(parse_qos(text)) if text else ()
    return ()


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
