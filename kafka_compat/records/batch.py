"""Record batches (magic 2): the 61-byte header, its validation and in-place patches.

Layout (big-endian), the CRC-32C covering attributes..end of batch:

    0 baseOffset int64 | 8 batchLength int32 (bytes after this field) | 12 partitionLeaderEpoch int32
    16 magic int8 | 17 crc uint32 | 21 attributes int16 | 23 lastOffsetDelta int32
    27 baseTimestamp int64 | 35 maxTimestamp int64 | 43 producerId int64 | 51 producerEpoch int16
    53 baseSequence int32 | 57 recordCount int32 | 61 records...

Attributes: bits 0-2 compression, bit 3 timestamp type (1 = LogAppendTime), bit 4 transactional,
bit 5 control, bit 6 delete horizon set (then baseTimestamp holds the horizon, KIP-534).

Every message-set entry, legacy or not, starts with offset int64, length int32 and has its magic at
byte 16, which is how a reader tells the formats apart.

Nothing here copies records or looks at them: the header is read with one precompiled Struct.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from crc32c import crc32c

from kafka_compat.records import compression
from kafka_compat.records.errors import corrupt

HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
# Its first three fields, outside the CRC: a leader patches the base offset and partition leader
# epoch in one pack (writing the batch length back as it was).
OFFSET_LENGTH_EPOCH = struct.Struct(HEADER.format[:4])
LOG_OVERHEAD = 12  # baseOffset + batchLength: the bytes batchLength does not count
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20
DELETE_HORIZON_BIT = 0x40

CREATE_TIME, LOG_APPEND_TIME = 0, 1
NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
# The smallest record: length, attributes, timestamp delta, offset delta, key length, value length and
# header count, one byte each. Used to refuse record counts the bytes cannot hold.
MIN_RECORD_SIZE = 7

_INT64 = struct.Struct(">q")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")


class BatchHeader(NamedTuple):
    """The decoded 61-byte header of a magic-2 batch (a plain tuple: cheap to build, to compare)."""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_BIT else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def delete_horizon_ms(self) -> int:
        """The KIP-534 delete horizon, or NO_TIMESTAMP when the batch has none."""
        return self.base_timestamp if self.attributes & DELETE_HORIZON_BIT else NO_TIMESTAMP

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        # Sequences wrap at Int32.MAX, as Kafka's producer wraps them.
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


def read_header(buf, position: int = 0) -> BatchHeader:
    """Decode the header at `position`; the caller has checked that 61 bytes are there."""
    return BatchHeader._make(HEADER.unpack_from(buf, position))


def check_header(h: BatchHeader, available: int) -> None:
    """Structural checks that need no CRC: lengths, magic, record count against the byte count.

    `available` is how many bytes the buffer holds from the batch start. Raises CORRUPT_MESSAGE.
    """
    if h.batch_length < MIN_BATCH_LENGTH:
        raise corrupt(f"batch at offset {h.base_offset} has length {h.batch_length}, "
                      f"below the {MIN_BATCH_LENGTH}-byte header")
    if h.size > available:
        raise corrupt(f"batch at offset {h.base_offset} claims {h.size} bytes but only {available} remain")
    if h.magic != 2:
        raise corrupt(f"batch at offset {h.base_offset} has unknown magic {h.magic}")
    if h.record_count < 0 or h.last_offset_delta < 0:
        raise corrupt(f"batch at offset {h.base_offset} has negative record count or offset delta")
    if (h.attributes & COMPRESSION_MASK) == compression.NONE and \
            h.record_count * MIN_RECORD_SIZE > h.size - HEADER_SIZE:
        raise corrupt(f"batch at offset {h.base_offset} claims {h.record_count} records "
                      f"in {h.size - HEADER_SIZE} bytes")


def crc_of(buf, position: int, size: int) -> int:
    """CRC-32C of a batch's attributes..end, the bytes its crc field covers."""
    return crc32c(memoryview(buf)[position + ATTRIBUTES_OFFSET:position + size])


def check_crc(buf, position: int, h: BatchHeader) -> None:
    if crc_of(buf, position, h.size) != h.crc:
        raise corrupt(f"batch at offset {h.base_offset} fails its CRC")


def iter_headers(buf, position: int = 0, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
    """Walk the batches in buf[position:end] by their headers: yields (position, header).

    Checks each header's structure (check_header) but not its CRC. Raises CORRUPT_MESSAGE at the
    first malformed or truncated batch.
    """
    if end is None:
        end = len(buf)
    while position < end:
        if end - position < HEADER_SIZE:
            if end - position >= LOG_OVERHEAD + 5 and buf[position + MAGIC_OFFSET] != 2:
                raise corrupt(f"entry at byte {position} has magic {buf[position + MAGIC_OFFSET]}, expected 2")
            raise corrupt(f"truncated batch header at byte {position}")
        h = read_header(buf, position)
        check_header(h, end - position)
        yield position, h
        position += h.size


def peek_magic(buf, position: int = 0) -> int:
    """The magic byte of the entry at `position` (legacy or not); -1 if the buffer is too short."""
    if len(buf) - position <= MAGIC_OFFSET:
        return -1
    return buf[position + MAGIC_OFFSET]


def set_log_append_time(buf, position: int, size: int, timestamp: int) -> None:
    """Mark the batch LogAppendTime with max timestamp `timestamp` and recompute its CRC.

    Records keep their own timestamp deltas; readers take every record's timestamp from the max
    timestamp when the type bit is set, as Kafka's do.
    """
    (attributes,) = _INT16.unpack_from(buf, position + ATTRIBUTES_OFFSET)
    _INT16.pack_into(buf, position + ATTRIBUTES_OFFSET, attributes | TIMESTAMP_TYPE_BIT)
    _INT64.pack_into(buf, position + MAX_TIMESTAMP_OFFSET, timestamp)
    _UINT32.pack_into(buf, position + CRC_OFFSET, crc_of(buf, position, size))

