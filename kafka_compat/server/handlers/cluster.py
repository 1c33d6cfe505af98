"""DescribeCluster (v0-v1), DescribeLogDirs (v0-v5; v5's IsCordoned is false: no log dir is
cordoned here), OffsetForLeaderEpoch (v0-v4), DescribeTopicPartitions (v0): what the cluster, its
disks and its partitions look like."""

from __future__ import annotations

import os
from collections import defaultdict

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.server.handlers.metadata import CLUSTER_OPERATIONS, NO_OPERATIONS, TOPIC_OPERATIONS


@handles(m.ApiKey.DESCRIBE_CLUSTER, versions=(0, 1))
async def describe_cluster(ctx: RequestContext, req: m.DescribeClusterRequest) -> m.DescribeClusterResponse:
    R = m.DescribeClusterResponse
    image = ctx.broker.metadata
    if ctx.api_version >= 1 and req.endpoint_type != 1:  # 1: brokers; 2: controllers (KIP-919)
        return R(error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, error_message="Only broker endpoints are served here.",
                 endpoint_type=req.endpoint_type, cluster_id=image.cluster_id)
    brokers = []
    for b in sorted(image.live_brokers(), key=lambda b: b.node_id):
        e = b.endpoint(ctx.listener)
        if e is not None:
            brokers.append(R.DescribeClusterBroker(broker_id=b.node_id, host=e.host, port=e.port, rack=b.rack))
    return R(error_code=ErrorCode.NONE, endpoint_type=1, cluster_id=image.cluster_id, controller_id=ctx.broker.node_id,
             brokers=brokers, cluster_authorized_operations=(
                 CLUSTER_OPERATIONS if req.include_cluster_authorized_operations else NO_OPERATIONS))


@handles(m.ApiKey.DESCRIBE_LOG_DIRS, versions=(0, 5))
async def describe_log_dirs(ctx: RequestContext, req: m.DescribeLogDirsRequest) -> m.DescribeLogDirsResponse:
    R = m.DescribeLogDirsResponse
    wanted = None if req.topics is None else {(t.topic, p) for t in req.topics for p in t.partitions}
    by_dir: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for p in ctx.broker.replicas:
        if wanted is not None and p.key not in wanted:
            continue
        lag = max(p.log.log_end_offset - p.high_watermark, 0)
        by_dir[str(p.log.dir.parent)][p.topic].append(R.DescribeLogDirsPartition(
            partition_index=p.index, partition_size=p.log.size_in_bytes, offset_lag=lag, is_future_key=False))
    results = []
    for d in ctx.broker.config.log_dirs:
        st = os.statvfs(d)
        topics = [R.DescribeLogDirsTopic(name=t, partitions=parts) for t, parts in sorted(by_dir[str(d)].items())]
        results.append(R.DescribeLogDirsResult(error_code=ErrorCode.NONE, log_dir=str(d), topics=topics,
                                               total_bytes=st.f_blocks * st.f_frsize,
                                               usable_bytes=st.f_bavail * st.f_frsize))
    return R(throttle_time_ms=0, error_code=ErrorCode.NONE, results=results)


@handles(m.ApiKey.OFFSET_FOR_LEADER_EPOCH, versions=(0, 4))
async def offset_for_leader_epoch(ctx: RequestContext,
                                  req: m.OffsetForLeaderEpochRequest) -> m.OffsetForLeaderEpochResponse:
    R = m.OffsetForLeaderEpochResponse
    topics = []
    for t in req.topics:
        parts = []
        for p in t.partitions:
            out = R.EpochEndOffset(partition=p.partition, error_code=ErrorCode.NONE, leader_epoch=-1, end_offset=-1)
            try:
                partition = ctx.broker.replicas.leader(t.topic, p.partition, p.current_leader_epoch)
                log = partition.log
                out.leader_epoch, out.end_offset = log.epochs.end_offset_for_epoch(p.leader_epoch, log.log_end_offset)
            except KafkaError as e:
                out.error_code = e.code
            parts.append(out)
        topics.append(R.OffsetForLeaderTopicResult(topic=t.topic, partitions=parts))
    return R(throttle_time_ms=0, topics=topics)


@handles(m.ApiKey.DESCRIBE_TOPIC_PARTITIONS, versions=(0, 0))
async def describe_topic_partitions(ctx: RequestContext,
                                    req: m.DescribeTopicPartitionsRequest) -> m.DescribeTopicPartitionsResponse:
    """Topics in name order from the cursor, at most `response_partition_limit` partitions."""
    R = m.DescribeTopicPartitionsResponse
    image = ctx.broker.metadata
    live = {b.node_id for b in image.live_brokers()}
    names = sorted(image.topics) if not req.topics else sorted(t.name for t in req.topics)
    start_topic, start_partition = (req.cursor.topic_name, req.cursor.partition_index) if req.cursor else (None, 0)
    if start_topic is not None:
        names = [n for n in names if n >= start_topic]
    budget = req.response_partition_limit
    topics, cursor = [], None
    for name in names:
        topic = image.topics.get(name)
        if topic is None:
            topics.append(R.DescribeTopicPartitionsResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                                                 name=name))
            continue
        first = start_partition if name == start_topic else 0
        parts = []
        for index in sorted(i for i in topic.partitions if i >= first):
            if budget == 0:
                cursor = R.Cursor(topic_name=name, partition_index=index)
                break
            p = topic.partitions[index]
            parts.append(R.DescribeTopicPartitionsResponsePartition(
                error_code=ErrorCode.NONE, partition_index=index, leader_id=p.leader if p.leader in live else -1,
                leader_epoch=p.leader_epoch, replica_nodes=list(p.replicas), isr_nodes=list(p.isr),
                eligible_leader_replicas=list(p.eligible_leader_replicas), last_known_elr=list(p.last_known_elr),
                offline_replicas=[]))
            budget -= 1
        topics.append(R.DescribeTopicPartitionsResponseTopic(
            error_code=ErrorCode.NONE, name=name, topic_id=topic.topic_id, is_internal=topic.internal, partitions=parts,
            topic_authorized_operations=TOPIC_OPERATIONS))
        if cursor is not None:
            break
    return R(throttle_time_ms=0, topics=topics, next_cursor=cursor)
