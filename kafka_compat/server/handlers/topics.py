"""CreateTopics (v0-v7), DeleteTopics (v0-v6), CreatePartitions (v0-v3), DeleteRecords (v0-v2).

The first three go to the active controller (forwarded if it runs on another node) and through
the metadata log: the response is sent once the change is committed and applied here, so a
Metadata request that follows sees it.

Authorization as Kafka's: CreateTopics CREATE on the cluster or the topic (the configs shown need
DESCRIBE_CONFIGS on it), DeleteTopics DESCRIBE and DELETE, CreatePartitions ALTER, DeleteRecords
DELETE on the topic; what is denied answers TOPIC_AUTHORIZATION_FAILED and is never forwarded.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.server.authz import Op, Res, allowed, refused, split
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.server.handlers.configs import topic_entries

DENIED = ErrorCode.TOPIC_AUTHORIZATION_FAILED
STRICT = {m.ApiKey.CREATE_TOPICS: 6, m.ApiKey.DELETE_TOPICS: 5, m.ApiKey.CREATE_PARTITIONS: 3}  # KIP-599


def strict_mutations(ctx: RequestContext, validate_only: bool = False) -> bool:
    """Whether the request's version knows THROTTLING_QUOTA_EXCEEDED (KIP-599's strict quota): a
    client over its controller_mutation_rate is then refused topic by topic; older versions go
    through whole and are only told to slow down."""
    return ctx.api_version >= STRICT[ctx.api_key] and not validate_only


def admit_mutations(ctx: RequestContext, items: list, partitions) -> tuple[list, list, int]:
    """(admitted, refused, recorded) as Kafka's strict controller mutation quota decides, in request
    order: an item is admitted, its `partitions(item)` recorded at once, while the client's token
    bucket is not in debt; once a recording puts it in debt, the rest are refused. An item that
    mutates no partition (an unknown topic) is not the quota's to refuse."""
    broker = ctx.broker
    quotas = broker.metadata.client_quotas
    admitted, over, recorded = [], [], 0
    for item in items:
        n = partitions(item)
        if n > 0:
            if broker.quotas.mutation_throttle_ms(quotas, ctx.principal, ctx.client_id) > 0:
                over.append(item)
                continue
            broker.quotas.record_mutations(quotas, ctx.principal, ctx.client_id, n)
            recorded += n
        admitted.append(item)
    return admitted, over, recorded


def settle_mutations(ctx: RequestContext, mutated: int, recorded: int) -> int:
    """Record what the request mutated beyond what its admission recorded (less, where an admitted
    item failed); the throttle its client is then due (the response's throttle_time_ms, and the
    channel is muted that long)."""
    broker = ctx.broker
    quotas = broker.metadata.client_quotas
    if mutated != recorded:
        broker.quotas.record_mutations(quotas, ctx.principal, ctx.client_id, mutated - recorded)
    return broker.quotas.mutation_throttle_ms(quotas, ctx.principal, ctx.client_id)


def mutation_throttle(ctx: RequestContext) -> int:
    broker = ctx.broker
    return broker.quotas.mutation_throttle_ms(broker.metadata.client_quotas, ctx.principal, ctx.client_id)


