"""Moving a partition's replicas: AlterPartitionReassignments (v0) and ListPartitionReassignments
(v0), the way KRaft does it.

A reassignment to target replicas T of a partition on replicas C is recorded at once: the
replicas become T followed by C - T, `adding_replicas` is T - C and `removing_replicas` C - T.
The adding replicas fetch from the leader like any follower and join the ISR through the
leader's AlterPartition; the change that makes the ISR hold all of T completes the reassignment
(the removing replicas leave the replicas and the ISR, and the leadership moves if the leader
was one of them). A reassignment whose ISR already holds T (a reordering, a pure removal)
completes in the same record.

Cancelling (null replicas) puts back the replicas of before, minus those being added, and keeps
the ISR members that were there before; if only adding replicas were in the ISR that would take
an unclean election, refused unless the topic allows one.
"""

from __future__ import annotations

from kafka_compat.metadata.image import MetadataImage, PartitionImage
from kafka_compat.metadata.partition_change import Election, PartitionChange, unclean_enabled
from kafka_compat.metadata.placement import assignment_problem
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, Uuid

R = m.AlterPartitionReassignmentsResponse


class ReassignmentError(Exception):
    def __init__(self, code: ErrorCode, message: str | None):
        super().__init__(message)
        self.code, self.message = code, message


def alter_partition_reassignments(image: MetadataImage, req: m.AlterPartitionReassignmentsRequest,
                                  unclean_default: bool = False) -> tuple[list[Message], Message]:
    records: list[Message] = []
    changed: dict[tuple[str, int], PartitionImage] = {}  # a partition named twice sees the first change
    responses = []
    for t in req.topics:
        out = R.ReassignableTopicResponse(name=t.name, partitions=[])
        responses.append(out)
        for target in t.partitions:
            key = (t.name, target.partition_index)
            code, message = ErrorCode.NONE, None
            try:
                p, record = _reassign(image, t.name, target.partition_index, target.replicas, unclean_default,
                                      changed.get(key))
            except ReassignmentError as e:
                code, message = e.code, e.message
            else:
                if record is not None:
                    records.append(record)
                    changed[key] = p.merge(record)
            out.partitions.append(R.ReassignablePartitionResponse(partition_index=target.partition_index,
                                                                  error_code=code, error_message=message))
    return records, R(error_code=ErrorCode.NONE, error_message=None, responses=responses)


def _reassign(image: MetadataImage, name: str, index: int, target: list[int] | None, unclean_default: bool,
              current: PartitionImage | None) -> tuple[PartitionImage, m.PartitionChangeRecord | None]:
    """(the partition as it stands, the change); `current`: the partition as this request left it."""
    topic = image.topics.get(name)
    if topic is None:
        raise ReassignmentError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find a topic named {name}.")
    p = current or topic.partitions.get(index)
    if p is None:
        raise ReassignmentError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unable to find partition {name}:{index}.")
    unclean = unclean_enabled(image, name, unclean_default)
    if target is None:
        return p, _cancel(image, topic.topic_id, name, p, unclean)
    problem = assignment_problem(image, target)
    if problem:
        raise ReassignmentError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem)
    removing = sorted(set(p.replicas) - set(target))
    adding = sorted(set(target) - set(p.replicas))
    change = PartitionChange(p, topic.topic_id, image.is_active)
    change.replicas = list(target) + removing
    if removing:
        change.removing = removing
    if adding:
        change.adding = adding
    return p, change.build()


def _cancel(image: MetadataImage, topic_id: Uuid, name: str, p: PartitionImage,
            unclean: bool) -> m.PartitionChangeRecord | None:
    if not p.reassigning:
        raise ReassignmentError(ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None)
    replicas = [r for r in p.replicas if r not in p.adding_replicas]
    isr = [r for r in p.isr if r not in p.adding_replicas]
    if not isr:
        if not unclean:
            raise ReassignmentError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                                    f"Unable to revert partition assignment for {name}:{p.partition} because it "
                                    "would require an unclean leader election.")
        isr = replicas[:1]
    change = PartitionChange(p, topic_id, image.is_active, Election.UNCLEAN if unclean else Election.ONLINE)
    change.isr, change.replicas, change.adding, change.removing = isr, replicas, [], []
    return change.build()


def list_partition_reassignments(image: MetadataImage, req: m.ListPartitionReassignmentsRequest) -> Message:
    L = m.ListPartitionReassignmentsResponse
    if req.topics is None:
        wanted = [(name, sorted(t.partitions)) for name, t in sorted(image.topics.items())]
    else:
        wanted = [(t.name, list(t.partition_indexes)) for t in req.topics if t.name in image.topics]
    topics = []
    for name, indexes in wanted:
        parts = image.topics[name].partitions
        ongoing = [L.OngoingPartitionReassignment(partition_index=i, replicas=list(p.replicas),
                                                  adding_replicas=list(p.adding_replicas),
                                                  removing_replicas=list(p.removing_replicas))
                   for i in indexes if (p := parts.get(i)) is not None and p.reassigning]
        if ongoing:
            topics.append(L.OngoingTopicReassignment(name=name, partitions=ongoing))
    return L(error_code=ErrorCode.NONE, error_message=None, topics=topics)
