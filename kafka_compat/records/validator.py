"""Produce-side validation (Kafka's LogValidator): one pure function from request bytes to bytes
ready for `Log.append`.

For plain magic-2 input the work is per batch, never per record: read the 61-byte header, check
lengths, magic, count and CRC-32C, and (for LogAppendTime topics) patch the max timestamp and CRC.
Records are decoded only where the semantics need them: keys on compacted topics (clients' input;
not the batches the broker's coordinators build), the
message.timestamp.before.max.ms bound, recompression to the topic's compression.type, and legacy
magic 0/1 input (always converted to one magic-2 batch, as Kafka converts old producers' data).

Errors are RecordsError with Kafka's codes: CORRUPT_MESSAGE (CRC, lengths, structure),
INVALID_RECORD (semantics: keyless record on a compacted topic, inconsistent offsets or counts,
client-written control batches, ...), MESSAGE_TOO_LARGE (a batch over max.message.bytes),
RECORD_LIST_TOO_LARGE (the partition's data over segment.bytes), UNSUPPORTED_COMPRESSION_TYPE,
INVALID_TIMESTAMP. Errors of single records (a keyless record on a compacted topic, a timestamp
out of the topic's range) name every such record by its index in the batch (KIP-467), as Kafka's do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from crc32c import crc32c

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression as codecs
from kafka_compat.records.batch import (
    ATTRIBUTES_OFFSET,
    CREATE_TIME,
    HEADER,
    HEADER_SIZE,
    LOG_APPEND_TIME,
    MIN_RECORD_SIZE,
    NO_TIMESTAMP,
    BatchHeader,
    check_crc,
    check_header,
    peek_magic,
    read_header,
    set_log_append_time,
)
from kafka_compat.records.builder import build_batch, build_plain_batch
from kafka_compat.records.errors import RecordsError, corrupt, invalid, record_errors
from kafka_compat.records.legacy import iter_legacy_records
from kafka_compat.records.record import Record, batch_payload, decode_records

CLIENT, COORDINATOR = "client", "coordinator"
LONG_MAX = (1 << 63) - 1
# Inflating one batch past this is refused (MESSAGE_TOO_LARGE): bounds memory per request.
MAX_UNCOMPRESSED_BATCH_BYTES = 256 * 1024 * 1024


class ValidationConfig(Protocol):
    """The topic settings validation reads; storage.LogConfig provides them."""

    compression_type: str
    compression_gzip_level: int
    compression_lz4_level: int
    compression_zstd_level: int
    max_message_bytes: int
    segment_bytes: int
    message_timestamp_type: str
    message_timestamp_before_max_ms: int
    message_timestamp_after_max_ms: int
    cleanup_policy: Sequence[str]


class ValidatedRecords:
    """Batches ready to append: `buffer` is writable (Log.append patches base offsets and leader
    epochs into it), `batches` lists (position, header) for each, in order.

    `offset_count` is how many offsets the batches take (sum of last offset delta + 1);
    `log_append_time` is the time stamped into them, or -1 for CreateTime topics;
    `size_changed` tells whether the bytes differ in size from the request's (conversion or
    recompression happened).
    """

    __slots__ = ("buffer", "batches", "offset_count", "max_timestamp", "log_append_time", "size_changed")

    def __init__(self, buffer, batches: list[tuple[int, BatchHeader]], log_append_time: int, size_changed: bool,
                 offset_count: int | None = None, max_timestamp: int | None = None):
        self.buffer = buffer
        self.batches = batches
        self.offset_count = sum(h.last_offset_delta + 1 for _, h in batches) if offset_count is None else offset_count
        self.max_timestamp = max((h.max_timestamp for _, h in batches), default=NO_TIMESTAMP) \
            if max_timestamp is None else max_timestamp
        self.log_append_time = log_append_time
        self.size_changed = size_changed

    @property
    def record_count(self) -> int:
        return sum(h.record_count for _, h in self.batches)

    def __len__(self) -> int:
        return len(self.buffer)


def target_codec(config: ValidationConfig, source: int) -> int:
    """The codec the log stores: the producer's, or the topic's compression.type."""
    if config.compression_type == "producer":
        return source
    return codecs.BY_TOPIC_NAME[config.compression_type]


def _level(config: ValidationConfig, codec: int) -> int | None:
    level = {codecs.GZIP: config.compression_gzip_level, codecs.LZ4: config.compression_lz4_level,
             codecs.ZSTD: config.compression_zstd_level}.get(codec)
    return None if level is None or level == -1 and codec == codecs.GZIP else level


def validate_records(records, config: ValidationConfig, now_ms: int, *, origin: str = CLIENT,
                     produce_version: int | None = None, topic_partition: str = "",
                     max_uncompressed_bytes: int = MAX_UNCOMPRESSED_BATCH_BYTES) -> ValidatedRecords:
    """Validate one partition's produce data and make it ready to append.

    `records` is bytes-like; if it is a writable buffer it is patched in place and becomes
    `ValidatedRecords.buffer`, otherwise it is copied once. `origin` COORDINATOR is the broker's
    own batches: control batches (transaction markers) are allowed, and records are not decoded
    for the compacted-topic key check (the coordinators build every record with a key).
    `produce_version` (the ProduceRequest version) enables its rules: v3+ carries exactly one
    magic-2 batch, zstd needs v7+. `topic_partition` ("t-0") is for record errors' messages.
    Raises RecordsError; nothing is kept on error.
    """
    view = memoryview(records).cast("B") if not isinstance(records, memoryview) or records.format != "B" else records
    n = len(view)
    if n == 0:
        return ValidatedRecords(view, [], NO_TIMESTAMP, False)
    before, after = config.message_timestamp_before_max_ms, config.message_timestamp_after_max_ms
    compacted = origin == CLIENT and "compact" in config.cleanup_policy
    if n >= HEADER_SIZE and before == LONG_MAX and after == LONG_MAX and config.compression_type == "producer" \
            and config.message_timestamp_type == "CreateTime" and not compacted:
        fast = _plain_single_batch(view, n, config.max_message_bytes, config.segment_bytes, origin, produce_version)
        if fast is not None:
            return fast
    if n > config.segment_bytes:
        raise RecordsError(ErrorCode.RECORD_LIST_TOO_LARGE,
                           f"{len(view)} bytes of records exceed segment.bytes {config.segment_bytes}")
    magic = peek_magic(view)
    if magic in (0, 1):
        if produce_version is not None and produce_version >= 3:
            raise invalid(f"produce v{produce_version} requires magic 2 batches, got magic {magic}")
        return _convert_legacy(view, config, now_ms, max_uncompressed_bytes, topic_partition)
    if magic != 2:
        raise corrupt(f"unknown magic {magic}")

    append_time = config.message_timestamp_type == "LogAppendTime"
    batches = []
    rebuild = late = False
    pos, total = 0, len(view)
    while pos < total:
        if total - pos < HEADER_SIZE:
            raise corrupt(f"truncated batch header at byte {pos}")
        h = read_header(view, pos)
        if h.magic != 2 and h.magic in (0, 1):
            raise invalid("magic 0/1 messages mixed with magic 2 batches")
        check_header(h, total - pos)
        check_crc(view, pos, h)
        if h.size > config.max_message_bytes:
            raise RecordsError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"batch of {h.size} bytes exceeds max.message.bytes {config.max_message_bytes}")
        codec = h.compression
        codecs.check_codec(codec)
        if codec == codecs.ZSTD and produce_version is not None and produce_version < 7:
            raise RecordsError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                               f"zstd needs produce v7+, got v{produce_version}")
        _check_batch_semantics(h, origin)
        if (not append_time and h.timestamp_type == CREATE_TIME and after != LONG_MAX
                and h.max_timestamp > now_ms + after):
            late = True  # some record's timestamp is too late: which ones, the records say
        if not h.is_control and target_codec(config, codec) != codec:
            rebuild = True
        batches.append((pos, h))
        pos += h.size
    if produce_version is not None and produce_version >= 3 and len(batches) != 1:
        raise invalid(f"produce v{produce_version} carries exactly one batch per partition, got {len(batches)}")

    check_before = not append_time and before != LONG_MAX
    if compacted or check_before or late or rebuild:
        decoded = [decode_records(batch_payload(view, p, h, max_uncompressed_bytes), h) if not h.is_control else None
                   for p, h in batches]
        if compacted or check_before or late:
            for (_, h), recs in zip(batches, decoded):
                if recs is not None:
                    _check_records(recs, compacted, not append_time and h.timestamp_type == CREATE_TIME, config, now_ms,
                                   topic_partition)
        if rebuild:
            return _recompress(view, batches, decoded, config, now_ms if append_time else NO_TIMESTAMP)

    if append_time:
        if view.readonly:
            view = memoryview(bytearray(view))
        for i, (p, h) in enumerate(batches):
            set_log_append_time(view, p, h.size, now_ms)
            batches[i] = (p, read_header(view, p))
        return ValidatedRecords(view, batches, now_ms, False)
    if view.readonly:
        view = memoryview(bytearray(view))
    return ValidatedRecords(view, batches, NO_TIMESTAMP, False)


def own_plain_batch(pairs: Sequence[tuple[bytes, bytes | None]], now_ms: int,
                    config: ValidationConfig) -> ValidatedRecords:
    """The coordinators' (key, value) records as one batch stamped `now_ms` (build_plain_batch),
    ready to append without being read back: built here, its header, CRC and records are right by
    construction, and its timestamps are now. Only the topic's size limits are checked; a topic that
    rewrites batches (another compression.type, LogAppendTime) takes the general path. Raises
    RecordsError as validate_records does."""
    batch = build_plain_batch(pairs, now_ms)
    if config.compression_type not in ("producer", "uncompressed") or config.message_timestamp_type != "CreateTime":
        return validate_records(batch, config, now_ms, origin=COORDINATOR)
    n = len(batch)
    if n > config.segment_bytes:
        raise RecordsError(ErrorCode.RECORD_LIST_TOO_LARGE,
                           f"{n} bytes of records exceed segment.bytes {config.segment_bytes}")
    if n > config.max_message_bytes:
        raise RecordsError(ErrorCode.MESSAGE_TOO_LARGE,
                           f"batch of {n} bytes exceeds max.message.bytes {config.max_message_bytes}")
    count = len(pairs)
    return ValidatedRecords(memoryview(batch), [(0, read_header(batch, 0))], NO_TIMESTAMP, False, count, now_ms)


def _plain_single_batch(view, n: int, max_message_bytes: int, segment_bytes: int, origin: str,
                        produce_version: int | None) -> ValidatedRecords | None:
    """The common produce request, checked in one go: one client batch filling the buffer, on a
    topic that keeps the producer's compression and timestamps and is not compacted. None means
    "not that case, or something is wrong": the general path then decides, with the right error."""
    fields = HEADER.unpack_from(view, 0)
    base, length, _, magic, crc, attributes, last_delta, _, max_ts, pid, epoch, seq, count = fields
    codec = attributes & 0x07
    if (length + 12 != n or magic != 2 or length < 49 or n > max_message_bytes or n > segment_bytes
            or count <= 0 or last_delta + 1 != count or codec > 4 or attributes & 0x20
            or (base != 0 and origin == CLIENT) or (codec == 0 and count * MIN_RECORD_SIZE > n - HEADER_SIZE)
            or (attributes & 0x10 and pid < 0) or (pid >= 0 and (epoch < 0 or seq < 0))
            or (codec == codecs.ZSTD and produce_version is not None and produce_version < 7)
            or crc32c(view[ATTRIBUTES_OFFSET:]) != crc):
        return None
    if view.readonly:
        view = memoryview(bytearray(view))
    return ValidatedRecords(view, [(0, BatchHeader._make(fields))], NO_TIMESTAMP, False, count, max_ts)


def _check_batch_semantics(h: BatchHeader, origin: str) -> None:
    if h.record_count <= 0:
        raise invalid(f"batch has record count {h.record_count}; produced batches hold at least one record")
    if h.last_offset_delta + 1 != h.record_count:
        raise invalid(f"batch offset range {h.last_offset_delta + 1} disagrees with its record count {h.record_count}")
    if origin == CLIENT:
        if h.base_offset != 0:
            raise invalid(f"produced batch has base offset {h.base_offset}, must be 0")
        if h.is_control:
            raise invalid("clients may not write control batches")
        # A coordinator's transactional batches (TxnOffsetCommit) carry a producer but no sequence.
        if h.producer_id >= 0 and (h.producer_epoch < 0 or h.base_sequence < 0):
            raise invalid("batch with a producer id but no producer epoch or sequence")
    if h.is_transactional and h.producer_id < 0:
        raise invalid("transactional batch without a producer id")


def _checked_sizes(batches: list[tuple[int, BatchHeader]], config: ValidationConfig) -> None:
    # Conversion and recompression change sizes, so the limit is checked again on what is stored.
    for _, h in batches:
        if h.size > config.max_message_bytes:
            raise RecordsError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"batch of {h.size} bytes exceeds max.message.bytes {config.max_message_bytes}")


def _recompress(view, batches, decoded, config: ValidationConfig, append_time: int) -> ValidatedRecords:
    out = bytearray()
    for (p, h), recs in zip(batches, decoded):
        if recs is None:
            out += view[p:p + h.size]
            continue
        codec = target_codec(config, h.compression)
        for r in recs:
            r.offset -= h.base_offset
        out += build_batch(recs, base_offset=0, compression=codec, compression_level=_level(config, codec),
                           timestamp_type=LOG_APPEND_TIME if append_time != NO_TIMESTAMP else h.timestamp_type,
                           max_timestamp=append_time if append_time != NO_TIMESTAMP else None,
                           producer_id=h.producer_id, producer_epoch=h.producer_epoch, base_sequence=h.base_sequence,
                           transactional=h.is_transactional, partition_leader_epoch=h.partition_leader_epoch)
    return _finish(out, config, append_time)


def _finish(out: bytearray, config: ValidationConfig, append_time: int) -> ValidatedRecords:
    batches = []
    pos = 0
    while pos < len(out):
        h = read_header(out, pos)
        batches.append((pos, h))
        pos += h.size
    _checked_sizes(batches, config)
    if len(out) > config.segment_bytes:
        raise RecordsError(ErrorCode.RECORD_LIST_TOO_LARGE,
                           f"{len(out)} bytes of records exceed segment.bytes {config.segment_bytes}")
    return ValidatedRecords(memoryview(out), batches, append_time, True)


def _check_records(records: list[Record], compacted: bool, timestamps: bool, config: ValidationConfig, now_ms: int,
                   topic_partition: str) -> None:
    """Raise the record errors of a batch's records: a missing key on a compacted topic, else a
    CreateTime timestamp outside [now - message.timestamp.before.max.ms, now + ...after.max.ms]."""
    low = now_ms - config.message_timestamp_before_max_ms
    high = now_ms + config.message_timestamp_after_max_ms
    errors: list[tuple[int, str]] = []
    late = False
    for i, r in enumerate(records):
        if compacted and r.key is None:
            errors.append((i, "Compacted topic cannot accept message without key in topic partition "
                              f"{topic_partition}."))
        elif timestamps and r.timestamp != NO_TIMESTAMP and not low <= r.timestamp <= high:
            late = True
            errors.append((i, f"Timestamp {r.timestamp} of message with offset {r.offset} is out of range. "
                              f"The timestamp should be within [{low}, {high}]"))
    if errors:
        raise record_errors(errors, late)


def _convert_legacy(view, config: ValidationConfig, now_ms: int, max_uncompressed: int,
                    topic_partition: str) -> ValidatedRecords:
    records: list[Record] = []
    source = codecs.NONE
    compacted = "compact" in config.cleanup_policy
    append_time = config.message_timestamp_type == "LogAppendTime"
    for message, record in iter_legacy_records(view, max_uncompressed):
        if message.size > config.max_message_bytes:
            raise RecordsError(ErrorCode.MESSAGE_TOO_LARGE,
                               f"message of {message.size} bytes exceeds max.message.bytes {config.max_message_bytes}")
        codecs.check_codec(message.compression)
        source = message.compression
        records.append(record)
    _check_records(records, compacted, not append_time, config, now_ms, topic_partition)
    for record in records:
        record.offset = None  # the log assigns offsets; the producer's are not kept
    codec = target_codec(config, source)
    out = build_batch(records, compression=codec, compression_level=_level(config, codec),
                      timestamp_type=LOG_APPEND_TIME if append_time else CREATE_TIME,
                      max_timestamp=now_ms if append_time else None)
    return _finish(out, config, now_ms if append_time else NO_TIMESTAMP)
