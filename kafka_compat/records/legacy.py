"""Legacy message sets (magic 0 and 1): reading, validating, writing; down-conversion from magic 2.

A message-set entry is: offset int64, message size int32, then the message: crc uint32 (CRC-32
over the rest), magic int8, attributes int8 (bits 0-2 compression, bit 3 LogAppendTime in magic
1), timestamp int64 (magic 1 only), key and value (int32 length, -1 = null).

A compressed message is a wrapper whose value is a compressed message set of uncompressed inner
messages. The wrapper's offset is that of its last inner message. Magic-0 inner messages carry
absolute offsets; magic-1 inner offsets are relative (0, 1, ... with the cleaner's gaps), so
absolute = wrapper offset - last inner offset + inner offset. A magic-1 LogAppendTime wrapper's
timestamp applies to all its inner messages.

The broker stores only magic 2: legacy input is converted on append (validator), and magic-2
batches are converted back for fetches at old versions (Fetch v0-1 -> magic 0, v2-3 -> magic 1).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression as codecs
from kafka_compat.records.batch import (
    CREATE_TIME,
    LOG_APPEND_TIME,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    check_crc,
    iter_headers,
)
from kafka_compat.records.errors import RecordsError, corrupt
from kafka_compat.records.record import Record, iter_records

_ENTRY = struct.Struct(">qiIbb")  # offset, size, crc, magic, attributes
_TIMESTAMP = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
HEADER_SIZE = {0: _ENTRY.size, 1: _ENTRY.size + 8}  # 18, 26: up to the key length
# The smallest message (the size field's value): crc, magic, attributes, [timestamp], key and value lengths.
MIN_MESSAGE_SIZE = {0: 14, 1: 22}
TIMESTAMP_TYPE_BIT = 0x08


class LegacyMessage(NamedTuple):
    """One decoded message-set entry (a wrapper stays compressed: `value` is its compressed set)."""

    offset: int
    magic: int
    attributes: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    position: int
    size: int

    @property
    def compression(self) -> int:
        return self.attributes & 0x07

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.magic > 0 and self.attributes & TIMESTAMP_TYPE_BIT else CREATE_TIME


def _read_field(buf, pos: int, end: int) -> tuple[bytes | None, int]:
    if pos + 4 > end:
        raise corrupt("truncated legacy message")
    (n,) = _INT32.unpack_from(buf, pos)
    pos += 4
    if n < 0:
        return None, pos
    if pos + n > end:
        raise corrupt("legacy message field runs past the message")
    return bytes(buf[pos:pos + n]), pos + n


def iter_messages(buf, position: int = 0, end: int | None = None, *,
                  check_crcs: bool = True) -> Iterator[LegacyMessage]:
    """Walk the entries of a legacy message set, shallowly (wrappers are not opened).

    Raises CORRUPT_MESSAGE for a truncated entry, a size below the minimum, an unknown magic, a
    size that disagrees with the fields, or (with `check_crcs`) a CRC mismatch.
    """
    if end is None:
        end = len(buf)
    while position < end:
        if end - position < _ENTRY.size:
            raise corrupt(f"truncated legacy message at byte {position}")
        offset, msize, crc, magic, attributes = _ENTRY.unpack_from(buf, position)
        size = msize + LOG_OVERHEAD
        if magic not in (0, 1):
            raise corrupt(f"message at offset {offset} has magic {magic} in a legacy message set")
        if msize < MIN_MESSAGE_SIZE[magic] or position + size > end:
            raise corrupt(f"message at offset {offset} has invalid size {msize}")
        stop = position + size
        if check_crcs and zlib.crc32(memoryview(buf)[position + 16:stop]) != crc:
            raise corrupt(f"message at offset {offset} fails its CRC")
        pos = position + HEADER_SIZE[magic]
        timestamp = _TIMESTAMP.unpack_from(buf, position + _ENTRY.size)[0] if magic == 1 else NO_TIMESTAMP
        key, pos = _read_field(buf, pos, stop)
        value, pos = _read_field(buf, pos, stop)
        if pos != stop:
            raise corrupt(f"message at offset {offset} has {stop - pos} bytes after its value")
        yield LegacyMessage(offset, magic, attributes, timestamp, key, value, position, size)
        position = stop


def iter_legacy_records(buf, max_size: int) -> Iterator[tuple[LegacyMessage, Record]]:
    """Deep iteration: (outermost message, record with absolute offset and effective timestamp).

    Compressed wrappers are inflated to at most `max_size` bytes each (MESSAGE_TOO_LARGE past it).
    Nested compression and inner messages of another magic are CORRUPT_MESSAGE.
    """
    for m in iter_messages(buf):
        if m.compression == codecs.NONE:
            yield m, Record(m.key, m.value, m.timestamp, (), m.offset)
            continue
        if m.value is None:
            raise corrupt(f"compressed message at offset {m.offset} has no value")
        inner = list(iter_messages(codecs.decompress(m.compression, m.value, max_size, magic=m.magic)))
        if not inner:
            raise corrupt(f"compressed message at offset {m.offset} holds no messages")
        last_inner = inner[-1].offset
        for i in inner:
            if i.compression != codecs.NONE or i.magic != m.magic:
                raise corrupt(f"compressed message at offset {m.offset} holds a nested wrapper or another magic")
            offset = i.offset if m.magic == 0 else m.offset - last_inner + i.offset
            ts = m.timestamp if m.timestamp_type == LOG_APPEND_TIME else i.timestamp
            yield m, Record(i.key, i.value, ts, (), offset)


def _encode_message(out: bytearray, offset: int, magic: int, attributes: int, timestamp: int, key, value) -> None:
    start = len(out)
    out += bytes(HEADER_SIZE[magic])
    for field in (key, value):
        if field is None:
            out += _INT32.pack(-1)
        else:
            out += _INT32.pack(len(field))
            out += field
    _ENTRY.pack_into(out, start, offset, len(out) - start - LOG_OVERHEAD, 0, magic, attributes)
    if magic == 1:
        _TIMESTAMP.pack_into(out, start + _ENTRY.size, timestamp)
    _UINT32.pack_into(out, start + 12, zlib.crc32(memoryview(out)[start + 16:]))


def build_message_set(records: Sequence[Record], magic: int, *, compression: int = codecs.NONE,
                      timestamp_type: int = CREATE_TIME, log_append_time: int = NO_TIMESTAMP,
                      compression_level: int | None = None) -> bytes:
    """Encode records (with absolute offsets) as a magic 0 or 1 message set; compressed sets become
    one wrapper message. Headers cannot be represented and are dropped, as Kafka drops them."""
    if magic not in (0, 1):
        raise ValueError(f"legacy magic is 0 or 1, not {magic}")
    if compression == codecs.ZSTD:
        raise RecordsError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "zstd cannot be written in a legacy message set")
    ts_bit = TIMESTAMP_TYPE_BIT if magic == 1 and timestamp_type == LOG_APPEND_TIME else 0

    def ts(r: Record) -> int:
        if magic == 0:
            return NO_TIMESTAMP
        return log_append_time if ts_bit else r.timestamp

    out = bytearray()
    if compression == codecs.NONE or not records:
        for r in records:
            _encode_message(out, r.offset, magic, ts_bit, ts(r), r.key, r.value)
        return bytes(out)
    first = records[0].offset
    inner = bytearray()
    for r in records:
        _encode_message(inner, r.offset if magic == 0 else r.offset - first, magic, ts_bit, ts(r), r.key, r.value)
    payload = codecs.compress(compression, inner, level=compression_level, magic=magic)
    wrapper_ts = NO_TIMESTAMP if magic == 0 else (log_append_time if ts_bit else max(r.timestamp for r in records))
    _encode_message(out, records[-1].offset, magic, compression | ts_bit, wrapper_ts, None, payload)
    return bytes(out)


def down_convert(data, magic: int, *, first_offset: int = 0, max_size: int = 1 << 30) -> bytes:
    """Rewrite the magic-2 batches in `data` as a magic 0/1 message set for an old fetcher.

    Control batches and records below `first_offset` are dropped; each batch keeps its compression
    codec (zstd raises UNSUPPORTED_COMPRESSION_TYPE: old fetchers cannot read it, as in Kafka) and
    its timestamp type. A trailing partial batch is ignored (fetch responses may end with one).
    """
    parts = []
    view = memoryview(data)
    end = _complete_prefix(view)
    for pos, h in iter_headers(view, 0, end):
        if h.is_control:
            continue
        if h.compression == codecs.ZSTD:
            raise RecordsError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                               "zstd batches cannot be down-converted for an old fetcher")
        check_crc(view, pos, h)
        records = [r for r in iter_records(view, pos, h, max_size) if r.offset >= first_offset]
        if records:
            parts.append(build_message_set(records, magic, compression=h.compression, timestamp_type=h.timestamp_type,
                                           log_append_time=h.max_timestamp))
    return b"".join(parts)


def _complete_prefix(view) -> int:
    """Length of the leading run of complete entries (a fetch may end with a cut batch)."""
    pos = 0
    while pos + LOG_OVERHEAD <= len(view):
        (n,) = _INT32.unpack_from(view, pos + 8)
        if n < 0 or pos + LOG_OVERHEAD + n > len(view):
            break
        pos += LOG_OVERHEAD + n
    return pos
