"""Committed offsets: what one commit stores, the per-partition store of them, and the APIs that
read and write them (OffsetCommit, TxnOffsetCommit, OffsetFetch, OffsetDelete) with their expiry.

Commits are validated against the group (generation and member for classic groups, member epoch
for consumer groups, nothing for a group-less consumer committing with generation -1, which gets a
"simple" group), written as OffsetCommit records and answered once durable. OffsetFetch reads the
durable offsets only. With `require_stable` (v7+) the fetch waits for the partition's pending
appends, and answers UNSTABLE_OFFSET_COMMIT for partitions with transactional offsets waiting
for their transaction's marker.

TxnOffsetCommit writes the same records as a transactional batch of the producer; they wait per
producer (`PendingTxnOffsets`) until its marker is durable: a commit makes them committed offsets
(unless a plain commit of the same partition came after them, as Kafka keeps the later one), an
abort drops them.

Expiry (Kafka 2.1+ semantics), every `offsets.retention.check.interval.ms` per partition: an offset
expires `offsets.retention.minutes` after the group became empty (classic groups), or after its
commit for topics the group no longer subscribes to (consumer groups, simple groups, classic
consumer-protocol groups that are Stable); an explicit v2-v4 retention time wins. A group that is
empty and has no offsets left is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import structlog

from kafka_compat.coordinator import records
from kafka_compat.coordinator.classic import ClassicGroup, ClassicState
from kafka_compat.coordinator.consumer import ConsumerGroup
from kafka_compat.coordinator.records import NO_EXPIRE_TIMESTAMP
from kafka_compat.coordinator.responses import (
    fit,
    offset_commit_error,
    offset_fetch_group_error,
    txn_offset_commit_error,
)
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafka_compat.coordinator.machine import Client, GroupCoordinator

log = structlog.get_logger("kafka_compat.coordinator")
E = ErrorCode
S = ClassicState
CR = m.OffsetCommitResponse
FR = m.OffsetFetchResponse



class OffsetAndMetadata(NamedTuple):  # a tuple: made several times per commit, cheaply
    """One committed offset, as an OffsetCommitValue record carries it."""

    offset: int
    leader_epoch: int  # -1 when the client did not send one
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int = NO_EXPIRE_TIMESTAMP  # only set by OffsetCommit v2-v4 with a retention time

    def expired(self, now_ms: int, base_timestamp_ms: int, retention_ms: int) -> bool:
        """Kafka's expiration rule: an explicit expire timestamp wins (old clients); otherwise the
        offset expires `retention_ms` after the base timestamp (commit time, or when the group
        became empty)."""
        if self.expire_timestamp_ms != NO_EXPIRE_TIMESTAMP:
            return now_ms >= self.expire_timestamp_ms
        return now_ms - base_timestamp_ms >= retention_ms

    @classmethod
    def from_value(cls, value: m.OffsetCommitValue, version: int) -> OffsetAndMetadata:
        """What an OffsetCommitValue record of `version` carries."""
        return cls(value.offset, value.leader_epoch if version >= 3 else -1, value.metadata or "",
                   value.commit_timestamp, value.expire_timestamp if version == 1 else NO_EXPIRE_TIMESTAMP)


class OffsetStore:
    """group -> topic -> partition -> OffsetAndMetadata, with the operations replay needs."""

    __slots__ = ("_by_group",)

    def __init__(self) -> None:
        self._by_group: dict[str, dict[str, dict[int, OffsetAndMetadata]]] = {}

    def get(self, group: str, topic: str, partition: int) -> OffsetAndMetadata | None:
        return self._by_group.get(group, {}).get(topic, {}).get(partition)

    def put(self, group: str, topic: str, partition: int, value: OffsetAndMetadata) -> None:
        self._by_group.setdefault(group, {}).setdefault(topic, {})[partition] = value

    def remove(self, group: str, topic: str, partition: int) -> bool:
        topics = self._by_group.get(group)
        if not topics or topic not in topics or partition not in topics[topic]:
            return False
        del topics[topic][partition]
        if not topics[topic]:
            del topics[topic]
        if not topics:
            del self._by_group[group]
        return True

    def group(self, group: str) -> dict[str, dict[int, OffsetAndMetadata]]:
        """The group's offsets by topic and partition (empty if none); do not mutate."""
        return self._by_group.get(group, {})

    def groups(self) -> list[str]:
        return list(self._by_group)

    def items(self, group: str) -> Iterator[tuple[str, int, OffsetAndMetadata]]:
        for topic, parts in self._by_group.get(group, {}).items():
            for partition, value in parts.items():
                yield topic, partition, value

    def __len__(self) -> int:
        return sum(len(p) for t in self._by_group.values() for p in t.values())


