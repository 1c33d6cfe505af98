"""A deterministic simulation of a whole cluster replicating partitions: one process, one event
loop, one seed.

Processes, each the real cores with a simulated driver around them:
- the controller (node 100): the metadata log in a one-voter quorum (a real RaftNode) and the
  controller's decisions on it: broker registration, heartbeats, fencing with leader moves
  (`ClusterControl`), topic creation (`Controller`) and ISR changes (`alter_partition`). One
  voter, because the quorum's own failures are the Raft simulator's subject; what brokers see
  of a controller failover (no controller for a while, then one that has forgotten their
  sessions) comes from crashing and restarting it.
- brokers 1..N: a metadata observer (a real RaftNode fetching `__cluster_metadata` from the
  controller) whose image is published to the real `ReplicaManager` once it holds the broker's
  own registration (before that it would show the leaderships of the previous incarnation); the
  partitions' logs are real `storage.Log`s under a `LogManager` in a temp dir (real recovery
  after a crash, real segment rolls, fsyncs, checkpoints: storage is about 15% of the run time).
  The driver part: register and heartbeat, send what the core returns, park followers' fetches
  and acks=all produces until their partitions change or time runs out.
- producers: clients sending one batch at a time, never retried, with acks=all or acks=1, to
  the leader they last looked up on some broker; the topic has replication factor 3 and
  min.insync.replicas 2.
- transactions (every tenth seed): each broker runs the real transaction coordinator machine
  (`coordinator.transaction`) on the `__transaction_state` partitions it leads, replicated like
  the topic (appends with acks=all, loads after a random delay when leadership arrives, unloads
  when it leaves, so a crash mid-commit leaves the new leader a PrepareCommit to finish); its
  producer ids come from the controller's blocks (AllocateProducerIds), its WriteTxnMarkers go
  over the network to the leaders, which write them as the broker's handler does
  (`server.transaction_coordinator.append_markers`, then acks=all) and which the machine retries
  until every leader has its marker; a leader verifies a transaction's first batch with the
  coordinator its image names (KIP-890: the log's guard, then `verify_request`, `verify_answer`,
  `passed_on` and `unverified` of the broker's code). One or two transactional producers
  (TxnProducer) run transactions over random partitions of the topic, each ending in commit or
  abort.

Every message goes through the generated codecs and the request/response framing over a
virtual network that delays (reordering), drops and duplicates messages between brokers and the
controller, drops (never duplicates: a client's request is sent once) client traffic, and
partitions the cluster; a connection dies with the process at either end. Time is virtual.
A run starts the cluster, waits until the topic is fully replicated, then faults strike for
`chaos_ms`; each seed leans one way (network splits, often cutting a leader off with its
clients; process crashes, often of a leader right after its ISR grew or it was elected; or power
losses), with random loss rates, delays, fetch sizes, segment sizes, flush settings and
truncation by Fetch (KIP-320) or by OffsetForLeaderEpoch.

The fault model, which is what Kafka promises with fsync off (it relies on replication, not on
the disk, for what it acknowledges):
- process crashes (kill -9) of any broker or the controller, at any time, any number at once:
  files keep everything written (the page cache belongs to the machine);
- controlled shutdowns (SIGTERM) of brokers: the heartbeat asks to shut down, the controller
  moves the broker's leaderships away, then it flushes, checkpoints and stops cleanly (after
  5 s it stops anyway);
- power loss of a broker: each log keeps only a random prefix of what was not fsynced (possibly
  tearing a batch), the metadata log likewise. It strikes only a healthy, fully connected
  cluster (every broker up, registered in its current incarnation and unfenced, every ISR
  complete, no network partition), and nothing else fails until that broker has restarted and
  registered again (no crash, no partition, no message lost). Until it registers, the
  controller still counts the broker's last incarnation in the ISRs; if the other replicas
  left the ISR meanwhile (fenced, restarted), it stays the last member and is elected with
  what it lost: Kafka loses acknowledged records then too (KIP-966 is its answer), so that is
  outside what is simulated.

Invariants, checked after every event: a batch below any replica's high watermark is committed,
and committed batches never change (every replica's log up to its high watermark is a prefix of
the one committed log) and are never truncated; an acks=all produce answered without error is
committed at that moment; a replica's leader epoch never goes back, nor its high watermark
within one leader epoch; at most one leader per partition per epoch; the leader is in the ISR,
in the controller's image and on the leader. At the end the faults stop and liveness is
required: every partition has a leader with a complete ISR, a new acks=all produce commits on
each, and every record acknowledged with acks=all is in every replica's log, exactly once, at
the offset it was acknowledged at.

With transactions, every second and at the end, on every replica: the last stable offset is at
most the high watermark and never past the first offset of a transaction without a marker; a
read_committed read of the whole log (`read_committed`: the real read up to the last stable
offset with its aborted transactions, filtered as a client does) shows no record of a transaction
its producer did not commit and none twice. At the end, once the producers are between
transactions and every replica's high watermark has the last markers (TXN_SETTLE_MS at most),
every committed transaction is there whole on every replica, one whose outcome the producer never
learnt is there whole everywhere or nowhere, and no transaction is left open.

`python -m kafka_compat.testing.cluster_sim --seeds N` runs seeds 0..N-1; a failure prints the
one-line command that replays it.
"""

from __future__ import annotations

import heapq
import logging
import random
import shutil
import sys
import tempfile
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import structlog

from kafka_compat.coordinator.config import TransactionConfig
from kafka_compat.coordinator.hashing import partition_for
from kafka_compat.coordinator.transaction import AllocateProducerIds, Append, Load, SendMarkers, TransactionCoordinator
from kafka_compat.coordinator.transaction.state import PREPARED
from kafka_compat.metadata.alter_partition import alter_partition
from kafka_compat.metadata.cluster_control import ClusterControl, registration_request
from kafka_compat.metadata.controller import METADATA_VERSION, Controller, ControllerDefaults
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.records import encode_record
from kafka_compat.metadata.state_machine import MetadataStateMachine
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.raft import wire as raft_wire
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.log import MemoryLog
from kafka_compat.raft.node import RaftNode
from kafka_compat.raft.quorum_state import MemoryQuorumStateStore
from kafka_compat.raft.snapshots import MemorySnapshotStore, read_values
from kafka_compat.records.batch import iter_headers, read_header
from kafka_compat.records.builder import build_batch, build_plain_batch
from kafka_compat.records.control import read_marker
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import COORDINATOR
from kafka_compat.replication import alter_partition as alter_partition_module
from kafka_compat.replication import fetcher as fetcher_module
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.fetcher import Fetcher
from kafka_compat.replication.partition import Partition
from kafka_compat.replication.replica_manager import CONTROLLER, ReplicaManager
from kafka_compat.server.handlers.produce import unverified
from kafka_compat.server.transaction_coordinator import (
    VERIFY_VERSION,
    append_markers,
    live_leader,
    verify_answer,
    verify_request,
)
from kafka_compat.server.txn_verification import passed_on
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager
from kafka_compat.storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, file_name
from kafka_compat.testing import seeds

A = m.ApiKey
CONTROLLER_ID = 100
CLIENT_BASE = 1000
CLUSTER_ID = "sim-cluster"
TOPIC = "sim"
REPLICATION_FACTOR = 3
MIN_INSYNC = 2
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_INTERVAL_MS = 1000
LIFECYCLE_TIMEOUT_MS = 1000
PRODUCE_TIMEOUT_MS = 3000
FLUSH_INTERVAL_MS = 500
CHECKPOINT_INTERVAL_MS = 1000
WARM_UP_MS = 20000
STOP_PATIENCE_MS = 5000  # how long a controlled shutdown may take before the broker stops anyway
MODES = ("network", "crashes", "power")
TXN_TOPIC = "__transaction_state"
TXN_PARTITIONS = 1
TXN_CLIENT_BASE = CLIENT_BASE + 10
TXN_SETTLE_MS = 5000  # after the run, for the producers' last transactions to end everywhere
CALL_TIMEOUT_MS = PRODUCE_TIMEOUT_MS + 2500  # a client's or the coordinator's patience (above any delay)
TXN_CONFIG = TransactionConfig(transaction_state_log_num_partitions=TXN_PARTITIONS,
                               abort_timed_out_transaction_cleanup_interval_ms=1000)
TXN_APIS = frozenset({A.INIT_PRODUCER_ID, A.ADD_PARTITIONS_TO_TXN, A.END_TXN})
# What a transactional client retries (looking the coordinator or leader up again).
RETRIABLE = frozenset({ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.NOT_COORDINATOR,
                       ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.CONCURRENT_TRANSACTIONS,
                       ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NOT_ENOUGH_REPLICAS,
                       ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.NOT_LEADER_OR_FOLLOWER,
                       ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.OPERATION_NOT_ATTEMPTED})
VERSIONS = {**raft_wire.VERSIONS, **fetcher_module.VERSIONS, A.ALTER_PARTITION: alter_partition_module.VERSION,
            A.BROKER_REGISTRATION: 2, A.BROKER_HEARTBEAT: 1, A.PRODUCE: 9, A.WRITE_TXN_MARKERS: 1,
            A.INIT_PRODUCER_ID: 4, A.ADD_PARTITIONS_TO_TXN: 3, A.END_TXN: 3, A.ALLOCATE_PRODUCER_IDS: 0}
