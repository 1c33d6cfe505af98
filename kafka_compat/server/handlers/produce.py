"""Produce (v0-v11): validate each partition's batches from their headers and append them.

A transaction's first batch on a partition is written only once the transaction coordinator says
the partition is in the transaction (KIP-890 part 1; INVALID_TXN_STATE if it is not).

acks=0 gets no response (and a failure closes the connection, as Kafka does, so the producer
refreshes its metadata); acks=1 answers after the local append (synced, with log.fsync.on.append);
acks=-1 (all) after the high watermark covers the append (NOT_ENOUGH_REPLICAS_AFTER_APPEND if the
ISR shrank below min.insync.replicas meanwhile, NOT_LEADER_OR_FOLLOWER if the leadership moved);
either gets REQUEST_TIMED_OUT after `timeout_ms`. Requests on a connection are appended in arrival order.
A batch refused because of some of its records names them (v8+ `record_errors`, KIP-467).
"""

from __future__ import annotations

import struct
import time

import trio

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records import RecordsError
from kafka_compat.records.batch import read_header
from kafka_compat.server.authz import Op, Res, allowed
from kafka_compat.server.handlers import CloseConnection, Deferred, RequestContext, handles
from kafka_compat.server.txn_verification import verification_guard

R = m.ProduceResponse


def _result(index: int, code: ErrorCode, message: str | None = None,
            record_errors: list[tuple[int, str]] = ()) -> R.PartitionProduceResponse:
    return R.PartitionProduceResponse(index=index, error_code=code, base_offset=-1, log_append_time_ms=-1,
                                      log_start_offset=-1, error_message=message, record_errors=[
                                          R.BatchIndexAndErrorMessage(batch_index=i, batch_index_error_message=m)
                                          for i, m in record_errors])


@handles(m.ApiKey.PRODUCE, versions=(0, 11))
async def produce(ctx: RequestContext, req: m.ProduceRequest):
    broker = ctx.broker
    image = broker.metadata
    acks = req.acks
    now_ms = int(time.time() * 1000)
    topics = []
    waiting = []  # (partition, offset its acknowledged end must reach, leader epoch of the append, result)
    failed = False
    txn_denied = req.transactional_id is not None and not allowed(ctx, Op.WRITE, Res.TRANSACTIONAL_ID,
                                                                  req.transactional_id)
    for td in req.topic_data:
        results = []
        denied = (ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED if txn_denied
                  else None if allowed(ctx, Op.WRITE, Res.TOPIC, td.name) else ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        topic = image.topics.get(td.name)
        counts = broker.metrics.topic(td.name)
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
                guard = None
                if req.transactional_id is not None and len(pd.records):
                    guard = await _verified(ctx, req.transactional_id, p, pd.records)
                info = p.append(pd.records, acks, now_ms, ctx.api_version, verification_guard=guard)
            except RecordsError as e:
                results.append(_result(pd.index, e.code, e.message, e.record_errors))
                counts.produce_failed()
                continue
            except KafkaError as e:
                results.append(_result(pd.index, e.code, e.message))
                counts.produce_failed()
                continue
            counts.produced(info.last_offset - info.first_offset + 1, len(pd.records))
            result = R.PartitionProduceResponse(index=pd.index, error_code=ErrorCode.NONE,
                                                base_offset=info.first_offset, log_append_time_ms=info.log_append_time,
                                                log_start_offset=info.log_start_offset)
            results.append(result)
            if acks and p.acknowledged_end(acks) <= info.last_offset:
                waiting.append((p, info.last_offset + 1, p.leader_epoch, result))
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
        for p, offset, leader_epoch, result in waiting:
            code = await broker.replicas.wait_acknowledged(p, offset, leader_epoch, deadline, acks)
            if code != ErrorCode.NONE:
                result.error_code, result.base_offset = code, -1
        return response

    return Deferred(replicated)


# Verification errors older producers may not retry: they retry NOT_ENOUGH_REPLICAS (as Kafka answers).
_UNVERIFIED = frozenset({ErrorCode.CONCURRENT_TRANSACTIONS, ErrorCode.NETWORK_EXCEPTION,
                         ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_NOT_AVAILABLE,
                         ErrorCode.NOT_COORDINATOR})


async def _verified(ctx: RequestContext, transactional_id: str, p, records) -> object | None:
    """KIP-890: the verification guard for a transactional produce's batch on `p` (None: nothing to
    verify). Raises KafkaError with the coordinator's answer as a producer understands it."""
    try:
        h = read_header(records)
    except (RecordsError, ValueError, struct.error):
        return None  # validation refuses it
    if h.magic != 2 or not h.is_transactional or h.producer_id < 0:
        return None
    try:
        return await verification_guard(ctx.broker, p, transactional_id, h.producer_id, h.producer_epoch,
                                        h.base_sequence, abortable=ctx.api_version >= 11)
    except KafkaError as e:
        raise unverified(e.code) from None


def unverified(code: ErrorCode) -> KafkaError:
    """A failed verification (txn_verification's error) as a producer understands it."""
    if code == ErrorCode.INVALID_TXN_STATE:
        return KafkaError(code, "Partition was not added to the transaction")
    if code in _UNVERIFIED:
        return KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS, "Unable to verify the partition has been added to the "
                          f"transaction. Underlying error: {code.name}")
    return KafkaError(code)
