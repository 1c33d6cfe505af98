"""Building magic-2 batches from records: internal topics, control batches, conversion, tests.

Never used on the produce or fetch path of plain batches (those bytes stay as the client sent them).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from kafka_compat.records import compression as codecs
from kafka_compat.records.batch import (
    CONTROL_BIT,
    CRC_OFFSET,
    CREATE_TIME,
    DELETE_HORIZON_BIT,
    HEADER,
    HEADER_SIZE,
    LOG_APPEND_TIME,
    LOG_OVERHEAD,
    NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    NO_SEQUENCE,
    NO_TIMESTAMP,
    TIMESTAMP_TYPE_BIT,
    TRANSACTIONAL_BIT,
    crc_of,
)
from kafka_compat.records.record import Record, encode_record

_CRC = struct.Struct(">I")


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int = 0,
    compression: int = codecs.NONE,
    compression_level: int | None = None,
    timestamp_type: int = CREATE_TIME,
    max_timestamp: int | None = None,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    transactional: bool = False,
    control: bool = False,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    delete_horizon_ms: int | None = None,
    last_offset_delta: int | None = None,
    base_timestamp: int | None = None,
) -> bytearray:
    """Encode `records` as one batch and return its bytes.

    Records with offset None get consecutive offsets from `base_offset`; explicit offsets (the
    cleaner's, which keep gaps) must be increasing and >= base_offset. `max_timestamp` is required
    for LogAppendTime (the append time) and otherwise computed. With `delete_horizon_ms` the base
    timestamp field carries the horizon (KIP-534) and record timestamps stay exact, their deltas
    taken from it. An empty `records` gives the header-only batch the cleaner keeps to preserve a
    producer's last sequence; it needs `last_offset_delta` (and `base_timestamp`, `max_timestamp`).
    """
    offsets = []
    expected = base_offset
    for r in records:
        off = expected if r.offset is None else r.offset
        if off < expected:
            raise ValueError(f"record offsets must increase from {base_offset}: got {off}")
        offsets.append(off)
        expected = off + 1
    timestamps = [r.timestamp for r in records]
    first_ts = timestamps[0] if timestamps else (NO_TIMESTAMP if base_timestamp is None else base_timestamp)
    if max_timestamp is None:
        if timestamp_type == LOG_APPEND_TIME:
            raise ValueError("a LogAppendTime batch needs max_timestamp (the append time)")
        max_timestamp = max(timestamps) if timestamps else first_ts
    delta_base = first_ts if delete_horizon_ms is None else delete_horizon_ms
    if base_timestamp is None or delete_horizon_ms is not None:
        base_timestamp = delta_base

    body = bytearray()
    for r, off in zip(records, offsets):
        encode_record(body, off - base_offset, r.timestamp - delta_base, r.key, r.value, r.headers)
    if compression != codecs.NONE:
        body = codecs.compress(compression, body, level=compression_level)
    if last_offset_delta is None:
        if not offsets:
            raise ValueError("an empty batch needs last_offset_delta")
        last_offset_delta = offsets[-1] - base_offset

    attributes = compression
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_BIT
    if transactional:
        attributes |= TRANSACTIONAL_BIT
    if control:
        attributes |= CONTROL_BIT
    if delete_horizon_ms is not None:
        attributes |= DELETE_HORIZON_BIT
    return _framed(body, base_offset, partition_leader_epoch, attributes, last_offset_delta, base_timestamp,
                   max_timestamp, producer_id, producer_epoch, base_sequence, len(records))


def build_plain_batch(records: Sequence[tuple[bytes, bytes | None]], timestamp: int) -> bytearray:
    """`build_batch` of (key, value) pairs, all stamped `timestamp`, uncompressed, without headers
    or producer: the coordinators' batches, built once per append without the general case's
    bookkeeping."""
    body = bytearray()
    for delta, (key, value) in enumerate(records):
        encode_record(body, delta, 0, key, value, ())
    return _framed(body, 0, NO_PARTITION_LEADER_EPOCH, 0, len(records) - 1, timestamp, timestamp, NO_PRODUCER_ID,
                   NO_PRODUCER_EPOCH, NO_SEQUENCE, len(records))


def _framed(body, base_offset: int, partition_leader_epoch: int, attributes: int, last_offset_delta: int,
            base_timestamp: int, max_timestamp: int, producer_id: int, producer_epoch: int, base_sequence: int,
            count: int) -> bytearray:
    """The batch: its header, CRC included, then `body` (the encoded records)."""
    size = HEADER_SIZE + len(body)
    out = bytearray(size)
    out[HEADER_SIZE:] = body
    HEADER.pack_into(out, 0, base_offset, size - LOG_OVERHEAD, partition_leader_epoch, 2, 0, attributes,
                     last_offset_delta, base_timestamp, max_timestamp, producer_id, producer_epoch, base_sequence,
                     count)
    _CRC.pack_into(out, CRC_OFFSET, crc_of(out, 0, size))  # over what follows it, packed above
    return out
