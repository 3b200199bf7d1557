"""Thin, fail-loud helpers over rosbags' rosbag2 Writer and Reader.

Bags are what the demo and the sim recorder leave behind and what the replay tool reads, so:

- A bag is written atomically: into a hidden staging directory next to the target, renamed into
  place only when the ``with`` block ends without an exception. A crash or Ctrl-C never leaves
  a half-written bag under the final name, and an existing bag is only replaced on request.
- Bags are rosbag2 format version 8 (MCAP by default, sqlite3 on request). Version 9 writes the
  topics' QoS profiles as a YAML list, which Humble's ``ros2 bag`` cannot parse (it expects a
  string); version 8 is read by Humble and Jazzy alike.
- Reading names the problem: a missing path, an unknown storage format, a missing topic (with
  the topics the bag does have), a topic of another type.

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

from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.serde import SerdeError
from rosbags.typesys.store import Typestore

from grasp_ros.io.messages import typestore as default_typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
DEFAULT_STORAGE = "mcap"
BAG_VERSION = 8


class BagError(ValueError):
    """A bag that cannot be written or read as asked; the text says why."""


class BagMessage(NamedTuple):
    """One deserialised message: its topic, type, bag timestamp (ns) and rosbags object."""

    topic: str
    msgtype: str
    stamp_ns: int
    msg: Any


class BagWriter:
    """Adds topics and writes message objects; made by :func:`write_bag`."""

    def __init__(self, writer: Writer, store: Typestore) -> None:
        self._writer = writer
        self._store = store
        self._connections: dict[str, Any] = {}

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare ``topic`` with ``msgtype``; :meth:`write` does this on a topic's first use."""
        known = self._connections.get(topic)
        if known is not None:
            if known.msgtype != msgtype:
                raise BagError(f"topic {topic} already has type {known.msgtype}, not {msgtype}")
            return
        if msgtype not in self._store.types:
            raise BagError(f"message type {msgtype} (topic {topic}) is not in the typestore")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self._store
        )

    def write(self, topic: str, msg: Any, stamp_ns: int) -> None:
        """Serialise ``msg`` (a rosbags message object) onto ``topic`` at ``stamp_ns``."""
        msgtype = getattr(type(msg), "__msgtype__", None)
        if msgtype is None:
            raise BagError(
                f"{type(msg).__name__} is not a rosbags message object (build it with "
                "grasp_ros.io.messages)"
            )
        stamp = operator.index(stamp_ns)
        if stamp < 0:
            raise BagError(f"timestamp {stamp} ns is negative")
        self.add_topic(topic, msgtype)
        try:
            data = self._store.serialize_cdr(msg, msgtype)
        except (SerdeError, struct.error, AttributeError, TypeError, ValueError) as exc:
            raise BagError(f"cannot serialise {msgtype} for {topic}: {exc}") from exc
        self._writer.write(self._connections[topic], stamp, data)


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
    """An open bag: its topics and their types, and its messages deserialised.

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

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages on ``topics`` (all topics when ``None``) in timestamp order.

        The topics are checked here, before the first message is read, so a wrong topic name
        fails at the call and not somewhere down a pipeline.
        """
        wanted = set(self.topics) if topics is None else set(topics)
        for topic in sorted(wanted):
            self.check_topic(topic)
        connections = [c for c in self._reader.connections if c.topic in wanted]
        for conn in connections:
            if conn.msgtype not in self._store.types:
                raise BagError(
                    f"topic {conn.topic} in {self.path} has type {conn.msgtype}, which the "
                    "typestore does not know"
                )
        return self._deserialised(connections)

    def _deserialised(self, connections: list[Any]) -> Iterator[BagMessage]:
        if not connections:
            return  # rosbags reads every topic when given no connections
        for conn, stamp, raw in self._reader.messages(connections=connections):
            try:
                msg = self._store.deserialize_cdr(raw, conn.msgtype)
            except SerdeError as exc:
                raise BagError(
                    f"cannot deserialise a {conn.msgtype} on {conn.topic} at {stamp} ns: {exc}"
                ) from exc
            yield BagMessage(conn.topic, conn.msgtype, stamp, msg)

    def close(self) -> None:
        """Close the underlying reader."""
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
