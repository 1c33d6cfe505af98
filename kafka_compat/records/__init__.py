"""Record batches (magic 2) and legacy message sets (magic 0/1): pure functions over bytes, no I/O.

- batch: the 61-byte header view, its checks and in-place patches
- record: record decoding/encoding (off the hot path)
- builder, control: building batches and transaction markers
- legacy: magic 0/1 message sets and down-conversion
- compression: the codecs, with bounded decompression
- validator: produce-side validation (Kafka's LogValidator)
"""

from kafka_compat.records.batch import BatchHeader, iter_headers, read_header
from kafka_compat.records.builder import build_batch, build_plain_batch
from kafka_compat.records.control import ControlRecord, build_marker_batch, parse_control_record
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.legacy import build_message_set, down_convert, iter_legacy_records
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import ValidatedRecords, validate_records

__all__ = [
    "BatchHeader", "ControlRecord", "Record", "RecordsError", "ValidatedRecords", "build_batch", "build_marker_batch",
    "build_message_set", "build_plain_batch", "down_convert", "iter_headers", "iter_legacy_records", "iter_records",
    "parse_control_record", "read_header", "validate_records",
]
