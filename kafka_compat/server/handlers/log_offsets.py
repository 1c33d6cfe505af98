"""Offsets in a partition's log, found by time or by leader epoch.

    ListOffsets           v0-v10  earliest (-2), latest (-1), max timestamp (-3), earliest local (-4),
                                  or the first offset whose timestamp is at least a given time
    OffsetForLeaderEpoch  v0-v4   where a leader epoch ends in the leader's log (clients check their
                                  position after a leader change, KIP-320)

Consumers see offsets up to the high watermark (the last stable offset with read_committed). An
unknown timestamp answers offset -1 and timestamp -1. v0 answers with its old list of offsets.
Followers (a replica id) are answered by the replication core: the leader's log end or start, and
where their last epoch ends here, to find where their log diverges.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.server.authz import Op, Res, allowed, split
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.storage.log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP

R = m.ListOffsetsResponse
READ_COMMITTED = 1


def _one(ctx: RequestContext, topic: str, part, isolation: int) -> R.ListOffsetsPartitionResponse:
    out = R.ListOffsetsPartitionResponse(partition_index=part.partition_index, error_code=ErrorCode.NONE)
    with_epoch = ctx.api_version >= 4
    if not allowed(ctx, Op.DESCRIBE, Res.TOPIC, topic):
        out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return out
    try:
        p = ctx.broker.replicas.leader(topic, part.partition_index, part.current_leader_epoch)
    except KafkaError as e:
        out.error_code = e.code
        return out
    bound = p.last_stable_offset if isolation == READ_COMMITTED else p.high_watermark
    log = p.log
    if ctx.api_version == 0:
        if part.timestamp == LATEST_TIMESTAMP:
            offsets = [bound]
        elif part.timestamp == EARLIEST_TIMESTAMP:
            offsets = [log.log_start_offset]
        else:
            found = log.offset_for_timestamp(part.timestamp, bound)
            offsets = [found.offset] if found else []
        out.old_style_offsets = offsets[: max(part.max_num_offsets, 0)]
        return out
    if part.timestamp == LATEST_TIMESTAMP:
        out.offset = bound
        if with_epoch:
            out.leader_epoch = log.epochs.latest_epoch
        return out
    found = log.offset_for_timestamp(part.timestamp, bound)
    if found is not None:
        out.timestamp, out.offset = found.timestamp, found.offset
        if with_epoch:
            out.leader_epoch = found.leader_epoch
    return out


@handles(m.ApiKey.LIST_OFFSETS, versions=(0, 10))
async def list_offsets(ctx: RequestContext, req: m.ListOffsetsRequest) -> R:
    if req.replica_id >= 0:
        return ctx.broker.replicas.list_offsets_for_replica(req)
    isolation = req.isolation_level if ctx.api_version >= 2 else 0
    topics = [R.ListOffsetsTopicResponse(name=t.name,
                                         partitions=[_one(ctx, t.name, p, isolation) for p in t.partitions])
              for t in req.topics]
    return R(throttle_time_ms=0, topics=topics)


@handles(m.ApiKey.OFFSET_FOR_LEADER_EPOCH, versions=(0, 4))
async def offset_for_leader_epoch(ctx: RequestContext,
                                  req: m.OffsetForLeaderEpochRequest) -> m.OffsetForLeaderEpochResponse:
    follower = ctx.api_version >= 3 and req.replica_id >= 0 and allowed(ctx, Op.CLUSTER_ACTION)
    if follower or ctx.broker.authorizer is None:
        return ctx.broker.replicas.offsets_for_leader_epoch(req)
    R = m.OffsetForLeaderEpochResponse
    req.topics, denied = split(ctx, req.topics, lambda t: allowed(ctx, Op.DESCRIBE, Res.TOPIC, t.topic))
    response = ctx.broker.replicas.offsets_for_leader_epoch(req)
    response.topics += [R.OffsetForLeaderTopicResult(topic=t.topic, partitions=[
        R.EpochEndOffset(partition=p.partition, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, leader_epoch=-1,
                         end_offset=-1) for p in t.partitions]) for t in denied]
    return response
