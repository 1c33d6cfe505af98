"""The group coordinator's trio driver: the broker's `broker.groups`, `__consumer_offsets` its log.

It owns the sans-I/O `GroupCoordinator` (kafka_compat.coordinator.machine) and does its I/O:

- requests: `handle(request, ctx)` gives each decoded group request to the machine and returns its
  response; one the machine parks (a JoinGroup waiting for the rebalance, a commit waiting for its
  records to be durable) is awaited until the machine completes it. A TxnOffsetCommit is first
  verified with the transaction coordinator (KIP-890, kafka_compat.server.txn_verification: the
  group's partition must be in the transaction), its batch appended with the guard that gave;
- appends: the records the machine emits are appended to their `__consumer_offsets` partition at
  once, by the task that caused them, as one batch per partition (a batch the coordinator built is
  appended as built, not read back to be validated: `own_plain_batch`). They are durable once the
  high watermark covers them: with the leader alone in the ISR that is at once, so a commit is
  answered without a task switch; otherwise one task per partition waits for the high watermark
  (`offsets.commit.timeout.ms`) and reports the appends in order;
- loads: a partition this broker comes to lead is read back, from its log start to its log end
  (a new leader's whole log becomes committed: its high watermark may still lag what its previous
  leader acknowledged), `offsets.load.buffer.size` bytes at a time, by a task; meanwhile its groups answer
  COORDINATOR_LOAD_IN_PROGRESS. When none is loading any more, one line sums up those loaded
  (`__consumer_offsets` has 50 partitions) and `wait_loaded()` returns;
- time: one task sleeps until the machine's next deadline (session and rebalance timeouts, offset
  expiry), never polling;
- metadata: `follow(old, new)`, a listener of the metadata image, gives the machine the topics
  (KIP-848 subscriptions) and the `__consumer_offsets` partitions this broker leads (loaded when
  led, dropped when lost).

`__consumer_offsets` is created on the first FindCoordinator, as Kafka does, with
`offsets.topic.num.partitions`, `offsets.topic.replication.factor` and a compacted log, by the
active controller (forwarded there from any broker). If `run()` stops, parked requests are
answered COORDINATOR_NOT_AVAILABLE.
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
import trio

from kafka_compat.coordinator.config import GroupConfig
from kafka_compat.coordinator.machine import Append, Client, GroupCoordinator, Load, ShardState
from kafka_compat.coordinator.responses import append_error, group_error_response
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message
from kafka_compat.records import Record, RecordsError, build_batch, iter_headers, iter_records
from kafka_compat.records.batch import NO_SEQUENCE
from kafka_compat.records.control import read_marker
from kafka_compat.records.validator import COORDINATOR, own_plain_batch
from kafka_compat.server.coordinator_appends import AppendWaits
from kafka_compat.server.txn_verification import verification_guard

if TYPE_CHECKING:
    from kafka_compat.replication.replica_manager import ReplicaManager
    from kafka_compat.server.broker import Broker

log = structlog.get_logger("kafka_compat.coordinator")

OFFSETS_TOPIC = "__consumer_offsets"
LOAD_CHUNK = 2000  # records replayed between checkpoints while loading


async def start_group_coordinator(broker: Broker, nursery: trio.Nursery) -> GroupCoordinatorDriver:
    """Start the coordinator on `broker`'s replicas and keep it in step with the metadata image."""
    driver = GroupCoordinatorDriver(GroupConfig.from_broker(broker.config), broker.replicas, broker.node_id,
                                    verify=functools.partial(verification_guard, broker))
    await nursery.start(driver.run)
    driver.follow(None, broker.metadata)
    broker.quorum.add_listener(driver.follow)  # after the replica manager's: the partition logs exist by then
    return driver


async def ensure_offsets_topic(broker: Broker) -> None:
    """Create `__consumer_offsets` (through the active controller) if it does not exist yet."""
    if OFFSETS_TOPIC in broker.metadata.topics:
        return
    cfg = broker.config
    C = m.CreateTopicsRequest
    configs = {"cleanup.policy": "compact", "compression.type": "producer",
               "segment.bytes": str(cfg["offsets.topic.segment.bytes"])}
    response = await broker.create_topics([C.CreatableTopic(
        name=OFFSETS_TOPIC, num_partitions=cfg["offsets.topic.num.partitions"],
        replication_factor=cfg["offsets.topic.replication.factor"],
        configs=[C.CreatableTopicConfig(name=k, value=v) for k, v in configs.items()])])
    (result,) = response.topics
    if result.error_code not in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS):
        # e.g. fewer live brokers than the replication factor: clients retry FindCoordinator
        raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, result.error_message)


