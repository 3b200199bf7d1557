"""Thin, fail-loud helpers over rosbags' rosbag2 Writer and Reader.

Bags are what the demo and the sim recorder leave behind and what the replay tool reads, so:

- A bag is written atomically: into a hidden staging directory next to the target, renamed into
  place only when the ``with`` block ends without an exception. A crash or Ctrl-C never leaves
  a half-written bag under the final name, and an existing bag is only replaced on request.
- Bags are rosbag2 format version 8 (MCAP by default, sqlite3 on request). Version 9 writes the
  topics' QoS profiles as a YAML list, which Humble's ``ros2 bag`` cannot parse (it expects a
  string); version 8 is read by Humble and Jazzy alike.
- Reading names the problem: a missing path, an unknown storage format, a missing topic (with
  the topics the bag does have), a topic of another type, a message that does not deserialise.
- Topics copy verbatim: :meth:`BagReader.raw_messages` yields the serialised bytes and
  :meth:`BagReader.topic_info` the definition, type hash and QoS a writer needs
  (:meth:`BagWriter.add_raw_topic`, :meth:`BagWriter.write_raw`), so a tool passes on topics
  of types it has never heard of, and deserialises (:func:`deserialize`) only what it reads.
- A topic can offer QoS profiles: ``add_topic(..., qos=[LATCHED])`` records a latched
  (transient-local) topic, which ``ros2 bag play`` then republishes latched, so a subscriber
  that starts after the first message still gets it, with no QoS override file.

Needs rosbags >= 0.11: the ``version``/``storage_plugin`` Writer arguments and MCAP writing
arrived in 0.10.9, reading a single ``.mcap``/``.db3`` file (not only a bag directory) in 0.11.0.
"""

from __future__ import annotations

