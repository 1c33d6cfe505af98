"""The group coordinator as a sans-I/O state machine (no trio, no sockets, no files).

Inputs are method calls: requests (`handle(api_key, token, request, version, now, client)`, with
a driver-chosen `token`; the `requests` table says which method decides each group API),
`tick(now_ms)`, partition lifecycle (`begin_load` / `load_records` / `finish_load` / `unload`),
`append_done`, `set_topics`. Outputs are pulled by the driver:

- `handle` returns the response, or None when the response is parked; it then comes out of
  `take_completions()` as `(token, response)` later (a JoinGroup waiting for the rebalance, a
  SyncGroup waiting for the leader, a commit waiting for its append);
- `take_work()` returns, in order, the `Append`s to write to `__consumer_offsets` partitions and
  the `Load`s to perform (read a partition and feed its records back). The driver writes one
  partition's appends in order and reports each with `append_done(append, error)`. An append with
  a producer id is a transactional batch of that producer (TxnOffsetCommit); one with a `marker`
  is the COMMIT/ABORT marker that ends its transaction (`complete_transaction`, called for
  WriteTxnMarkers on this partition: the coordinator writes its own markers, as Kafka 4's does);
- `next_deadline()` says when to call `tick` next.

Responses are the generated message objects, already fitted to the request's version.

State changes are applied when decided (and their records emitted); a response that depends on
records being durable is released only when the partition's pending appends are done, as Kafka's
runtime does. Committed offsets are read from a separate store that only changes when an append
succeeds, so OffsetFetch reads what is durable. If an append fails, the requests waiting on it get
the mapped error and the partition is reloaded from its log (the log is the truth).

Per `__consumer_offsets` partition, a `Shard` holds the groups and offsets that hash to it; a
partition this coordinator does not lead answers NOT_COORDINATOR, one being loaded
COORDINATOR_LOAD_IN_PROGRESS.

Transactional offsets (TxnOffsetCommit) wait per producer in the shard until the marker that ends
the producer's transaction is durable: a commit makes them committed offsets, an abort drops them.
While they wait, OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for them. A load
replays transactional batches (`load_records` with the producer id) and markers (`load_marker`)
in log order.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

import structlog

from kafka_compat.coordinator import records
from kafka_compat.coordinator.classic import ClassicGroup, ClassicGroups, ClassicState
from kafka_compat.coordinator.config import GroupConfig
from kafka_compat.coordinator.consumer import ConsumerGroup, ConsumerGroups
from kafka_compat.coordinator.hashing import partition_for
from kafka_compat.coordinator.offsets import CommittedOffsets, OffsetAndMetadata, OffsetStore, PendingTxnOffsets
from kafka_compat.coordinator.responses import GROUP_AUTHORIZED_OPERATIONS, append_error, fit, group_error_response
from kafka_compat.coordinator.timer import Timer
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, Uuid

log = structlog.get_logger("kafka_compat.coordinator")

Group = ClassicGroup | ConsumerGroup
TopicsMapping = Mapping[str, tuple[Uuid, int]]  # topic name -> (topic id, partition count)
E = ErrorCode


class TxnMarker(NamedTuple):
    commit: bool
    coordinator_epoch: int


class Append(NamedTuple):
    """Records to append to `__consumer_offsets` partition `partition`; report with append_done.
    With `producer_id` (>= 0) they are a transactional batch of that producer and epoch (no
    sequence); with `marker` the append is that producer's transaction marker instead."""

    id: int
    partition: int
    records: list[tuple[bytes, bytes | None]]
    producer_id: int = -1
    producer_epoch: int = -1
    marker: TxnMarker | None = None


class Client(NamedTuple):
    """Who sent a request, as DescribeGroups shows members: client id and "/host"."""

    id: str = ""
    host: str = ""


class Load(NamedTuple):
    """Read partition `partition` from the start; feed load_records(partition, epoch, ...) then
    finish_load(partition, epoch, now)."""

    partition: int
    epoch: int


class ShardState(Enum):
    LOADING = "loading"
    LOADED = "loaded"


@dataclass(eq=False)
class PendingAppend:
    id: int
    records: list[records.CoordinatorRecord]
    callbacks: list[Callable[[ErrorCode | None], None]] = field(default_factory=list)
    producer_id: int = -1  # a transactional batch (or marker) of this producer
    marker: TxnMarker | None = None


