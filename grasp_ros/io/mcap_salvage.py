"""The readable part of an MCAP file that rosbags cannot open, read record by record.

rosbags needs the summary at the end of an MCAP file; a recorder that was killed, a full disk
or an interrupted copy leaves none (and often no ``metadata.yaml``). The data section before
the damage is still valid: :func:`read_mcap` reads it sequentially, following the MCAP
specification (https://mcap.dev/spec), and stops with :class:`McapDamageError` where the file
breaks. Messages inside a chunk are sorted by time; chunks are taken in file order, which is
the recording order.
"""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from rosbags.interfaces import Qos
from rosbags.rosbag2 import ReaderError
from rosbags.rosbag2.metadata import parse_qos
from rosbags.rosbag2.storage_mcap import DECOMPRESSORS

from grasp_ros.io.bags import RawMessage

MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_DATA_END = 2, 3, 4, 5, 6, 15


class McapDamageError(Exception):
    """Where and why an MCAP file stops being readable."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.offset = offset


class Channel(NamedTuple):
    """A channel as rosbag2 writes it: message type, definition and offered QoS profiles."""

    msgtype: str
    msgdef: str
    qos: tuple[Qos, ...]


def read_mcap(f: BinaryIO, channels: dict[str, Channel]) -> Iterator[RawMessage]:
    """The messages of an open MCAP file up to its footer, filling ``channels`` by topic.

    Raises:
        McapDamageError: the file breaks before its footer; everything yielded before is valid.
    """
    if f.read(8) != MAGIC:
        raise McapDamageError("not an MCAP file (bad magic bytes)", 0)
    schemas: dict[int, tuple[str, str]] = {}
    by_id: dict[int, tuple[str, Channel]] = {}
    for op, body, offset in _records(f):
        if op in (_OP_FOOTER, _OP_DATA_END):
            return
        records = list(_chunk_records(body, offset)) if op == _OP_CHUNK else [(op, body)]
        batch = []
        for rop, rbody in records:
            if rop == _OP_SCHEMA:
                (sid,), (name, _, msgdef) = _unpack(rbody, "<H", "sss", offset)
                schemas[sid] = (name, msgdef)
            elif rop == _OP_CHANNEL:
                (cid, sid), (topic, _, metadata) = _unpack(rbody, "<HH", "ssb", offset)
                if sid in schemas:
                    channel = Channel(*schemas[sid], _offered_qos(metadata))
                    by_id[cid] = (topic, channel)
                    channels.setdefault(topic, channel)
            elif rop == _OP_MESSAGE and len(rbody) >= 22:
                cid, _, log_time, _ = struct.unpack_from("<HIQQ", rbody)
                if cid in by_id:
                    batch.append((log_time, by_id[cid], rbody[22:]))
        batch.sort(key=lambda m: m[0])
        for log_time, (topic, channel), data in batch:
            yield RawMessage(topic, channel.msgtype, log_time, data)
    raise McapDamageError("the file ends without an MCAP footer", f.tell())


def _records(f: BinaryIO) -> Iterator[tuple[int, bytes, int]]:
    """``(opcode, body, offset)`` of each top-level record; a cut-off record is damage."""
    while True:
        offset = f.tell()
        head = f.read(9)
        if not head:
            return
        if len(head) < 9:
            raise McapDamageError("a record header is cut off", offset)
        op, length = struct.unpack("<BQ", head)
        body = f.read(length)
        if len(body) < length:
            raise McapDamageError(f"a record is cut off ({len(body)} of {length} bytes)", offset)
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
        raise McapDamageError(f"a chunk cannot be decoded: {exc}", offset) from exc
    if len(data) != size or (crc and zlib.crc32(data) != crc):
        raise McapDamageError("a chunk fails its size or CRC check", offset)
    pos = 0
    while pos + 9 <= len(data):
        op, length = struct.unpack_from("<BQ", data, pos)
        yield op, data[pos + 9 : pos + 9 + length]
        pos += 9 + length


def _decompress(data: bytes, compression: str, size: int) -> bytes:
    """A chunk's records, with the decompressors rosbags reads MCAP with (0.11.0 to today).

    Their modules changed between rosbags versions (zstandard, then backports.zstd), so the
    table is taken from rosbags rather than the modules imported here.
    """
    if compression not in DECOMPRESSORS:
        raise ValueError(f"unknown chunk compression {compression!r}")
    return DECOMPRESSORS[compression](data, size)


def _unpack(body: bytes, fmt: str, kinds: str, offset: int) -> tuple[tuple[Any, ...], list[Any]]:
    """The fixed fields by ``fmt``, then length-prefixed fields: ``s`` text, ``b`` bytes."""
    try:
        fixed = struct.unpack_from(fmt, body)
        pos = struct.calcsize(fmt)
        fields: list[Any] = []
        for kind in kinds:
            (n,) = struct.unpack_from("<I", body, pos)
            if pos + 4 + n > len(body):
                raise ValueError("a field runs past the end of its record")
            data = body[pos + 4 : pos + 4 + n]
            fields.append(data.decode() if kind == "s" else data)
            pos += 4 + n
    except (struct.error, ValueError) as exc:
        raise McapDamageError(f"a schema or channel record is malformed: {exc}", offset) from exc
    return fixed, fields


def _offered_qos(metadata: bytes) -> tuple[Qos, ...]:
    """The ``offered_qos_profiles`` in a channel's metadata map; none if absent or unreadable.

    An unreadable map is not damage: the channel's messages still read, without QoS.
    """
    texts, pos = [], 0
    with contextlib.suppress(struct.error, ValueError, ReaderError, KeyError, TypeError):
        while pos < len(metadata):
            (n,) = struct.unpack_from("<I", metadata, pos)
            texts.append(metadata[pos + 4 : pos + 4 + n].decode())
            pos += 4 + n
        value = dict(zip(texts[::2], texts[1::2], strict=True)).get("offered_qos_profiles")
        return tuple(parse_qos(value)) if value else ()
    return ()