class PendingTxnOffsets:
    """One producer's transactional offsets, waiting for its marker; `superseded` are those a
    later plain commit of the same partition outdated (not applied on commit)."""

    __slots__ = ("offsets", "superseded")

    def __init__(self) -> None:
        self.offsets = OffsetStore()
        self.superseded: set[tuple[str, str, int]] = set()


def _metadata_too_large(metadata: str | None, limit: int) -> bool:
    """Whether Java's String.length() of `metadata` (UTF-16 code units, what offset.metadata.max.bytes
    is compared to) exceeds `limit`. A character is one or two units: most metadata is short enough
    not to need encoding."""
    if metadata is None or 2 * len(metadata) <= limit:
        return False
    return len(metadata.encode("utf-16-le", "surrogatepass")) // 2 > limit


def _classic_member_error(group: ClassicGroup, generation: int, member_id: str,
                          instance_id: str | None) -> ErrorCode | None:
    """The checks OffsetCommit and TxnOffsetCommit share for a classic group: a dead group, then
    the member and generation the commit names. None when it names none (each API decides)."""
    if group.state is S.DEAD:
        return E.COORDINATOR_NOT_AVAILABLE
    if generation < 0 and group.state is S.EMPTY:
        return E.NONE
    if generation < 0 and not member_id and instance_id is None:
        return None
    code = group.validate_member(member_id, instance_id)
    if code is not None:
        return E[code]
    return E.NONE if generation == group.generation else E.ILLEGAL_GENERATION


