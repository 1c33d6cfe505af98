"""The KRaft RPCs as the node builds and reads them, for the one partition `__cluster_metadata-0`.

Versions sent (all flexible): Vote v1, BeginQuorumEpoch v1, EndQuorumEpoch v1,
DescribeQuorum v2, Fetch v17 (topic id, `replica_state`, `cluster_id`), FetchSnapshot v1. The
handlers read older versions too (the driver lists which it serves); answers use the request's.

Pre-vote (KIP-996) arrived with Vote v2 (a `PreVote` field) in Kafka 4.0; the protocol specs here
are Kafka 3.9's, which stop at v1. Until they are re-imported, a pre-vote is a Vote v1 carrying
the tagged field PRE_VOTE_TAG (value 0x01) in its partition: a peer that does not know the tag
ignores it, as flexible versions require. `is_pre_vote`/`vote_request` are the only places that
know this. Its candidate epoch is the asker's epoch + 1, the epoch it would stand in.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.protocol.primitives import METADATA_TOPIC_UUID
from kafka_compat.raft.log import OffsetAndEpoch

METADATA_TOPIC = "__cluster_metadata"
METADATA_PARTITION = 0
METADATA_TOPIC_ID = METADATA_TOPIC_UUID
PRE_VOTE_TAG = 996

VERSIONS = {
    ApiKey.VOTE: 1,
    ApiKey.BEGIN_QUORUM_EPOCH: 1,
    ApiKey.END_QUORUM_EPOCH: 1,
    ApiKey.DESCRIBE_QUORUM: 2,
    ApiKey.FETCH: 17,
    ApiKey.FETCH_SNAPSHOT: 1,
}
NONE = ErrorCode.NONE


def partition_of(message):
    """The `__cluster_metadata-0` entry of a request or response, or None if it has none."""
    if isinstance(message, m.FetchRequest):
        topics, match = message.topics, lambda t: t.topic_id == METADATA_TOPIC_ID or t.topic == METADATA_TOPIC
        index = "partition"
    elif isinstance(message, m.FetchResponse):
        topics, match = message.responses, lambda t: t.topic_id == METADATA_TOPIC_ID or t.topic == METADATA_TOPIC
        index = "partition_index"
    elif isinstance(message, m.FetchSnapshotRequest):
        topics, match, index = message.topics, lambda t: t.name == METADATA_TOPIC, "partition"
    elif isinstance(message, m.FetchSnapshotResponse):
        topics, match, index = message.topics, lambda t: t.name == METADATA_TOPIC, "index"
    else:
        topics, match, index = message.topics, lambda t: t.topic_name == METADATA_TOPIC, "partition_index"
    for topic in topics:
        if match(topic):
            for p in topic.partitions:
                if getattr(p, index) == METADATA_PARTITION:
                    return p
    return None


# Vote

def vote_request(cluster_id, candidate_id: int, epoch: int, last: OffsetAndEpoch, voter_id: int,
                 pre_vote: bool) -> m.VoteRequest:
    p = m.VoteRequest.PartitionData(partition_index=METADATA_PARTITION, replica_epoch=epoch,
                                    replica_id=candidate_id, last_offset_epoch=last.epoch, last_offset=last.offset,
                                    _unknown_tags=[(PRE_VOTE_TAG, b"\x01")] if pre_vote else None)
    return m.VoteRequest(cluster_id=cluster_id, voter_id=voter_id,
                         topics=[m.VoteRequest.TopicData(topic_name=METADATA_TOPIC, partitions=[p])])


def is_pre_vote(p: m.VoteRequest.PartitionData) -> bool:
    return any(tag == PRE_VOTE_TAG and data == b"\x01" for tag, data in p._unknown_tags or ())


def vote_response(error, leader_id: int, epoch: int, granted: bool, partition_error=NONE) -> m.VoteResponse:
    R = m.VoteResponse
    p = R.PartitionData(partition_index=METADATA_PARTITION, error_code=partition_error, leader_id=leader_id,
                        leader_epoch=epoch, vote_granted=granted)
    return R(error_code=error, topics=[R.TopicData(topic_name=METADATA_TOPIC, partitions=[p])])


# BeginQuorumEpoch / EndQuorumEpoch

def begin_quorum_epoch_request(cluster_id, leader_id: int, epoch: int, voter_id: int) -> m.BeginQuorumEpochRequest:
    R = m.BeginQuorumEpochRequest
    p = R.PartitionData(partition_index=METADATA_PARTITION, leader_id=leader_id, leader_epoch=epoch)
    return R(cluster_id=cluster_id, voter_id=voter_id, topics=[R.TopicData(topic_name=METADATA_TOPIC, partitions=[p])])


def begin_quorum_epoch_response(error, leader_id: int, epoch: int, partition_error=NONE):
    R = m.BeginQuorumEpochResponse
    p = R.PartitionData(partition_index=METADATA_PARTITION, error_code=partition_error, leader_id=leader_id,
                        leader_epoch=epoch)
    return R(error_code=error, topics=[R.TopicData(topic_name=METADATA_TOPIC, partitions=[p])])


def end_quorum_epoch_request(cluster_id, leader_id: int, epoch: int, successors: list[int]):
    R = m.EndQuorumEpochRequest
    p = R.PartitionData(partition_index=METADATA_PARTITION, leader_id=leader_id, leader_epoch=epoch,
                        preferred_candidates=[R.ReplicaInfo(candidate_id=s) for s in successors])
    return R(cluster_id=cluster_id, topics=[R.TopicData(topic_name=METADATA_TOPIC, partitions=[p])])


def preferred_successors(p, version: int) -> list[int]:
    return [c.candidate_id for c in p.preferred_candidates] if version >= 1 else list(p.preferred_successors)


def end_quorum_epoch_response(error, leader_id: int, epoch: int, partition_error=NONE):
    R = m.EndQuorumEpochResponse
    p = R.PartitionData(partition_index=METADATA_PARTITION, error_code=partition_error, leader_id=leader_id,
                        leader_epoch=epoch)
    return R(error_code=error, topics=[R.TopicData(topic_name=METADATA_TOPIC, partitions=[p])])


# Fetch

def fetch_request(cluster_id, replica_id: int, epoch: int, end: OffsetAndEpoch, log_start: int, max_wait_ms: int,
                  max_bytes: int) -> m.FetchRequest:
    R = m.FetchRequest
    p = R.FetchPartition(partition=METADATA_PARTITION, current_leader_epoch=epoch, fetch_offset=end.offset,
                         last_fetched_epoch=end.epoch, log_start_offset=log_start, partition_max_bytes=max_bytes)
    return R(cluster_id=cluster_id, replica_state=R.ReplicaState(replica_id=replica_id), max_wait_ms=max_wait_ms,
             min_bytes=0, max_bytes=max_bytes,
             topics=[R.FetchTopic(topic_id=METADATA_TOPIC_ID, partitions=[p])])


def fetch_replica_id(request: m.FetchRequest, version: int) -> int:
    return request.replica_state.replica_id if version >= 15 else request.replica_id


def fetch_response(error, leader_id: int, epoch: int, *, partition_error=NONE, high_watermark: int = -1,
                   log_start: int = -1, records: bytes | None = None, diverging: OffsetAndEpoch | None = None,
                   snapshot: OffsetAndEpoch | None = None) -> m.FetchResponse:
    R = m.FetchResponse
    p = R.PartitionData(partition_index=METADATA_PARTITION, error_code=partition_error,
                        high_watermark=high_watermark, log_start_offset=log_start, records=records,
                        current_leader=R.LeaderIdAndEpoch(leader_id=leader_id, leader_epoch=epoch))
    if diverging is not None:
        p.diverging_epoch = R.EpochEndOffset(epoch=diverging.epoch, end_offset=diverging.offset)
    if snapshot is not None:
        p.snapshot_id = R.SnapshotId(end_offset=snapshot.offset, epoch=snapshot.epoch)
    return R(error_code=error, responses=[
        R.FetchableTopicResponse(topic_id=METADATA_TOPIC_ID, partitions=[p])])


# FetchSnapshot

def fetch_snapshot_request(cluster_id, replica_id: int, epoch: int, snapshot_id: OffsetAndEpoch, position: int,
                           max_bytes: int) -> m.FetchSnapshotRequest:
    R = m.FetchSnapshotRequest
    p = R.PartitionSnapshot(partition=METADATA_PARTITION, current_leader_epoch=epoch, position=position,
                            snapshot_id=R.SnapshotId(end_offset=snapshot_id.offset, epoch=snapshot_id.epoch))
    return R(cluster_id=cluster_id, replica_id=replica_id, max_bytes=max_bytes,
             topics=[R.TopicSnapshot(name=METADATA_TOPIC, partitions=[p])])


def fetch_snapshot_response(error, leader_id: int, epoch: int, *, partition_error=NONE,
                            snapshot_id: OffsetAndEpoch | None = None, size: int = 0, position: int = 0,
                            data: bytes = b"") -> m.FetchSnapshotResponse:
    R = m.FetchSnapshotResponse
    sid = snapshot_id or OffsetAndEpoch(-1, -1)
    p = R.PartitionSnapshot(index=METADATA_PARTITION, error_code=partition_error,
                            snapshot_id=R.SnapshotId(end_offset=sid.offset, epoch=sid.epoch),
                            current_leader=R.LeaderIdAndEpoch(leader_id=leader_id, leader_epoch=epoch),
                            size=size, position=position, unaligned_records=data)
    return R(error_code=error, topics=[R.TopicSnapshot(name=METADATA_TOPIC, partitions=[p])])


# DescribeQuorum

def describe_quorum_request() -> m.DescribeQuorumRequest:
    R = m.DescribeQuorumRequest
    return R(topics=[R.TopicData(topic_name=METADATA_TOPIC,
                                 partitions=[R.PartitionData(partition_index=METADATA_PARTITION)])])


def leader_of(p) -> tuple[int, int]:
    """(leader id, epoch) a response partition names, whichever schema it uses."""
    if hasattr(p, "current_leader"):
        return p.current_leader.leader_id, p.current_leader.leader_epoch
    return p.leader_id, p.leader_epoch


def response_error(message, p) -> int:
    """The error that matters: the top-level one if set, else the partition's."""
    return message.error_code or (p.error_code if p is not None else ErrorCode.INVALID_REQUEST)
