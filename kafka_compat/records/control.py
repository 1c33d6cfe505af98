"""Control records: the transaction markers (COMMIT / ABORT) written at the end of a transaction.

A control batch is transactional and has the control bit set; it holds one record whose key is
(version int16 = 0, type int16: 0 abort, 1 commit) and whose value is (version int16 = 0,
coordinator epoch int32).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kafka_compat.records.batch import NO_SEQUENCE, BatchHeader
from kafka_compat.records.builder import build_batch
from kafka_compat.records.errors import corrupt
from kafka_compat.records.record import Record, iter_records

ABORT, COMMIT = 0, 1
_KEY = struct.Struct(">hh")
_MARKER_VALUE = struct.Struct(">hi")


class ControlRecord(NamedTuple):
    type: int  # ABORT or COMMIT (other types are reserved by Kafka; readers skip them)
    version: int
    coordinator_epoch: int  # -1 when the value is absent or not a marker

    @property
    def is_commit(self) -> bool:
        return self.type == COMMIT

    @property
    def is_abort(self) -> bool:
        return self.type == ABORT


def build_marker_batch(commit: bool, producer_id: int, producer_epoch: int, coordinator_epoch: int, timestamp: int,
                       *, base_offset: int = 0, partition_leader_epoch: int = -1) -> bytearray:
    """A control batch holding one COMMIT or ABORT marker for `producer_id`'s open transaction."""
    record = Record(_KEY.pack(0, COMMIT if commit else ABORT), _MARKER_VALUE.pack(0, coordinator_epoch), timestamp)
    return build_batch([record], base_offset=base_offset, producer_id=producer_id, producer_epoch=producer_epoch,
                       base_sequence=NO_SEQUENCE, transactional=True, control=True,
                       partition_leader_epoch=partition_leader_epoch)


def parse_control_record(record: Record) -> ControlRecord:
    """Read a control record's key (and marker value). Raises CORRUPT_MESSAGE for a short key."""
    if record.key is None or len(record.key) < _KEY.size:
        raise corrupt("control record without a valid key")
    version, kind = _KEY.unpack_from(record.key)
    epoch = -1
    if kind in (ABORT, COMMIT) and record.value is not None and len(record.value) >= _MARKER_VALUE.size:
        _, epoch = _MARKER_VALUE.unpack_from(record.value)
    return ControlRecord(kind, version, epoch)


def read_marker(buf, position: int, header: BatchHeader) -> ControlRecord | None:
    """The control record of the control batch at `position` in `buf`; None for a batch the cleaner
    emptied. Raises CORRUPT_MESSAGE for records that do not decode."""
    for record in iter_records(buf, position, header):
        return parse_control_record(record)
    return None