class _InFlight:
    """A request in `handle`: its response once the machine completes it, `event` once it waits."""

    __slots__ = ("api_key", "request", "version", "response", "event")

    def __init__(self, api_key: int | None, request: Message | None, version: int):
        self.api_key, self.request, self.version = api_key, request, version
        self.response: Message | None = None
        self.event: trio.Event | None = None


class GroupCoordinatorDriver:
    """See the module docstring. `clock` gives wall-clock milliseconds (the machine's time);
    `verify(partition, transactional_id, producer_id, producer_epoch, sequence, abortable=)` is
    txn_verification.verification_guard on the broker (without it no guard is asked for)."""

    def __init__(self, config: GroupConfig, replicas: ReplicaManager, node_id: int, *,
                 clock: Callable[[], int] | None = None, new_uuid: Callable[[], uuid.UUID] = uuid.uuid4,
                 verify: Callable[..., Awaitable[object | None]] | None = None):
        self.config = config
        self._replicas = replicas
        self._node_id = node_id
        self._clock = clock or (lambda: int(time.time() * 1000))
        self.machine = GroupCoordinator(config, new_uuid=new_uuid, now_ms=self._clock())
        self._image: MetadataImage | None = None
        self._verify = verify
        self._guards: dict[tuple[int, int], object] = {}  # (partition, producer id): for the append under way
        self._in_flight: dict[int, _InFlight] = {}
        self._next_token = 0
        self._unreplicated = AppendWaits(replicas, self._start, self._replicated)
        self._nursery: trio.Nursery | None = None
        self._not_started: list[tuple] = []  # tasks asked for before run() started
        self._wake = trio.Event()
        self._sleeping_until = math.inf  # the machine deadline the timer loop sleeps until
        self._loaded: list[int] = []  # partitions loaded since loading last went idle
        self._loads_began = 0.0
        self._loads_idle = trio.Event()

    # -- the task -----------------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the timers, loads and replication waits until cancelled; parked requests are then
        answered COORDINATOR_NOT_AVAILABLE."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for fn, *args in self._not_started:
                    nursery.start_soon(fn, *args)
                self._not_started.clear()
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
            self._nursery = None
            for request in self._in_flight.values():
                if request.response is None:
                    request.response = ErrorCode.COORDINATOR_NOT_AVAILABLE if request.api_key is None else \
                        group_error_response(request.api_key, request.request, request.version,
                                             ErrorCode.COORDINATOR_NOT_AVAILABLE)
                    if request.event is not None:
                        request.event.set()

    def _start(self, fn, *args) -> None:
        if self._nursery is None:
            self._not_started.append((fn, *args))
        else:
            self._nursery.start_soon(fn, *args)

    def _pump(self) -> None:
        """Carry out what the machine asked for: appends and loads, completed requests, and an
        earlier deadline for the timer loop."""
        machine = self.machine
        while work := machine.take_work():
            self._run_work(work)
        for token, response in machine.take_completions():
            request = self._in_flight.get(token)
            if request is not None and request.response is None:
                request.response = response
                if request.event is not None:
                    request.event.set()
        deadline = machine.next_deadline()
        if deadline is not None and deadline < self._sleeping_until:
            self._wake.set()

    def _run_work(self, work: list[Append | Load]) -> None:
        appends: dict[int, list[list[Append]]] = {}  # per partition, in order: runs of one batch each
        for job in work:
            if isinstance(job, Load):
                self._start(self._load, job)  # it runs after these appends: it reads them back
                continue
            runs = appends.setdefault(job.partition, [])
            # A transactional batch or a marker is a producer's own batch; plain records share one.
            if runs and job.producer_id < 0 and runs[-1][-1].producer_id < 0:
                runs[-1].append(job)
            else:
                runs.append([job])
        for partition, runs in appends.items():
            for jobs in runs:
                self._append(partition, jobs)

    # -- appends ------------------------------------------------------------------------------------

    def _append(self, index: int, jobs: list[Append]) -> None:
        """Append the jobs' records to `__consumer_offsets` partition `index` as one batch."""
        now = self._clock()
        try:
            partition = self._replicas.leader(OFFSETS_TOPIC, index)
            job = jobs[0]
            if job.marker is not None:
                info = partition.append_marker(job.producer_id, job.producer_epoch, job.marker.coordinator_epoch,
                                               job.marker.commit, now)
            elif job.producer_id >= 0:  # TxnOffsetCommit, with the guard its verification gave
                batch = build_batch([Record(k, v, now) for k, v in job.records], producer_id=job.producer_id,
                                    producer_epoch=job.producer_epoch, transactional=True)
                info = partition.append(batch, -1, now, origin=COORDINATOR,
                                        verification_guard=self._guards.get((index, job.producer_id)))
            else:
                batch = own_plain_batch([record for job in jobs for record in job.records], now, partition.log.config)
                info = partition.append(batch, -1, now, origin=COORDINATOR)
        except KafkaError as e:
            return self._appended(jobs, e.code, now)
        except RecordsError as e:  # e.g. a group's metadata larger than max.message.bytes
            return self._appended(jobs, ErrorCode[e.error], now)
        except Exception as e:  # an I/O error or the broker's bug: the log is the truth
            log.error("coordinator_append_error", partition=index, error=repr(e))
            return self._appended(jobs, ErrorCode.UNKNOWN_SERVER_ERROR, now)
        if not self._unreplicated.add(index, partition, jobs, info.last_offset,
                                      self.config.offsets_commit_timeout_ms / 1000):
            self._appended(jobs, None, now)

    def _appended(self, jobs: list[Append], error: ErrorCode | None, now: int) -> None:
        for job in jobs:
            self.machine.append_done(job, error, now)

    def _replicated(self, jobs: list[Append], error: ErrorCode | None) -> None:
        self._appended(jobs, error, self._clock())
        self._pump()

    # -- loads --------------------------------------------------------------------------------------

    async def _load(self, job: Load) -> None:
        index, epoch = job
        machine = self.machine
        started = time.monotonic()
        try:
            log_ = self._replicas.get(OFFSETS_TOPIC, index).log
            offset, end = log_.log_start_offset, log_.log_end_offset
            pairs: list = []
            while offset < end:
                view = memoryview(log_.read_bytes(offset, self.config.offsets_load_buffer_size, max_offset=end))
                if not view:
                    break
                for position, header in iter_headers(view):
                    offset = header.last_offset + 1
                    if header.is_transactional:  # TxnOffsetCommit batches and their markers, in log order
                        if not (machine.load_records(index, epoch, pairs) and self._load_transactional(
                                index, epoch, view, position, header)):
                            return
                        pairs = []
                        continue
                    if not header.is_control:
                        pairs += [(record.key, record.value) for record in iter_records(view, position, header)]
                    if len(pairs) >= LOAD_CHUNK:
                        if not machine.load_records(index, epoch, pairs):
                            return
                        pairs = []
                        await trio.sleep(0)
            if machine.load_records(index, epoch, pairs) and machine.finish_load(index, epoch, self._clock()):
                self._loaded.append(index)
                log.debug("coordinator_load_done", partition=index, seconds=round(time.monotonic() - started, 3))
        except Exception as e:
            log.error("coordinator_load_failed", partition=index, error=repr(e))
            shard = machine.shards.get(index)
            if shard is not None and shard.epoch == epoch:
                machine.unload(index, self._clock())
        finally:
            self._pump()
            self._maybe_loads_idle()

    def _load_transactional(self, index: int, epoch: int, view: memoryview, position: int, header) -> bool:
        """Replay a transactional batch (offsets waiting for their marker) or a marker."""
        if not header.is_control:
            pairs = [(r.key, r.value) for r in iter_records(view, position, header)]
            return self.machine.load_records(index, epoch, pairs, producer_id=header.producer_id)
        marker = read_marker(view, position, header)
        if marker is None or not (marker.is_commit or marker.is_abort):
            return True
        return self.machine.load_marker(index, epoch, header.producer_id, marker.is_commit)

    def _loading(self) -> bool:
        return any(shard.state is ShardState.LOADING for shard in self.machine.shards.values())

    def _maybe_loads_idle(self) -> None:
        """When no partition is loading any more: one line for those loaded meanwhile, and wake
        `wait_loaded`."""
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

    # -- metadata -----------------------------------------------------------------------------------

    def follow(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """A new metadata image: topics for consumer groups, and the partitions led here."""
        self._image = new
        now = self._clock()
        if old is None or old.topics is not new.topics:
            self.machine.set_topics({name: (t.topic_id, len(t.partitions)) for name, t in new.topics.items()}, now)
        before = self._led(old) if old is not None else set()
        led = self._led(new)
        for index in sorted(before - led):
            self._unreplicated.drop(index)  # the machine answers their requests NOT_COORDINATOR
            self.machine.unload(index, now)
        if led - before and not self._loading():
            self._loads_began = time.monotonic()
        for index in sorted(led - before):
            self.machine.begin_load(index, now)
        self._pump()
        self._maybe_loads_idle()

    def _led(self, image: MetadataImage) -> set[int]:
        topic = image.topics.get(OFFSETS_TOPIC)
        if topic is None:
            return set()
        return {index for index, state in topic.partitions.items() if state.leader == self._node_id}

    def _locate(self, index: int, listener: str) -> tuple[int, str, int] | None:
        image = self._image
        topic = image.topics.get(OFFSETS_TOPIC) if image is not None else None
        state = topic.partitions.get(index) if topic is not None else None
        leader = image.brokers.get(state.leader) if state is not None else None
        if leader is None or leader.fenced:
            return None
        endpoint = leader.endpoint(listener)
        return None if endpoint is None else (leader.node_id, endpoint.host, endpoint.port)

    # -- requests -----------------------------------------------------------------------------------

    async def handle(self, request: Message, ctx) -> Message:
        """Answer one request of a group API (`ctx.api_key`) at `ctx.api_version`; `ctx` is the
        handler's RequestContext (its client id and host are what DescribeGroups shows)."""
        api_key, version = ctx.api_key, ctx.api_version
        guarded = None
        if api_key == m.ApiKey.TXN_OFFSET_COMMIT:
            try:
                guarded = await self._verified(request, version)
            except KafkaError as e:
                return group_error_response(api_key, request, version, append_error(e.code))
        self._next_token += 1
        token = self._next_token
        in_flight = self._in_flight[token] = _InFlight(api_key, request, version)
        if guarded is not None:
            self._guards[guarded[0]] = guarded[1]
        try:
            response = self.machine.handle(api_key, token, request, version, self._clock(),
                                           Client(ctx.client_id or "", _client_host(ctx.client_host)))
            self._pump()  # appends inline: a commit is often complete by now
            if response is None:
                response = in_flight.response
            if response is None:
                if self._nursery is None:  # not running: nothing would complete it
                    return group_error_response(api_key, request, version, ErrorCode.COORDINATOR_NOT_AVAILABLE)
                in_flight.event = trio.Event()
                await in_flight.event.wait()
                response = in_flight.response
            return response
        finally:
            del self._in_flight[token]
            if guarded is not None:
                self._guards.pop(guarded[0], None)

    async def _verified(self, req: m.TxnOffsetCommitRequest, version: int) -> tuple[tuple[int, int], object] | None:
        """KIP-890: before the machine writes a TxnOffsetCommit (as Kafka verifies before its write
        operation), the transaction coordinator confirms the group's partition is in the
        transaction; ((partition, producer id), guard) for the append, None if there is nothing to
        verify or the machine refuses the request anyway. Raises KafkaError with the answer."""
        if self._verify is None or self.machine.coordinator_error(req.group_id) != ErrorCode.NONE:
            return None
        index = self.machine.partition_for(req.group_id)
        guard = await self._verify(self._replicas.leader(OFFSETS_TOPIC, index), req.transactional_id,
                                   req.producer_id, req.producer_epoch, NO_SEQUENCE, abortable=version >= 4)
        return None if guard is None else ((index, req.producer_id), guard)

    async def complete_transaction(self, partition: int, producer_id: int, producer_epoch: int,
                                   coordinator_epoch: int, commit: bool) -> ErrorCode:
        """WriteTxnMarkers for `__consumer_offsets` partition `partition`: the marker, written
        by the group coordinator that holds the producer's pending offsets; NONE once durable."""
        self._next_token += 1
        token = self._next_token
        in_flight = self._in_flight[token] = _InFlight(None, None, 0)
        try:
            code = self.machine.complete_transaction(token, partition, producer_id, producer_epoch,
                                                     coordinator_epoch, commit, self._clock())
            self._pump()
            if code is not None:
                return code
            if in_flight.response is None:
                if self._nursery is None:
                    return ErrorCode.COORDINATOR_NOT_AVAILABLE
                in_flight.event = trio.Event()
                await in_flight.event.wait()
            return ErrorCode(in_flight.response)
        finally:
            del self._in_flight[token]

    def find_coordinator(self, request: m.FindCoordinatorRequest, ctx, locate_transaction=None) -> Message:
        return self.machine.find_coordinator(request, ctx.api_version,
                                             lambda index: self._locate(index, ctx.listener), locate_transaction)


@functools.lru_cache(maxsize=1024)
def _client_host(host: str | None) -> str:
    """Kafka shows client hosts as Java's InetAddress.toString() does: "/10.0.0.1"."""
    host = host or ""
    if host.count(":") == 1:  # "ip:port"
        host = host.rsplit(":", 1)[0]
    if host.startswith("[") and "]" in host:  # "[ipv6]:port"
        host = host[1:host.index("]")]
    return host if not host or host.startswith("/") else "/" + host