@dataclass(eq=False)
class Shard:
    """Everything of one `__consumer_offsets` partition."""

    partition: int
    epoch: int
    state: ShardState = ShardState.LOADING
    groups: dict[str, Group] = field(default_factory=dict)
    offsets: OffsetStore = field(default_factory=OffsetStore)  # latest (what was decided)
    committed: OffsetStore = field(default_factory=OffsetStore)  # durable (what OffsetFetch reads)
    pending: dict[int, PendingAppend] = field(default_factory=dict)  # in append order
    txn_offsets: dict[int, PendingTxnOffsets] = field(default_factory=dict)  # producer id -> its pending offsets
    open_txns: dict[str, set[int]] = field(default_factory=dict)  # group -> producers with pending offsets


class GroupCoordinator:
    """Classic and consumer groups, offsets, and their persistence; see the module docstring."""

    def __init__(self, config: GroupConfig | None = None, *, topics: TopicsMapping | None = None,
                 new_uuid: Callable[[], uuid.UUID] = uuid.uuid4, now_ms: int = 0):
        self.config = config or GroupConfig()
        self.now = now_ms
        self.new_uuid = new_uuid
        self.timer = Timer()
        self.shards: dict[int, Shard] = {}
        self.topics: TopicsMapping | None = None
        self.topic_names: dict[Uuid, str] = {}
        self._epochs: dict[int, int] = {}
        self._next_append_id = 0
        self._work: list[Append | Load] = []
        self._completions: list[tuple[Hashable, Message | ErrorCode]] = []
        self.classic = ClassicGroups(self)
        self.consumer = ConsumerGroups(self)
        self.offsets = CommittedOffsets(self)
        A = m.ApiKey
        # Who decides each group API; every one takes (token, request, version, client).
        self.requests: dict[int, Callable[[Hashable, Message, int, Client], Message | None]] = {
            A.JOIN_GROUP: self.classic.join,
            A.SYNC_GROUP: self.classic.sync,
            A.HEARTBEAT: self.classic.heartbeat,
            A.LEAVE_GROUP: self.classic.leave,
            A.OFFSET_COMMIT: self.offsets.commit,
            A.OFFSET_FETCH: self.offsets.fetch,
            A.OFFSET_DELETE: self.offsets.delete,
            A.LIST_GROUPS: self.list_groups,
            A.DESCRIBE_GROUPS: self.describe_groups,
            A.DELETE_GROUPS: self.delete_groups,
            A.CONSUMER_GROUP_HEARTBEAT: self.consumer.heartbeat,
            A.CONSUMER_GROUP_DESCRIBE: self.consumer.describe,
            A.TXN_OFFSET_COMMIT: self.offsets.txn_commit,
        }
        if topics is not None:
            self.set_topics(topics, now_ms)

    # == outputs ===================================================================================

    def take_work(self) -> list[Append | Load]:
        work, self._work = self._work, []
        return work

    def take_completions(self) -> list[tuple[Hashable, Message | ErrorCode]]:
        done, self._completions = self._completions, []
        return done

    def next_deadline(self) -> int | None:
        return self.timer.next_deadline()

    # == time ======================================================================================

    def _advance(self, now_ms: int | None) -> None:
        if now_ms is not None and now_ms > self.now:
            self.now = now_ms

    def tick(self, now_ms: int) -> None:
        """Run every deadline that is due at `now_ms`."""
        self._advance(now_ms)
        while (fn := self.timer.pop_due(self.now)) is not None:
            fn()

    # == topics ====================================================================================

    def set_topics(self, topics: TopicsMapping, now_ms: int | None = None) -> None:
        """The broker's current topics: {name: (topic id, partition count)}. Consumer groups
        re-read their subscribed topics (and re-resolve regexes) on their next heartbeat."""
        self._advance(now_ms)
        changed = self.topics is None or dict(self.topics) != dict(topics)
        self.topics = topics
        self.topic_names = {tid: name for name, (tid, _) in topics.items()}
        if changed:
            for shard in self.shards.values():
                for group in shard.groups.values():
                    if isinstance(group, ConsumerGroup):
                        group.metadata_refresh_deadline_ms = 0

    def topic_exists(self, topic: str, partition: int | None = None) -> bool:
        if self.topics is None:
            return True
        info = self.topics.get(topic)
        if info is None:
            return False
        return partition is None or 0 <= partition < info[1]

    # == partitions ================================================================================

    def partition_for(self, group_id: str) -> int:
        return partition_for(group_id, self.config.offsets_topic_num_partitions)

    def shard_for(self, group_id: str) -> Shard | None:
        return self.shards.get(self.partition_for(group_id))

    def coordinator_error(self, group_id: str) -> ErrorCode:
        """NONE when this coordinator serves the group now; else why not."""
        shard = self.shard_for(group_id)
        if shard is None:
            return E.NOT_COORDINATOR
        if shard.state is ShardState.LOADING:
            return E.COORDINATOR_LOAD_IN_PROGRESS
        return E.NONE

    def owned_partitions(self) -> list[int]:
        return sorted(self.shards)

    def is_loaded(self, partition: int) -> bool:
        shard = self.shards.get(partition)
        return shard is not None and shard.state is ShardState.LOADED

    def begin_load(self, partition: int, now_ms: int | None = None) -> None:
        """This broker now leads `partition`: start loading it (a `Load` comes out of take_work).
        Requests for its groups answer COORDINATOR_LOAD_IN_PROGRESS until finish_load."""
        self._advance(now_ms)
        if partition in self.shards:
            self._drop_shard(partition, E.NOT_COORDINATOR)
        epoch = self._epochs.get(partition, 0) + 1
        self._epochs[partition] = epoch
        self.shards[partition] = Shard(partition, epoch)
        self._work.append(Load(partition, epoch))

    def load_records(self, partition: int, epoch: int, pairs: Iterable[tuple[bytes | None, bytes | None]],
                     producer_id: int = -1) -> bool:
        """Replay records read from the partition (in log order); `producer_id` is the producer of
        a transactional batch. False when this load is stale (the partition was unloaded or
        reloaded meanwhile): stop reading."""
        shard = self._loading(partition, epoch)
        if shard is None:
            return False
        for key, value in pairs:
            if key is None:
                continue
            try:
                rec = records.decode(key, value)
            except records.RecordError as e:
                log.warning("coordinator_record_skipped", partition=partition, error=str(e))
                continue
            if rec is not None:
                self.replay(shard, rec, committed=True, producer_id=producer_id)
        return True

    def load_marker(self, partition: int, epoch: int, producer_id: int, commit: bool) -> bool:
        """Replay a transaction marker read from the partition."""
        shard = self._loading(partition, epoch)
        if shard is None:
            return False
        self.offsets.complete_txn(shard, producer_id, commit)
        return True

    def _loading(self, partition: int, epoch: int) -> Shard | None:
        shard = self.shards.get(partition)
        if shard is None or shard.epoch != epoch or shard.state is not ShardState.LOADING:
            return None
        return shard

    def finish_load(self, partition: int, epoch: int, now_ms: int | None = None) -> bool:
        """The whole partition was replayed: start serving its groups (timers, expiry job)."""
        self._advance(now_ms)
        shard = self.shards.get(partition)
        if shard is None or shard.epoch != epoch or shard.state is not ShardState.LOADING:
            return False
        shard.state = ShardState.LOADED
        for group in list(shard.groups.values()):
            if isinstance(group, ClassicGroup):
                self.classic.on_loaded(group)
            else:
                self.consumer.on_loaded(group)
        self.offsets.schedule_expiration(partition)
        if shard.groups:
            log.debug("coordinator_partition_loaded", partition=partition, groups=len(shard.groups),
                      offsets=len(shard.committed))
        return True

    def unload(self, partition: int, now_ms: int | None = None) -> None:
        """This broker no longer leads `partition` (or loading it failed): parked requests of its
        groups are answered NOT_COORDINATOR and its state is dropped."""
        self._advance(now_ms)
        if partition in self.shards:
            self._drop_shard(partition, E.NOT_COORDINATOR)
            self._epochs[partition] = self._epochs.get(partition, 0) + 1
            log.debug("coordinator_partition_unloaded", partition=partition)

    def _drop_shard(self, partition: int, error: ErrorCode) -> None:
        shard = self.shards.pop(partition)
        for group in shard.groups.values():
            if isinstance(group, ClassicGroup):
                self.classic.on_unloaded(group, error)
        for pending in shard.pending.values():
            for cb in pending.callbacks:
                cb(error)
        shard.pending.clear()
        self.timer.cancel_where(lambda k: isinstance(k, tuple) and len(k) > 1 and k[1] == partition)

    # == groups ====================================================================================

    def group(self, group_id: str) -> Group | None:
        shard = self.shard_for(group_id)
        return None if shard is None else shard.groups.get(group_id)

    def add_group(self, group: Group) -> None:
        shard = self.shard_for(group.group_id)
        assert shard is not None
        shard.groups[group.group_id] = group

    def remove_group(self, group_id: str) -> None:
        shard = self.shard_for(group_id)
        if shard is None:
            return
        group = shard.groups.pop(group_id, None)
        if isinstance(group, ClassicGroup):
            if group.state is not ClassicState.DEAD:
                group.transition_to(ClassicState.DEAD, self.now)
        p = shard.partition
        self.timer.cancel_where(lambda k: isinstance(k, tuple) and len(k) > 2 and k[1] == p and k[2] == group_id)

    def get_or_create_simple_group(self, group_id: str) -> ClassicGroup:
        group = self.group(group_id)
        if group is None:
            group = ClassicGroup(group_id, self.now)
            self.add_group(group)
        return group  # type: ignore[return-value]

    # == records ===================================================================================

    def replay(self, shard: Shard, rec: records.CoordinatorRecord, *, committed: bool = False,
               producer_id: int = -1) -> None:
        """Apply one record to the shard's state (at load, and live for the records whose effect
        is their replay). `committed` also applies offset records to the durable store; an offset
        record of a producer (`producer_id`) waits for its transaction's marker."""
        t = rec.type
        if t <= records.OFFSET_COMMIT:
            k = rec.key
            if rec.value is not None:
                if k.group not in shard.groups:
                    shard.groups[k.group] = ClassicGroup(k.group, self.now)
                om = rec.offset  # set when this coordinator decided it: no need to read the value again
                if om is None:
                    om = OffsetAndMetadata.from_value(rec.value, rec.value_version)
                if producer_id >= 0:
                    self.offsets.replay_txn(shard, producer_id, k.group, k.topic, k.partition, om)
                    return
                shard.offsets.put(k.group, k.topic, k.partition, om)
                if committed:
                    shard.committed.put(k.group, k.topic, k.partition, om)
            else:
                shard.offsets.remove(k.group, k.topic, k.partition)
                if committed:
                    shard.committed.remove(k.group, k.topic, k.partition)
            if k.group in shard.open_txns:
                self.offsets.supersede_txn(shard, k.group, k.topic, k.partition, rec.value is None)
        elif t == records.GROUP_METADATA:
            gid = rec.key.group
            if rec.value is None:
                group = shard.groups.pop(gid, None)
                if isinstance(group, ClassicGroup) and group.state is not ClassicState.DEAD:
                    group.transition_to(ClassicState.DEAD, self.now)
            else:
                shard.groups[gid] = self.classic.group_from_record(gid, rec.value)
        else:
            self.consumer.replay(shard, rec)

    def apply_committed(self, shard: Shard, rec: records.CoordinatorRecord) -> None:
        """A record is durable: offsets become visible to OffsetFetch (transactional ones wait for
        their marker)."""
        if rec.type <= records.OFFSET_COMMIT:
            k = rec.key
            if rec.value is not None:
                om = rec.offset
                if om is None:
                    om = OffsetAndMetadata.from_value(rec.value, rec.value_version)
                shard.committed.put(k.group, k.topic, k.partition, om)
            else:
                shard.committed.remove(k.group, k.topic, k.partition)

    def emit(self, group_id: str, recs: list[records.CoordinatorRecord], *, replay: bool = True,
             on_done: Callable[[ErrorCode | None], None] | None = None,
             producer: tuple[int, int] | None = None) -> PendingAppend | None:
        """Queue `recs` for the group's partition. With `replay`, apply them to the state now (the
        effect of consumer-group and offset records is their replay; classic groups are changed
        directly and write GroupMetadata with replay=False). `on_done(error)` runs when the
        append completes (error None) or fails. `producer` (id, epoch) makes the records a
        transactional batch of that producer."""
        shard = self.shard_for(group_id)
        if shard is None or not recs:
            return None
        return self.emit_to(shard, recs, replay=replay, on_done=on_done, producer=producer)

    def emit_to(self, shard: Shard, recs: list[records.CoordinatorRecord], *, replay: bool = True,
                on_done: Callable[[ErrorCode | None], None] | None = None,
                producer: tuple[int, int] | None = None, marker: TxnMarker | None = None) -> PendingAppend:
        pid, epoch = producer or (-1, -1)
        if replay:
            for rec in recs:
                self.replay(shard, rec, producer_id=pid)
        self._next_append_id += 1
        pending = PendingAppend(self._next_append_id, list(recs), producer_id=pid, marker=marker)
        if on_done is not None:
            pending.callbacks.append(on_done)
        shard.pending[pending.id] = pending
        self._work.append(Append(pending.id, shard.partition, [r.to_bytes() for r in recs], pid, epoch, marker))
        return pending

    def append_done(self, job: Append, error: ErrorCode | None = None, now_ms: int | None = None) -> None:
        """The driver appended `job` (error None: durable) or failed to."""
        self._advance(now_ms)
        shard = self.shards.get(job.partition)
        pending = shard.pending.pop(job.id, None) if shard is not None else None
        if pending is None:
            return  # the partition was unloaded meanwhile: its waiters were answered then
        if error is None or error == E.NONE:
            if pending.marker is not None:
                self.offsets.complete_txn(shard, pending.producer_id, pending.marker.commit)
            elif pending.producer_id < 0:  # transactional offsets wait for their marker instead
                for rec in pending.records:
                    self.apply_committed(shard, rec)
            for cb in pending.callbacks:
                cb(None)
            return
        log.warning("coordinator_append_failed", partition=shard.partition, error=ErrorCode(error).name)
        mapped = append_error(ErrorCode(error))
        for cb in pending.callbacks:
            cb(mapped)
        if pending.marker is not None:
            return  # a refused marker changed nothing here (its effect waits for it to be durable)
        # The in-memory state may now be ahead of the log: rebuild the partition from the log.
        self.begin_load(shard.partition)

    # == completing requests =======================================================================

    def complete(self, token: Hashable, version: int, response: Message) -> None:
        self._completions.append((token, fit(response, version)))

    def respond(self, group_id: str, token: Hashable, version: int, response: Message,
                on_error: Callable[[ErrorCode], Message]) -> Message | None:
        """Answer a write request: now if nothing is pending for the group's partition, else once
        everything appended so far is durable (Kafka answers writes at the committed offset)."""
        shard = self.shard_for(group_id)
        last = next(reversed(shard.pending.values()), None) if shard is not None and shard.pending else None
        if last is None:
            return fit(response, version)

        def done(error: ErrorCode | None) -> None:
            self.complete(token, version, response if error is None else on_error(error))

        last.callbacks.append(done)
        return None

    def respond_many(self, group_ids: Iterable[str], token: Hashable, version: int,
                     build: Callable[[dict[str, ErrorCode]], Message]) -> Message | None:
        """Like `respond` for a request that wrote to several partitions: `build(errors)` makes
        the response from each group's append error (groups absent from `errors` succeeded)."""
        waits: dict[int, tuple[PendingAppend, list[str]]] = {}
        for gid in group_ids:
            shard = self.shard_for(gid)
            if shard is not None and shard.pending:
                last = next(reversed(shard.pending.values()))
                waits.setdefault(last.id, (last, []))[1].append(gid)
        if not waits:
            return fit(build({}), version)
        errors: dict[str, ErrorCode] = {}
        remaining = [len(waits)]

        def one_done(gids: list[str]) -> Callable[[ErrorCode | None], None]:
            def done(error: ErrorCode | None) -> None:
                if error is not None:
                    errors.update((g, error) for g in gids)
                remaining[0] -= 1
                if remaining[0] == 0:
                    self.complete(token, version, build(errors))
            return done

        for last, gids in waits.values():
            last.callbacks.append(one_done(gids))
        return None

    # == requests ==================================================================================

    def handle(self, api_key: int, token: Hashable, request: Message, version: int, now_ms: int,
               client: Client = Client()) -> Message | None:
        """Decide one request of a group API (the keys of `requests`): return its response, or None
        when it is parked and will come out of take_completions() under `token`."""
        self._advance(now_ms)
        return self.requests[api_key](token, request, version, client)

    # -- transaction markers ------------------------------------------------------------------------

    def complete_transaction(self, token: Hashable, partition: int, producer_id: int, producer_epoch: int,
                             coordinator_epoch: int, commit: bool, now_ms: int) -> ErrorCode | None:
        """WriteTxnMarkers for `__consumer_offsets` partition `partition`: write the producer's
        COMMIT or ABORT marker there; once durable its transactional offsets are committed (or
        dropped). Returns the error at once (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS), or None:
        the outcome (an ErrorCode, NONE when written) comes out of take_completions() under
        `token`. The partition's log refuses stale producer or coordinator epochs."""
        self._advance(now_ms)
        shard = self.shards.get(partition)
        if shard is None:
            return E.NOT_COORDINATOR
        if shard.state is ShardState.LOADING:
            return E.COORDINATOR_LOAD_IN_PROGRESS

        def done(error: ErrorCode | None) -> None:
            self._completions.append((token, E.NONE if error is None else error))

        self.emit_to(shard, [], producer=(producer_id, producer_epoch), marker=TxnMarker(commit, coordinator_epoch),
                     on_done=done)
        return None

    # -- admin -------------------------------------------------------------------------------------

    def list_groups(self, token: Hashable, request: m.ListGroupsRequest, version: int, client: Client) -> Message:
        Response = m.ListGroupsResponse
        if any(s.state is ShardState.LOADING for s in self.shards.values()):
            return fit(Response(error_code=E.COORDINATOR_LOAD_IN_PROGRESS), version)
        states = {s.strip().lower() for s in request.states_filter} if version >= 4 else set()
        types = {t.strip().lower() for t in request.types_filter} if version >= 5 else set()
        listed = []
        for shard in sorted(self.shards.values(), key=lambda s: s.partition):
            for group in shard.groups.values():
                if states and group.state_name.lower() not in states:
                    continue
                if types and group.type not in types:
                    continue
                protocol_type = group.protocol_type or ""
                listed.append(Response.ListedGroup(group_id=group.group_id, protocol_type=protocol_type,
                                             group_state=group.state_name, group_type=group.type))
        return fit(Response(groups=listed), version)

    def describe_groups(self, token: Hashable, request: m.DescribeGroupsRequest, version: int,
                        client: Client) -> Message:
        Response = m.DescribeGroupsResponse
        include_ops = version >= 3 and request.include_authorized_operations
        described = []
        for gid in request.groups:
            error = self.coordinator_error(gid)
            if error != E.NONE:
                described.append(Response.DescribedGroup(group_id=gid, error_code=error))
                continue
            group = self.group(gid)
            if not isinstance(group, ClassicGroup):
                # Unknown, or a consumer group (described by ConsumerGroupDescribe): Kafka says Dead,
                # and from v6 (KIP-1043) GROUP_ID_NOT_FOUND with why.
                d = Response.DescribedGroup(group_id=gid, group_state=ClassicState.DEAD.value)
                if version >= 6:
                    d.error_code = E.GROUP_ID_NOT_FOUND
                    d.error_message = f"Group {gid} not found." if group is None else \
                        f"Group {gid} is not a classic group."
            else:
                stable = group.state is ClassicState.STABLE
                members = [Response.DescribedGroupMember(
                    member_id=mb.member_id, group_instance_id=mb.group_instance_id, client_id=mb.client_id,
                    client_host=mb.client_host,
                    member_metadata=mb.metadata(group.protocol_name) if stable else b"",
                    member_assignment=mb.assignment if stable else b"") for mb in group.members.values()]
                d = Response.DescribedGroup(group_id=gid, group_state=group.state_name,
                                      protocol_type=group.protocol_type or "",
                                      protocol_data=(group.protocol_name or "") if stable else "", members=members)
            if include_ops:
                d.authorized_operations = GROUP_AUTHORIZED_OPERATIONS  # no authorizer restricts them yet
            described.append(d)
        return fit(Response(groups=described), version)

    def delete_groups(self, token: Hashable, request: m.DeleteGroupsRequest, version: int,
                      client: Client) -> Message | None:
        Response = m.DeleteGroupsResponse
        results: dict[str, ErrorCode] = {}
        written: list[str] = []
        for gid in request.groups_names:
            if gid in results:
                continue
            error = self.coordinator_error(gid)
            if error == E.NONE:
                error = self._validate_delete(gid)
            results[gid] = error
            if error != E.NONE:
                continue
            shard = self.shard_for(gid)
            recs = [records.offset_commit_tombstone(gid, t, p)
                    for t, p in self.offsets.stored_and_pending(shard, gid)]
            recs += self.group_tombstones(self.group(gid))
            self.emit(gid, recs)
            written.append(gid)
            log.info("group_deleted", group_id=gid)

        def build(errors: dict[str, ErrorCode]) -> Message:
            return Response(results=[Response.DeletableGroupResult(group_id=gid, error_code=errors.get(gid, code))
                               for gid, code in results.items()])

        return self.respond_many(written, token, version, build)

    def _validate_delete(self, group_id: str) -> ErrorCode:
        group = self.group(group_id)
        if group is None:
            return E.GROUP_ID_NOT_FOUND
        if isinstance(group, ClassicGroup):
            if group.state is ClassicState.DEAD:
                return E.GROUP_ID_NOT_FOUND
            if group.state is not ClassicState.EMPTY:
                return E.NON_EMPTY_GROUP
        elif not group.is_empty:
            return E.NON_EMPTY_GROUP
        return E.NONE

    def group_tombstones(self, group: Group | None) -> list[records.CoordinatorRecord]:
        """The records that delete a group (not its offsets)."""
        if group is None:
            return []
        if isinstance(group, ClassicGroup):
            return [records.group_metadata_tombstone(group.group_id)]
        gid = group.group_id
        recs = [records.consumer_group_current_assignment_tombstone(gid, mid) for mid in group.members]
        recs += [records.consumer_group_target_assignment_tombstone(gid, mid) for mid in group.members]
        recs.append(records.consumer_group_target_assignment_epoch_tombstone(gid))
        recs += [records.consumer_group_member_subscription_tombstone(gid, mid) for mid in group.members]
        recs.append(records.consumer_group_subscription_metadata_tombstone(gid))
        recs.append(records.consumer_group_epoch_tombstone(gid))
        return recs

    # -- FindCoordinator ---------------------------------------------------------------------------

    def find_coordinator(self, request: m.FindCoordinatorRequest, version: int,
                         locate: Callable[[int], tuple[int, str, int] | None],
                         locate_transaction: Callable[[str], tuple[int, str, int] | None] | None = None) -> Message:
        """Answer FindCoordinator: `locate(partition)` gives the (node id, host, port) leading a
        `__consumer_offsets` partition, or None when it has no leader (yet);
        `locate_transaction(transactional_id)` the same for the leader of its `__transaction_state`
        partition (without it, transaction keys answer COORDINATOR_NOT_AVAILABLE)."""
        Response = m.FindCoordinatorResponse
        key_type = request.key_type if version >= 1 else 0

        def one(key: str) -> tuple[ErrorCode, tuple[int, str, int]]:
            if key_type == 1:  # TRANSACTION
                node = locate_transaction(key) if locate_transaction is not None else None
            else:
                node = locate(self.partition_for(key))
            if node is None:
                return E.COORDINATOR_NOT_AVAILABLE, (-1, "", -1)
            return E.NONE, node

        if key_type not in (0, 1):
            return group_error_response(m.ApiKey.FIND_COORDINATOR, request, version, E.INVALID_REQUEST,
                                        f"unknown coordinator key type {key_type}")
        if version >= 4:
            coordinators = []
            for key in request.coordinator_keys:
                error, (node_id, host, port) = one(key)
                coordinators.append(Response.Coordinator(
                    key=key, node_id=node_id, host=host, port=port, error_code=error,
                    error_message=None if error == E.NONE else _message(error)))
            return fit(Response(coordinators=coordinators), version)
        error, (node_id, host, port) = one(request.key)
        return fit(Response(error_code=error, error_message=None if error == E.NONE else _message(error),
                      node_id=node_id, host=host, port=port), version)


_MESSAGES = {
    E.COORDINATOR_NOT_AVAILABLE: "The coordinator is not available.",
    E.NOT_COORDINATOR: "This is not the correct coordinator.",
    E.COORDINATOR_LOAD_IN_PROGRESS: "The coordinator is loading and hence can't process requests.",
}


def _message(error: ErrorCode) -> str:
    return _MESSAGES.get(error, error.name)