QUIET = structlog.wrap_logger(structlog.PrintLogger(sys.stderr),
                              wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


class InvariantViolation(AssertionError):
    pass


@contextmanager
def quiet_logs():
    """The cores log every segment roll and truncation; thousands of seeds would drown a failure."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    try:
        yield
    finally:
        structlog.configure(**saved)


@dataclass
class SimConfig:
    seed: int
    brokers: int = 3
    partitions: int = 2
    chaos_ms: int = 8_000
    settle_ms: int = 5_000
    mode: str | None = None  # "network", "crashes" or "power"; None: the seed picks
    transactions: bool = False  # transactional producers, the coordinator on the brokers
    partition_class: type = Partition  # tests plant broken ones
    fetcher_class: type = Fetcher

    def replay_command(self) -> str:
        return (f"python -m kafka_compat.testing.cluster_sim --seed {self.seed} --brokers {self.brokers} "
                f"--partitions {self.partitions} --chaos-ms {self.chaos_ms} --settle-ms {self.settle_ms}"
                + (f" --mode {self.mode}" if self.mode else "") + (" --transactions" if self.transactions else ""))


@dataclass
class SimResult:
    config: SimConfig
    events: int
    acked: int  # records acknowledged with acks=all
    produced: int  # produce requests sent
    crashes: int
    power_losses: int
    controlled_shutdowns: int
    truncations: int  # replicas cutting a divergent suffix (or a leader-epoch entry with no data)
    leader_epochs: int  # (partition, epoch) pairs that had a leader
    virtual_ms: int
    committed_txns: int = 0  # transactions the producers saw committed
    aborted_txns: int = 0
    resumed_txns: int = 0  # PrepareCommit or PrepareAbort found by a coordinator taking a partition over


def default_config(seed: int, **kw) -> SimConfig:
    """Seeds run 3 brokers mostly and 4 (RF 3 on 4 brokers: leaders and ISRs move more) every
    fourth time, and transactional producers every tenth time, unless told."""
    kw.setdefault("brokers", 4 if seed % 4 == 3 else 3)
    kw.setdefault("transactions", seed % 10 == 1)
    return SimConfig(seed=seed, **kw)


def records_of(response) -> None:
    """Read file ranges into bytes: the network layer would sendfile them."""
    for t in response.responses:
        for pd in t.partitions:
            if hasattr(pd.records, "read"):
                pd.records = pd.records.read()


def batches(data) -> list[tuple[int, int, bytes]]:
    """(base offset, last offset, bytes) of each batch in `data`."""
    view = memoryview(data)
    return [(h.base_offset, h.last_offset, bytes(view[pos:pos + h.size])) for pos, h in iter_headers(view)]


def named(key: tuple[str, int]) -> str:
    """A partition in a finding: its index for the topic the producers write, else topic-index."""
    return str(key[1]) if key[0] == TOPIC else f"{key[0]}-{key[1]}"


def values_of(batch: bytes) -> list[bytes]:
    return [r.value for r in iter_records(batch, 0, read_header(batch))]


# -- processes -------------------------------------------------------------------------------


class Waiters:
    """The driver's purgatory: which partitions changed since the last look."""

    def __init__(self):
        self.dirty: set = set()

    def notify(self, key) -> None:
        self.dirty.add(key)


@dataclass
class Parked:
    src: int
    src_inc: int
    correlation_id: int
    version: int
    request: Message
    keys: frozenset
    deadline: int
    # acks=all produces
    partition: Partition | None = None
    required_offset: int = 0
    leader_epoch: int = -1
    result: object = None
    batch: bytes = b""
    done: object = None  # a coordinator's append: called with the outcome instead of answering a client


@dataclass
class ParkedMarkers:
    """A WriteTxnMarkers request waiting for its markers to be acknowledged (acks=all)."""

    src: int
    src_inc: int
    correlation_id: int
    response: Message
    waiting: list  # (partition, end offset, leader epoch, result) not decided yet
    deadline: int


@dataclass
class Host:
    """A simulated machine: its disk (a directory, the metadata log and quorum state) survives a
    crash; the process (everything else) does not."""

    id: int
    dir: Path | None = None
    raft_log: MemoryLog = field(default_factory=MemoryLog)
    raft_store: MemoryQuorumStateStore = field(default_factory=MemoryQuorumStateStore)
    raft_snapshots: MemorySnapshotStore = field(default_factory=MemorySnapshotStore)
    incarnation: int = 0
    up: bool = False
    node: RaftNode | None = None
    sm: MetadataStateMachine | None = None
    tick_generation: int = 0
    tick_at: int = -1
    reply_inc: dict = field(default_factory=dict)  # (requester, correlation id) -> its incarnation
    # a broker's process
    logs: LogManager | None = None
    rm: ReplicaManager | None = None
    waiters: Waiters | None = None
    incarnation_id: Uuid | None = None
    broker_epoch: int = -1
    publishing: bool = False
    lifecycle: tuple[int, int] | None = None  # (correlation id, deadline) of the request in flight
    stopping: int | None = None  # a controlled shutdown's deadline (then it stops anyway)
    next_lifecycle: int = 0
    lifecycle_corr: int = 0
    parked: list[Parked] = field(default_factory=list)
    next_flush: int = 0
    next_checkpoint: int = 0
    # per-incarnation invariant state: partition -> checked-to offset / epochs / high watermarks
    checked_to: dict = field(default_factory=dict)
    seen_epoch: dict = field(default_factory=dict)
    seen_hw: dict = field(default_factory=dict)
    # a broker's transaction coordinator
    txn: TransactionCoordinator | None = None
    txn_led: dict = field(default_factory=dict)  # __transaction_state partition -> leader epoch loaded at
    txn_waiting: dict = field(default_factory=dict)  # token -> (requester, its incarnation, chan, corr, version)
    verifying: dict = field(default_factory=dict)  # correlation id -> (deadline, the produce's arguments, guard)
    txn_seq: int = 0  # the machine's request tokens, and correlation ids of what it sends
    markers_out: dict = field(default_factory=dict)  # correlation id -> (SendMarkers, deadline)
    pids_out: tuple | None = None  # (correlation id, deadline) of the AllocateProducerIds in flight
    pids_retry: int | None = None  # when to tell the machine the last one failed
    parked_markers: list[ParkedMarkers] = field(default_factory=list)
    # the controller's process
    controller: Controller | None = None
    cluster: ClusterControl | None = None
    active_epoch: int = -1
    topic_created: bool = False


class Produce(NamedTuple):
    correlation_id: int
    partition: int
    values: list[bytes]
    deadline: int  # after which the client gives up: the outcome is unknown
    marker: bool  # the liveness probe's


@dataclass
class Producer:
    id: int
    acks: int
    seq: int = 0
    in_flight: Produce | None = None  # one request at a time, never retried
    corr: int = 0


@dataclass(eq=False)
class Txn:
    """One transaction of a transactional producer and what its client learnt of it."""

    producer_id: int
    producer_epoch: int
    values: dict[int, list[bytes]]  # partition -> its records (one batch, resent as is)
    acked: set = field(default_factory=set)  # partitions whose batch was acknowledged
    ending: bool | None = None  # what EndTxn asks for: commit (True) or abort (False)
    outcome: str | None = None  # "commit" or "abort" once the client knows; None while it does not

    @property
    def may_commit(self) -> bool:
        return self.ending is True and self.outcome != "abort"


@dataclass
class TxnProducer:
    """A transactional producer as a Kafka client (transaction version 1) runs: InitProducerId,
    then per transaction AddPartitionsToTxn, one batch per partition (acks=all, sequence numbers,
    retried until acknowledged, at most one in flight per partition) and EndTxn, each sent to the
    coordinator or leader it looks up (possibly stale) and retried on retriable errors. After an
    abort it bumps its epoch (KIP-360), after being fenced it starts over as a new instance."""

    id: int
    transactional_id: str
    timeout_ms: int
    producer_id: int = -1
    producer_epoch: int = -1
    bump: bool = False
    seqs: dict = field(default_factory=dict)  # partition -> next sequence
    step: str = "init"  # init, idle, add, produce, end
    txn: Txn | None = None
    produce_until: int = 0
    corr: int = 0
    waiting: dict = field(default_factory=dict)  # correlation id -> (what, partition, deadline)


class Simulation:
    def __init__(self, config: SimConfig, root: Path):
        self.cfg = config
        self.rng = random.Random(config.seed)
        r = self.rng
        self.drop = r.choice([0.0, 0.01, 0.05])
        self.duplicate = r.choice([0.0, 0.02])
        self.max_delay = r.choice([2, 10, 40])
        # Each seed leans one way: network splits, process crashes, or power losses (which wait
        # for a healthy cluster, so they come with nothing else).
        self.mode = r.choice(MODES) if config.mode is None else config.mode
        self.crash_every = {"network": 4000, "crashes": r.choice([1000, 2000]), "power": 1500}[self.mode]
        self.power_loss_share = {"network": 0.0, "crashes": 0.3, "power": 1.0}[self.mode]
        self.partition_every = {"network": r.choice([300, 1000]), "crashes": 4000, "power": 1 << 30}[self.mode]
        self.produce_every = r.choice([80, 200, 400])
        self.slow_messages = 0.005
        flush_messages = r.choice([None, 5, 50])  # Kafka's default never fsyncs but on segment roll
        self.replication = ReplicationConfig(
            replica_lag_time_max_ms=r.choice([1000, 2000]), replica_fetch_wait_max_ms=500,
            replica_fetch_max_bytes=r.choice([512, 1 << 20]), replica_fetch_backoff_ms=100,
            replica_socket_timeout_ms=1500, controller_socket_timeout_ms=1500,
            truncate_on_fetch=r.random() < 0.7)
        topic_configs = {"min.insync.replicas": str(MIN_INSYNC), "segment.bytes": str(r.choice([2048, 1 << 20])),
                         "index.interval.bytes": str(r.choice([128, 1024]))}
        if flush_messages:
            topic_configs["flush.messages"] = str(flush_messages)
        self.topics = {TOPIC: (config.partitions, topic_configs)}  # name -> (partitions, configs)
        self.txn_producers: list[TxnProducer] = []
        if config.transactions:
            t = random.Random(config.seed * 7919 + 1)  # (the other choices stay what they were)
            self.topics[TXN_TOPIC] = (TXN_PARTITIONS, {"min.insync.replicas": str(MIN_INSYNC),
                                                       "cleanup.policy": "compact",
                                                       "segment.bytes": topic_configs["segment.bytes"]})
            self.txn_producers = [TxnProducer(TXN_CLIENT_BASE + i, f"txn-{i}", t.choice([2000, 10000]))
                                  for i in range(t.choice([1, 2]))]
            self.commit_share = t.choice([0.5, 0.8])
        self.quorum = QuorumConfig(voters=frozenset([CONTROLLER_ID]), cluster_id=CLUSTER_ID)
        self.broker_ids = list(range(1, config.brokers + 1))
        self.hosts: dict[int, Host] = {CONTROLLER_ID: Host(CONTROLLER_ID)}
        for b in self.broker_ids:
            self.hosts[b] = Host(b, dir=root / f"broker-{b}")
        # An acks=all and an acks=1 producer, and the prober that produces the liveness markers.
        self.producers = [Producer(CLIENT_BASE + i, acks) for i, acks in enumerate((-1, 1, -1))]
        self.prober = self.producers[-1]
        self.now = 0
        self.events = 0
        self.queue: list = []
        self.seq = 0
        self.groups: dict[int, int] = {}
        self.chaos = False  # the faults strike from the end of the warm-up until settle
        self.crashes = self.power_losses = self.controlled_shutdowns = self.produced = self.truncations = 0
        # Global truth.
        self.committed: dict[int, dict[int, tuple[int, bytes]]] = {}  # partition -> base -> (last, bytes)
        self.committed_end: dict[int, int] = {}
        self.acked: dict[int, dict[int, list[bytes]]] = {}  # partition -> base offset -> values (acks=all)
        self.leaders: dict[tuple[int, int], int] = {}  # (partition, epoch) -> broker
        self.final_marks: dict[int, tuple[int, list[bytes]]] = {}
        self.recovering: int | None = None  # a broker that lost power and has not registered again
        self.image_offset = -1  # the controller's, to tell a replay after its restart from news
        self.partition_states: dict = {}
        self.listener_error: Exception | None = None
        self.txns: list[Txn] = []
        self.resumed = 0
        self.txn_of_value: dict[bytes, Txn] = {}

    # -- scheduling ------------------------------------------------------------------------------

    def at(self, when: int, kind: str, *args) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, kind, args))

    def exp(self, mean: int) -> int:
        return self.now + 1 + int(self.rng.expovariate(1 / mean))

    def run(self) -> SimResult:
        """Start the cluster, wait for the topic to be fully replicated, then the faults and the
        clients begin; after `chaos_ms` the faults stop, after `settle_ms` more the run ends."""
        for h in self.hosts.values():
            self.start(h)
        self.run_until(lambda: self.in_sync(), WARM_UP_MS)
        if not self.in_sync():
            self.fail(f"the topic was not fully replicated within {WARM_UP_MS} ms of the start")
        self.chaos = True
        for p in self.producers[:-1]:
            self.at(self.exp(self.produce_every), "produce", p.id)
        for c in self.txn_producers:
            self.at(self.exp(200), "txn_step", c.id)
        if self.txn_producers:
            self.at(self.now + 1000, "txn_check")
        self.at(self.exp(self.crash_every), "crash")
        self.at(self.exp(self.partition_every), "partition")
        self.at(self.now + self.cfg.chaos_ms, "settle")
        end = self.now + self.cfg.chaos_ms + self.cfg.settle_ms
        self.run_until(lambda: False, end)
        self.now = end
        if self.txn_producers:  # the last transactions, their markers and high watermarks may be under way
            self.run_until(self.txns_settled, end + TXN_SETTLE_MS)
        self.check_final()
        acked = sum(len(v) for a in self.acked.values() for v in a.values())
        return SimResult(self.cfg, self.events, acked, self.produced, self.crashes, self.power_losses,
                         self.controlled_shutdowns, self.truncations, len(self.leaders), end,
                         sum(t.outcome == "commit" for t in self.txns), sum(t.outcome == "abort" for t in self.txns),
                         self.resumed)

    def run_until(self, done, end: int) -> None:
        while self.queue and self.queue[0][0] <= end and not done():
            when, _, kind, args = heapq.heappop(self.queue)
            self.now = when
            self.events += 1
            getattr(self, "on_" + kind)(*args)

    def in_sync(self) -> bool:
        """The controller's image has the topic with every ISR complete, and every broker knows it."""
        topics = self.hosts[CONTROLLER_ID].sm.image.topics
        if any(name not in topics or any(set(p.isr) != set(p.replicas) or p.leader < 0
                                         for p in topics[name].partitions.values()) for name in self.topics):
            return False
        return all(self.hosts[b].rm.image is not None and all(name in self.hosts[b].rm.image.topics
                                                              for name in self.topics) for b in self.broker_ids)

    def txns_settled(self) -> bool:
        """The producers are between transactions and every replica of the topic has every marker
        under its high watermark, the leader's."""
        if any(c.txn is not None for c in self.txn_producers):
            return False
        ctrl = self.hosts[CONTROLLER_ID]
        t = ctrl.sm.image.topics.get(TOPIC) if ctrl.up else None
        if t is None:
            return False
        for index, state in t.partitions.items():
            hosts = [self.hosts[r] for r in state.replicas]
            if state.leader < 0 or not all(h.up and h.publishing for h in hosts):
                return False
            leader = self.hosts[state.leader].rm.partitions[(TOPIC, index)].log
            if leader.log_end_offset != leader.high_watermark or any(
                    (lg := h.rm.partitions[(TOPIC, index)].log).high_watermark != leader.high_watermark
                    or lg.last_stable_offset != lg.high_watermark for h in hosts):
                return False
        return True

    def fail(self, reason: str) -> None:
        raise InvariantViolation(f"{reason} (event {self.events}, t={self.now} ms)")

    def schedule_tick(self, h: Host, deadline: int | None) -> None:
        deadline = max(deadline if deadline is not None else 1 << 62, self.now + 1)
        if deadline != h.tick_at:
            h.tick_generation += 1
            h.tick_at = deadline
            self.at(deadline, "tick", h.id, h.tick_generation)

    # -- network ---------------------------------------------------------------------------------

    def connected(self, a: int, b: int) -> bool:
        if a >= CLIENT_BASE or b >= CLIENT_BASE:
            return True
        return self.groups.get(a, 0) == self.groups.get(b, 0)

    def send(self, src: int, dst: int, chan: str, message: Message, correlation_id: int, dst_inc: int | None = None,
             version: int | None = None):
        """Put a request (or, with `dst_inc`, a response to that incarnation of `dst`) on the wire, at
        `version` (default: VERSIONS')."""
        is_request = message.KIND == "request"
        target = self.hosts.get(dst)
        if target is not None:
            if not target.up or not self.connected(src, dst):
                return
            dst_inc = target.incarnation if is_request else dst_inc
        version = VERSIONS[message.API_KEY] if version is None else version
        if is_request:
            frame = framing.request_frame(message, version, correlation_id, f"node-{src}")
        else:
            frame = framing.response_frame(message, version, correlation_id)
        data = b"".join(frame)
        client = src >= CLIENT_BASE or dst >= CLIENT_BASE
        copies = 0 if self.rng.random() < self.drop else \
            2 if not client and self.rng.random() < self.duplicate else 1
        src_inc = self.hosts[src].incarnation if src in self.hosts else 0
        for _ in range(copies):
            slow = self.rng.random() < self.slow_messages
            delay = self.rng.randint(1, 2000) if slow else self.rng.randint(1, self.max_delay)
            self.at(self.now + delay, "deliver", src, src_inc, dst, dst_inc, chan, is_request, message.API_KEY,
                    version, data)

    def on_deliver(self, src, src_inc, dst, dst_inc, chan, is_request, api_key, version, data) -> None:
        sender = self.hosts.get(src)
        if not self.connected(src, dst) or sender is not None and (not sender.up or sender.incarnation != src_inc):
            return  # a connection dies with either of the processes at its ends
        body = data[framing.SIZE.size:]
        if dst >= CLIENT_BASE:
            correlation, message = framing.read_response(body, api_key, version)
            if dst >= TXN_CLIENT_BASE:
                self.on_txn_response(self.txn_producers[dst - TXN_CLIENT_BASE], correlation, message)
            else:
                self.on_produce_response(self.producers[dst - CLIENT_BASE], correlation, message)
            return
        h = self.hosts[dst]
        if not h.up or h.incarnation != dst_inc:
            return  # the connection died with the process it led to
        if is_request:
            frame = framing.read_request(body)
            message = frame.decode_body(m.request_class(frame.api_key))
            correlation = frame.correlation_id
        else:
            correlation, message = framing.read_response(body, api_key, version)
        if dst == CONTROLLER_ID:
            self.controller_receive(h, src, src_inc, chan, is_request, message, correlation, version)
        else:
            self.broker_receive(h, src, src_inc, chan, is_request, message, correlation, version)

    # -- processes: start, crash -----------------------------------------------------------------

    def start(self, h: Host) -> None:
        h.incarnation += 1
        h.up = True
        rng = random.Random(self.rng.getrandbits(64))
        h.node = RaftNode(h.id, self.quorum, h.raft_log, h.raft_snapshots, h.raft_store.read(), self.now, rng, QUIET)
        h.sm = MetadataStateMachine(CLUSTER_ID)
        h.checked_to, h.seen_epoch, h.seen_hw, h.reply_inc = {}, {}, {}, {}
        if h.id == CONTROLLER_ID:
            h.controller = Controller(ControllerDefaults(), random.Random(self.rng.getrandbits(64)))
            h.cluster = ClusterControl(CLUSTER_ID, SESSION_TIMEOUT_MS, METADATA_VERSION)
            h.active_epoch = -1
            h.sm.add_listener(lambda old, new: self.check_controller_image(new))
            self.pump_controller(h)
            return
        defaults = LogConfig()
        h.logs = LogManager([h.dir], defaults, clock=lambda: self.now)
        h.waiters = Waiters()
        rm_class = type("SimReplicaManager", (ReplicaManager,), {
            "partition_class": type("CheckedPartition", (CheckedPartition, self.cfg.partition_class), {"sim": self}),
            "fetcher_class": self.cfg.fetcher_class})
        h.rm = rm_class(h.id, h.logs, lambda image: defaults, config=self.replication, waiters=h.waiters,
                        clock=lambda: self.now)
        h.incarnation_id = Uuid(rng.randbytes(16))
        h.broker_epoch, h.publishing, h.lifecycle, h.next_lifecycle, h.stopping = -1, False, None, self.now, None
        h.parked, h.parked_markers = [], []
        if self.txn_producers:
            h.txn = TransactionCoordinator(TXN_CONFIG, leader_of=lambda t, i, h=h: live_leader(h.rm.image, t, i),
                                           now_ms=self.now)
            h.txn_led, h.txn_waiting, h.verifying, h.markers_out, h.pids_out, h.pids_retry = {}, {}, {}, {}, None, None
        h.next_flush, h.next_checkpoint = self.now + FLUSH_INTERVAL_MS, self.now + CHECKPOINT_INTERVAL_MS
        h.sm.add_listener(lambda old, new, h=h: self.publish(h, old, new))
        self.pump_broker(h)

    def crash(self, h: Host, power_loss: bool) -> None:
        self.crashes += 1
        h.up = False
        h.tick_generation += 1
        h.tick_at = -1
        if h.rm is not None:
            logs = list(h.logs.logs())
            h.rm = h.logs = h.waiters = h.txn = None
            h.parked, h.parked_markers = [], []
            if power_loss:
                self.power_losses += 1
                for lg in logs:
                    self.lose_unsynced(lg)
        keep = self.rng.randint(0, 3) if power_loss else 1 << 30
        h.raft_log = h.raft_log.crash(keep)
        h.node = h.sm = None
        self.at(self.now + self.rng.randint(200, 2000), "restart", h.id)

    def stop(self, h: Host) -> None:
        """The end of a controlled shutdown (or of its patience): everything flushed, checkpoints
        and the clean-shutdown marker written, then the process is gone."""
        h.logs.close()
        h.raft_log.flush()
        h.stopping = None
        self.controlled_shutdowns += 1
        self.crash(h, power_loss=False)

    def on_stop_deadline(self, host_id: int, incarnation: int) -> None:
        h = self.hosts[host_id]
        if h.up and h.incarnation == incarnation and h.stopping is not None:
            self.stop(h)

    def lose_unsynced(self, lg) -> None:
        """Power loss: of what a log wrote after its recovery point (its last fsync), a random prefix
        survives, cut anywhere (a torn batch is for recovery to find); later segment files are gone."""
        segments = lg.segments
        durable = lg.recovery_point
        first = max(bisect_right([s.base_offset for s in segments], durable) - 1, 0)  # holds the recovery point
        spans = []  # (segment, where in its file the data that may be lost starts)
        for s in segments[first:]:
            start = 0
            if s is segments[first]:
                data = memoryview(s.log_path.read_bytes()[:s.size])
                start = next((pos for pos, hd in iter_headers(data) if hd.last_offset >= durable), len(data))
            spans.append((s, start))
        keep = self.rng.randint(0, sum(s.size - start for s, start in spans))
        for i, (s, start) in enumerate(spans):
            if keep >= s.size - start:
                keep -= s.size - start
                continue
            with open(s.log_path, "r+b") as f:
                f.truncate(start + keep)
            for later, _ in spans[i + 1:]:
                for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                    (lg.dir / file_name(later.base_offset, suffix)).unlink(missing_ok=True)
            return

    # -- the controller ----------------------------------------------------------------------------

    def controller_active(self, h: Host) -> bool:
        node = h.node
        return node.is_leader and node.applied_offset > node.state.epoch_start_offset

    def run_raft(self, h: Host) -> None:
        """Hand the node's Ready to disk, network and state machine, as a driver would."""
        node = h.node
        while node.has_ready():
            rd = node.ready()
            if rd.quorum_state is not None:
                h.raft_store.write(rd.quorum_state)
            if rd.flush:
                h.raft_log.flush()
            for out in rd.messages:
                inc = None if out.is_request else h.reply_inc.pop((out.dest, out.correlation_id), 0)
                self.send(h.id, out.dest, "raft", out.message, out.correlation_id, inc)
            if rd.snapshot is not None:
                h.sm.restore(rd.snapshot.offset, read_values(h.raft_snapshots.read(rd.snapshot)))
            for b in rd.committed:
                h.sm.apply(b)
                if self.listener_error is not None:
                    raise self.listener_error
            node.advance(rd)

    def propose(self, h: Host, records: list[Message]) -> None:
        h.node.propose([encode_record(r) for r in records], self.now)
        self.run_raft(h)

    def pump_controller(self, h: Host) -> None:
        self.run_raft(h)
        if self.controller_active(h):
            image = h.sm.image
            if h.active_epoch != h.node.epoch:
                h.active_epoch = h.node.epoch
                h.cluster.activate(image, self.now)
                if "metadata.version" not in image.features:
                    self.propose(h, h.controller.bootstrap())
            expired = h.cluster.expire_sessions(h.sm.image, self.now)
            if expired:
                self.propose(h, expired)
            image = h.sm.image
            if not h.topic_created and TOPIC not in image.topics and len(image.live_brokers()) == len(self.broker_ids):
                C = m.CreateTopicsRequest
                req = C(topics=[C.CreatableTopic(name=name, num_partitions=partitions,
                                                 replication_factor=REPLICATION_FACTOR, assignments=[],
                                                 configs=[C.CreatableTopicConfig(name=k, value=v)
                                                          for k, v in configs.items()])
                                for name, (partitions, configs) in self.topics.items()])
                records, _ = h.controller.create_topics(image, req)
                if records:
                    self.propose(h, records)
            h.topic_created = h.topic_created or TOPIC in h.sm.image.topics
        deadline = h.node.next_deadline()
        if self.controller_active(h):
            expiry = h.cluster.next_expiry(h.sm.image)
            if expiry is not None:
                deadline = min(deadline, expiry)
            if not h.topic_created:
                deadline = min(deadline, self.now + 100)
        self.schedule_tick(h, deadline)

    def controller_receive(self, h, src, src_inc, chan, is_request, message, correlation, version) -> None:
        if chan == "raft":
            if is_request:
                h.reply_inc[(src, correlation)] = src_inc
            h.node.step(src, message, correlation, self.now, version)
            self.pump_controller(h)
            return
        if not is_request:
            return
        k = message.API_KEY
        if not self.controller_active(h):
            response = m.response_class(k)(error_code=ErrorCode.NOT_CONTROLLER)
        else:
            image = h.sm.image
            if k == A.BROKER_REGISTRATION:
                records, response = h.cluster.register(image, message, h.raft_log.end_offset, self.now)
            elif k == A.BROKER_HEARTBEAT:
                records, response = h.cluster.heartbeat(image, message, self.now, h.raft_log.end_offset)
            elif k == A.ALLOCATE_PRODUCER_IDS:
                records, response = h.controller.allocate_producer_ids(image, message)
            else:
                records, response = alter_partition(image, message, version)
            if records:
                self.propose(h, records)
        self.send(h.id, src, chan, response, correlation, src_inc)
        self.pump_controller(h)

    # -- brokers -----------------------------------------------------------------------------------

    def publish(self, h: Host, old: MetadataImage, new: MetadataImage) -> None:
        if h.publishing:
            try:
                h.rm.apply_image(old, new, self.now)
                self.follow_txn(h, new)
            except Exception as e:  # the state machine would log and swallow it
                self.listener_error = e
                raise

    def pump_broker(self, h: Host) -> None:
        node = h.node
        for _ in range(100):
            self.run_raft(h)
            # Caught up: the image holds this incarnation's own registration (its broker epoch is that
            # record's offset), which took the previous incarnation's leaderships away. An earlier
            # image would make it lead with what it lost in the crash, as its previous incarnation.
            if not h.publishing and 0 <= h.broker_epoch < h.sm.end_offset:
                h.publishing = True
                h.rm.broker_epoch = h.broker_epoch
                h.rm.apply_image(None, h.sm.image, self.now)
                self.follow_txn(h, h.sm.image)
            self.lifecycle(h)
            if h.publishing:
                for out in h.rm.poll(self.now):
                    dst = CONTROLLER_ID if out.dest == CONTROLLER else out.dest
                    self.send(h.id, dst, "replication", out.message, out.correlation_id)
            coordinated = self.pump_txn(h)
            if not self.recheck_parked(h) and not coordinated and not node.has_ready():
                break
        if self.now >= h.next_flush:
            h.logs.flush_due(self.now)
            h.next_flush = self.now + FLUSH_INTERVAL_MS
        if self.now >= h.next_checkpoint:
            h.logs.checkpoint()
            h.next_checkpoint = self.now + CHECKPOINT_INTERVAL_MS
        self.check_broker(h)
        times = [node.next_deadline(), h.next_flush, h.next_checkpoint]
        times.append(h.lifecycle[1] if h.lifecycle is not None else h.next_lifecycle)
        if h.publishing and (t := h.rm.next_deadline()) is not None:
            times.append(t)
        times += [p.deadline for p in h.parked]
        times += [p.deadline for p in h.parked_markers]
        if h.txn is not None and h.publishing:
            times += [deadline for _, deadline in h.markers_out.values()]
            times += [deadline for deadline, _, _ in h.verifying.values()]
            times += [t for t in (h.txn.next_deadline(), h.pids_retry, h.pids_out and h.pids_out[1]) if t is not None]
        self.schedule_tick(h, min(times))

    def lifecycle(self, h: Host) -> None:
        """Register, then heartbeat every broker.heartbeat.interval.ms (asking to stay fenced until
        the image is published)."""
        if h.lifecycle is not None:
            if h.lifecycle[1] > self.now:
                return
            h.lifecycle = None  # no answer: try again
        if self.now < h.next_lifecycle:
            return
        h.lifecycle_corr += 1
        if h.broker_epoch < 0:
            request = registration_request(h.id, CLUSTER_ID, h.incarnation_id,
                                           [("PLAINTEXT", "127.0.0.1", 9000 + h.id, "PLAINTEXT")], None,
                                           METADATA_VERSION)
        else:
            request = m.BrokerHeartbeatRequest(broker_id=h.id, broker_epoch=h.broker_epoch,
                                               current_metadata_offset=h.sm.end_offset - 1,
                                               want_fence=not h.publishing, want_shut_down=h.stopping is not None)
        h.lifecycle = (h.lifecycle_corr, self.now + LIFECYCLE_TIMEOUT_MS)
        self.send(h.id, CONTROLLER_ID, "lifecycle", request, h.lifecycle_corr)

    def on_lifecycle_response(self, h: Host, correlation: int, message) -> None:
        if h.lifecycle is None or h.lifecycle[0] != correlation:
            return
        h.lifecycle = None
        error = message.error_code
        if isinstance(message, m.BrokerRegistrationResponse):
            if error == ErrorCode.NONE:
                h.broker_epoch = message.broker_epoch
                h.next_lifecycle = self.now
            else:
                h.next_lifecycle = self.now + 100
        elif error == ErrorCode.STALE_BROKER_EPOCH:
            self.fail(f"broker {h.id} lost its registration (epoch {h.broker_epoch}): {ErrorCode(error).name}")
        elif h.stopping is not None and message.should_shut_down:
            self.stop(h)
        else:
            h.next_lifecycle = self.now + (100 if error or h.stopping is not None else HEARTBEAT_INTERVAL_MS)

    def broker_receive(self, h, src, src_inc, chan, is_request, message, correlation, version) -> None:
        if chan == "raft":
            if is_request:
                h.reply_inc[(src, correlation)] = src_inc
            h.node.step(src, message, correlation, self.now, version)
        elif chan == "lifecycle":
            self.on_lifecycle_response(h, correlation, message)
        elif chan in ("markers", "pids", "verify") and not is_request:
            self.on_coordinator_response(h, chan, correlation, message)
        elif not is_request:
            if h.publishing:
                h.rm.on_response(correlation, message, self.now)
        else:
            self.serve(h, src, src_inc, chan, message, correlation, version)
        if h.up:  # (a controlled shutdown may have just ended)
            self.pump_broker(h)

    def serve(self, h, src, src_inc, chan, request, correlation, version) -> None:
        rm = h.rm  # (before it publishes an image it knows no partition: UNKNOWN_TOPIC_* answers)
        k = request.API_KEY
        if k == A.FETCH:
            response, done = rm.fetch_for_follower(request, version, self.now)
            if done:
                records_of(response)
                self.send(h.id, src, chan, response, correlation, src_inc)
            else:
                by_id = rm.image.topics_by_id
                keys = frozenset((by_id[t.topic_id].name, p.partition) for t in request.topics
                                 if t.topic_id in by_id for p in t.partitions)
                h.parked.append(Parked(src, src_inc, correlation, version, request, keys,
                                       self.now + request.max_wait_ms))
        elif k == A.OFFSET_FOR_LEADER_EPOCH:
            self.send(h.id, src, chan, rm.offsets_for_leader_epoch(request), correlation, src_inc)
        elif k == A.LIST_OFFSETS:
            self.send(h.id, src, chan, rm.list_offsets_for_replica(request), correlation, src_inc)
        elif k == A.PRODUCE:
            self.produce_at(h, src, src_inc, correlation, version, request)
        elif k == A.WRITE_TXN_MARKERS:  # the partition leader's part, as the broker's handler does it
            writes = append_markers(rm, request, self.now)
            if writes.offsets:
                self.fail("a WriteTxnMarkers for __consumer_offsets, which nothing here adds to a transaction")
            h.parked_markers.append(ParkedMarkers(src, src_inc, correlation, writes.response, writes.unreplicated,
                                                  self.now + PRODUCE_TIMEOUT_MS))
        elif k in TXN_APIS and h.txn is not None:
            h.txn_seq += 1
            response = h.txn.handle(k, h.txn_seq, request, version, self.now)
            if response is None:
                h.txn_waiting[h.txn_seq] = (src, src_inc, chan, correlation, version)
            else:
                self.send(h.id, src, chan, response, correlation, src_inc, version)

    def produce_at(self, h, src, src_inc, correlation, version, request, verification: ErrorCode | None = None,
                   guard: object | None = None) -> None:
        """A client's produce (one batch for one partition): appended, then answered at once, or for
        acks=all once `check_enough_replicas` says so (or the request times out). A transaction's
        first batch here is verified with its coordinator first (KIP-890, as the broker's handler:
        `verification` is the answer)."""
        pd = request.topic_data[0].partition_data[0]
        result = m.ProduceResponse.PartitionProduceResponse(index=pd.index, error_code=ErrorCode.NONE, base_offset=-1,
                                                            log_append_time_ms=-1, log_start_offset=-1)
        try:
            p = h.rm.get(TOPIC, pd.index)
            if verification is None and request.transactional_id is not None:
                hd = read_header(pd.records)
                guard = p.log.verification_guard(hd.producer_id, hd.base_sequence, hd.producer_epoch)
                if guard is not None:
                    self.verify(h, (h, src, src_inc, correlation, version, request), guard, p, hd)
                    return
            elif verification is not None:
                code = passed_on(verification, abortable=version >= 11)
                if code != ErrorCode.NONE:
                    raise unverified(code)
            info = p.append(pd.records, request.acks, self.now, version, verification_guard=guard)
        except KafkaError as e:
            result.error_code = e.code
            self.reply_produce(h, src, src_inc, correlation, result)
            return
        result.base_offset, result.log_start_offset = info.first_offset, info.log_start_offset
        if request.acks == -1:
            h.parked.append(Parked(src, src_inc, correlation, version, request, frozenset([p.key]),
                                   self.now + request.timeout_ms, p, info.last_offset + 1, p.leader_epoch, result,
                                   bytes(pd.records)))
        else:
            self.reply_produce(h, src, src_inc, correlation, result)

    def verify(self, h: Host, produce: tuple, guard: object, p: Partition, hd) -> None:
        """Ask the transactional id's coordinator (as this broker's image has it) whether the
        partition is in the producer's transaction."""
        transactional_id = produce[-1].transactional_id
        coordinator = self.coordinator_seen_by(h, transactional_id)
        if coordinator < 0 or h.txn is None:
            self.produce_at(*produce, ErrorCode.COORDINATOR_NOT_AVAILABLE)
            return
        h.txn_seq += 1
        h.verifying[h.txn_seq] = (self.now + CALL_TIMEOUT_MS, produce, guard)
        request = verify_request(transactional_id, hd.producer_id, hd.producer_epoch, p.topic, p.index)
        self.send(h.id, coordinator, "verify", request, h.txn_seq, version=VERIFY_VERSION)

    def reply_produce(self, h, src, src_inc, correlation, result) -> None:
        R = m.ProduceResponse
        response = R(responses=[R.TopicProduceResponse(name=TOPIC, partition_responses=[result])])
        self.send(h.id, src, "client", response, correlation, src_inc)

    def recheck_parked(self, h: Host) -> bool:
        """Answer parked requests whose partitions changed or whose time is up. True if any was."""
        dirty, h.waiters.dirty = h.waiters.dirty, set()
        answered = False
        still = []
        for p in h.parked:
            due = p.deadline <= self.now
            if not due and not (p.keys & dirty):
                still.append(p)
                continue
            if p.partition is None:  # a follower's fetch
                response, done = h.rm.fetch_for_follower(p.request, p.version, self.now, update_state=False)
                if done or due:
                    records_of(response)
                    self.send(h.id, p.src, "replication", response, p.correlation_id, p.src_inc)
                    answered = True
                else:
                    still.append(p)
                continue
            done, error = p.partition.check_enough_replicas(p.required_offset, p.leader_epoch)
            if not done and not due:
                still.append(p)
                continue
            p.result.error_code = error if done else ErrorCode.REQUEST_TIMED_OUT
            if p.result.error_code == ErrorCode.NONE:
                self.check_acknowledged(h, p)
            if p.done is not None:
                p.done(p.result.error_code)
            else:
                self.reply_produce(h, p.src, p.src_inc, p.correlation_id, p.result)
            answered = True
        h.parked = still
        markers = []
        for pm in h.parked_markers:
            due = pm.deadline <= self.now
            waiting = []
            for w in pm.waiting:
                partition, offset, leader_epoch, result = w
                done, error = partition.check_enough_replicas(offset, leader_epoch)
                if done or due:
                    result.error_code = error if done else ErrorCode.REQUEST_TIMED_OUT
                else:
                    waiting.append(w)
            pm.waiting = waiting
            if waiting:
                markers.append(pm)
            else:
                self.send(h.id, pm.src, "markers", pm.response, pm.correlation_id, pm.src_inc)
                answered = True
        h.parked_markers = markers
        return answered

    # -- clients -----------------------------------------------------------------------------------

    def on_produce(self, producer_id: int) -> None:
        c = self.producers[producer_id - CLIENT_BASE]
        if c.in_flight is not None and c.in_flight.deadline <= self.now:
            c.in_flight = None  # no answer: the outcome is unknown, the client moves on
        if c.in_flight is None:
            self.send_produce(c)
        self.at(self.exp(self.produce_every), "produce", c.id)

    def leader_of(self, partition: int) -> int:
        """What a Metadata request to some broker would say (possibly stale)."""
        brokers = [self.hosts[b] for b in self.broker_ids if self.hosts[b].up and self.hosts[b].publishing]
        if not brokers:
            return -1
        image = self.rng.choice(brokers).rm.image
        t = image.topics.get(TOPIC) if image is not None else None
        return t.partitions[partition].leader if t is not None and partition in t.partitions else -1

    def send_produce(self, c: Producer, partition: int | None = None, marker: bool = False) -> None:
        partition = self.rng.randrange(self.cfg.partitions) if partition is None else partition
        leader = self.leader_of(partition)
        if leader < 0:
            return
        values = [f"{c.id}-{c.seq + i}".encode() for i in range(self.rng.randint(1, 3))]
        c.seq += len(values)
        batch = build_batch([Record(None, v, self.now) for v in values])
        P = m.ProduceRequest
        request = P(acks=c.acks, timeout_ms=PRODUCE_TIMEOUT_MS, topic_data=[P.TopicProduceData(
            name=TOPIC, partition_data=[P.PartitionProduceData(index=partition, records=batch)])])
        c.corr += 1
        c.in_flight = Produce(c.corr, partition, values, self.now + PRODUCE_TIMEOUT_MS + 2000, marker)
        self.produced += 1
        self.send(c.id, leader, "client", request, c.corr)

    def on_produce_response(self, c: Producer, correlation: int, response) -> None:
        sent = c.in_flight
        if sent is None or sent.correlation_id != correlation:
            return
        c.in_flight = None
        result = response.responses[0].partition_responses[0]
        if result.error_code == ErrorCode.NONE and c.acks == -1:
            self.acked.setdefault(sent.partition, {})[result.base_offset] = sent.values
            if sent.marker:
                self.final_marks[sent.partition] = (result.base_offset, sent.values)

    # -- the transaction coordinator (on every broker) ---------------------------------------------

    def follow_txn(self, h: Host, image: MetadataImage) -> None:
        """A new image: load the `__transaction_state` partitions led here (again at a new leader
        epoch, the coordinator epoch), unload the others, retry markers that waited for a leader."""
        if h.txn is None:
            return
        topic = image.topics.get(TXN_TOPIC)
        led = {} if topic is None else {i: s.leader_epoch for i, s in topic.partitions.items() if s.leader == h.id}
        for index in [i for i in h.txn_led if led.get(i) != h.txn_led[i]]:
            del h.txn_led[index]
            # its appends still waiting are the machine's to answer now (as AppendWaits.drop)
            h.parked = [p for p in h.parked if p.done is None or p.partition.key != (TXN_TOPIC, index)]
            h.txn.unload(index, self.now)
        for index, epoch in sorted(led.items()):
            if index not in h.txn_led:
                h.txn_led[index] = epoch
                h.txn.begin_load(index, epoch, self.now)
        h.txn.metadata_changed(self.now)

    def pump_txn(self, h: Host) -> bool:
        """Do what the machine asks (appends, loads, markers, producer ids) and answer the clients
        whose requests it decided. True if anything happened."""
        machine = h.txn
        if machine is None or not h.publishing:
            return False
        busy = False
        for corr, (deadline, produce, _) in list(h.verifying.items()):
            if deadline <= self.now:
                del h.verifying[corr]
                self.produce_at(*produce, verify_answer(None))
        for corr, (send, deadline) in list(h.markers_out.items()):
            if deadline <= self.now:  # unanswered: the connection is as good as dead
                del h.markers_out[corr]
                machine.markers_sent(send, None, self.now)
        if h.pids_out is not None and h.pids_out[1] <= self.now:
            h.pids_out, h.pids_retry = None, self.now
        if h.pids_retry is not None and h.pids_retry <= self.now:
            h.pids_retry = None
            machine.producer_ids_failed()
        if (deadline := machine.next_deadline()) is not None and deadline <= self.now:
            machine.tick(self.now)
        while work := machine.take_work():
            busy = True
            appends: dict[int, list[Append]] = {}
            # (markers in the order of their brokers: the machine's follows its sets' hashing, and a
            # seed must replay the same in every process)
            work.sort(key=lambda job: job.broker if isinstance(job, SendMarkers) else -1)
            for job in work:
                if isinstance(job, Append):
                    appends.setdefault(job.partition, []).append(job)
                elif isinstance(job, Load):
                    self.at(self.now + self.rng.randint(0, 100), "txn_load", h.id, h.incarnation, *job)
                elif isinstance(job, SendMarkers):
                    h.txn_seq += 1
                    h.markers_out[h.txn_seq] = (job, self.now + CALL_TIMEOUT_MS)
                    self.send(h.id, job.broker, "markers", job.request, h.txn_seq)
                elif isinstance(job, AllocateProducerIds) and h.pids_out is None:
                    h.txn_seq += 1
                    h.pids_out = (h.txn_seq, self.now + CALL_TIMEOUT_MS)
                    self.send(h.id, CONTROLLER_ID, "pids", m.AllocateProducerIdsRequest(
                        broker_id=h.id, broker_epoch=h.broker_epoch), h.txn_seq)
            for index, jobs in appends.items():
                self.append_txn(h, index, jobs)
        for token, response in machine.take_completions():
            busy = True
            src, src_inc, chan, correlation, version = h.txn_waiting.pop(token)
            self.send(h.id, src, chan, response, correlation, src_inc, version)
        return busy

    def append_txn(self, h: Host, index: int, jobs: list[Append]) -> None:
        """The machine's records, one batch, to the partition it leads, with acks=all."""
        try:
            p = h.rm.leader(TXN_TOPIC, index)
            batch = build_plain_batch([record for job in jobs for record in job.records], self.now)
            info = p.append(batch, -1, self.now, origin=COORDINATOR)
        except KafkaError as e:
            for job in jobs:
                h.txn.append_done(job, e.code, self.now)
            return

        def done(error: ErrorCode, machine=h.txn) -> None:
            for job in jobs:
                machine.append_done(job, None if error == ErrorCode.NONE else error, self.now)

        result = m.ProduceResponse.PartitionProduceResponse(index=index, error_code=ErrorCode.NONE,
                                                            base_offset=info.first_offset)
        h.parked.append(Parked(h.id, h.incarnation, -1, -1, None, frozenset([p.key]), self.now + PRODUCE_TIMEOUT_MS,
                               p, info.last_offset + 1, p.leader_epoch, result, bytes(batch), done))

    def on_txn_load(self, host_id: int, incarnation: int, index: int, coordinator_epoch: int) -> None:
        """Read a `__transaction_state` partition back from its log start to its log end."""
        h = self.hosts[host_id]
        if not h.up or h.incarnation != incarnation or h.txn_led.get(index) != coordinator_epoch:
            return
        log_ = h.rm.get(TXN_TOPIC, index).log
        view = memoryview(log_.read_bytes(log_.log_start_offset, 1 << 30, max_offset=log_.log_end_offset))
        pairs = [(r.key, r.value) for pos, hd in iter_headers(view) if not hd.is_control
                 for r in iter_records(view, pos, hd)]
        machine = h.txn
        if machine.load_records(index, coordinator_epoch, pairs) and machine.finish_load(index, coordinator_epoch,
                                                                                         self.now):
            # a commit or abort the previous coordinator left half done: this one sends its markers
            self.resumed += sum(md.state in PREPARED for md in machine.shards[index].txns.values())
        self.pump_broker(h)

    def on_coordinator_response(self, h: Host, chan: str, correlation: int, message) -> None:
        if h.txn is None:
            return
        if chan == "verify":
            waiting = h.verifying.pop(correlation, None)
            if waiting is not None:
                self.produce_at(*waiting[1], verify_answer(message), waiting[2])
        elif chan == "markers":
            sent = h.markers_out.pop(correlation, None)
            if sent is not None:
                h.txn.markers_sent(sent[0], message, self.now)
        elif h.pids_out is not None and h.pids_out[0] == correlation:
            h.pids_out = None
            if message.error_code == ErrorCode.NONE:
                h.txn.producer_ids_allocated(message.producer_id_start, message.producer_id_len)
            else:
                h.pids_retry = self.now + TXN_CONFIG.marker_retry_backoff_ms

    # -- transactional clients ------------------------------------------------------------------------

    def coordinator_seen_by(self, h: Host, transactional_id: str) -> int:
        """The coordinator of `transactional_id` as broker `h`'s image has it (FindCoordinator's
        answer there); -1 when none is known or it is fenced."""
        image = h.rm.image
        t = image.topics.get(TXN_TOPIC) if image is not None else None
        state = t.partitions.get(partition_for(transactional_id, TXN_PARTITIONS)) if t is not None else None
        leader = image.brokers.get(state.leader) if state is not None else None
        return -1 if leader is None or leader.fenced else leader.node_id

    def coordinator_of(self, c: TxnProducer) -> int:
        """What FindCoordinator on some broker would say (possibly stale)."""
        brokers = [self.hosts[b] for b in self.broker_ids if self.hosts[b].up and self.hosts[b].publishing]
        return self.coordinator_seen_by(self.rng.choice(brokers), c.transactional_id) if brokers else -1

    def txn_call(self, c: TxnProducer, what: str, dst: int, request: Message, partition: int = -1) -> None:
        if dst < 0:  # nobody to ask yet
            self.at(self.now + 100, "txn_step", c.id)
            return
        c.corr += 1
        c.waiting[c.corr] = (what, partition, self.now + CALL_TIMEOUT_MS)
        self.at(self.now + CALL_TIMEOUT_MS, "txn_step", c.id)
        self.send(c.id, dst, "client", request, c.corr)

    def on_txn_step(self, client_id: int) -> None:
        """Move the client on: time out what went unanswered, send what is due."""
        c = self.txn_producers[client_id - TXN_CLIENT_BASE]
        for corr, (_, _, deadline) in list(c.waiting.items()):
            if deadline <= self.now:
                del c.waiting[corr]  # no answer: it is sent again (a produce as it was)
        in_flight = {what for what, _, _ in c.waiting.values()}
        txn = c.txn
        if c.step == "idle" and self.chaos:
            parts = sorted(self.rng.sample(range(self.cfg.partitions), self.rng.randint(1, self.cfg.partitions)))
            n = len(self.txns)
            txn = c.txn = Txn(c.producer_id, c.producer_epoch, {
                part: [f"t{c.id}-{n}-{part}-{i}".encode() for i in range(self.rng.randint(1, 3))] for part in parts})
            self.txns.append(txn)
            for values in txn.values.values():
                self.txn_of_value.update(dict.fromkeys(values, txn))
            c.step = "add"
        if c.step == "produce":
            producing = {part for what, part, _ in c.waiting.values() if what == "produce"}
            if len(txn.acked) == len(txn.values) and not producing:
                c.step, txn.ending = "end", self.rng.random() < self.commit_share
            elif self.now >= c.produce_until and not producing:
                c.step, txn.ending = "end", False  # given up (or an abortable error): abort
            elif self.now < c.produce_until:
                for part, values in txn.values.items():
                    if part not in txn.acked and part not in producing:
                        self.send_txn_batch(c, part, values)
        if c.step in ("init", "add", "end") and c.step not in in_flight:
            coordinator = self.coordinator_of(c)
            if c.step == "init":
                bump = c.producer_id if c.bump else -1, c.producer_epoch if c.bump else -1
                request = m.InitProducerIdRequest(transactional_id=c.transactional_id,
                                                  transaction_timeout_ms=c.timeout_ms, producer_id=bump[0],
                                                  producer_epoch=bump[1])
            elif c.step == "add":
                R = m.AddPartitionsToTxnRequest
                request = R(v3_and_below_transactional_id=c.transactional_id, v3_and_below_producer_id=c.producer_id,
                            v3_and_below_producer_epoch=c.producer_epoch,
                            v3_and_below_topics=[R.AddPartitionsToTxnTopic(name=TOPIC, partitions=list(txn.values))])
            else:
                request = m.EndTxnRequest(transactional_id=c.transactional_id, producer_id=c.producer_id,
                                          producer_epoch=c.producer_epoch, committed=txn.ending)
            self.txn_call(c, c.step, coordinator, request)

    def send_txn_batch(self, c: TxnProducer, partition: int, values: list[bytes]) -> None:
        batch = build_batch([Record(None, v, self.now) for v in values], producer_id=c.producer_id,
                            producer_epoch=c.producer_epoch, base_sequence=c.seqs.get(partition, 0), transactional=True)
        P = m.ProduceRequest
        request = P(transactional_id=c.transactional_id, acks=-1, timeout_ms=PRODUCE_TIMEOUT_MS, topic_data=[
            P.TopicProduceData(name=TOPIC, partition_data=[P.PartitionProduceData(index=partition, records=batch)])])
        self.produced += 1
        self.txn_call(c, "produce", self.leader_of(partition), request, partition)

    def on_txn_response(self, c: TxnProducer, correlation: int, response) -> None:
        sent = c.waiting.pop(correlation, None)
        if sent is None:
            return
        what, partition, _ = sent
        txn = c.txn
        backoff = self.now + self.rng.randint(20, 100)
        if what == "produce":
            code = response.responses[0].partition_responses[0].error_code
            if code in (ErrorCode.NONE, ErrorCode.DUPLICATE_SEQUENCE_NUMBER):
                txn.acked.add(partition)
                c.seqs[partition] = c.seqs.get(partition, 0) + len(txn.values[partition])
                backoff = self.now
            elif code not in RETRIABLE:
                c.produce_until = self.now  # an abortable error: the transaction aborts
        elif what == "init":
            code = response.error_code
            if code == ErrorCode.NONE:
                c.producer_id, c.producer_epoch, c.bump, c.seqs, c.step = \
                    response.producer_id, response.producer_epoch, False, {}, "idle"
                backoff = self.now
            elif code not in RETRIABLE:
                c.bump = False  # fenced: start over as a new instance
        elif what == "add":
            codes = {p.partition_error_code for t in response.results_by_topic_v3_and_below
                     for p in t.results_by_partition}
            if codes == {ErrorCode.NONE}:
                c.step, c.produce_until = "produce", self.now + 2 * PRODUCE_TIMEOUT_MS
                backoff = self.now
            elif not codes <= RETRIABLE:  # fenced before anything was produced
                txn.ending, txn.outcome, c.txn, c.step, c.bump = False, "abort", None, "init", False
        else:
            code = response.error_code
            if code == ErrorCode.NONE:
                txn.outcome = "commit" if txn.ending else "abort"
                c.txn, c.step, c.bump = None, "init" if not txn.ending else "idle", not txn.ending
            elif code in (ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.INVALID_TXN_STATE):
                # The coordinator aborted it (it timed out) and fenced this epoch.
                txn.outcome, c.txn, c.step, c.bump = "abort", None, "init", False
            elif code not in RETRIABLE:
                c.txn, c.step, c.bump = None, "init", False  # the outcome stays unknown
        self.at(backoff, "txn_step", c.id)

    # -- faults ------------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """Every broker up, registered in its current incarnation and unfenced; every ISR complete;
        nobody cut off."""
        ctrl = self.hosts[CONTROLLER_ID]
        if not ctrl.up or self.groups:
            return False
        image = ctrl.sm.image
        for b in self.broker_ids:
            h = self.hosts[b]
            reg = image.brokers.get(b)
            if not h.up or reg is None or reg.fenced or reg.incarnation_id != h.incarnation_id or not h.publishing:
                return False
        return all(name in image.topics and all(set(p.isr) == set(p.replicas)
                                                for p in image.topics[name].partitions.values())
                   for name in self.topics)

    def quiet(self) -> bool:
        """While a broker recovers from a power loss, nothing else fails."""
        v = self.recovering
        if v is not None:
            ctrl = self.hosts[CONTROLLER_ID]
            reg = ctrl.sm.image.brokers.get(v) if ctrl.up else None
            if reg is not None and self.hosts[v].up and reg.incarnation_id == self.hosts[v].incarnation_id:
                self.recovering = None
                self.drop, self.slow_messages = self.saved_drop
        return self.recovering is not None

    def on_crash(self) -> None:
        """Kill a process (a partition leader more often than not), or cut a broker's power if the
        cluster is healthy. Seeds that favour power loss wait for a healthy moment."""
        if not self.chaos or self.quiet():
            self.at(self.exp(self.crash_every), "crash")
            return
        if self.power_loss_share == 1.0 and not self.healthy():
            self.at(self.now + 200, "crash")
            return
        up = [h for h in self.hosts.values() if h.up]
        if up:
            if self.rng.random() < 0.1 and self.power_loss_share < 1.0:
                h = self.hosts[CONTROLLER_ID]
            else:
                brokers = [h for h in up if h.id != CONTROLLER_ID]
                leaders = [h for h in brokers if h.publishing and any(p.is_leader for p in h.rm)]
                pool = leaders if leaders and self.rng.random() < 0.6 else brokers
                h = self.rng.choice(pool) if pool else None
            if h is not None and h.up and h.id != CONTROLLER_ID and h.publishing and h.stopping is None \
                    and self.power_loss_share < 1.0 and self.rng.random() < 0.3:
                # A controlled shutdown: leaderships move away first (SIGTERM, a rolling restart).
                h.stopping = self.now
                h.next_lifecycle = self.now
                self.at(self.now + STOP_PATIENCE_MS, "stop_deadline", h.id, h.incarnation)
                self.pump_broker(h)
            elif h is not None and h.up:
                power = h.id != CONTROLLER_ID and self.rng.random() < self.power_loss_share and self.healthy()
                if power:
                    self.recovering = h.id
                    self.saved_drop = self.drop, self.slow_messages
                    self.drop = self.slow_messages = 0.0
                self.crash(h, power)
        self.at(self.exp(self.crash_every), "crash")

    def on_crash_host(self, host_id: int) -> None:
        h = self.hosts[host_id]
        if h.up and self.chaos and not self.quiet():
            self.crash(h, False)

    def on_restart(self, host_id: int) -> None:
        h = self.hosts[host_id]
        if not h.up:
            self.start(h)

    def on_partition(self) -> None:
        """Split the cluster for a while (longer than a broker session, often), then heal."""
        if not self.chaos or self.quiet() or self.groups:
            self.at(self.exp(self.partition_every), "partition")
            return
        leaders = [h.id for h in self.hosts.values() if h.id != CONTROLLER_ID and h.up and h.publishing
                   and any(p.is_leader for p in h.rm)]
        if leaders and self.rng.random() < 0.5:
            # Cut a leader off from everyone but its clients: it goes on appending what it cannot
            # commit until a new leader is elected and it learns so.
            self.groups = {self.rng.choice(leaders): 1}
        else:
            ids = [CONTROLLER_ID] + self.broker_ids
            cut = self.rng.sample(ids, self.rng.randint(1, len(ids) // 2))
            self.groups = {i: 1 for i in cut}
        self.at(self.now + self.rng.randint(300, 2 * SESSION_TIMEOUT_MS), "heal")

    def on_heal(self) -> None:
        self.groups = {}
        self.at(self.exp(self.partition_every), "partition")

    def on_settle(self) -> None:
        self.chaos = False
        self.recovering = None
        self.groups = {}
        self.drop = self.slow_messages = 0.0
        for h in self.hosts.values():
            if h.up and h.stopping is not None:
                self.stop(h)  # a controlled shutdown still under way ends now
            if not h.up:
                self.start(h)
        self.at(self.now + 1000, "liveness_probe")

    def on_liveness_probe(self) -> None:
        """Once a partition is led with a complete ISR everywhere, produce the marker that must
        commit (again, until one is acknowledged)."""
        ctrl = self.hosts[CONTROLLER_ID]
        t = ctrl.sm.image.topics.get(TOPIC) if ctrl.up else None
        c = self.prober
        if c.in_flight is not None and c.in_flight.deadline <= self.now:
            c.in_flight = None
        if t is not None and c.in_flight is None:
            for index, p in sorted(t.partitions.items()):
                if index not in self.final_marks and p.leader >= 0 and set(p.isr) == set(p.replicas):
                    self.send_produce(c, index, marker=True)
                    break
        self.at(self.now + 300, "liveness_probe")

    def on_tick(self, host_id: int, generation: int) -> None:
        h = self.hosts[host_id]
        if not h.up or generation != h.tick_generation:
            return
        h.tick_at = -1
        h.node.tick(self.now)
        if host_id == CONTROLLER_ID:
            self.pump_controller(h)
        else:
            self.pump_broker(h)

    # -- invariants --------------------------------------------------------------------------------

    def check_controller_image(self, image: MetadataImage) -> None:
        try:
            self._check_controller_image(image)
        except Exception as e:  # the state machine would log and swallow it
            self.listener_error = e
            raise

    def _check_controller_image(self, image: MetadataImage) -> None:
        replaying = image.offset <= self.image_offset
        self.image_offset = max(self.image_offset, image.offset)
        for name, p in [(n, p) for n in self.topics if n in image.topics for p in image.topics[n].partitions.values()]:
            if p.leader >= 0 and p.leader not in p.isr:
                self.fail(f"the controller's image has leader {p.leader} outside the ISR {list(p.isr)} "
                          f"of partition {name}-{p.partition}")
            before = self.partition_states.get((name, p.partition))
            self.partition_states[(name, p.partition)] = p
            if replaying or before is None or self.mode != "crashes" or not self.chaos or self.recovering:
                continue
            # The moments after an ISR grows or a leader is elected are where replication bugs hide
            # (a member that has not caught up elected, an epoch with nothing written in it): strike
            # the leader then, now and again.
            if (len(p.isr) > len(before.isr) or p.leader != before.leader) and p.leader >= 0 \
                    and self.rng.random() < 0.3:
                self.at(self.now + self.rng.randint(0, 300), "crash_host", p.leader)

    def check_broker(self, h: Host) -> None:
        if not h.publishing:
            return
        for p in h.rm:
            key = p.key
            if p.leader_epoch < h.seen_epoch.get(key, -1):
                self.fail(f"broker {h.id} went back from leader epoch {h.seen_epoch[key]} to {p.leader_epoch} "
                          f"on partition {named(key)}")
            h.seen_epoch[key] = p.leader_epoch
            if p.is_leader:
                self.check_high_watermark(h, p, "leader")
                if self.leaders.setdefault((key, p.leader_epoch), h.id) != h.id:
                    self.fail(f"two leaders of partition {named(key)} in epoch {p.leader_epoch}: "
                              f"{self.leaders[(key, p.leader_epoch)]} and {h.id}")
                if h.id not in p.isr:
                    self.fail(f"leader {h.id} of partition {named(key)} is not in its ISR {list(p.isr)}")
            self.check_committed(h, p)

    def check_high_watermark(self, h: Host, p: Partition, role: str) -> None:
        """A leader's high watermark never goes back while it leads; a follower's never goes back
        between two answers of its leader in one epoch (the first answer of a new leader may
        bring a lower one: a new leader learns the high watermark only from its followers)."""
        key, hw = (p.key, role), p.high_watermark
        epoch, before = h.seen_hw.get(key, (-1, -1))
        if epoch == p.leader_epoch and hw < before:
            self.fail(f"{role} {h.id} high watermark of partition {p.index} went back from {before} to {hw} "
                      f"in leader epoch {epoch}")
        h.seen_hw[key] = (p.leader_epoch, hw)

    def check_committed(self, h: Host, p: Partition) -> None:
        """Everything below a replica's high watermark is committed: it must be what the committed
        log holds there, or extend it."""
        key = p.key
        hw = p.high_watermark
        start = h.checked_to.get(key, p.log.log_start_offset)
        if hw <= start:
            return
        committed = self.committed.setdefault(key, {})
        end = self.committed_end.get(key, 0)
        for base, last, data in batches(p.log.read_bytes(start, 1 << 30, max_offset=hw)):
            known = committed.get(base)
            if known is None:
                if base < end:
                    self.fail(f"broker {h.id} holds a batch at {base} below its high watermark {hw} on partition "
                              f"{named(key)}, inside the committed log but not a committed batch")
                if base != end:
                    self.fail(f"broker {h.id} commits a batch at {base} on partition {named(key)}, after a gap from "
                              f"{end}")
                committed[base] = (last, data)
                end = last + 1
            elif known != (last, data):
                self.fail(f"broker {h.id} holds a batch at {base} below its high watermark {hw} on partition "
                          f"{named(key)} that differs from the committed one")
        self.committed_end[key] = end
        h.checked_to[key] = hw

    def check_truncation(self, h_id: int, p: Partition, offset: int) -> None:
        """Before a replica truncates to `offset`: nothing committed may go."""
        if offset < p.high_watermark:
            self.fail(f"broker {h_id} truncates partition {p.index} to {offset}, below its high watermark "
                      f"{p.high_watermark}")
        committed = self.committed.get(p.key, {})
        if offset >= self.committed_end.get(p.key, 0):
            return
        for base, last, data in batches(p.log.read_bytes(offset, 1 << 30)):
            known = committed.get(base)
            if known == (last, data):
                self.fail(f"broker {h_id} truncates committed batch at offset {base} of partition {p.index}")
        h = self.hosts[h_id]
        h.checked_to[p.key] = min(h.checked_to.get(p.key, 0), offset)

    def check_acknowledged(self, h: Host, parked: Parked) -> None:
        """An acks=all produce answered without error is committed, as sent."""
        key = parked.partition.key
        base = parked.result.base_offset
        self.check_committed(h, parked.partition)
        known = self.committed.get(key, {}).get(base)
        if known is None or values_of(known[1]) != values_of(parked.batch):
            self.fail(f"broker {h.id} acknowledges a produce at offset {base} of partition {named(key)} that is not "
                      f"committed")

    def on_txn_check(self) -> None:
        for b in self.broker_ids:
            h = self.hosts[b]
            if h.up and h.publishing:
                for p in h.rm:
                    if p.topic == TOPIC:
                        self.check_transactions(h, p)
        if self.chaos:
            self.at(self.now + 1000, "txn_check")

    def check_transactions(self, h: Host, p: Partition) -> dict[Txn, int]:
        """On one replica: the last stable offset is at most the high watermark and no later than the
        first offset of a transaction without a marker in this log; a read_committed read shows no
        record of a transaction its producer did not commit, and no record twice. Returns how many
        of each transaction's records it shows.

        (A marker above the high watermark does not hold the last stable offset back after a
        restart: producer state snapshots do not keep it, in Kafka neither. The decision it
        records is final: the coordinator writes it again if it is truncated.)"""
        log_ = p.log
        hw, lso = log_.high_watermark, log_.last_stable_offset
        if lso > hw:
            self.fail(f"broker {h.id}'s last stable offset {lso} of partition {p.index} is above its high "
                      f"watermark {hw}")
        open_at: dict[int, int] = {}  # producer id -> its open transaction's first offset
        for _, hd in iter_headers(memoryview(log_.read_bytes(log_.log_start_offset, 1 << 30))):
            if hd.is_transactional:
                if hd.is_control:
                    open_at.pop(hd.producer_id, None)
                else:
                    open_at.setdefault(hd.producer_id, hd.base_offset)
        if open_at and lso > min(open_at.values()):
            self.fail(f"broker {h.id}'s last stable offset {lso} of partition {p.index} passed the open transaction "
                      f"at {min(open_at.values())}")
        seen: dict[bytes, int] = {}
        shown: dict[Txn, int] = {}
        for v in read_committed(log_):
            txn = self.txn_of_value.get(v)
            if txn is None:
                continue
            if v in seen:
                self.fail(f"a read_committed read of partition {p.index} on broker {h.id} shows {v!r} twice")
            seen[v] = 1
            if not txn.may_commit:
                self.fail(f"a read_committed read of partition {p.index} on broker {h.id} shows {v!r} of a "
                          f"transaction that was {'aborted' if txn.ending is False else 'never committed'}")
            shown[txn] = shown.get(txn, 0) + 1
        return shown

    def check_final_transactions(self, t) -> None:
        """Every replica's read_committed read holds every committed transaction whole, and of a
        transaction whose outcome its producer never learnt all records or none; once the producers
        are done, no transaction is left open."""
        idle = all(c.txn is None for c in self.txn_producers)
        shown_anywhere: dict[Txn, set] = {}
        for index, state in sorted(t.partitions.items()):
            for r in state.replicas:
                h = self.hosts[r]
                p = h.rm.partitions[(TOPIC, index)]
                shown = self.check_transactions(h, p)
                if idle and p.log.last_stable_offset != p.log.high_watermark:
                    self.fail(f"a transaction is still open on partition {index} of broker {r} after the producers "
                              f"finished: last stable offset {p.log.last_stable_offset}, high watermark "
                              f"{p.log.high_watermark}")
                for txn in self.txns:
                    if index not in txn.values:
                        continue
                    count, whole = shown.get(txn, 0), len(txn.values[index])
                    if count not in (0, whole):
                        self.fail(f"broker {r} shows {count} of the {whole} records of a transaction on partition "
                                  f"{index} to read_committed")
                    if txn.outcome == "commit" and count == 0:
                        self.fail(f"a committed transaction's records are missing from partition {index} on broker "
                                  f"{r}")
                    shown_anywhere.setdefault(txn, set()).add(count > 0)
        for txn, shown in shown_anywhere.items():
            if len(shown) > 1:
                self.fail(f"a transaction (outcome {txn.outcome or 'unknown'}) is visible on some partitions or "
                          f"replicas and not on others")

    def check_final(self) -> None:
        ctrl = self.hosts[CONTROLLER_ID]
        t = ctrl.sm.image.topics.get(TOPIC) if ctrl.up else None
        if t is None:
            self.fail("the topic was never created")
        for index, p in sorted(t.partitions.items()):
            if p.leader < 0 or set(p.isr) != set(p.replicas):
                self.fail(f"partition {index} did not recover: leader {p.leader}, ISR {list(p.isr)} of "
                          f"{list(p.replicas)}")
            if index not in self.final_marks:
                self.fail(f"no acks=all produce committed on partition {index} after the faults stopped")
            leader = self.hosts[p.leader].rm.partitions[(TOPIC, index)]
            for r in p.replicas:
                replica = self.hosts[r].rm.partitions[(TOPIC, index)]
                data = replica.log.read_bytes(0, 1 << 30, max_offset=leader.high_watermark)
                held = {base: values_of(b) for base, _, b in batches(data)}
                counts: dict = {}
                for vs in held.values():
                    for v in vs:
                        counts[v] = counts.get(v, 0) + 1
                for base, values in self.acked.get(index, {}).items():
                    if held.get(base) != values:
                        self.fail(f"record acknowledged at offset {base} of partition {index} is "
                                  f"{'missing' if base not in held else 'different'} on broker {r}")
                    if any(counts.get(v, 0) != 1 for v in values):
                        self.fail(f"record acknowledged at offset {base} of partition {index} is duplicated on "
                                  f"broker {r}")
        if self.txn_producers:
            for name in self.topics:
                for index, p in sorted(ctrl.sm.image.topics[name].partitions.items()):
                    if p.leader < 0 or set(p.isr) != set(p.replicas):
                        self.fail(f"partition {index} of {name} did not recover: leader {p.leader}, ISR {list(p.isr)}")
            self.check_final_transactions(t)


def read_committed(log_) -> list[bytes]:
    """What a read_committed consumer of the whole log gets: the real read (up to the last stable
    offset, with the aborted transactions of the range), filtered as Kafka's clients do: a batch of
    a producer whose aborted transaction started at or before it is skipped until its ABORT marker;
    control batches are skipped."""
    slices, aborted = log_.read_committed(log_.log_start_offset, 1 << 30)
    data = memoryview(b"".join(s.read() for s in slices))
    pending = sorted((a.first_offset, a.producer_id) for a in aborted)
    aborting: set[int] = set()
    values, i = [], 0
    for pos, h in iter_headers(data):
        while i < len(pending) and pending[i][0] <= h.last_offset:
            aborting.add(pending[i][1])
            i += 1
        if h.is_control:
            marker = read_marker(data, pos, h)
            if marker is not None and not marker.is_commit:
                aborting.discard(h.producer_id)
        elif not (h.is_transactional and h.producer_id in aborting):
            values += [r.value for r in iter_records(data, pos, h)]
    return values


class CheckedPartition:
    """Mixed into the simulated brokers' partitions: truncations are checked before they happen,
    a follower's high watermark after each answer of its leader."""

    sim: Simulation

    def append_as_follower(self, records, leader_high_watermark: int, leader_log_start_offset: int):
        info = super().append_as_follower(records, leader_high_watermark, leader_log_start_offset)
        self.sim.check_high_watermark(self.sim.hosts[self.node_id], self, "follower")
        return info

    def truncate_to(self, offset: int) -> None:
        self.sim.check_truncation(self.node_id, self, offset)
        self.sim.truncations += offset < self.log.log_end_offset
        super().truncate_to(offset)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        if self.log.log_end_offset > self.log.log_start_offset:
            self.sim.check_truncation(self.node_id, self, self.log.log_start_offset)
        super().truncate_fully_and_start_at(offset)


