"""CreateTopics (v0-v7), DeleteTopics (v0-v6), CreatePartitions (v0-v3), DeleteRecords (v0-v2).

The first three go to the active controller (forwarded if it runs on another node) and through
the metadata log: the response is sent once the change is committed and applied here, so a
Metadata request that follows sees it.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.server.handlers.configs import topic_entries


@handles(m.ApiKey.CREATE_TOPICS, versions=(0, 7))
async def create_topics(ctx: RequestContext, req: m.CreateTopicsRequest) -> m.CreateTopicsResponse:
    broker = ctx.broker
    response = await broker.controller_request(ctx, req, seen=lambda image, response: req.validate_only or all(
        r.name in image.topics for r in response.topics if r.error_code == ErrorCode.NONE))
    if ctx.api_version >= 5:
        image = broker.metadata
        requested = {t.name: {c.name: c.value for c in t.configs} for t in req.topics}
        R = m.CreateTopicsResponse
        for result in response.topics:
            if result.error_code == ErrorCode.NONE:
                result.configs = [R.CreatableTopicConfigs(name=k, value=val, read_only=False, config_source=src,
                                                          is_sensitive=False)
                                  for k, val, src, _ in topic_entries(ctx, image, requested.get(result.name, {}))]
    return response


@handles(m.ApiKey.DELETE_TOPICS, versions=(0, 6))
async def delete_topics(ctx: RequestContext, req: m.DeleteTopicsRequest) -> m.DeleteTopicsResponse:
    broker = ctx.broker
    if not broker.config["delete.topic.enable"]:
        R = m.DeleteTopicsResponse
        names = ([(t.name, t.topic_id) for t in req.topics] if ctx.api_version >= 6
                 else [(n, None) for n in req.topic_names])
        return R(responses=[R.DeletableTopicResult(name=n, topic_id=i or Uuid(),
                                                   error_code=ErrorCode.TOPIC_DELETION_DISABLED)
                            for n, i in names])
    return await broker.controller_request(ctx, req, seen=lambda image, response: all(
        r.name not in image.topics for r in response.responses if r.error_code == ErrorCode.NONE and r.name))


@handles(m.ApiKey.CREATE_PARTITIONS, versions=(0, 3))
async def create_partitions(ctx: RequestContext, req: m.CreatePartitionsRequest) -> m.CreatePartitionsResponse:
    counts = {t.name: t.count for t in req.topics}
    return await ctx.broker.controller_request(ctx, req, seen=lambda image, response: req.validate_only or all(
        len(image.topics[r.name].partitions) >= counts[r.name] for r in response.results
        if r.error_code == ErrorCode.NONE and r.name in image.topics))


@handles(m.ApiKey.DELETE_RECORDS, versions=(0, 2))
async def delete_records(ctx: RequestContext, req: m.DeleteRecordsRequest) -> m.DeleteRecordsResponse:
    R = m.DeleteRecordsResponse
    topics = []
    for t in req.topics:
        parts = []
        for p in t.partitions:
            out = R.DeleteRecordsPartitionResult(partition_index=p.partition_index, low_watermark=-1,
                                                 error_code=ErrorCode.NONE)
            try:
                partition = ctx.broker.replicas.leader(t.name, p.partition_index)
                hw = partition.high_watermark
                offset = hw if p.offset == -1 else p.offset
                if not partition.log.config.delete:  # checked first, as Kafka does
                    out.error_code = ErrorCode.POLICY_VIOLATION
                elif offset < 0 or offset > hw:
                    out.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
                else:
                    out.low_watermark = partition.log.advance_log_start_offset(offset)
            except KafkaError as e:  # StorageError among them
                out.error_code = e.code
            parts.append(out)
        topics.append(R.DeleteRecordsTopicResult(name=t.name, partitions=parts))
    return R(throttle_time_ms=0, topics=topics)
