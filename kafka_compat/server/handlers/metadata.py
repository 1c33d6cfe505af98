"""Metadata (v0-v13): brokers on the caller's listener, topics by name or id, auto-creation;
v13's top-level error code is NONE: this broker never asks a client to rebootstrap (KIP-1102).
Authorization as Kafka's: a topic without DESCRIBE is never shown (left out of "all topics",
TOPIC_AUTHORIZATION_FAILED when named, whether it exists or not); auto-creation needs CREATE on
the cluster or on the topic; the authorized-operations fields are filled in when asked for.
DescribeTopicPartitions (v0): the topics' partitions in pages (KIP-966).

Partitions show their replicas, ISR and leader epoch as the metadata image has them, a leader
only if it is live (else LEADER_NOT_AVAILABLE), and as offline the replicas on brokers fenced,
unregistered or without the caller's listener. v0 asks for all topics with an empty list; v1+
with null. A topic that does not exist is created
when the request allows it (v4+ `allow_auto_topic_creation`, always before) and the broker's
`auto.create.topics.enable` is on; it is answered with its new metadata at once.
"""

from __future__ import annotations

from kafka_compat.metadata.controller import topic_name_problem
from kafka_compat.metadata.image import MetadataImage, TopicImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.server.authz import Op, Res, allowed, filter_allowed, operations
from kafka_compat.server.handlers import RequestContext, handles

R = m.MetadataResponse
NO_OPERATIONS = -2147483648
DENIED = ErrorCode.TOPIC_AUTHORIZATION_FAILED


async def auto_create(ctx: RequestContext, names: list[str]) -> MetadataImage:
    """Create missing topics with the broker's defaults, as Kafka's auto-creation does (a
    CreateTopics of the broker's own to the active controller); return the image afterwards."""
    C = m.CreateTopicsRequest
    wanted = [n for n in names if not topic_name_problem(n)]
    if wanted:
        await ctx.broker.create_topics([C.CreatableTopic(name=n, num_partitions=-1, replication_factor=-1)
                                        for n in wanted])
    return ctx.broker.metadata


def topic_metadata(ctx: RequestContext, image: MetadataImage, topic: TopicImage,
                   include_ops: bool) -> R.MetadataResponseTopic:
    parts = []
    live = {b.node_id for b in image.live_brokers()}
    for index in sorted(topic.partitions):
        p = topic.partitions[index]
        leader = p.leader if p.leader in live else -1
        parts.append(R.MetadataResponsePartition(
            error_code=ErrorCode.NONE if leader >= 0 else ErrorCode.LEADER_NOT_AVAILABLE,
            partition_index=index, leader_id=leader, leader_epoch=p.leader_epoch,
            replica_nodes=list(p.replicas), isr_nodes=list(p.isr),
            offline_replicas=list(image.offline_replicas(p, ctx.listener))))
    return R.MetadataResponseTopic(error_code=ErrorCode.NONE, name=topic.name, topic_id=topic.topic_id,
                                   is_internal=topic.internal, partitions=parts,
                                   topic_authorized_operations=(operations(ctx, Res.TOPIC, topic.name) if include_ops
                                                                else NO_OPERATIONS))


def brokers_on(ctx: RequestContext, image: MetadataImage) -> list:
    out = []
    for b in sorted(image.live_brokers(), key=lambda b: b.node_id):
        e = b.endpoint(ctx.listener)
        if e is not None:
            out.append(R.MetadataResponseBroker(node_id=b.node_id, host=e.host, port=e.port, rack=b.rack))
    return out


