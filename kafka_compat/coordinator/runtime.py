"""The trio runtime of the group coordinator: the broker's `ctx.broker.groups`.

It owns a sans-I/O `GroupCoordinator` and does its I/O: parks each request that must wait (a
JoinGroup waiting for the rebalance, a commit waiting for its append) until the machine completes
its token, sleeps until the machine's next deadline (no polling), appends the records the machine
emits to `__consumer_offsets` through the broker, and loads partitions the broker leads.

Wiring (the broker's side, all of it)::

    from kafka_compat.coordinator.runtime import GroupCoordinatorRuntime

    runtime = GroupCoordinatorRuntime(
        broker.config,                  # Kafka's keys: offsets.topic.num.partitions, group.*, offsets.* ...
        append=append,                  # async (partition, [(key, value|None), ...]) -> None, see below
        read=read,                      # (partition) -> iterable of (key, value|None), see below
        locate=locate,                  # (partition, listener) -> (node_id, host, port) | None
        topics=current_topics(),        # {name: (topic_id, num_partitions)}; later: runtime.set_topics(...)
    )
    await nursery.start(runtime.run)    # the one task; returns once it runs
    for p in partitions_of___consumer_offsets_led_here:
        runtime.on_partition_leader(p)  # loads p (requests for its groups: COORDINATOR_LOAD_IN_PROGRESS meanwhile)
    broker.groups = runtime

and later, from the broker's metadata listener: `runtime.on_partition_leader(p)` /
`runtime.on_partition_lost(p)` when leadership of a `__consumer_offsets` partition changes, and
`runtime.set_topics({...})` when topics are created, deleted or grow partitions (KIP-848 groups
re-read their subscribed topics on their next heartbeat).

The broker's three callables:

- `append(partition, records)`: append the (key, value) records to `__consumer_offsets`
  partition `partition` as one batch (`records_to_batch` builds it) and return once it is durable
  (acks=all semantics). Raise `KafkaError(code)` on failure (NOT_LEADER_OR_FOLLOWER,
  KAFKA_STORAGE_ERROR, ...): the waiting requests get Kafka's mapped error and the partition is
  reloaded from its log. Appends to one partition are never concurrent and keep their order.
- `read(partition)`: the partition's records from its log start to its end, in order, as (key,
  value) pairs; a plain iterable, an async iterable, or an awaitable of either (`batch_records`
  turns fetched log bytes into pairs and skips control batches). Raising makes the runtime give
  the partition up (NOT_COORDINATOR) until the next `on_partition_leader`.
- `locate(partition, listener)`: who leads a `__consumer_offsets` partition, as (node id, host,
  port) advertised on `listener`; None when no one does yet (FindCoordinator answers
  COORDINATOR_NOT_AVAILABLE and clients retry). Create `__consumer_offsets` here if it does not
  exist (Kafka creates it on the first FindCoordinator).

Handlers call one coroutine per API, passing the request and their `RequestContext`
(`api_version`, `client_id`, `client_host`, `listener` are read from it); each returns the response
object for that version. If `run()` stops, parked requests are answered COORDINATOR_NOT_AVAILABLE.
"""

from __future__ import annotations

import inspect
import math
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any

import structlog
import trio

from kafka_compat.coordinator.config import GroupConfig
from kafka_compat.coordinator.machine import Append, GroupCoordinator, Load, ShardState
from kafka_compat.coordinator.responses import error_response
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.records import Record, build_batch, iter_headers, iter_records

log = structlog.get_logger("kafka_compat.coordinator")

Pairs = list[tuple[bytes, bytes | None]]
AppendFn = Callable[[int, Pairs], Awaitable[None]]
ReadFn = Callable[[int], Any]
LocateFn = Callable[[int, str], tuple[int, str, int] | None]
LOAD_CHUNK = 2000  # records replayed between checkpoints while loading


class _Slot:
    __slots__ = ("event", "response", "abort")

    def __init__(self, abort: Callable[[], Message]):
        self.event = trio.Event()
        self.response: Message | None = None
        self.abort = abort


