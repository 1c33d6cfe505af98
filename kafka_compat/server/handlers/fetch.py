"""Fetch (v0-v17) for consumers: byte ranges of the log, sessions (KIP-227), long polling.

Each partition's data is a range of one segment file, cut at batch boundaries, sent with
`sendfile` (the batch holding the fetch offset comes whole; clients skip what they already have).
The first partition with data may exceed the size limits by one batch (KIP-74), so a consumer
always makes progress. With less than `min_bytes` available the request parks in the purgatory
until an append to one of its partitions or `max_wait_ms`. Fetch v0-v3 clients get the data
down-converted to magic 0/1.
"""

from __future__ import annotations

import structlog
import trio

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import RecordsError, down_convert
from kafka_compat.server.authz import Op, Res, allowed, require
from kafka_compat.server.fetch_session import FINAL_EPOCH, INITIAL_EPOCH, INVALID_SESSION_ID, CachedPartition
from kafka_compat.server.handlers import Deferred, RequestContext, handles
from kafka_compat.storage.errors import OffsetOutOfRangeError

R = m.FetchResponse
INT_MAX = 0x7FFFFFFF
READ_COMMITTED = 1


class _Read:
    """One partition's answer: error, offsets and the records to send."""

    __slots__ = ("entry", "error", "hw", "lso", "log_start", "records")

    def __init__(self, entry, error=ErrorCode.NONE, hw=-1, lso=-1, log_start=-1, records=b""):
        self.entry, self.error, self.hw, self.lso = entry, error, hw, lso
        self.log_start, self.records = log_start, records


def _requested(ctx: RequestContext, req) -> list[CachedPartition]:
    """The request's partitions, resolved to topic names (v13+ names topics by id)."""
    image = ctx.broker.metadata
    by_id = ctx.api_version >= 13
    out = []
    for t in req.topics:
        if by_id:
            topic = image.topics_by_id.get(t.topic_id)
            name, tid = (topic.name if topic else None), t.topic_id
        else:
            topic = image.topics.get(t.topic)
            name, tid = t.topic, (topic.topic_id if topic else Uuid())
        for p in t.partitions:
            out.append(CachedPartition((tid if by_id else name, p.partition), name, tid, p.partition, p.fetch_offset,
                                       p.partition_max_bytes, p.current_leader_epoch, p.last_fetched_epoch))
    return out


