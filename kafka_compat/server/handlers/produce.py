"""Produce (v0-v11): validate each partition's batches from their headers and append them.

acks=0 gets no response (and a failure closes the connection, as Kafka does, so the producer
refreshes its metadata); acks=1 answers after the local append (synced, with log.fsync.on.append);
acks=-1 (all) after the high watermark covers the append; either gets REQUEST_TIMED_OUT after
`timeout_ms`. Requests on a connection are appended in arrival order.
"""

from __future__ import annotations

import time

import trio

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.server.authz import Op, Res, allowed, allowed_any, require
from kafka_compat.server.handlers import CloseConnection, Deferred, RequestContext, handles

R = m.ProduceResponse


def _result(index: int, code: ErrorCode, message: str | None = None) -> R.PartitionProduceResponse:
    return R.PartitionProduceResponse(index=index, error_code=code, base_offset=-1, log_append_time_ms=-1,
                                      log_start_offset=-1, error_message=message)


@handles(m.ApiKey.PRODUCE, versions=(0, 11))
async def produce(ctx: RequestContext, req: m.ProduceRequest):
    broker = ctx.broker
    image = broker.metadata
    acks = req.acks
    now_ms = int(time.time() * 1000)
    topics = []
    waiting = []  # (partition, offset its acknowledged end must reach, result)
    failed = False
    txn_denied = req.transactional_id is not None and not allowed(ctx, Op.WRITE, Res.TRANSACTIONAL_ID,
                                                                  req.transactional_id)
    for td in req.topic_data:
        results = []
        denied = (ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED if txn_denied
                  else None if allowed(ctx, Op.WRITE, Res.TOPIC, td.name) else ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        topic = image.topics.get(td.name)
        min_isr = int(image.topic_configs(td.name).get("min.insync.replicas", broker.config["min.insync.replicas"]))
        for pd in td.partition_data:
            if acks not in (-1, 0, 1):
                results.append(_result(pd.index, ErrorCode.INVALID_REQUIRED_ACKS))
                continue
            if denied is not None:
                results.append(_result(pd.index, denied))
                continue
            if topic is not None and topic.internal:
                results.append(_result(pd.index, ErrorCode.INVALID_TOPIC_EXCEPTION,
                                       f"Cannot append to internal topic {td.name}"))
                continue
            try:
                p = broker.replicas.get(td.name, pd.index)
                info = p.append(pd.records, acks, now_ms, ctx.api_version, min_isr)
            except KafkaError as e:  # RecordsError among them
                results.append(_result(pd.index, e.code, e.message))
                continue
            result = R.PartitionProduceResponse(index=pd.index, error_code=ErrorCode.NONE,
                                                base_offset=info.first_offset, log_append_time_ms=info.log_append_time,
                                                log_start_offset=info.log_start_offset)
            results.append(result)
            if acks and p.acknowledged_end(acks) <= info.last_offset:
                waiting.append((p, info.last_offset + 1, result))
        failed = failed or any(r.error_code for r in results)
        topics.append(R.TopicProduceResponse(name=td.name, partition_responses=results))
    if acks == 0:
        if failed:
            raise CloseConnection
        return None
    response = R(responses=topics)
    if not waiting:
        return response

    async def replicated() -> R:
        deadline = trio.current_time() + req.timeout_ms / 1000
        for p, offset, result in waiting:
            if not await broker.replicas.wait_acknowledged(p, offset, deadline, acks):
                result.error_code = ErrorCode.REQUEST_TIMED_OUT
        return response

    return Deferred(replicated)


@handles(m.ApiKey.INIT_PRODUCER_ID, versions=(0, 5))
async def init_producer_id(ctx: RequestContext, req: m.InitProducerIdRequest) -> m.InitProducerIdResponse:
    """A new producer id for an idempotent producer (Kafka always hands out a fresh one when there
    is no transactional id). Transactional producers need the transaction coordinator, which this
    broker does not have yet: they get COORDINATOR_NOT_AVAILABLE."""
    R = m.InitProducerIdResponse
    if req.transactional_id is not None:
        require(ctx, Op.WRITE, Res.TRANSACTIONAL_ID, req.transactional_id)
    elif not allowed(ctx, Op.IDEMPOTENT_WRITE) and not allowed_any(ctx, Op.WRITE, Res.TOPIC):
        raise KafkaError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    if req.transactional_id is not None:
        return R(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE, producer_id=-1, producer_epoch=-1)
    return R(error_code=ErrorCode.NONE, producer_id=await ctx.broker.new_producer_id(), producer_epoch=0)
