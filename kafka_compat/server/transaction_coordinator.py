"""The transaction coordinator's trio driver: the broker's `broker.transactions`, `__transaction_state`
its log (beside the group coordinator's driver, server/group_coordinator.py, which it mirrors).

It owns the sans-I/O `TransactionCoordinator` (kafka_compat.coordinator.transaction) and does its I/O:

- requests: `handle(request, ctx)` gives InitProducerId (with a transactional id),
  AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, DescribeTransactions and ListTransactions to the
  machine and awaits the response it parks until its record is durable;
- appends: the records the machine emits are appended to their `__transaction_state` partition,
  one batch per partition, and reported once the high watermark covers them (acks=all through
  `ReplicaManager.wait_acknowledged`, in order per partition);
- loads: a partition this broker comes to lead (at a leader epoch, the coordinator epoch) is read
  back from its log start to its log end; meanwhile its transactional ids answer
  COORDINATOR_LOAD_IN_PROGRESS. A partition no longer led is unloaded;
- markers: every WriteTxnMarkers request the machine routes goes to its broker's inter-broker
  listener over a `client.connection.Connection` (one per broker); the answer, or None when the
  broker could not be reached, goes back to the machine, which retries what is missing;
- producer ids: blocks from the controller (AllocateProducerIds through the forwarding channel);
- time: one task sleeps until the machine's next deadline (timeouts, expiry, marker retries);
- KIP-890: `verify(...)`, for a partition leader about to write a transaction's first batch,
  asks the coordinator of the transactional id (this machine, or another broker over the wire)
  with AddPartitionsToTxn `verify_only`.

`__transaction_state` is created on first use (FindCoordinator with a transaction key,
InitProducerId with a transactional id), as Kafka does: `transaction.state.log.num.partitions`,
`transaction.state.log.replication.factor`, `transaction.state.log.min.isr`, compacted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import structlog
import trio

from kafka_compat.client.connection import Connection
from kafka_compat.coordinator.config import TransactionConfig
from kafka_compat.coordinator.transaction import AllocateProducerIds, Append, Load, SendMarkers, TransactionCoordinator
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message
from kafka_compat.records import RecordsError, iter_headers, iter_records
from kafka_compat.records.validator import COORDINATOR, own_plain_batch
from kafka_compat.server.coordinator_appends import AppendWaits
from kafka_compat.server.errors import error_response

if TYPE_CHECKING:
    from kafka_compat.replication.partition import Partition
    from kafka_compat.replication.replica_manager import ReplicaManager
    from kafka_compat.server.broker import Broker

log = structlog.get_logger("kafka_compat.coordinator.transaction")

TXN_TOPIC = "__transaction_state"
OFFSETS_TOPIC = "__consumer_offsets"
MARKERS_VERSION = 1
VERIFY_VERSION = 5
REQUEST_TIMEOUT_S = 30.0


async def ensure_transaction_topic(broker: Broker) -> None:
    """Create `__transaction_state` (through the active controller) if it does not exist yet."""
    if TXN_TOPIC in broker.metadata.topics:
        return
    cfg = broker.config
    C = m.CreateTopicsRequest
    configs = {"cleanup.policy": "compact", "compression.type": "uncompressed",
               "min.insync.replicas": str(cfg["transaction.state.log.min.isr"]),
               "segment.bytes": str(cfg["transaction.state.log.segment.bytes"]),
               "unclean.leader.election.enable": "false"}
    response = await broker.create_topics([C.CreatableTopic(
        name=TXN_TOPIC, num_partitions=cfg["transaction.state.log.num.partitions"],
        replication_factor=cfg["transaction.state.log.replication.factor"],
        configs=[C.CreatableTopicConfig(name=k, value=v) for k, v in configs.items()])])
    (result,) = response.topics
    if result.error_code not in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS):
        raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, result.error_message)


async def start_transaction_coordinator(broker: Broker, nursery: trio.Nursery) -> TransactionCoordinatorDriver:
    driver = TransactionCoordinatorDriver(broker)
    await nursery.start(driver.run)
    driver.follow(None, broker.metadata)
    broker.quorum.add_listener(driver.follow)
    return driver


class TransactionCoordinatorDriver:
    """See the module docstring."""

    def __init__(self, broker: Broker, *, clock: Callable[[], int] | None = None):
        self.broker = broker
        self.config = TransactionConfig.from_broker(broker.config)
        self._replicas = broker.replicas
        self._node_id = broker.node_id
        self._clock = clock or (lambda: int(time.time() * 1000))
        self._image: MetadataImage | None = None
        self.machine = TransactionCoordinator(self.config, leader_of=self._leader_of, now_ms=self._clock())
        self._waiting: dict[int, tuple[trio.Event, list]] = {}  # token -> (answered, [response])
        self._next_token = 0
        self._led: dict[int, int] = {}  # __transaction_state partition -> leader epoch it was loaded at
        self._unreplicated = AppendWaits(self._replicas, self._start, self._replicated)
        self._connections: dict[int, Connection] = {}
        self._nursery: trio.Nursery | None = None
        self._not_started: list[tuple] = []
        self._wake = trio.Event()
        self._sleeping_until = math.inf

    # -- the task -----------------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for fn, *args in self._not_started:
                    nursery.start_soon(fn, *args)
                self._not_started.clear()
                task_status.started(self)
                self._pump()
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
            for c in self._connections.values():
                c.close()
            for answered, result in self._waiting.values():
                if not result:
                    result.append(None)
                    answered.set()

    def _start(self, fn, *args) -> None:
        if self._nursery is None:
            self._not_started.append((fn, *args))
        else:
            self._nursery.start_soon(fn, *args)

    def _pump(self) -> None:
        machine = self.machine
        while work := machine.take_work():
            appends: dict[int, list[Append]] = {}
            for job in work:
                if isinstance(job, Append):
                    appends.setdefault(job.partition, []).append(job)
                elif isinstance(job, Load):
                    self._start(self._load, job)
                elif isinstance(job, SendMarkers):
                    self._start(self._send_markers, job)
                elif isinstance(job, AllocateProducerIds):
                    self._start(self._allocate_producer_ids)
            for partition, jobs in appends.items():
                self._append(partition, jobs)
        for token, response in machine.take_completions():
            waiting = self._waiting.get(token)
            if waiting is not None and not waiting[1]:
                waiting[1].append(response)
                waiting[0].set()
        deadline = machine.next_deadline()
        if deadline is not None and deadline < self._sleeping_until:
            self._wake.set()

    # -- appends ------------------------------------------------------------------------------------

    def _append(self, index: int, jobs: list[Append]) -> None:
        now = self._clock()
        try:
            partition = self._replicas.leader(TXN_TOPIC, index)
            batch = own_plain_batch([record for job in jobs for record in job.records], now, partition.log.config)
            info = partition.append(batch, -1, now, origin=COORDINATOR)
        except KafkaError as e:
            return self._appended(jobs, e.code, now)
        except RecordsError as e:
            return self._appended(jobs, ErrorCode[e.error], now)
        except Exception as e:  # an I/O error or a bug: the log is the truth
            log.error("transaction_log_append_error", partition=index, error=repr(e))
            return self._appended(jobs, ErrorCode.UNKNOWN_SERVER_ERROR, now)
        if not self._unreplicated.add(index, partition, jobs, info.last_offset, REQUEST_TIMEOUT_S):
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
            log_ = self._replicas.get(TXN_TOPIC, index).log
            offset, end = log_.log_start_offset, log_.log_end_offset
            chunk = self.broker.config["transaction.state.log.load.buffer.size"]
            while offset < end:
                view = memoryview(log_.read_bytes(offset, chunk, max_offset=end))
                if not view:
                    break
                pairs = []
                for position, header in iter_headers(view):
                    if not header.is_control:
                        pairs += [(r.key, r.value) for r in iter_records(view, position, header)]
                    offset = header.last_offset + 1
                if not machine.load_records(index, epoch, pairs):
                    return
                await trio.sleep(0)
            if machine.finish_load(index, epoch, self._clock()):
                shard = machine.shards.get(index)
                log.info("transaction_coordinator_loaded", partition=index, coordinator_epoch=epoch,
                         transactional_ids=len(shard.txns) if shard else 0,
                         seconds=round(time.monotonic() - started, 3))
        except Exception as e:
            log.error("transaction_coordinator_load_failed", partition=index, error=repr(e))
            machine.unload(index, self._clock())
            self._led.pop(index, None)
        finally:
            self._pump()

    # -- markers and producer ids -------------------------------------------------------------------

    def _connection(self, broker_id: int) -> Connection:
        conn = self._connections.get(broker_id)
        if conn is None:
            conn = self._connections[broker_id] = Connection(
                lambda: self.broker._broker_address(broker_id), f"txn-coordinator-{self._node_id}-{broker_id}",
                security=self.broker.inter_broker_security)
            self._start(conn.run)
        return conn

    async def _call(self, broker_id: int, request: Message, version: int) -> Message | None:
        """`request` to broker `broker_id`'s inter-broker listener; None if it went unanswered."""
        with trio.move_on_after(REQUEST_TIMEOUT_S):
            try:
                return await self._connection(broker_id).request(request, version)
            except (ConnectionError, OSError) as e:
                log.debug("transaction_request_failed", broker=broker_id, error=repr(e))
        return None

    async def _send_markers(self, send: SendMarkers) -> None:
        if send.broker == self._node_id:  # this broker leads the partitions: no round trip to itself
            response = await write_markers(self.broker, send.request)
        else:
            response = await self._call(send.broker, send.request, MARKERS_VERSION)
        self.machine.markers_sent(send, response, self._clock())
        self._pump()

    async def _allocate_producer_ids(self) -> None:
        try:
            start, length = await self.broker.allocate_producer_ids()
        except KafkaError as e:
            log.info("producer_ids_not_allocated", error=e.code.name)
            self.machine.producer_ids_failed()
            await trio.sleep(self.config.marker_retry_backoff_ms / 1000)  # asked again at the next pump
        else:
            self.machine.producer_ids_allocated(start, length)
        self._pump()

    # -- metadata -----------------------------------------------------------------------------------

    def _leader_of(self, topic: str, partition: int) -> int | None:
        return live_leader(self._image, topic, partition)

    def follow(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """A new image: load the `__transaction_state` partitions led here (again at a new leader
        epoch), unload the others, and retry markers waiting for a leader."""
        self._image = new
        now = self._clock()
        topic = new.topics.get(TXN_TOPIC)
        led = {} if topic is None else {i: s.leader_epoch for i, s in topic.partitions.items()
                                        if s.leader == self._node_id}
        for index in [i for i in self._led if led.get(i) != self._led[i]]:
            self._unreplicated.drop(index)
            del self._led[index]
            self.machine.unload(index, now)
        for index, epoch in sorted(led.items()):
            if index not in self._led:
                self._led[index] = epoch
                self.machine.begin_load(index, epoch, now)
        if old is None or old.topics is not new.topics or old.brokers is not new.brokers:
            self.machine.metadata_changed(now)
        self._pump()

    def locate(self, transactional_id: str, listener: str) -> tuple[int, str, int] | None:
        """(node id, host, port) of the coordinator of `transactional_id` on `listener`."""
        image = self._image
        topic = image.topics.get(TXN_TOPIC) if image is not None else None
        state = topic.partitions.get(self.machine.partition_for(transactional_id)) if topic is not None else None
        leader = image.brokers.get(state.leader) if state is not None else None
        if leader is None or leader.fenced:
            return None
        endpoint = leader.endpoint(listener)
        return None if endpoint is None else (leader.node_id, endpoint.host, endpoint.port)

    # -- requests -----------------------------------------------------------------------------------

    async def handle(self, request: Message, ctx) -> Message:
        """Answer one request of a transaction API (`ctx.api_key`) at `ctx.api_version`."""
        return await self._decide(ctx.api_key, request, ctx.api_version)

    async def _decide(self, api_key: int, request: Message, version: int) -> Message:
        self._next_token += 1
        token = self._next_token
        answered, result = self._waiting[token] = (trio.Event(), [])
        try:
            response = self.machine.handle(api_key, token, request, version, self._clock())
            self._pump()
            if response is None and not result:
                if self._nursery is None:
                    result.append(None)
                else:
                    await answered.wait()
            response = response if response is not None else result[0]
            if response is None:
                return error_response(api_key, request, version, ErrorCode.COORDINATOR_NOT_AVAILABLE)
            return response
        finally:
            del self._waiting[token]

    async def verify(self, transactional_id: str, producer_id: int, producer_epoch: int, topic: str,
                     partition: int) -> ErrorCode:
        """KIP-890 part 1: whether `topic`-`partition` is in the producer's ongoing transaction, as
        its coordinator answers: this machine directly, another broker AddPartitionsToTxn with
        `verify_only` (`verify_request`, `verify_answer`; COORDINATOR_NOT_AVAILABLE when there is
        none). What the writers make of it is kafka_compat.server.txn_verification's."""
        coordinator = self._leader_of(TXN_TOPIC, self.machine.partition_for(transactional_id))
        if coordinator == self._node_id:  # the common case: no request to build, decode or answer
            return self.machine.verify_partitions(transactional_id, producer_id, producer_epoch,
                                                  [(topic, partition)])[topic, partition]
        if coordinator is None or coordinator < 0:
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        request = verify_request(transactional_id, producer_id, producer_epoch, topic, partition)
        return verify_answer(await self._call(coordinator, request, VERIFY_VERSION))


def verify_request(transactional_id: str, producer_id: int, producer_epoch: int, topic: str,
                   partition: int) -> m.AddPartitionsToTxnRequest:
    """What a partition leader asks the coordinator before a transaction's first batch there
    (AddPartitionsToTxn `verify_only`, at VERIFY_VERSION)."""
    R = m.AddPartitionsToTxnRequest
    return R(transactions=[R.AddPartitionsToTxnTransaction(
        transactional_id=transactional_id, producer_id=producer_id, producer_epoch=producer_epoch,
        verify_only=True, topics=[R.AddPartitionsToTxnTopic(name=topic, partitions=[partition])])])


def verify_answer(response: m.AddPartitionsToTxnResponse | None) -> ErrorCode:
    """The coordinator's answer to `verify_request` (NETWORK_EXCEPTION when it did not answer)."""
    if response is None:
        return ErrorCode.NETWORK_EXCEPTION
    code = ErrorCode(response.error_code)
    for txn in response.results_by_transaction:
        for t in txn.topic_results:
            for p in t.results_by_partition:
                if p.partition_error_code:
                    code = ErrorCode(p.partition_error_code)
    return code



def live_leader(image: MetadataImage | None, topic: str, partition: int) -> int | None:
    """The machine's `leader_of`: the partition's leader in `image`, -1 when that broker is fenced or
    unknown (markers wait), None when there is no such partition."""
    t = image.topics.get(topic) if image is not None else None
    state = t.partitions.get(partition) if t is not None else None
    if state is None:
        return None
    leader = image.brokers.get(state.leader)
    return state.leader if leader is not None and not leader.fenced else -1

class MarkerWrites(NamedTuple):
    """What `append_markers` did with a WriteTxnMarkersRequest: the response (its per-partition
    results are final where an error is set), the appends that still wait for acks=all
    (partition, end offset, leader epoch, result) and the `__consumer_offsets` markers, which the
    group coordinator writes (marker, partition index, result)."""

    response: m.WriteTxnMarkersResponse
    unreplicated: list[tuple[Partition, int, int, Any]]
    offsets: list[tuple[Any, int, Any]]


def append_markers(replicas: ReplicaManager, req: m.WriteTxnMarkersRequest, now_ms: int) -> MarkerWrites:
    """WriteTxnMarkers on a partition leader, the synchronous part: append every marker on the
    partitions this broker leads (Kafka's errors per partition: NOT_LEADER_OR_FOLLOWER,
    UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED,
    NOT_ENOUGH_REPLICAS...). A driver then awaits `unreplicated` (the cluster simulator drives
    this too)."""
    R = m.WriteTxnMarkersResponse
    markers = []
    unreplicated = []
    offsets = []
    for marker in req.markers:
        topics = []
        for t in marker.topics:
            results = []
            for index in t.partition_indexes:
                result = R.WritableTxnMarkerPartitionResult(partition_index=index, error_code=ErrorCode.NONE)
                results.append(result)
                if t.name == OFFSETS_TOPIC:
                    offsets.append((marker, index, result))
                    continue
                try:
                    p = replicas.leader(t.name, index)
                    info = p.append_marker(marker.producer_id, marker.producer_epoch, marker.coordinator_epoch,
                                           marker.transaction_result, now_ms)
                except KafkaError as e:
                    result.error_code = e.code
                    continue
                unreplicated.append((p, info.last_offset + 1, p.leader_epoch, result))
            topics.append(R.WritableTxnMarkerTopicResult(name=t.name, partitions=results))
        markers.append(R.WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics))
    return MarkerWrites(R(markers=markers), unreplicated, offsets)


async def write_markers(broker: Broker, req: m.WriteTxnMarkersRequest) -> m.WriteTxnMarkersResponse:
    """WriteTxnMarkers on a partition leader: `append_markers`, then each marker acknowledged with
    acks=all as Kafka does (NONE once replicated); a `__consumer_offsets` marker by the group
    coordinator."""
    deadline = trio.current_time() + REQUEST_TIMEOUT_S
    writes = append_markers(broker.replicas, req, int(time.time() * 1000))
    for marker, index, result in writes.offsets:
        if broker.groups is None:
            result.error_code = ErrorCode.NOT_LEADER_OR_FOLLOWER
            continue
        code = await broker.groups.complete_transaction(index, marker.producer_id, marker.producer_epoch,
                                                        marker.coordinator_epoch, marker.transaction_result)
        # The coordinator's own answers mean the leadership moved: the transaction coordinator retries.
        result.error_code = (ErrorCode.NOT_LEADER_OR_FOLLOWER
                             if code in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                                         ErrorCode.COORDINATOR_NOT_AVAILABLE) else code)
    for p, offset, leader_epoch, result in writes.unreplicated:
        result.error_code = await broker.replicas.wait_acknowledged(p, offset, leader_epoch, deadline)
    return writes.response
