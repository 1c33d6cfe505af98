"""Leader elections an operator or a timer asks for: ElectLeaders (v0-2), the automatic move back
to preferred leaders (`auto.leader.rebalance.enable`), and unclean elections of offline
partitions once a topic allows them.

- PREFERRED: the first replica leads again if it is live and in the ISR. ELECTION_NOT_NEEDED
  when it already leads, PREFERRED_LEADER_NOT_AVAILABLE when it cannot.
- UNCLEAN: a leaderless partition gets a leader, from outside the ISR if need be.
  ELECTION_NOT_NEEDED when it has one, ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica is live.
- Without a partition list, every partition is tried and those that need nothing are left out
  of the answer.

The rebalance is a pure decision over the image: for each broker, of the partitions whose first
replica it is, the share it does not lead; above `leader.imbalance.per.broker.percentage`, those
whose preferred replica can lead move back (not while they are being reassigned). Kafka's KRaft
controller ignores this setting and moves every such partition; we honour the documented ratio.
The driver runs it every `leader.imbalance.check.interval.seconds`.
"""

from __future__ import annotations

from collections import defaultdict

from kafka_compat.metadata.image import NO_LEADER, MetadataImage, PartitionImage, TopicImage
from kafka_compat.metadata.partition_change import Election, PartitionChange, unclean_enabled
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message

PREFERRED, UNCLEAN = 0, 1  # ElectLeaders election types
R = m.ElectLeadersResponse
MESSAGES = {
    ErrorCode.ELECTION_NOT_NEEDED: "Leader election not needed for topic partition.",
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE: "The preferred leader was not available.",
    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE: "Eligible topic partition leaders are not available.",
}


def elect_leaders(image: MetadataImage, req: m.ElectLeadersRequest, version: int) -> tuple[list[Message], Message]:
    kind = req.election_type if version >= 1 else PREFERRED
    if kind not in (PREFERRED, UNCLEAN):
        message = f"Unknown election type {kind}"
        return [], R(error_code=ErrorCode.INVALID_REQUEST, replica_election_results=[
            R.ReplicaElectionResult(topic=t.topic, partition_result=[
                R.PartitionResult(partition_id=p, error_code=ErrorCode.INVALID_REQUEST, error_message=message)
                for p in t.partitions]) for t in req.topic_partitions or ()])
    records: list[Message] = []
    elected: dict[tuple[str, int], PartitionImage] = {}
    everything = req.topic_partitions is None
    wanted = ([(name, sorted(image.topics[name].partitions)) for name in sorted(image.topics)] if everything
              else [(t.topic, t.partitions) for t in req.topic_partitions])
    results = []
    for name, indexes in wanted:
        out = R.ReplicaElectionResult(topic=name, partition_result=[])
        results.append(out)
        for index in indexes:
            code, message = _elect(image, name, index, kind, records, elected)
            if not (everything and code == ErrorCode.ELECTION_NOT_NEEDED):
                out.partition_result.append(R.PartitionResult(partition_id=index, error_code=code,
                                                              error_message=message))
    return records, R(error_code=ErrorCode.NONE, replica_election_results=results)


def _elect(image: MetadataImage, name: str, index: int, kind: int, records: list[Message],
           elected: dict[tuple[str, int], PartitionImage]) -> tuple[ErrorCode, str | None]:
    topic = image.topics.get(name)
    if topic is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {name}"
    p = elected.get((name, index)) or topic.partitions.get(index)  # named twice: the first outcome counts
    if p is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {name}-{index}"
    if p.leader == p.preferred_leader if kind == PREFERRED else p.leader != NO_LEADER:
        return ErrorCode.ELECTION_NOT_NEEDED, MESSAGES[ErrorCode.ELECTION_NOT_NEEDED]
    election = Election.PREFERRED if kind == PREFERRED else Election.UNCLEAN
    record = PartitionChange(p, topic.topic_id, image.is_active, election).build()
    if record is None:
        code = (ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE if kind == PREFERRED
                else ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE)
        return code, MESSAGES[code]
    records.append(record)
    elected[(name, index)] = p.merge(record)
    return ErrorCode.NONE, None


def imbalanced_partitions(image: MetadataImage, percentage: int) -> list[tuple[TopicImage, PartitionImage]]:
    """The partitions to move back to their preferred leader now."""
    preferring: dict[int, list[tuple[TopicImage, PartitionImage]]] = defaultdict(list)
    for topic in image.topics.values():
        for p in topic.partitions.values():
            if p.replicas:
                preferring[p.preferred_leader].append((topic, p))
    moves = []
    for broker, owned in sorted(preferring.items()):
        elsewhere = [(t, p) for t, p in owned if p.leader != broker]
        if len(elsewhere) * 100 > percentage * len(owned):
            moves += [(t, p) for t, p in elsewhere
                      if not p.reassigning and broker in p.isr and image.is_active(broker)]
    return moves


def rebalance_leaders(image: MetadataImage, percentage: int) -> list[Message]:
    """PartitionChangeRecords electing the preferred leaders of the imbalanced partitions."""
    records = []
    for topic, p in imbalanced_partitions(image, percentage):
        record = PartitionChange(p, topic.topic_id, image.is_active, Election.PREFERRED).build()
        if record is not None:
            records.append(record)
    return records


def elect_unclean_leaders(image: MetadataImage, unclean_default: bool) -> list[Message]:
    """Leaders for offline partitions of topics that allow unclean election (for instance after
    `unclean.leader.election.enable` was turned on for them)."""
    records = []
    for topic in image.topics.values():
        if not unclean_enabled(image, topic.name, unclean_default):
            continue
        for p in topic.partitions.values():
            if p.leader == NO_LEADER:
                record = PartitionChange(p, topic.topic_id, image.is_active, Election.UNCLEAN).build()
                if record is not None:
                    records.append(record)
    return records