def _read(ctx: RequestContext, entry: CachedPartition, limit: int, min_one: bool, isolation: int) -> _Read:
    replicas = ctx.broker.replicas
    if entry.topic is None:
        return _Read(entry, ErrorCode.UNKNOWN_TOPIC_ID)
    if not allowed(ctx, Op.READ, Res.TOPIC, entry.topic):
        return _Read(entry, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    try:
        p = replicas.leader(entry.topic, entry.partition, entry.current_leader_epoch)
    except KafkaError as e:
        return _Read(entry, e.code)
    log = p.log
    hw, lso = p.high_watermark, p.last_stable_offset
    bound = lso if isolation == READ_COMMITTED else hw
    if ctx.api_version < 4 and not log.config.message_downconversion_enable:
        return _Read(entry, ErrorCode.UNSUPPORTED_VERSION, hw, lso, log.log_start_offset)
    try:
        slices = (log.read(entry.fetch_offset, limit, max_offset=bound, min_one_batch=min_one)
                  if limit > 0 or min_one else [])
    except OffsetOutOfRangeError:
        return _Read(entry, ErrorCode.OFFSET_OUT_OF_RANGE, hw, lso, log.log_start_offset)
    except RecordsError as e:  # the data on disk is damaged: the log directory's problem, not the client's
        structlog.get_logger("kafka_compat.server").error("log_read_failed", topic=entry.topic,
                                                          partition=entry.partition, reason=e.message)
        return _Read(entry, ErrorCode.KAFKA_STORAGE_ERROR, hw, lso, log.log_start_offset)
    # One segment's range per fetch, as Kafka does: the next fetch continues in the next segment.
    return _Read(entry, ErrorCode.NONE, hw, lso, log.log_start_offset, slices[0] if slices else b"")


def _read_all(ctx: RequestContext, entries: list[CachedPartition], max_bytes: int,
              isolation: int) -> tuple[list[_Read], int]:
    reads, total = [], 0
    for entry in entries:
        r = _read(ctx, entry, min(entry.max_bytes, max_bytes - total), total == 0, isolation)
        total += len(r.records)
        reads.append(r)
    return reads, total


def _response(ctx: RequestContext, reads: list[_Read], session_id: int, isolation: int) -> R:
    v = ctx.api_version
    magic = 0 if v <= 1 else 1 if v <= 3 else 2
    topics: dict = {}
    for r in reads:
        e = r.entry
        records = r.records
        if magic < 2 and len(records):
            data = records.read() if hasattr(records, "read") else bytes(records)
            records = down_convert(data, magic, first_offset=e.fetch_offset)
        part = R.PartitionData(partition_index=e.partition, error_code=r.error, high_watermark=r.hw,
                               last_stable_offset=r.lso, log_start_offset=r.log_start,
                               aborted_transactions=[] if isolation == READ_COMMITTED else None,
                               preferred_read_replica=-1, records=records)
        key = e.topic_id if v >= 13 else e.topic
        topic = topics.get(key)
        if topic is None:
            topic = topics[key] = R.FetchableTopicResponse(topic=e.topic, topic_id=e.topic_id if v >= 13 else Uuid(),
                                                           partitions=[])
        topic.partitions.append(part)
    return R(throttle_time_ms=0, error_code=ErrorCode.NONE, session_id=session_id, responses=list(topics.values()))


@handles(m.ApiKey.FETCH, versions=(0, 17))
async def fetch(ctx: RequestContext, req: m.FetchRequest):
    broker = ctx.broker
    v = ctx.api_version
    replica_id = req.replica_state.replica_id if v >= 15 else req.replica_id
    if replica_id >= 0:
        require(ctx, Op.CLUSTER_ACTION)  # a follower: a broker's principal
        # Follower fetches arrive with partition replication; until then no broker follows us.
        raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, "this broker has no followers")
    isolation = req.isolation_level if v >= 4 else 0
    max_bytes = min(req.max_bytes if v >= 3 else INT_MAX, broker.config["fetch.max.bytes"])

    sessions = broker.fetch_sessions
    session = None
    incremental = False
    new_session = False
    if v >= 7 and req.session_id != INVALID_SESSION_ID and req.session_epoch not in (INITIAL_EPOCH, FINAL_EPOCH):
        session = sessions.get(req.session_id)
        if session is None:
            return R(error_code=ErrorCode.FETCH_SESSION_ID_NOT_FOUND, session_id=INVALID_SESSION_ID, responses=[])
        if session.epoch != req.session_epoch:
            return R(error_code=ErrorCode.INVALID_FETCH_SESSION_EPOCH, session_id=INVALID_SESSION_ID, responses=[])
        incremental = True
        for e in _requested(ctx, req):
            cached = session.partitions.get(e.key)
            if cached is None:
                session.partitions[e.key] = e
            else:
                cached.fetch_offset, cached.max_bytes = e.fetch_offset, e.max_bytes
                cached.current_leader_epoch, cached.last_fetched_epoch = e.current_leader_epoch, e.last_fetched_epoch
        for t in req.forgotten_topics_data:
            for index in t.partitions:
                session.partitions.pop(((t.topic_id if v >= 13 else t.topic), index), None)
        entries = list(session.partitions.values())
    else:
        if v >= 7 and req.session_id != INVALID_SESSION_ID:
            sessions.remove(req.session_id)
        new_session = v >= 7 and req.session_epoch == INITIAL_EPOCH
        entries = _requested(ctx, req)

    def answer(reads: list[_Read]) -> R:
        nonlocal session
        if incremental:
            session.next_epoch()
            keep = [r for r in reads if r.entry.changed(r.hw, r.lso, r.log_start) or len(r.records) or r.error]
            return _response(ctx, keep, session.id, isolation)
        if new_session:
            session = sessions.create()
            if session is not None:
                for r in reads:
                    r.entry.changed(r.hw, r.lso, r.log_start)
                    session.partitions[r.entry.key] = r.entry
        return _response(ctx, reads, session.id if session is not None else 0, isolation)

    reads, total = _read_all(ctx, entries, max_bytes, isolation)
    if total >= req.min_bytes or req.max_wait_ms <= 0 or any(r.error for r in reads) or not entries:
        return answer(reads)

    async def long_poll() -> R:
        deadline = trio.current_time() + req.max_wait_ms / 1000
        keys = [(e.topic, e.partition) for e in entries]
        nonlocal reads
        while True:
            if not await broker.replicas.purgatory.wait_any(keys, deadline):
                break
            reads, total = _read_all(ctx, entries, max_bytes, isolation)
            if total >= req.min_bytes or any(r.error for r in reads):
                return answer(reads)
        reads, _ = _read_all(ctx, entries, max_bytes, isolation)
        return answer(reads)

    return Deferred(long_poll)