class CommittedOffsets:
    """OffsetCommit, OffsetFetch, OffsetDelete and expiry over the coordinator's shards."""

    def __init__(self, core: GroupCoordinator):
        self.core = core

    # -- OffsetCommit -------------------------------------------------------------------------------

    def _validate_commit(self, req: m.OffsetCommitRequest, version: int) -> ErrorCode:
        core = self.core
        gid = req.group_id
        generation = req.generation_id_or_member_epoch if version >= 1 else -1
        member_id = req.member_id if version >= 1 else ""
        instance_id = req.group_instance_id if version >= 7 else None
        group = core.group(gid)
        if group is None:
            if generation < 0:
                core.get_or_create_simple_group(gid)  # a consumer that manages its own partitions
                return E.NONE
            # v9+ says so plainly; older clients expect ILLEGAL_GENERATION.
            return E.GROUP_ID_NOT_FOUND if version >= 9 else E.ILLEGAL_GENERATION
        if isinstance(group, ConsumerGroup):
            if generation < 0 and group.is_empty:
                return E.NONE
            member = group.member(member_id)
            if member is None:
                return E.UNKNOWN_MEMBER_ID
            if version < 9:
                return E.UNSUPPORTED_VERSION  # consumer-protocol members commit with v9+
            if generation != member.member_epoch:
                return E.STALE_MEMBER_EPOCH
            return E.NONE
        code = _classic_member_error(group, generation, member_id, instance_id)
        if code is None:  # v0 commits (no member) only go to empty groups
            return E.NONE if group.state is S.EMPTY else E.UNKNOWN_MEMBER_ID
        if code == E.NONE and group.state is S.COMPLETING_REBALANCE:
            return E.REBALANCE_IN_PROGRESS
        return code

    def commit(self, token: Hashable, req: m.OffsetCommitRequest, version: int, client: Client):
        core, cfg = self.core, self.core.config
        gid = req.group_id
        code = core.coordinator_error(gid)
        if code == E.NONE:
            code = self._validate_commit(req, version)
        if code != E.NONE:
            return fit(offset_commit_error(req, code), version)
        group = core.group(gid)
        if isinstance(group, ClassicGroup) and group.state in (S.STABLE, S.PREPARING_REBALANCE):
            member = group.members.get(req.member_id)
            if member is not None:  # a commit keeps a classic member's session alive
                core.classic.reschedule_heartbeat(group, member)
        now = core.now
        expire = NO_EXPIRE_TIMESTAMP
        if 2 <= version <= 4 and req.retention_time_ms != -1:
            expire = now + req.retention_time_ms
        recs = []
        topics = []
        written: list[tuple[int, int]] = []  # (topic index, partition index) of the written ones
        for ti, topic in enumerate(req.topics):
            parts = []
            for p in topic.partitions:
                if not core.topic_exists(topic.name, p.partition_index):
                    error = E.UNKNOWN_TOPIC_OR_PARTITION
                elif _metadata_too_large(p.committed_metadata, cfg.offset_metadata_max_bytes):
                    error = E.OFFSET_METADATA_TOO_LARGE
                else:
                    error = E.NONE
                    commit_ts = p.commit_timestamp if version == 1 and p.commit_timestamp != -1 else now
                    om = OffsetAndMetadata(p.committed_offset, p.committed_leader_epoch if version >= 6 else -1,
                                           p.committed_metadata or "", commit_ts, expire)
                    recs.append(records.offset_commit(gid, topic.name, p.partition_index, om))
                    written.append((ti, len(parts)))
                parts.append(CR.OffsetCommitResponsePartition(partition_index=p.partition_index, error_code=error))
            topics.append(CR.OffsetCommitResponseTopic(name=topic.name, partitions=parts))
        response = CR(topics=topics)
        if not recs:
            return fit(response, version)
        core.emit(gid, recs)

        def on_error(error: ErrorCode) -> m.OffsetCommitResponse:
            for ti, pi in written:
                response.topics[ti].partitions[pi].error_code = error
            return response

        return core.respond(gid, token, version, response, on_error)

    # -- TxnOffsetCommit ----------------------------------------------------------------------------

    def _validate_txn_commit(self, req: m.TxnOffsetCommitRequest, version: int) -> ErrorCode:
        """Kafka's checks for a transactional commit: like OffsetCommit's, but member, generation
        and instance are optional (v0-v2 carry none) and a rebalance does not refuse it."""
        core = self.core
        gid = req.group_id
        generation = req.generation_id_or_member_epoch if version >= 3 else -1
        member_id = req.member_id if version >= 3 else ""
        instance_id = req.group_instance_id if version >= 3 else None
        group = core.group(gid)
        if group is None:
            if generation < 0:
                core.get_or_create_simple_group(gid)
                return E.NONE
            return E.ILLEGAL_GENERATION
        if isinstance(group, ConsumerGroup):
            if generation < 0 and (group.is_empty or (not member_id and instance_id is None)):
                return E.NONE
            member = group.member(member_id)
            if member is None:
                return E.UNKNOWN_MEMBER_ID
            return E.NONE if generation == member.member_epoch else E.ILLEGAL_GENERATION
        code = _classic_member_error(group, generation, member_id, instance_id)
        return E.NONE if code is None else code

    def txn_commit(self, token: Hashable, req: m.TxnOffsetCommitRequest, version: int, client: Client):
        """TxnOffsetCommit v0-v4 (in the machine's `requests` table). The batch is the producer's:
        the partition leader's log checks its epoch, and that the driver verified with the
        transaction coordinator that AddOffsetsToTxn added the group's partition (KIP-890)."""
        core, cfg = self.core, self.core.config
        TR = m.TxnOffsetCommitResponse
        gid = req.group_id
        code = core.coordinator_error(gid)
        if code == E.NONE:
            code = self._validate_txn_commit(req, version)
        if code != E.NONE:
            return fit(txn_offset_commit_error(req, code), version)
        recs, topics, written = [], [], []
        for ti, topic in enumerate(req.topics):
            parts = []
            for p in topic.partitions:
                metadata = p.committed_metadata
                if _metadata_too_large(metadata, cfg.offset_metadata_max_bytes):
                    error = E.OFFSET_METADATA_TOO_LARGE
                else:
                    error = E.NONE
                    om = OffsetAndMetadata(p.committed_offset, p.committed_leader_epoch if version >= 2 else -1,
                                           p.committed_metadata or "", core.now)
                    recs.append(records.offset_commit(gid, topic.name, p.partition_index, om))
                    written.append((ti, len(parts)))
                parts.append(TR.TxnOffsetCommitResponsePartition(partition_index=p.partition_index, error_code=error))
            topics.append(TR.TxnOffsetCommitResponseTopic(name=topic.name, partitions=parts))
        response = TR(topics=topics)
        if not recs:
            return fit(response, version)
        core.emit(gid, recs, producer=(req.producer_id, req.producer_epoch))

        def on_error(error: ErrorCode) -> m.TxnOffsetCommitResponse:
            for ti, pi in written:
                response.topics[ti].partitions[pi].error_code = error
            return response

        return core.respond(gid, token, version, response, on_error)

    def replay_txn(self, shard, producer_id: int, group: str, topic: str, partition: int,
                   om: OffsetAndMetadata) -> None:
        pending = shard.txn_offsets.get(producer_id)
        if pending is None:
            pending = shard.txn_offsets[producer_id] = PendingTxnOffsets()
        pending.offsets.put(group, topic, partition, om)
        pending.superseded.discard((group, topic, partition))
        shard.open_txns.setdefault(group, set()).add(producer_id)

    def supersede_txn(self, shard, group: str, topic: str, partition: int, deleted: bool) -> None:
        """A plain commit (or a tombstone) of a partition with transactional offsets waiting."""
        for pid in shard.open_txns.get(group, ()):
            pending = shard.txn_offsets.get(pid)
            if pending is None or pending.offsets.get(group, topic, partition) is None:
                continue
            if deleted:
                pending.offsets.remove(group, topic, partition)
            else:
                pending.superseded.add((group, topic, partition))

    def complete_txn(self, shard, producer_id: int, commit: bool) -> None:
        """The producer's marker is durable: its offsets are committed, or dropped."""
        pending = shard.txn_offsets.pop(producer_id, None)
        if pending is None:
            return
        for group in pending.offsets.groups():
            open_ = shard.open_txns.get(group)
            if open_ is not None:
                open_.discard(producer_id)
                if not open_:
                    del shard.open_txns[group]
            if not commit:
                continue
            for topic, partition, om in pending.offsets.items(group):
                if (group, topic, partition) not in pending.superseded:
                    shard.offsets.put(group, topic, partition, om)
                    shard.committed.put(group, topic, partition, om)

    def has_pending(self, shard, group: str, topic: str, partition: int) -> bool:
        return any(shard.txn_offsets[pid].offsets.get(group, topic, partition) is not None
                   for pid in shard.open_txns.get(group, ()))

    def stored_and_pending(self, shard, group: str) -> list[tuple[str, int]]:
        """Every partition the group has an offset for, committed or waiting in a transaction."""
        keys = {(t, p) for t, p, _ in shard.offsets.items(group)}
        for pid in shard.open_txns.get(group, ()):
            keys.update((t, p) for t, p, _ in shard.txn_offsets[pid].offsets.items(group))
        return sorted(keys)

    # -- OffsetFetch --------------------------------------------------------------------------------

    def fetch(self, token: Hashable, req: m.OffsetFetchRequest, version: int, client: Client):
        if version >= 8:
            asks = [(g.group_id, g.topics, g.member_id if version >= 9 else None,
                     g.member_epoch if version >= 9 else -1) for g in req.groups]
        else:
            asks = [(req.group_id, req.topics, None, -1)]
        require_stable = version >= 7 and req.require_stable

        def build(append_errors: dict[str, ErrorCode]) -> m.OffsetFetchResponse:
            groups = []
            for gid, topics, member_id, member_epoch in asks:
                if gid in append_errors:
                    groups.append(offset_fetch_group_error(gid, append_errors[gid]))
                else:
                    groups.append(self._fetch_group(gid, topics, member_id, member_epoch, require_stable))
            return _shape_fetch(groups, asks, version)

        if require_stable:
            serving = [gid for gid, *_ in asks if self.core.coordinator_error(gid) == E.NONE]
            return self.core.respond_many(serving, token, version, build)
        return fit(build({}), version)

    def _fetch_group(self, gid: str, topics, member_id: str | None, member_epoch: int, require_stable: bool):
        core = self.core
        code = core.coordinator_error(gid)
        if code != E.NONE:
            return offset_fetch_group_error(gid, code)
        group = core.group(gid)
        if isinstance(group, ConsumerGroup) and not (member_id is None and member_epoch < 0):
            member = group.member(member_id or "")
            if member is None:
                return offset_fetch_group_error(gid, E.UNKNOWN_MEMBER_ID)
            if member.member_epoch != member_epoch:
                return offset_fetch_group_error(gid, E.STALE_MEMBER_EPOCH)
        shard = core.shard_for(gid)
        known = group is not None and not (isinstance(group, ClassicGroup) and group.state is S.DEAD)
        offsets = shard.committed.group(gid) if known else {}
        out = []

        def partition(topic: str, p: int, om: OffsetAndMetadata | None):
            if require_stable and gid in shard.open_txns and self.has_pending(shard, gid, topic, p):
                return FR.OffsetFetchResponsePartitions(partition_index=p, committed_offset=-1,
                                                        committed_leader_epoch=-1, metadata="",
                                                        error_code=E.UNSTABLE_OFFSET_COMMIT)
            return _partition(p, om)

        if topics is None:
            for topic in sorted(offsets):
                out.append(FR.OffsetFetchResponseTopics(name=topic, partitions=[
                    partition(topic, p, om) for p, om in sorted(offsets[topic].items())]))
        else:
            for t in topics:
                have = offsets.get(t.name, {})
                out.append(FR.OffsetFetchResponseTopics(name=t.name, partitions=[
                    partition(t.name, p, have.get(p)) for p in t.partition_indexes]))
        return FR.OffsetFetchResponseGroup(group_id=gid, topics=out, error_code=E.NONE)

    # -- OffsetDelete -------------------------------------------------------------------------------

    def delete(self, token: Hashable, req: m.OffsetDeleteRequest, version: int, client: Client):
        core = self.core
        DR = m.OffsetDeleteResponse
        gid = req.group_id
        if not gid:
            return fit(DR(error_code=E.INVALID_GROUP_ID), version)
        code = core.coordinator_error(gid)
        if code != E.NONE:
            return fit(DR(error_code=code), version)
        group = core.group(gid)
        if group is None or (isinstance(group, ClassicGroup) and group.state is S.DEAD):
            return fit(DR(error_code=E.GROUP_ID_NOT_FOUND), version)
        if isinstance(group, ClassicGroup) and group.state is not S.EMPTY and not group.uses_consumer_protocol():
            return fit(DR(error_code=E.NON_EMPTY_GROUP), version)
        shard = core.shard_for(gid)
        recs = []
        topics = []
        for topic in req.topics:
            subscribed = group.is_subscribed_to(topic.name)
            parts = []
            for p in topic.partitions:
                if subscribed:
                    parts.append(DR.OffsetDeleteResponsePartition(partition_index=p.partition_index,
                                                                  error_code=E.GROUP_SUBSCRIBED_TO_TOPIC))
                    continue
                parts.append(DR.OffsetDeleteResponsePartition(partition_index=p.partition_index, error_code=E.NONE))
                if (shard.offsets.get(gid, topic.name, p.partition_index) is not None
                        or self.has_pending(shard, gid, topic.name, p.partition_index)):
                    recs.append(records.offset_commit_tombstone(gid, topic.name, p.partition_index))
            topics.append(DR.OffsetDeleteResponseTopic(name=topic.name, partitions=parts))
        core.emit(gid, recs)
        return core.respond(gid, token, version, DR(error_code=E.NONE, topics=topics), lambda e: DR(error_code=e))

    # -- expiry -------------------------------------------------------------------------------------

    def schedule_expiration(self, partition: int) -> None:
        core = self.core
        core.timer.schedule(("expire", partition), core.now + core.config.offsets_retention_check_interval_ms,
                            lambda: self.expire(partition))

    def expire(self, partition: int, now_ms: int | None = None) -> int:
        """Delete expired offsets and empty groups without offsets in one partition; returns how
        many tombstones were written. Runs on its interval; callable directly (tests, tools)."""
        core = self.core
        core._advance(now_ms)
        shard = core.shards.get(partition)
        if shard is None or not core.is_loaded(partition):
            return 0
        recs: list[records.CoordinatorRecord] = []
        for gid in list(dict.fromkeys([*shard.groups, *shard.offsets.groups()])):
            if self._expire_group_offsets(shard, gid, recs) and gid not in shard.open_txns:
                group = shard.groups.get(gid)
                if group is not None and group.is_empty:
                    recs.extend(core.group_tombstones(group))
        if recs:
            core.emit_to(shard, recs)
            log.info("group_metadata_expired", partition=partition, tombstones=len(recs))
        self.schedule_expiration(partition)
        return len(recs)

    def _expire_group_offsets(self, shard, gid: str, recs: list) -> bool:
        """Append tombstones for the group's expired offsets; True when none are left."""
        offsets = shard.offsets.group(gid)
        if not offsets:
            return True
        group = shard.groups.get(gid)
        base = _expiration_base(group)
        if base is None:
            return False
        now, retention = self.core.now, self.core.config.offsets_retention_ms
        all_expired = True
        for topic, parts in list(offsets.items()):
            if group is not None and group.is_subscribed_to(topic):
                all_expired = False
                continue
            for p, om in list(parts.items()):
                if self.has_pending(shard, gid, topic, p):
                    all_expired = False  # not while a transaction may still commit it
                elif om.expired(now, base(om), retention):
                    recs.append(records.offset_commit_tombstone(gid, topic, p))
                else:
                    all_expired = False
        return all_expired