class GroupCoordinatorRuntime:
    def __init__(self, config: Mapping[str, Any] | GroupConfig, *, append: AppendFn, read: ReadFn,
                 locate: LocateFn | None = None, topics: Mapping[str, tuple[Uuid, int]] | None = None,
                 clock: Callable[[], int] | None = None, new_uuid: Callable[[], uuid.UUID] = uuid.uuid4):
        self.config = config if isinstance(config, GroupConfig) else GroupConfig.from_broker(config)
        self._clock = clock or (lambda: int(time.time() * 1000))
        self.machine = GroupCoordinator(self.config, topics=topics, new_uuid=new_uuid, now_ms=self._clock())
        self._append = append
        self._read = read
        self._locate = locate or (lambda partition, listener: None)
        self._waiting: dict[Hashable, _Slot] = {}
        self._next_token = 0
        self._queues: dict[int, deque] = {}
        self._busy: set[int] = set()
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self._sleeping_until = math.inf  # the machine deadline the timer loop sleeps until
        self._running = False
        # Partitions loaded since loading last went idle, summarised in one line when it does.
        self._loaded: list[int] = []
        self._loads_began = 0.0
        self._loads_idle = trio.Event()

    # -- the task -----------------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the timers, appends and loads until cancelled; parked requests are then answered
        COORDINATOR_NOT_AVAILABLE."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._running = True
                for p, queue in self._queues.items():  # work queued before the task ran
                    if queue:
                        self._start_worker(p)
                self._pump()
                task_status.started(self)
                while True:
                    deadline = self.machine.next_deadline()
                    self._sleeping_until = math.inf if deadline is None else deadline
                    with trio.move_on_at(math.inf if deadline is None else
                                         trio.current_time() + max(0, deadline - self._clock()) / 1000):
                        await self._wake.wait()
                    self._wake = trio.Event()
                    self.machine.tick(self._clock())
                    self._pump()
        finally:
            self._running = False
            self._nursery = None
            for slot in list(self._waiting.values()):
                if not slot.event.is_set():
                    slot.response = slot.abort()
                    slot.event.set()

    def _pump(self) -> None:
        """Hand the machine's outputs to whoever waits for them, and wake the timer loop if the
        machine now has a deadline earlier than the one it sleeps until."""
        for job in self.machine.take_work():
            self._queues.setdefault(job.partition, deque()).append(job)
            self._start_worker(job.partition)
        for token, response in self.machine.take_completions():
            slot = self._waiting.get(token)
            if slot is not None and not slot.event.is_set():
                slot.response = response
                slot.event.set()
        deadline = self.machine.next_deadline()
        if deadline is not None and deadline < self._sleeping_until:
            self._wake.set()

    def _start_worker(self, partition: int) -> None:
        if self._nursery is not None and partition not in self._busy:
            self._busy.add(partition)
            self._nursery.start_soon(self._worker, partition)

    async def _worker(self, partition: int) -> None:
        """Run one partition's appends and loads, in order (consecutive appends as one batch)."""
        queue = self._queues[partition]
        try:
            while queue:
                job = queue.popleft()
                if isinstance(job, Load):
                    await self._load(job)
                    continue
                batch = [job]
                while queue and isinstance(queue[0], Append):
                    batch.append(queue.popleft())
                error = None
                try:
                    await self._append(partition, [r for j in batch for r in j.records])
                except KafkaError as e:
                    error = e.code
                except Exception as e:  # the broker's bug or I/O error: the log is the truth
                    log.error("coordinator_append_error", partition=partition, error=repr(e))
                    error = ErrorCode.UNKNOWN_SERVER_ERROR
                now = self._clock()
                for j in batch:
                    self.machine.append_done(j.id, error, now)
                self._pump()
        finally:
            self._busy.discard(partition)

    async def _load(self, job: Load) -> None:
        p, epoch = job
        started = time.monotonic()
        try:
            source = self._read(p)
            if inspect.isawaitable(source):
                source = await source
            chunk: list = []
            if hasattr(source, "__aiter__"):
                async for pair in source:
                    chunk.append(pair)
                    if len(chunk) >= LOAD_CHUNK:
                        if not self.machine.load_records(p, epoch, chunk):
                            return
                        chunk = []
                        await trio.sleep(0)
            else:
                for pair in source:
                    chunk.append(pair)
                    if len(chunk) >= LOAD_CHUNK:
                        if not self.machine.load_records(p, epoch, chunk):
                            return
                        chunk = []
                        await trio.sleep(0)
            if self.machine.load_records(p, epoch, chunk):
                self.machine.finish_load(p, epoch, self._clock())
                self._loaded.append(p)
                log.debug("coordinator_load_done", partition=p, seconds=round(time.monotonic() - started, 3))
        except Exception as e:
            log.error("coordinator_load_failed", partition=p, error=repr(e))
            if p in self.machine.shards and self.machine.shards[p].epoch == epoch:
                self.machine.unload(p, self._clock())
        finally:
            self._pump()
            self._maybe_loads_idle()

    def _loading(self) -> bool:
        return any(shard.state is ShardState.LOADING for shard in self.machine.shards.values())

    def _maybe_loads_idle(self) -> None:
        """When no partition is loading any more: one line for those loaded meanwhile (not one
        a partition: `__consumer_offsets` has 50), and wake `wait_loaded`."""
        if self._loading():
            return
        shards = [self.machine.shards[p] for p in self._loaded if p in self.machine.shards]
        if shards:
            log.info("coordinator_loaded", partitions=len(shards), groups=sum(len(s.groups) for s in shards),
                     offsets=sum(len(s.committed) for s in shards),
                     seconds=round(time.monotonic() - self._loads_began, 3))
        self._loaded.clear()
        self._loads_idle.set()
        self._loads_idle = trio.Event()

    async def wait_loaded(self) -> None:
        """Return once no `__consumer_offsets` partition this broker leads is still loading."""
        while self._loading():
            await self._loads_idle.wait()

    # -- the broker's hooks -------------------------------------------------------------------------

    def on_partition_leader(self, partition: int) -> None:
        """This broker leads `__consumer_offsets` partition `partition`: load it."""
        if not self._loading():
            self._loads_began = time.monotonic()
        self.machine.begin_load(partition, self._clock())
        self._pump()

    def on_partition_lost(self, partition: int) -> None:
        """This broker no longer leads it: its groups answer NOT_COORDINATOR."""
        queue = self._queues.get(partition)
        if queue:
            queue.clear()
        self.machine.unload(partition, self._clock())
        self._pump()
        self._maybe_loads_idle()

    def set_topics(self, topics: Mapping[str, tuple[Uuid, int]]) -> None:
        """The current topics: {name: (topic id, partition count)}."""
        self.machine.set_topics(topics, self._clock())
        self._pump()

    def partition_for(self, group_id: str) -> int:
        return self.machine.partition_for(group_id)

    # -- requests -----------------------------------------------------------------------------------

    async def _call(self, api_key: m.ApiKey, method, request: Message, ctx, **extra) -> Message:
        version = ctx.api_version
        self._next_token += 1
        token = self._next_token
        slot = _Slot(lambda: error_response(api_key, request, version, ErrorCode.COORDINATOR_NOT_AVAILABLE))
        self._waiting[token] = slot
        try:
            response = method(token, request, version, self._clock(), _client_id(ctx), _client_host(ctx), **extra)
            self._pump()
            if response is not None:
                return response
            if not self._running:
                return slot.abort()
            await slot.event.wait()
            return slot.response
        finally:
            self._waiting.pop(token, None)

    async def join_group(self, request: m.JoinGroupRequest, ctx) -> Message:
        return await self._call(m.ApiKey.JOIN_GROUP, self.machine.join_group, request, ctx)

    async def sync_group(self, request: m.SyncGroupRequest, ctx) -> Message:
        return await self._call(m.ApiKey.SYNC_GROUP, self.machine.sync_group, request, ctx)

    async def heartbeat(self, request: m.HeartbeatRequest, ctx) -> Message:
        return await self._call(m.ApiKey.HEARTBEAT, self.machine.heartbeat, request, ctx)

    async def leave_group(self, request: m.LeaveGroupRequest, ctx) -> Message:
        return await self._call(m.ApiKey.LEAVE_GROUP, self.machine.leave_group, request, ctx)

    async def offset_commit(self, request: m.OffsetCommitRequest, ctx) -> Message:
        return await self._call(m.ApiKey.OFFSET_COMMIT, self.machine.offset_commit, request, ctx)

    async def offset_fetch(self, request: m.OffsetFetchRequest, ctx) -> Message:
        return await self._call(m.ApiKey.OFFSET_FETCH, self.machine.offset_fetch, request, ctx)

    async def offset_delete(self, request: m.OffsetDeleteRequest, ctx) -> Message:
        return await self._call(m.ApiKey.OFFSET_DELETE, self.machine.offset_delete, request, ctx)

    async def list_groups(self, request: m.ListGroupsRequest, ctx) -> Message:
        return await self._call(m.ApiKey.LIST_GROUPS, self.machine.list_groups, request, ctx)

    async def describe_groups(self, request: m.DescribeGroupsRequest, ctx,
                              authorized_operations: Callable[[str], int] | None = None) -> Message:
        return await self._call(m.ApiKey.DESCRIBE_GROUPS, self.machine.describe_groups, request, ctx,
                                authorized_operations=authorized_operations)

    async def delete_groups(self, request: m.DeleteGroupsRequest, ctx) -> Message:
        return await self._call(m.ApiKey.DELETE_GROUPS, self.machine.delete_groups, request, ctx)

    async def consumer_group_heartbeat(self, request: m.ConsumerGroupHeartbeatRequest, ctx) -> Message:
        return await self._call(m.ApiKey.CONSUMER_GROUP_HEARTBEAT, self.machine.consumer_group_heartbeat, request, ctx)

    async def consumer_group_describe(self, request: m.ConsumerGroupDescribeRequest, ctx,
                                      authorized_operations: Callable[[str], int] | None = None) -> Message:
        return await self._call(m.ApiKey.CONSUMER_GROUP_DESCRIBE, self.machine.consumer_group_describe, request, ctx,
                                authorized_operations=authorized_operations)

    def find_coordinator(self, request: m.FindCoordinatorRequest, ctx) -> Message:
        listener = getattr(ctx, "listener", "")
        return self.machine.find_coordinator(request, ctx.api_version, lambda p: self._locate(p, listener))