import contextlib
import operator
import os
import shutil
import struct
import tempfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from rosbags.interfaces import (
    ConnectionExtRosbag2,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.serde import SerdeError
from rosbags.typesys import (
    Stores,
    TypesysError,
    get_types_from_idl,
    get_types_from_msg,
    get_typestore,
)
from rosbags.typesys.store import Typestore

from grasp_ros.io.messages import typestore as default_typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
DEFAULT_STORAGE = "mcap"
BAG_VERSION = 8

_UNSET = QosTime(0, 0)
#: The profile ``ros2 bag record`` (Humble) stores for a latched publisher: reliable and
#: transient local; history and depth unknown to the recorder, durations unset. rosbag2 keeps
#: reliability and durability when it plays the topic back and uses its own history depth.
LATCHED = Qos(
    QosHistory.UNKNOWN,
    0,
    QosReliability.RELIABLE,
    QosDurability.TRANSIENT_LOCAL,
    _UNSET,
    _UNSET,
    QosLiveliness.AUTOMATIC,
    _UNSET,
    False,
)
#: How rosbag2 separates the IDL files in a ``ros2idl`` message definition.
_IDL_SEPARATOR = "=" * 80 + "\n"


class BagError(ValueError):
    """A bag that cannot be written or read as asked; the text says why."""


class BagMessage(NamedTuple):
    """One deserialised message: its topic, type, bag timestamp (ns) and rosbags object."""

    topic: str
    msgtype: str
    stamp_ns: int
    msg: Any


class RawMessage(NamedTuple):
    """One message as stored: its topic, type, bag timestamp (ns) and serialised CDR bytes."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes | memoryview


class TopicInfo(NamedTuple):
    """All a writer needs to declare a topic exactly as another bag has it.

    Attributes:
        msgdef: the message definition with its dependencies, as rosbag2 stores it
            (``ros2msg`` text, or ``ros2idl`` text starting with a line of 80 ``=``).
        rihs01: the RIHS01 type hash of that definition.
        qos: the QoS profiles the recorded publishers offered.
    """

    topic: str
    msgtype: str
    msgdef: str
    rihs01: str
    qos: tuple[Qos, ...] = ()


def describe_topic(
    topic: str, msgtype: str, msgdef: str, rihs01: str, qos: Iterable[Qos], store: Typestore
) -> TopicInfo:
    """A complete TopicInfo from what a bag holds, filling in what older recorders left out.

    Humble bags have no type hash and Humble's sqlite3 bags no definition either: a missing
    hash is computed from the stored definition; a missing definition comes from ``store``,
    and only when the bag's hash (if any) says it is the same type.

    Raises:
        BagError: the type cannot be described, so the topic cannot be copied.
    """
    if not msgdef:
        if msgtype not in store.types:
            raise BagError(
                f"topic {topic}: the bag holds no definition of {msgtype} and the typestore "
                "does not know it"
            )
        msgdef, _ = store.generate_msgdef(msgtype, ros_version=2)
        known = store.hash_rihs01(msgtype)
        if rihs01 and rihs01 != known:
            raise BagError(
                f"topic {topic}: the bag holds no definition of {msgtype}, and its type hash "
                f"{rihs01} is not that of the typestore's {msgtype} ({known})"
            )
        rihs01 = known
    elif not rihs01:
        rihs01 = _definition_hash(topic, msgtype, msgdef)
    return TopicInfo(topic, msgtype, msgdef, rihs01, tuple(qos))


def _definition_hash(topic: str, msgtype: str, msgdef: str) -> str:
    """RIHS01 of a stored definition, parsed into a scratch typestore as rosbags reads it."""
    scratch = get_typestore(Stores.EMPTY)
    try:
        if msgdef.startswith(_IDL_SEPARATOR + "IDL: "):
            for part in msgdef.split(_IDL_SEPARATOR)[1:]:
                scratch.register(get_types_from_idl(part.split("\n", 1)[1]))
        else:
            scratch.register(get_types_from_msg(msgdef, msgtype))
        return scratch.hash_rihs01(msgtype)
    except (TypesysError, KeyError, IndexError, ValueError) as exc:
        raise BagError(
            f"topic {topic}: the bag's definition of {msgtype} cannot be read: {exc}"
        ) from exc


def deserialize(message: RawMessage, store: Typestore | None = None) -> Any:
    """The rosbags object of a raw message; BagError says which message is corrupt and why."""
    store = store or default_typestore()
    if message.msgtype not in store.types:
        raise BagError(f"message type {message.msgtype} is not in the typestore")
    try:
        return store.deserialize_cdr(message.data, message.msgtype)
    except SerdeError as exc:
        raise BagError(
            f"cannot deserialise a {message.msgtype} on {message.topic} at "
            f"{message.stamp_ns} ns: {exc}"
        ) from exc


def _stamp(stamp_ns: int) -> int:
    stamp = operator.index(stamp_ns)
    if stamp < 0:
        raise BagError(f"timestamp {stamp} ns is negative")
    return stamp


class BagWriter:
    """Adds topics and writes message objects or raw bytes; made by :func:`write_bag`."""

    def __init__(self, writer: Writer, store: Typestore) -> None:
        self._writer = writer
        self._store = store
        self._connections: dict[str, Any] = {}

    def add_topic(self, topic: str, msgtype: str, *, qos: Iterable[Qos] = ()) -> None:
        """Declare ``topic`` with ``msgtype`` and the offered ``qos`` profiles (e.g. LATCHED).

        :meth:`write` declares a topic on its first use, with no QoS profile (``ros2 bag
        play`` then offers its default: reliable, volatile).
        """
        if msgtype not in self._store.types:
            raise BagError(f"message type {msgtype} (topic {topic}) is not in the typestore")
        self._connect(describe_topic(topic, msgtype, "", "", qos, self._store))

    def add_raw_topic(self, info: TopicInfo) -> None:
        """Declare a topic as another bag has it (:meth:`BagReader.topic_info`), for
        :meth:`write_raw`; its type need not be in the typestore."""
        self._connect(info)

    def _connect(self, info: TopicInfo) -> None:
        """Add a connection; a bag stores one definition per type (MCAP: one schema)."""
        topic, msgtype = info.topic, info.msgtype
        known = self._connections.get(topic)
        if known is not None:
            if known.msgtype != msgtype:
                raise BagError(f"topic {topic} already has type {known.msgtype}, not {msgtype}")
            if tuple(known.ext.offered_qos_profiles) != info.qos:
                raise BagError(f"topic {topic} was already added with other QoS profiles")
            return
        for other in self._connections.values():
            if other.msgtype == msgtype and other.digest != info.rihs01:
                raise BagError(
                    f"topic {topic}: its {msgtype} has another definition ({info.rihs01}) than "
                    f"the one topic {other.topic} put in this bag ({other.digest}); a bag holds "
                    "one definition per type"
                )
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, msgdef=info.msgdef, rihs01=info.rihs01, offered_qos_profiles=info.qos
        )

    def write(self, topic: str, msg: Any, stamp_ns: int) -> None:
        """Serialise ``msg`` (a rosbags message object) onto ``topic`` at ``stamp_ns``."""
        msgtype = getattr(type(msg), "__msgtype__", None)
        if msgtype is None:
            raise BagError(
                f"{type(msg).__name__} is not a rosbags message object (build it with "
                "grasp_ros.io.messages)"
            )
        stamp = _stamp(stamp_ns)
        known = self._connections.get(topic)
        if known is None or known.msgtype != msgtype:
            self.add_topic(topic, msgtype)
        try:
            data = self._store.serialize_cdr(msg, msgtype)
        except (SerdeError, struct.error, AttributeError, TypeError, ValueError) as exc:
            raise BagError(f"cannot serialise {msgtype} for {topic}: {exc}") from exc
        self._writer.write(self._connections[topic], stamp, data)

    def write_raw(self, topic: str, data: bytes | memoryview, stamp_ns: int) -> None:
        """Write serialised bytes, as they are, onto a topic from :meth:`add_raw_topic`."""
        connection = self._connections.get(topic)
        if connection is None:
            raise BagError(f"topic {topic} was not added; call add_raw_topic before write_raw")
        self._writer.write(connection, _stamp(stamp_ns), data)


@contextlib.contextmanager
def write_bag(
    path: str | os.PathLike[str],
    *,
    storage: str = DEFAULT_STORAGE,
    overwrite: bool = False,
    store: Typestore | None = None,
) -> Iterator[BagWriter]:
    """Write a rosbag2 directory at ``path``, atomically (see the module docstring).

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        BagError: unknown ``storage``.
    """
    final = Path(path)
    plugin = STORAGES.get(storage)
    if plugin is None:
        raise BagError(f"unknown bag storage {storage!r}; choose one of {sorted(STORAGES)}")
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite=True to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        bag = staging / final.name
        with Writer(bag, version=BAG_VERSION, storage_plugin=plugin) as writer:
            yield BagWriter(writer, store or default_typestore())
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} appeared while the bag was being written")
        _move_into_place(bag, final, staging / "replaced")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(new: Path, final: Path, trash: Path) -> None:
    """Rename ``new`` to ``final``, first moving any existing ``final`` aside to ``trash``."""
    if not final.exists():
        new.rename(final)
        return
    final.rename(trash)
    try:
        new.rename(final)
    except OSError:
        trash.rename(final)
        raise


class BagReader:
    """An open bag: its topics and their types, and its messages, deserialised or raw.

    Reads rosbag2 directories and, with rosbags >= 0.11, single ``.mcap`` or ``.db3`` files.
    Use it as a context manager (``with BagReader(path) as bag:``) so the files are closed.
    """

    def __init__(self, path: str | os.PathLike[str], store: Typestore | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no bag at {self.path}")
        if self.path.is_dir() and not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} is a directory without metadata.yaml: not a rosbag2 bag")
        self._store = store or default_typestore()
        try:
            self._reader = Reader(self.path)
            self._reader.open()
        except ReaderError as exc:
            raise BagError(
                f"cannot open bag {self.path}: {exc} (expected a rosbag2 directory, or a .mcap "
                "or .db3 file)"
            ) from exc
        types: dict[str, set[str]] = {}
        self.message_counts: dict[str, int] = {}
        for conn in self._reader.connections:
            types.setdefault(conn.topic, set()).add(conn.msgtype)
            self.message_counts[conn.topic] = self.message_counts.get(conn.topic, 0) + conn.msgcount
        self.topics: dict[str, str] = {t: " | ".join(sorted(v)) for t, v in sorted(types.items())}

    def check_topic(self, topic: str, msgtypes: str | Collection[str] | None = None) -> str:
        """The type of ``topic``; raises BagError if the bag lacks it or it has another type."""
        if topic not in self.topics:
            have = ", ".join(f"{t} ({m})" for t, m in self.topics.items()) or "none"
            raise BagError(f"bag {self.path} has no topic {topic}; its topics: {have}")
        msgtype = self.topics[topic]
        wanted = {msgtypes} if isinstance(msgtypes, str) else set(msgtypes or ())
        if wanted and msgtype not in wanted:
            raise BagError(
                f"topic {topic} in {self.path} has type {msgtype}, expected "
                f"{' or '.join(sorted(wanted))}"
            )
        return msgtype

    def topic_info(self, topic: str) -> TopicInfo:
        """How ``topic`` is declared: definition, type hash and offered QoS, for copying it.

        Raises:
            BagError: the bag lacks the topic, it has several types, or its type cannot be
                described (see :func:`describe_topic`).
        """
        self.check_topic(topic)
        connections = [c for c in self._reader.connections if c.topic == topic]
        if len({c.msgtype for c in connections}) > 1:
            raise BagError(f"topic {topic} in {self.path} has several types: {self.topics[topic]}")
        conn = connections[0]
        qos = conn.ext.offered_qos_profiles if isinstance(conn.ext, ConnectionExtRosbag2) else ()
        return describe_topic(topic, conn.msgtype, conn.msgdef.data, conn.digest, qos, self._store)

    def raw_messages(self, topics: Iterable[str] | None = None) -> Iterator[RawMessage]:
        """Messages on ``topics`` (all when ``None``) in timestamp order, as stored (CDR bytes).

        Nothing is deserialised, so any type reads, and a corrupt message is found only by
        whoever deserialises it (:func:`deserialize`), who can skip it and read on.
        """
        return self._raw(self._connections(topics))

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages on ``topics`` (all topics when ``None``) in timestamp order, deserialised.

        The topics and their types are checked here, before the first message is read, so a
        wrong topic name fails at the call and not somewhere down a pipeline. A message that
        does not deserialise raises BagError and ends the stream; use :meth:`raw_messages`
        to read past it.
        """
        connections = self._connections(topics)
        for conn in connections:
            if conn.msgtype not in self._store.types:
                raise BagError(
                    f"topic {conn.topic} in {self.path} has type {conn.msgtype}, which the "
                    "typestore does not know"
                )
        return (
            BagMessage(m.topic, m.msgtype, m.stamp_ns, deserialize(m, self._store))
            for m in self._raw(connections)
        )

    def _connections(self, topics: Iterable[str] | None) -> list[Any]:
        wanted = set(self.topics) if topics is None else set(topics)
        for topic in sorted(wanted):
            self.check_topic(topic)
        return [c for c in self._reader.connections if c.topic in wanted]

    def _raw(self, connections: list[Any]) -> Iterator[RawMessage]:
        if not connections:
            return  # rosbags reads every topic when given no connections
        for conn, stamp, data in self._reader.messages(connections=connections):
            yield RawMessage(conn.topic, conn.msgtype, stamp, data)

    def close(self) -> None:
        """Close the underlying reader."""
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
