"""Fetch (v0-v17) for consumers and for followers: byte ranges of the log, sessions (KIP-227),
long polling.

Each partition's data is a range of one segment file, cut at batch boundaries, sent with
`sendfile` (the batch holding the fetch offset comes whole; clients skip what they already have).
The first partition with data may exceed the size limits by one batch (KIP-74), so a consumer
always makes progress. With less than `min_bytes` available the request parks in the purgatory
until an append to one of its partitions or `max_wait_ms`. Fetch v0-v3 clients get the data
down-converted to magic 0/1. A consumer's fetch is capped at what its `consumer_byte_rate` lets
through in one quota window; one that its quotas throttle is answered as Kafka answers it, with
`throttle_time_ms` and no partitions (its bytes not counted).

Consumers read up to the high watermark from the leader, and from v11 (KIP-392) from any replica;
a leader with `replica.selector.class` set answers a consumer that gives its `rack_id` with the
replica in that rack to read from (`preferred_read_replica`) and no records. A fetch with a
replica id (a follower) is answered by the replication core (`ReplicaManager.fetch_for_follower`):
records up to the log end or the point where the follower's log diverges, and the follower's
progress recorded for the high watermark and the ISR.
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

    __slots__ = ("entry", "error", "hw", "lso", "log_start", "records", "preferred", "aborted")

    def __init__(self, entry, error=ErrorCode.NONE, hw=-1, lso=-1, log_start=-1, records=b"", preferred=-1,
                 aborted=()):
        self.entry, self.error, self.hw, self.lso = entry, error, hw, lso
        self.log_start, self.records, self.preferred, self.aborted = log_start, records, preferred, aborted


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


def _read(ctx: RequestContext, entry: CachedPartition, limit: int, min_one: bool, isolation: int,
          rack: str | None) -> _Read:
    replicas = ctx.broker.replicas
    if entry.topic is None:
        return _Read(entry, ErrorCode.UNKNOWN_TOPIC_ID)
    if not allowed(ctx, Op.READ, Res.TOPIC, entry.topic):
        return _Read(entry, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
    try:
        p = replicas.readable(entry.topic, entry.partition, entry.current_leader_epoch, ctx.api_version >= 11)
    except KafkaError as e:
        return _Read(entry, e.code)
    log = p.log
    hw, lso = p.high_watermark, p.last_stable_offset
    if rack:
        preferred = p.preferred_read_replica(rack, entry.fetch_offset, replicas.clock())
        if preferred >= 0:
            return _Read(entry, ErrorCode.NONE, hw, lso, log.log_start_offset, preferred=preferred)
    bound = lso if isolation == READ_COMMITTED else hw
    if ctx.api_version < 4 and not log.config.message_downconversion_enable:
        return _Read(entry, ErrorCode.UNSUPPORTED_VERSION, hw, lso, log.log_start_offset)
    aborted = ()
    try:
        if not (limit > 0 or min_one):
            slices = []
        elif isolation == READ_COMMITTED:
            # The aborted transactions of what is read, which the consumer skips.
            slices, aborted = log.read_committed(entry.fetch_offset, limit, min_one_batch=min_one)
        else:
            slices = log.read(entry.fetch_offset, limit, max_offset=bound, min_one_batch=min_one)
    except OffsetOutOfRangeError:
        return _Read(entry, ErrorCode.OFFSET_OUT_OF_RANGE, hw, lso, log.log_start_offset)
    except RecordsError as e:  # the data on disk is damaged: the log directory's problem, not the client's
        structlog.get_logger("kafka_compat.server").error("log_read_failed", topic=entry.topic,
                                                          partition=entry.partition, reason=e.message)
        return _Read(entry, ErrorCode.KAFKA_STORAGE_ERROR, hw, lso, log.log_start_offset)
    # One segment's range per fetch, as Kafka does: the next fetch continues in the next segment.
    return _Read(entry, ErrorCode.NONE, hw, lso, log.log_start_offset, slices[0] if slices else b"", aborted=aborted)


def _read_all(ctx: RequestContext, entries: list[CachedPartition], max_bytes: int, isolation: int,
              rack: str | None) -> tuple[list[_Read], int]:
    reads, total = [], 0
    for entry in entries:
        r = _read(ctx, entry, min(entry.max_bytes, max_bytes - total), total == 0, isolation, rack)
        total += len(r.records)
        reads.append(r)
    return reads, total


def _response(ctx: RequestContext, reads: list[_Read], session_id: int, isolation: int) -> R:
    v = ctx.api_version
    magic = 0 if v <= 1 else 1 if v <= 3 else 2
    topics: dict = {}
    metrics = ctx.broker.metrics
    for r in reads:
        e = r.entry
        records = r.records
        if magic < 2 and len(records):
            data = records.read() if hasattr(records, "read") else bytes(records)
            records = down_convert(data, magic, first_offset=e.fetch_offset)
        if e.topic is not None:
            metrics.topic(e.topic).fetched(len(records), r.error != ErrorCode.NONE)
        part = R.PartitionData(partition_index=e.partition, error_code=r.error, high_watermark=r.hw,
                               last_stable_offset=r.lso, log_start_offset=r.log_start,
                               aborted_transactions=[R.AbortedTransaction(producer_id=a.producer_id,
                                                                          first_offset=a.first_offset)
                                                     for a in r.aborted] if isolation == READ_COMMITTED else None,
                               preferred_read_replica=r.preferred, records=records)
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
        return _follower_fetch(ctx, req)
    rack = req.rack_id if v >= 11 else None
    isolation = req.isolation_level if v >= 4 else 0
    max_bytes = min(req.max_bytes if v >= 3 else INT_MAX, broker.config["fetch.max.bytes"])
    quotas = broker.metadata.client_quotas
    if quotas:  # no more than the consumer's byte-rate quota lets through in one window
        max_bytes = int(min(max_bytes, broker.quotas.fetch_max_bytes(quotas, ctx.principal, ctx.client_id)))
    min_bytes = min(req.min_bytes, max_bytes)

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
        throttle = _throttle(ctx, reads)
        if throttle:
            # Kafka's throttled fetch: no partitions at all (what was read is neither sent nor
            # counted), no new session, and the session's record of what its client was told unchanged
            if incremental:
                session.next_epoch()
            return R(throttle_time_ms=throttle, error_code=ErrorCode.NONE,
                     session_id=session.id if incremental else INVALID_SESSION_ID, responses=[])
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

    reads, total = _read_all(ctx, entries, max_bytes, isolation, rack)
    if total >= min_bytes or req.max_wait_ms <= 0 or not entries or any(r.error or r.preferred >= 0
                                                                            for r in reads):
        return answer(reads)

    async def long_poll() -> R:
        deadline = trio.current_time() + req.max_wait_ms / 1000
        keys = [(e.topic, e.partition) for e in entries]
        while True:
            # Read again before waiting: this task starts after the handler returned, and what
            # changed in between notified no one (it would wait out max_wait_ms for nothing).
            reads, total = _read_all(ctx, entries, max_bytes, isolation, rack)
            if total >= min_bytes or any(r.error or r.preferred >= 0 for r in reads) \
                    or trio.current_time() >= deadline:
                return answer(reads)
            await broker.replicas.purgatory.wait_any(keys, deadline)

    return Deferred(long_poll)


def _throttle(ctx: RequestContext, reads: list[_Read]) -> int:
    """A consumer's fetch recorded against its quotas (its handling time too: the pipeline does
    not record it again); how long it is throttled."""
    watch, ctx.watch = ctx.watch, None
    quotas = ctx.broker.metadata.client_quotas
    if not quotas:
        return 0
    size = sum(len(r.records) for r in reads)
    return ctx.broker.quotas.fetch_throttle_ms(quotas, ctx.principal, ctx.client_id, size, watch)


def _follower_fetch(ctx: RequestContext, req: m.FetchRequest):
    """A follower's fetch: answered now when the core says so, else parked until one of its
    partitions changes so that the core says so (data for it, a new high watermark, a new role),
    or `max_wait_ms` passes."""
    rm = ctx.broker.replicas
    v = ctx.api_version
    response, done = rm.fetch_for_follower(req, v, rm.clock())
    if done:
        return response
    keys = [(t.topic, p.partition_index) for t in response.responses for p in t.partitions]

    async def long_poll() -> R:
        deadline = trio.current_time() + req.max_wait_ms / 1000
        while True:
            # Read again before waiting (as a consumer's long poll does): a change between the
            # handler and this task notified no one.
            answer, done = rm.fetch_for_follower(req, v, rm.clock(), update_state=False)
            if done or trio.current_time() >= deadline:
                return answer
            await rm.purgatory.wait_any(keys, deadline)

    return Deferred(long_poll)