def _client_id(ctx) -> str:
    return getattr(ctx, "client_id", None) or ""


def _client_host(ctx) -> str:
    """Kafka shows client hosts as Java's InetAddress.toString() does: "/10.0.0.1"."""
    host = getattr(ctx, "client_host", None) or ""
    if host.count(":") == 1:  # "ip:port"
        host = host.rsplit(":", 1)[0]
    if host.startswith("[") and "]" in host:  # "[ipv6]:port"
        host = host[1:host.index("]")]
    return host if not host or host.startswith("/") else "/" + host


# -- log format helpers for the broker --------------------------------------------------------------

def records_to_batch(records: Iterable[tuple[bytes | None, bytes | None]], timestamp_ms: int | None = None,
                     base_offset: int = 0) -> bytearray:
    """One magic-2 batch (no compression, CreateTime, no producer) holding the records, as Kafka's
    coordinator writes them."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return build_batch([Record(key, value, ts) for key, value in records], base_offset=base_offset)


def batch_records(buf) -> Iterable[tuple[bytes | None, bytes | None]]:
    """The (key, value) pairs of the batches in `buf` (log bytes), skipping control batches."""
    for position, header in iter_headers(buf):
        if header.is_control:
            continue
        for record in iter_records(buf, position, header):
            yield record.key, record.value