def run(config: SimConfig) -> SimResult:
    root = Path(tempfile.mkdtemp(prefix="cluster-sim-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    try:
        with quiet_logs():
            return Simulation(config, root).run()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_many(configs, out=print) -> tuple[list[SimConfig], int]:
    """Run every config; print a failure with its replay command. Returns (failed, events)."""
    return seeds.run_many(configs, run, lambda cfg: f"{cfg.brokers} brokers", out)


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = seeds.parser("kafka_compat.testing.cluster_sim", __doc__, "run seeds 0..N-1", SimConfig)
    parser.add_argument("--brokers", type=int)
    parser.add_argument("--partitions", type=int, default=SimConfig.partitions)
    parser.add_argument("--mode", choices=MODES)
    parser.add_argument("--transactions", action=argparse.BooleanOptionalAction,
                        help="transactional producers (default: every tenth seed)")
    args = parser.parse_args(argv)
    kw = {} if args.brokers is None else {"brokers": args.brokers}
    if args.mode:
        kw["mode"] = args.mode
    if args.transactions is not None:
        kw["transactions"] = args.transactions
    return seeds.run_and_report([default_config(seed, partitions=args.partitions, chaos_ms=args.chaos_ms,
                                                settle_ms=args.settle_ms, **kw) for seed in seeds.chosen(args)],
                                run_many)


if __name__ == "__main__":
    sys.exit(main())
