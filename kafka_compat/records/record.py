"""Records inside a magic-2 batch: varints, decoding and encoding.

A record is: length varint, attributes int8 (unused), timestampDelta varlong, offsetDelta varint,
key (varint length, -1 = null), value (same), header count varint, then per header a varint-length
UTF-8 key and a varint-length value (-1 = null). Varints are zigzag-encoded.

This is per-record Python work, so the produce and fetch paths of plain batches never come here:
only compacted topics, legacy conversion, down-conversion, control records, ListOffsets by
timestamp, the cleaner, tools and tests do.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kafka_compat.records import compression
from kafka_compat.records.batch import HEADER_SIZE, LOG_APPEND_TIME, MIN_RECORD_SIZE, NO_TIMESTAMP, BatchHeader
from kafka_compat.records.errors import corrupt

Headers = Sequence[tuple[str, "bytes | None"]]


class Record:
    """One record: absolute offset (None in builder input means "next"), timestamp, key, value, headers."""

    __slots__ = ("offset", "timestamp", "key", "value", "headers")

    def __init__(self, key: bytes | None = None, value: bytes | None = None, timestamp: int = NO_TIMESTAMP,
                 headers: Headers = (), offset: int | None = None):
        self.key, self.value, self.timestamp, self.headers, self.offset = key, value, timestamp, headers, offset

    def __eq__(self, other) -> bool:
        return isinstance(other, Record) and (
            (self.offset, self.timestamp, self.key, self.value, list(self.headers))
            == (other.offset, other.timestamp, other.key, other.value, list(other.headers)))

    def __repr__(self) -> str:
        return (f"Record(offset={self.offset}, timestamp={self.timestamp}, key={self.key!r}, value={self.value!r}, "
                f"headers={list(self.headers)!r})")


def read_varint(buf, pos: int) -> tuple[int, int]:
    """Zigzag varint at `pos`: (value, next position). IndexError if truncated."""
    b = buf[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    result, shift = b & 0x7F, 7
    pos += 1
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise corrupt("varint longer than 10 bytes")


def write_varint(value: int, out: bytearray) -> None:
    v = ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_bytes(buf, pos: int) -> tuple[bytes | None, int]:
    n, pos = read_varint(buf, pos)
    if n < 0:
        return None, pos
    end = pos + n
    if end > len(buf):
        raise IndexError
    return bytes(buf[pos:end]), end


def decode_records(payload, header: BatchHeader) -> list[Record]:
    """Decode the (already decompressed) records of a batch; exactly record_count must be there.

    Raises CORRUPT_MESSAGE for truncation, trailing bytes, a record whose length disagrees with its
    fields, or a count the bytes cannot hold.
    """
    count = header.record_count
    if count * MIN_RECORD_SIZE > len(payload):
        raise corrupt(f"batch at offset {header.base_offset} claims {count} records in {len(payload)} bytes")
    base_offset, base_ts = header.base_offset, header.base_timestamp
    append_time = header.max_timestamp if header.timestamp_type == LOG_APPEND_TIME else None
    records = []
    pos = 0
    try:
        for _ in range(count):
            length, pos = read_varint(payload, pos)
            end = pos + length
            if length < 6 or end > len(payload):
                raise corrupt(f"record length {length} out of bounds in batch at offset {base_offset}")
            pos += 1  # attributes: unused
            ts_delta, pos = read_varint(payload, pos)
            offset_delta, pos = read_varint(payload, pos)
            key, pos = _read_bytes(payload, pos)
            value, pos = _read_bytes(payload, pos)
            n_headers, pos = read_varint(payload, pos)
            if n_headers < 0:
                raise corrupt("negative header count")
            headers = []
            for _ in range(n_headers):
                hkey, pos = _read_bytes(payload, pos)
                if hkey is None:
                    raise corrupt("null header key")
                hvalue, pos = _read_bytes(payload, pos)
                headers.append((hkey.decode("utf-8"), hvalue))
            if pos != end:
                raise corrupt(f"record at offset {base_offset + offset_delta} has length {length} "
                              f"but fields of {length + end - pos}")
            records.append(Record(key, value, append_time if append_time is not None else base_ts + ts_delta,
                                  headers, base_offset + offset_delta))
    except (IndexError, UnicodeDecodeError) as e:
        raise corrupt(f"malformed records in batch at offset {base_offset}: {type(e).__name__}") from None
    if pos != len(payload):
        raise corrupt(f"batch at offset {base_offset} has {len(payload) - pos} bytes after its {count} records")
    return records


def batch_payload(buf, position: int, header: BatchHeader, max_size: int) -> bytes | memoryview:
    """The batch's record bytes, decompressed (bounded by `max_size`) when the batch is compressed."""
    raw = memoryview(buf)[position + HEADER_SIZE:position + header.size]
    codec = header.compression
    if codec == compression.NONE:
        return raw
    return compression.decompress(codec, raw, max_size)


def iter_records(buf, position: int, header: BatchHeader, max_size: int = 1 << 30) -> Iterator[Record]:
    """Decode the records of the batch at `position` (decompressing at most `max_size` bytes)."""
    return iter(decode_records(batch_payload(buf, position, header, max_size), header))


def encode_record(out: bytearray, offset_delta: int, timestamp_delta: int, key, value, headers: Headers) -> None:
    """Append one encoded record to `out`."""
    body = bytearray(b"\x00")
    write_varint(timestamp_delta, body)
    write_varint(offset_delta, body)
    for field in (key, value):
        if field is None:
            body.append(1)  # zigzag(-1)
        else:
            write_varint(len(field), body)
            body += field
    write_varint(len(headers), body)
    for hkey, hvalue in headers:
        raw = hkey.encode("utf-8")
        write_varint(len(raw), body)
        body += raw
        if hvalue is None:
            body.append(1)
        else:
            write_varint(len(hvalue), body)
            body += hvalue
    write_varint(len(body), out)
    out += body
