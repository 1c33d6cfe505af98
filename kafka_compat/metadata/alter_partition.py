"""AlterPartition (v0-3): a partition leader asks the controller to change its ISR.

The leader sends the ISR it wants with the leader epoch and partition epoch it knows (and from
v3 each member's broker epoch, KIP-903, so that a replica that restarted in between cannot be
let back in on its old fetches). The controller checks, per partition, in Kafka's order:

- the request's epochs are ahead of its own: NOT_CONTROLLER (this controller is behind);
- an older leader epoch: FENCED_LEADER_EPOCH; a sender that is not the leader: INVALID_REQUEST;
- an older partition epoch: INVALID_UPDATE_VERSION (the leader must learn the current ISR first);
- an ISR with a non-replica, a duplicate, or without the leader: INVALID_REQUEST; more than the
  leader while RECOVERING, or RECOVERED -> RECOVERING: INVALID_REQUEST;
- a new member that is unregistered, fenced, shutting down or of another broker epoch:
  INELIGIBLE_REPLICA (OPERATION_NOT_ATTEMPTED before v2).

An accepted change is one PartitionChangeRecord (partition epoch +1, leader epoch kept) and the
answer carries the partition's new state. When the new ISR completes a reassignment that removes
the leader, the leadership moves and the leader hears NEW_LEADER_ELECTED (FENCED_LEADER_EPOCH
before v2). The broker epoch of the sender is checked first: STALE_BROKER_EPOCH for the whole
request.
"""

from __future__ import annotations

from kafka_compat.metadata.image import RECOVERED, RECOVERING, MetadataImage, PartitionImage
from kafka_compat.metadata.partition_change import NO_LEADER_CHANGE, Election, PartitionChange, unclean_enabled
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, Uuid

R = m.AlterPartitionResponse


def alter_partition(image: MetadataImage, req: m.AlterPartitionRequest, version: int,
                    unclean_default: bool = False) -> tuple[list[Message], m.AlterPartitionResponse]:
    sender = image.brokers.get(req.broker_id)
    if sender is None or sender.epoch != req.broker_epoch:
        return [], R(error_code=ErrorCode.STALE_BROKER_EPOCH, topics=[])
    records: list[Message] = []
    topics = []
    for td in req.topics:
        topic = image.topics_by_id.get(td.topic_id) if version >= 2 else image.topics.get(td.topic_name)
        out = R.TopicData(topic_name=td.topic_name, topic_id=td.topic_id if version >= 2 else Uuid(), partitions=[])
        topics.append(out)
        if topic is None:
            code = ErrorCode.UNKNOWN_TOPIC_ID if version >= 2 else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            out.partitions = [R.PartitionData(partition_index=pd.partition_index, error_code=code, isr=[])
                              for pd in td.partitions]
            continue
        election = Election.UNCLEAN if unclean_enabled(image, topic.name, unclean_default) else Election.ONLINE
        for pd in td.partitions:
            isr = ([(b.broker_id, b.broker_epoch) for b in pd.new_isr_with_epochs] if version >= 3
                   else [(b, -1) for b in pd.new_isr])
            p = topic.partitions.get(pd.partition_index)
            code = _check(image, req.broker_id, p, pd, isr, version)
            if code != ErrorCode.NONE:
                out.partitions.append(R.PartitionData(partition_index=pd.partition_index, error_code=code, isr=[]))
                continue
            change = PartitionChange(p, topic.topic_id, image.is_active, election)
            change.isr = [b for b, _ in isr]
            change.recovery_state = pd.leader_recovery_state if version >= 1 else RECOVERED
            record = change.build()
            if record is not None:
                records.append(record)
                p = p.merge(record)
                if record.leader not in (NO_LEADER_CHANGE, req.broker_id):
                    moved = ErrorCode.NEW_LEADER_ELECTED if version >= 2 else ErrorCode.FENCED_LEADER_EPOCH
                    out.partitions.append(R.PartitionData(partition_index=pd.partition_index, error_code=moved,
                                                          isr=[]))
                    continue
            out.partitions.append(R.PartitionData(
                partition_index=p.partition, error_code=ErrorCode.NONE, leader_id=p.leader, leader_epoch=p.leader_epoch,
                isr=list(p.isr), leader_recovery_state=p.leader_recovery_state, partition_epoch=p.partition_epoch))
    return records, R(error_code=ErrorCode.NONE, topics=topics)


def _check(image: MetadataImage, sender: int, p: PartitionImage | None, pd, isr: list[tuple[int, int]],
           version: int) -> ErrorCode:
    if p is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if pd.leader_epoch > p.leader_epoch or pd.partition_epoch > p.partition_epoch:
        return ErrorCode.NOT_CONTROLLER
    if pd.leader_epoch < p.leader_epoch:
        return ErrorCode.FENCED_LEADER_EPOCH
    if sender != p.leader:
        return ErrorCode.INVALID_REQUEST
    if pd.partition_epoch < p.partition_epoch:
        return ErrorCode.INVALID_UPDATE_VERSION
    ids = [b for b, _ in isr]
    if len(set(ids)) != len(ids) or not set(ids) <= set(p.replicas) or p.leader not in ids:
        return ErrorCode.INVALID_REQUEST
    recovery = pd.leader_recovery_state if version >= 1 else RECOVERED
    if recovery == RECOVERING and (len(ids) > 1 or p.leader_recovery_state == RECOVERED):
        return ErrorCode.INVALID_REQUEST
    for b, epoch in isr:
        broker = image.brokers.get(b)
        if broker is None or not broker.active or (epoch != -1 and epoch != broker.epoch):
            return ErrorCode.INELIGIBLE_REPLICA if version >= 2 else ErrorCode.OPERATION_NOT_ATTEMPTED
    return ErrorCode.NONE
