"""KRaft's control records: LeaderChangeMessage at the start of every epoch, the header and footer
that frame a snapshot.

A control batch has the control attribute bit and one record whose key is (version int16 = 0,
type int16) and whose value is the schema-encoded message (version 0). Types 0 and 1 are the
transaction markers; KRaft adds 2 LeaderChange, 3 SnapshotHeader, 4 SnapshotFooter,
5 KRaftVersion and 6 KRaftVoters.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from kafka_compat.protocol import messages as m
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record

LEADER_CHANGE, SNAPSHOT_HEADER, SNAPSHOT_FOOTER, KRAFT_VERSION, KRAFT_VOTERS = 2, 3, 4, 5, 6
_KEY = struct.Struct(">hh")
_CLASSES = {
    LEADER_CHANGE: m.LeaderChangeMessage,
    SNAPSHOT_HEADER: m.SnapshotHeaderRecord,
    SNAPSHOT_FOOTER: m.SnapshotFooterRecord,
    KRAFT_VERSION: m.KRaftVersionRecord,
    KRAFT_VOTERS: m.VotersRecord,
}
_TYPES = {cls: t for t, cls in _CLASSES.items()}


def control_batch(message, *, base_offset: int, epoch: int, timestamp: int) -> bytearray:
    """One control batch holding `message` (a LeaderChangeMessage, SnapshotHeaderRecord, ...)."""
    key = _KEY.pack(0, _TYPES[type(message)])
    return build_batch([Record(key, message.encode(0), timestamp)], base_offset=base_offset, control=True,
                       partition_leader_epoch=epoch)


def leader_change(leader_id: int, voters: Sequence[int], granting: Sequence[int]) -> m.LeaderChangeMessage:
    Voter = m.LeaderChangeMessage.Voter
    return m.LeaderChangeMessage(version=0, leader_id=leader_id, voters=[Voter(voter_id=v) for v in sorted(voters)],
                                 granting_voters=[Voter(voter_id=v) for v in sorted(granting)])


def parse(record: Record):
    """The control message a control record holds, or None for types this module does not know."""
    if record.key is None or len(record.key) < _KEY.size or record.value is None:
        return None
    _, kind = _KEY.unpack_from(record.key)
    cls = _CLASSES.get(kind)
    return cls.decode(record.value, 0) if cls is not None else None