def _expiration_base(group) -> Callable[[OffsetAndMetadata], int] | None:
    """From when a group's offsets age, or None when they must not expire now (Kafka's rules)."""
    def by_commit(om: OffsetAndMetadata) -> int:
        return om.commit_timestamp_ms

    if group is None or isinstance(group, ConsumerGroup) or group.protocol_type is None:
        return by_commit  # consumer groups, simple groups, offsets without a group
    if group.state is S.EMPTY:
        if group.state_timestamp_ms is None:
            return by_commit
        became_empty = group.state_timestamp_ms
        return lambda om: became_empty
    if group.uses_consumer_protocol() and group.subscribed_topics is not None and group.state is S.STABLE:
        return by_commit
    return None


def _partition(p: int, om: OffsetAndMetadata | None):
    if om is None:
        return FR.OffsetFetchResponsePartitions(partition_index=p, committed_offset=-1, committed_leader_epoch=-1,
                                                metadata="", error_code=E.NONE)
    return FR.OffsetFetchResponsePartitions(partition_index=p, committed_offset=om.offset,
                                            committed_leader_epoch=om.leader_epoch, metadata=om.metadata,
                                            error_code=E.NONE)


def _shape_fetch(groups: list, asks: list, version: int) -> m.OffsetFetchResponse:
    """v8+ answers per group; v0-v7 carry the one group's topics at top level (v2+ with a
    top-level error; v0-v1 put a group error on every requested partition)."""
    if version >= 8:
        return FR(groups=groups)
    g = groups[0]
    if g.error_code != E.NONE:
        if version >= 2:
            return FR(error_code=g.error_code, topics=[])
        requested = asks[0][1] or []
        return FR(topics=[FR.OffsetFetchResponseTopic(name=t.name, partitions=[
            FR.OffsetFetchResponsePartition(partition_index=p, committed_offset=-1, metadata="",
                                            error_code=g.error_code)
            for p in t.partition_indexes]) for t in requested])
    return FR(error_code=E.NONE, topics=[FR.OffsetFetchResponseTopic(name=t.name, partitions=[
        FR.OffsetFetchResponsePartition(partition_index=p.partition_index, committed_offset=p.committed_offset,
                                        committed_leader_epoch=p.committed_leader_epoch, metadata=p.metadata,
                                        error_code=p.error_code) for p in t.partitions]) for t in g.topics])