@handles(m.ApiKey.CREATE_TOPICS, versions=(0, 7))
async def create_topics(ctx: RequestContext, req: m.CreateTopicsRequest) -> m.CreateTopicsResponse:
    broker = ctx.broker
    cluster = allowed(ctx, Op.CREATE, log_if_denied=False)
    req.topics, denied = split(ctx, req.topics, lambda t: cluster or allowed(ctx, Op.CREATE, Res.TOPIC, t.name))
    no = refused(ctx, req, "topics", denied, DENIED, "topics")
    recorded = 0
    if strict_mutations(ctx, req.validate_only):
        default = broker.config["num.partitions"]
        req.topics, over, recorded = admit_mutations(ctx, req.topics, lambda t: len(t.assignments) if t.assignments
                                                     else default if t.num_partitions == -1 else t.num_partitions)
        no += refused(ctx, req, "topics", over, ErrorCode.THROTTLING_QUOTA_EXCEEDED, "topics")
    throttle = mutation_throttle(ctx)
    if not req.topics:
        return m.CreateTopicsResponse(topics=no, throttle_time_ms=throttle)
    response = await broker.controller_request(ctx, req, seen=lambda image, response: req.validate_only or all(
        r.name in image.topics for r in response.topics if r.error_code == ErrorCode.NONE))
    if not req.validate_only:
        throttle = settle_mutations(ctx, sum(max(r.num_partitions, 1) for r in response.topics if r.error_code == 0),
                                    recorded)
    response.topics += no
    response.throttle_time_ms = max(response.throttle_time_ms or 0, throttle)
    if ctx.api_version >= 5:
        image = broker.metadata
        requested = {t.name: {c.name: c.value for c in t.configs} for t in req.topics}
        R = m.CreateTopicsResponse
        for result in response.topics:
            if result.error_code == ErrorCode.NONE and not allowed(ctx, Op.DESCRIBE_CONFIGS, Res.TOPIC, result.name,
                                                                   log_if_denied=False):
                result.topic_config_error_code = DENIED
            elif result.error_code == ErrorCode.NONE:
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
    image = broker.metadata

    def may(item) -> bool:
        name = item if ctx.api_version < 6 else item.name or (
            image.topics_by_id[item.topic_id].name if item.topic_id in image.topics_by_id else None)
        return name is None or (allowed(ctx, Op.DESCRIBE, Res.TOPIC, name)
                                and allowed(ctx, Op.DELETE, Res.TOPIC, name))
    field = "topics" if ctx.api_version >= 6 else "topic_names"
    kept, denied = split(ctx, getattr(req, field), may)
    setattr(req, field, kept)
    no = refused(ctx, req, field, denied, DENIED, "responses")
    recorded = 0
    if strict_mutations(ctx):
        def partitions(item) -> int:
            topic = image.topics.get(item) if ctx.api_version < 6 else (
                image.topics.get(item.name) if item.name else image.topics_by_id.get(item.topic_id))
            return len(topic.partitions) if topic is not None else 0
        kept, over, recorded = admit_mutations(ctx, kept, partitions)
        setattr(req, field, kept)
        no += refused(ctx, req, field, over, ErrorCode.THROTTLING_QUOTA_EXCEEDED, "responses")
    throttle = mutation_throttle(ctx)
    if not getattr(req, field):
        return m.DeleteTopicsResponse(responses=no, throttle_time_ms=throttle)
    response = await broker.controller_request(ctx, req, seen=lambda image, response: all(
        r.name not in image.topics for r in response.responses if r.error_code == ErrorCode.NONE and r.name))
    throttle = settle_mutations(ctx, sum(len(image.topics[r.name].partitions) for r in response.responses
                                         if r.error_code == ErrorCode.NONE and r.name in image.topics), recorded)
    response.responses += no
    response.throttle_time_ms = max(response.throttle_time_ms or 0, throttle)
    return response


@handles(m.ApiKey.CREATE_PARTITIONS, versions=(0, 3))
async def create_partitions(ctx: RequestContext, req: m.CreatePartitionsRequest) -> m.CreatePartitionsResponse:
    counts = {t.name: t.count for t in req.topics}
    req.topics, denied = split(ctx, req.topics, lambda t: allowed(ctx, Op.ALTER, Res.TOPIC, t.name))
    no = refused(ctx, req, "topics", denied, DENIED, "results")
    topics = ctx.broker.metadata.topics
    before = {t.name: len(topics[t.name].partitions) for t in req.topics if t.name in topics}
    recorded = 0
    if strict_mutations(ctx, req.validate_only):
        req.topics, over, recorded = admit_mutations(ctx, req.topics, lambda t: t.count - before.get(t.name, t.count))
        no += refused(ctx, req, "topics", over, ErrorCode.THROTTLING_QUOTA_EXCEEDED, "results")
    throttle = mutation_throttle(ctx)
    if not req.topics:
        return m.CreatePartitionsResponse(results=no, throttle_time_ms=throttle)
    response = await ctx.broker.controller_request(ctx, req, seen=lambda image, response: req.validate_only or all(
        len(image.topics[r.name].partitions) >= counts[r.name] for r in response.results
        if r.error_code == ErrorCode.NONE and r.name in image.topics))
    if not req.validate_only:  # the partitions added count, as Kafka's quota counts them
        throttle = settle_mutations(ctx, sum(counts[r.name] - before[r.name] for r in response.results
                                             if r.error_code == ErrorCode.NONE and r.name in before), recorded)
    response.results += no
    response.throttle_time_ms = max(response.throttle_time_ms or 0, throttle)
    return response


@handles(m.ApiKey.DELETE_RECORDS, versions=(0, 2))
async def delete_records(ctx: RequestContext, req: m.DeleteRecordsRequest) -> m.DeleteRecordsResponse:
    R = m.DeleteRecordsResponse
    topics = []
    for t in req.topics:
        parts = []
        may = allowed(ctx, Op.DELETE, Res.TOPIC, t.name)
        for p in t.partitions:
            out = R.DeleteRecordsPartitionResult(partition_index=p.partition_index, low_watermark=-1,
                                                 error_code=ErrorCode.NONE if may else DENIED)
            if not may:
                parts.append(out)
                continue
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
