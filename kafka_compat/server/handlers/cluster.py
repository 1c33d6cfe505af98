"""DescribeCluster (v0-v1), DescribeLogDirs (v0-v5; v5's IsCordoned is false: no log dir is
cordoned here): what the cluster and its disks look like, DescribeLogDirs needing DESCRIBE on the
cluster and DescribeCluster filling in the cluster's authorized operations when asked;
UnregisterBroker (v0): a broker gone for good leaves the cluster (through the active controller)."""

from __future__ import annotations

import os
from collections import defaultdict

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.authz import Op, Res, allowed, operations
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.server.handlers.metadata import NO_OPERATIONS


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
                 operations(ctx, Res.CLUSTER) if req.include_cluster_authorized_operations else NO_OPERATIONS))


@handles(m.ApiKey.DESCRIBE_LOG_DIRS, versions=(0, 5))
async def describe_log_dirs(ctx: RequestContext, req: m.DescribeLogDirsRequest) -> m.DescribeLogDirsResponse:
    R = m.DescribeLogDirsResponse
    if not allowed(ctx, Op.DESCRIBE):  # Kafka: DESCRIBE on the cluster, else nothing to see
        return R(throttle_time_ms=0, error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED, results=[])
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


@handles(m.ApiKey.UNREGISTER_BROKER, versions=(0, 0))
async def unregister_broker(ctx: RequestContext, req: m.UnregisterBrokerRequest) -> m.UnregisterBrokerResponse:
    return await ctx.broker.controller_request(ctx, req, seen=lambda image, response: (
        response.error_code != ErrorCode.NONE or req.broker_id not in image.brokers))
