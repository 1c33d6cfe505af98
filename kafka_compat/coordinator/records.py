"""The records the group coordinator keeps in `__consumer_offsets`, framed as Kafka frames them.

Each record is a (key, value) byte pair (Kafka's CoordinatorRecordSerde):

    key   = int16 record type (the key schema's apiKey) + the key struct (version 0)
    value = int16 value version + the value struct at that version; None = tombstone

Record types, as Kafka numbers them:

    0, 1  (Legacy)OffsetCommitKey      (we write 1)  value OffsetCommitValue v3 (v1 when the commit
                                                     carries an explicit expire timestamp)
    2     GroupMetadataKey                           value GroupMetadataValue v3
    3     ConsumerGroupMetadataKey                   value v0 (group epoch)
    4     ConsumerGroupPartitionMetadataKey          value v0 (subscribed topic metadata)
    5     ConsumerGroupMemberMetadataKey             value v0 (a member's subscription)
    6     ConsumerGroupTargetAssignmentMetadataKey   value v0 (target assignment epoch)
    7     ConsumerGroupTargetAssignmentMemberKey     value v0 (a member's target partitions)
    8     ConsumerGroupCurrentMemberAssignmentKey    value v0 (a member's epochs and partitions)
    9-15  share groups (read past: this broker has no share groups)

These are the versions Kafka 3.x/4.0 writes, so tools that read the topic (Burrow, Kafka's own
tools, a Kafka broker taking over the log) understand it.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import DecodeError, Message

if TYPE_CHECKING:  # the state these records carry; its modules build and replay them
    from kafka_compat.coordinator.consumer import Assignment, ConsumerMember, TopicMetadata
    from kafka_compat.coordinator.offsets import OffsetAndMetadata

_INT16 = struct.Struct(">h")

OFFSET_COMMIT = 1
GROUP_METADATA = 2
CONSUMER_GROUP_METADATA = 3
CONSUMER_GROUP_PARTITION_METADATA = 4
CONSUMER_GROUP_MEMBER_METADATA = 5
CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA = 6
CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER = 7
CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT = 8
SHARE_GROUP_TYPES = range(9, 16)

_KEYS: dict[int, type[Message]] = {
    0: m.OffsetCommitKey,
    1: m.OffsetCommitKey,
    2: m.GroupMetadataKey,
    3: m.ConsumerGroupMetadataKey,
    4: m.ConsumerGroupPartitionMetadataKey,
    5: m.ConsumerGroupMemberMetadataKey,
    6: m.ConsumerGroupTargetAssignmentMetadataKey,
    7: m.ConsumerGroupTargetAssignmentMemberKey,
    8: m.ConsumerGroupCurrentMemberAssignmentKey,
}
_VALUES: dict[int, type[Message]] = {
    0: m.OffsetCommitValue,
    1: m.OffsetCommitValue,
    2: m.GroupMetadataValue,
    3: m.ConsumerGroupMetadataValue,
    4: m.ConsumerGroupPartitionMetadataValue,
    5: m.ConsumerGroupMemberMetadataValue,
    6: m.ConsumerGroupTargetAssignmentMetadataValue,
    7: m.ConsumerGroupTargetAssignmentMemberValue,
    8: m.ConsumerGroupCurrentMemberAssignmentValue,
}

GROUP_METADATA_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
NO_EXPIRE_TIMESTAMP = -1  # OffsetCommitValue.ExpireTimestamp when the commit set none


class RecordError(Exception):
    """A `__consumer_offsets` record that does not decode."""


@dataclass(frozen=True, slots=True)
class CoordinatorRecord:
    """A decoded record: its type (the key schema's apiKey), the key, and the value (None = tombstone).
    `offset` is what an offset record the coordinator decided carries (decoded records have none)."""

    type: int
    key: Message
    value: Message | None = None
    value_version: int = 0
    offset: OffsetAndMetadata | None = field(default=None, compare=False)

    def to_bytes(self) -> tuple[bytes, bytes | None]:
        key = _INT16.pack(self.type) + self.key.encode(0)
        if self.value is None:
            return key, None
        return key, _INT16.pack(self.value_version) + self.value.encode(self.value_version)

    @property
    def group_id(self) -> str:
        return self.key.group if self.type <= GROUP_METADATA else self.key.group_id


def decode(key: bytes, value: bytes | None) -> CoordinatorRecord | None:
    """Decode one record; None for types this broker does not keep (share groups, future types).
    Raises RecordError for bytes that do not parse."""
    if key is None or len(key) < 2:
        raise RecordError("record without a type")
    (rtype,) = _INT16.unpack_from(key, 0)
    key_cls = _KEYS.get(rtype)
    if key_cls is None:
        return None
    try:
        key_obj = key_cls.decode(bytes(key[2:]), 0)
        if value is None:
            return CoordinatorRecord(rtype, key_obj)
        if len(value) < 2:
            raise RecordError(f"record of type {rtype} with a truncated value")
        (vversion,) = _INT16.unpack_from(value, 0)
        value_cls = _VALUES[rtype]
        lo, hi = value_cls.VALID_VERSIONS
        if not lo <= vversion <= hi:
            # A newer version than we know: read the prefix we understand, as Kafka's readers do
            # with their highest known version.
            obj, _ = value_cls.decode_prefix(bytes(value), hi, 2)
            return CoordinatorRecord(rtype, key_obj, obj, hi)
        return CoordinatorRecord(rtype, key_obj, value_cls.decode(bytes(value[2:]), vversion), vversion)
    except DecodeError as e:
        raise RecordError(f"record of type {rtype}: {e}") from None


# -- offsets ------------------------------------------------------------------------------------

def offset_commit(group: str, topic: str, partition: int, om: OffsetAndMetadata) -> CoordinatorRecord:
    version = OFFSET_COMMIT_VALUE_VERSION if om.expire_timestamp_ms == NO_EXPIRE_TIMESTAMP \
        else OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY
    return CoordinatorRecord(
        OFFSET_COMMIT, m.OffsetCommitKey(group=group, topic=topic, partition=partition),
        m.OffsetCommitValue(offset=om.offset, leader_epoch=om.leader_epoch, metadata=om.metadata,
                            commit_timestamp=om.commit_timestamp_ms, expire_timestamp=om.expire_timestamp_ms),
        version, om)


def offset_commit_tombstone(group: str, topic: str, partition: int) -> CoordinatorRecord:
    return CoordinatorRecord(OFFSET_COMMIT, m.OffsetCommitKey(group=group, topic=topic, partition=partition))


# -- classic groups -----------------------------------------------------------------------------

def group_metadata(group, assignment: Mapping[str, bytes]) -> CoordinatorRecord:
    """The GroupMetadata record of a classic group (members with the selected protocol's
    subscription and their assignment); an empty group writes no members."""
    V = m.GroupMetadataValue
    members = [
        V.MemberMetadata(member_id=mb.member_id, group_instance_id=mb.group_instance_id, client_id=mb.client_id,
                         client_host=mb.client_host, rebalance_timeout=mb.rebalance_timeout_ms,
                         session_timeout=mb.session_timeout_ms, subscription=mb.metadata(group.protocol_name),
                         assignment=assignment.get(mb.member_id, b""))
        for mb in group.members.values()
    ]
    return CoordinatorRecord(
        GROUP_METADATA, m.GroupMetadataKey(group=group.group_id),
        V(protocol_type=group.protocol_type or "", generation=group.generation, protocol=group.protocol_name,
          leader=group.leader_id if members else None,
          current_state_timestamp=-1 if group.state_timestamp_ms is None else group.state_timestamp_ms,
          members=members),
        GROUP_METADATA_VALUE_VERSION)


def group_metadata_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(GROUP_METADATA, m.GroupMetadataKey(group=group_id))


# -- consumer groups ----------------------------------------------------------------------------

def consumer_group_epoch(group_id: str, epoch: int) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_METADATA, m.ConsumerGroupMetadataKey(group_id=group_id),
                             m.ConsumerGroupMetadataValue(epoch=epoch), 0)


def consumer_group_epoch_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_METADATA, m.ConsumerGroupMetadataKey(group_id=group_id))


def consumer_group_subscription_metadata(group_id: str, metadata: Mapping[str, TopicMetadata]) -> CoordinatorRecord:
    V = m.ConsumerGroupPartitionMetadataValue
    topics = [V.TopicMetadata(topic_id=t.topic_id, topic_name=t.name, num_partitions=t.num_partitions)
              for _, t in sorted(metadata.items())]
    return CoordinatorRecord(CONSUMER_GROUP_PARTITION_METADATA,
                             m.ConsumerGroupPartitionMetadataKey(group_id=group_id), V(topics=topics), 0)


def consumer_group_subscription_metadata_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_PARTITION_METADATA, m.ConsumerGroupPartitionMetadataKey(group_id=group_id))


def consumer_group_member_subscription(group_id: str, member: ConsumerMember) -> CoordinatorRecord:
    return CoordinatorRecord(
        CONSUMER_GROUP_MEMBER_METADATA,
        m.ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member.member_id),
        m.ConsumerGroupMemberMetadataValue(
            instance_id=member.instance_id, rack_id=member.rack_id, client_id=member.client_id,
            client_host=member.client_host, subscribed_topic_names=sorted(member.subscribed_topic_names),
            subscribed_topic_regex=member.subscribed_topic_regex, rebalance_timeout_ms=member.rebalance_timeout_ms,
            server_assignor=member.server_assignor),
        0)


def consumer_group_member_subscription_tombstone(group_id: str, member_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_MEMBER_METADATA,
                             m.ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member_id))


def consumer_group_target_assignment(group_id: str, member_id: str, assignment: Assignment) -> CoordinatorRecord:
    V = m.ConsumerGroupTargetAssignmentMemberValue
    return CoordinatorRecord(
        CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
        m.ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id),
        V(topic_partitions=[V.TopicPartition(topic_id=t, partitions=sorted(ps))
                            for t, ps in sorted(assignment.items())]),
        0)


def consumer_group_target_assignment_tombstone(group_id: str, member_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
                             m.ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id))


def consumer_group_target_assignment_epoch(group_id: str, epoch: int) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
                             m.ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id),
                             m.ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=epoch), 0)


def consumer_group_target_assignment_epoch_tombstone(group_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
                             m.ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id))


def consumer_group_current_assignment(group_id: str, member: ConsumerMember) -> CoordinatorRecord:
    V = m.ConsumerGroupCurrentMemberAssignmentValue

    def parts(a: Assignment):
        return [V.TopicPartitions(topic_id=t, partitions=sorted(ps)) for t, ps in sorted(a.items())]

    return CoordinatorRecord(
        CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
        m.ConsumerGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member.member_id),
        V(member_epoch=member.member_epoch, previous_member_epoch=member.previous_member_epoch,
          state=int(member.state), assigned_partitions=parts(member.assigned),
          partitions_pending_revocation=parts(member.pending_revocation)),
        0)


def consumer_group_current_assignment_tombstone(group_id: str, member_id: str) -> CoordinatorRecord:
    return CoordinatorRecord(CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT,
                             m.ConsumerGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member_id))