@handles(m.ApiKey.METADATA, versions=(0, 13))
async def metadata(ctx: RequestContext, req: m.MetadataRequest) -> R:
    v = ctx.api_version
    broker = ctx.broker
    image = broker.metadata
    include_ops = v >= 8 and req.include_topic_authorized_operations
    all_topics = req.topics is None or (v == 0 and not req.topics)
    topics = []
    if all_topics:
        visible = filter_allowed(ctx, Op.DESCRIBE, Res.TOPIC, image.topics, log_if_denied=False)
        topics = [topic_metadata(ctx, image, image.topics[n], include_ops) for n in sorted(visible)]
    else:
        allow_create = (v < 4 or req.allow_auto_topic_creation) and broker.config["auto.create.topics.enable"]
        by_id = [t for t in req.topics if v >= 10 and t.topic_id != Uuid() and not t.name]
        describable = filter_allowed(ctx, Op.DESCRIBE, Res.TOPIC,
                                     {t.name for t in req.topics if t.name} | {image.topics_by_id[t.topic_id].name
                                                                               for t in by_id
                                                                               if t.topic_id in image.topics_by_id})
        missing = [t.name for t in req.topics if t.name is not None and t.name not in image.topics
                   and not (v >= 10 and t.topic_id != Uuid()) and t.name in describable]
        if allow_create and missing:
            if not allowed(ctx, Op.CREATE, log_if_denied=False):
                creatable = filter_allowed(ctx, Op.CREATE, Res.TOPIC, missing)
                describable -= set(missing) - creatable
                missing = [n for n in missing if n in creatable]
            if missing:
                image = await auto_create(ctx, missing)
        for t in req.topics:
            if v >= 10 and t.topic_id != Uuid() and not t.name:  # the Java client sends "" beside an id
                found = image.topics_by_id.get(t.topic_id)
                if found is not None and found.name not in describable:
                    topics.append(R.MetadataResponseTopic(error_code=DENIED, name=None, topic_id=t.topic_id))
                    continue
                if found is None:
                    topics.append(R.MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None,
                                                          topic_id=t.topic_id))
                    continue
            elif t.name not in describable:
                topics.append(R.MetadataResponseTopic(error_code=DENIED, name=t.name, is_internal=False))
                continue
            else:
                found = image.topics.get(t.name)
            if found is not None:
                topics.append(topic_metadata(ctx, image, found, include_ops))
                continue
            problem = topic_name_problem(t.name or "")
            code = ErrorCode.INVALID_TOPIC_EXCEPTION if problem else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            topics.append(R.MetadataResponseTopic(error_code=code, name=t.name, is_internal=False))
    return R(
        brokers=brokers_on(ctx, image),
        cluster_id=image.cluster_id,
        controller_id=broker.node_id,  # KRaft brokers name a live broker; clients send admin requests there
        topics=topics,
        cluster_authorized_operations=(operations(ctx, Res.CLUSTER)
                                       if 8 <= v <= 10 and req.include_cluster_authorized_operations
                                       else NO_OPERATIONS),
    )


@handles(m.ApiKey.DESCRIBE_TOPIC_PARTITIONS, versions=(0, 0))
async def describe_topic_partitions(ctx: RequestContext,
                                    req: m.DescribeTopicPartitionsRequest) -> m.DescribeTopicPartitionsResponse:
    """Topics in name order from the cursor, at most `response_partition_limit` partitions."""
    R = m.DescribeTopicPartitionsResponse
    image = ctx.broker.metadata
    live = {b.node_id for b in image.live_brokers()}
    if not req.topics:
        names = sorted(filter_allowed(ctx, Op.DESCRIBE, Res.TOPIC, image.topics, log_if_denied=False))
        describable = set(names)
    else:
        names = sorted(t.name for t in req.topics)
        describable = filter_allowed(ctx, Op.DESCRIBE, Res.TOPIC, names)
    start_topic, start_partition = (req.cursor.topic_name, req.cursor.partition_index) if req.cursor else (None, 0)
    if start_topic is not None:
        names = [n for n in names if n >= start_topic]
    budget = req.response_partition_limit
    topics, cursor = [], None
    for name in names:
        topic = image.topics.get(name)
        if topic is None or name not in describable:
            code = DENIED if name not in describable else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            topics.append(R.DescribeTopicPartitionsResponseTopic(error_code=code, name=name))
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
                offline_replicas=list(image.offline_replicas(p, ctx.listener))))
            budget -= 1
        topics.append(R.DescribeTopicPartitionsResponseTopic(
            error_code=ErrorCode.NONE, name=name, topic_id=topic.topic_id, is_internal=topic.internal, partitions=parts,
            topic_authorized_operations=operations(ctx, Res.TOPIC, name)))
        if cursor is not None:
            break
    return R(throttle_time_ms=0, topics=topics, next_cursor=cursor)
