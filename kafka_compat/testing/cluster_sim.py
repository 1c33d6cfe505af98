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
import time
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import structlog

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
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record, iter_records
from kafka_compat.replication import alter_partition as alter_partition_module
from kafka_compat.replication import fetcher as fetcher_module
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.fetcher import Fetcher
from kafka_compat.replication.partition import Partition
from kafka_compat.replication.replica_manager import CONTROLLER, ReplicaManager
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager
from kafka_compat.storage.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, file_name

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
VERSIONS = {**raft_wire.VERSIONS, **fetcher_module.VERSIONS, A.ALTER_PARTITION: alter_partition_module.VERSION,
            A.BROKER_REGISTRATION: 2, A.BROKER_HEARTBEAT: 1, A.PRODUCE: 9}
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
    partition_class: type = Partition  # tests plant broken ones
    fetcher_class: type = Fetcher

    def replay_command(self) -> str:
        return (f"python -m kafka_compat.testing.cluster_sim --seed {self.seed} --brokers {self.brokers} "
                f"--partitions {self.partitions} --chaos-ms {self.chaos_ms} --settle-ms {self.settle_ms}"
                + (f" --mode {self.mode}" if self.mode else ""))


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


def default_config(seed: int, **kw) -> SimConfig:
    """Seeds run 3 brokers mostly and 4 (RF 3 on 4 brokers: leaders and ISRs move more) every
    fourth time, unless told."""
    kw.setdefault("brokers", 4 if seed % 4 == 3 else 3)
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
        self.topic_configs = topic_configs
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
        self.chaos = True
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
        for p in self.producers[:-1]:
            self.at(self.exp(self.produce_every), "produce", p.id)
        self.at(self.exp(self.crash_every), "crash")
        self.at(self.exp(self.partition_every), "partition")
        self.at(self.now + self.cfg.chaos_ms, "settle")
        end = self.now + self.cfg.chaos_ms + self.cfg.settle_ms
        self.run_until(lambda: False, end)
        self.now = end
        self.check_final()
        acked = sum(len(v) for a in self.acked.values() for v in a.values())
        return SimResult(self.cfg, self.events, acked, self.produced, self.crashes, self.power_losses,
                         self.controlled_shutdowns, self.truncations, len(self.leaders), end)

    def run_until(self, done, end: int) -> None:
        while self.queue and self.queue[0][0] <= end and not done():
            when, _, kind, args = heapq.heappop(self.queue)
            self.now = when
            self.events += 1
            getattr(self, "on_" + kind)(*args)

    def in_sync(self) -> bool:
        """The controller's image has the topic with every ISR complete, and every broker knows it."""
        t = self.hosts[CONTROLLER_ID].sm.image.topics.get(TOPIC)
        if t is None or any(set(p.isr) != set(p.replicas) or p.leader < 0 for p in t.partitions.values()):
            return False
        return all(self.hosts[b].rm.image is not None and TOPIC in self.hosts[b].rm.image.topics
                   for b in self.broker_ids)

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

    def send(self, src: int, dst: int, chan: str, message: Message, correlation_id: int, dst_inc: int | None = None):
        """Put a request (or, with `dst_inc`, a response to that incarnation of `dst`) on the wire."""
        is_request = message.KIND == "request"
        target = self.hosts.get(dst)
        if target is not None:
            if not target.up or not self.connected(src, dst):
                return
            dst_inc = target.incarnation if is_request else dst_inc
        version = VERSIONS[message.API_KEY]
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
        h.parked = []
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
            h.rm = h.logs = h.waiters = None
            h.parked = []
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
                req = C(topics=[C.CreatableTopic(name=TOPIC, num_partitions=self.cfg.partitions,
                                                 replication_factor=REPLICATION_FACTOR, assignments=[],
                                                 configs=[C.CreatableTopicConfig(name=k, value=v)
                                                          for k, v in self.topic_configs.items()])])
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
            self.lifecycle(h)
            if h.publishing:
                for out in h.rm.poll(self.now):
                    dst = CONTROLLER_ID if out.dest == CONTROLLER else out.dest
                    self.send(h.id, dst, "replication", out.message, out.correlation_id)
            if not self.recheck_parked(h) and not node.has_ready():
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

    def produce_at(self, h, src, src_inc, correlation, version, request) -> None:
        """A client's produce (one batch for one partition): appended, then answered at once, or for
        acks=all once `check_enough_replicas` says so (or the request times out)."""
        pd = request.topic_data[0].partition_data[0]
        result = m.ProduceResponse.PartitionProduceResponse(index=pd.index, error_code=ErrorCode.NONE, base_offset=-1,
                                                            log_append_time_ms=-1, log_start_offset=-1)
        try:
            p = h.rm.get(TOPIC, pd.index)
            info = p.append(pd.records, request.acks, self.now, version)
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
            self.reply_produce(h, p.src, p.src_inc, p.correlation_id, p.result)
            answered = True
        h.parked = still
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
        t = image.topics.get(TOPIC)
        return t is not None and all(set(p.isr) == set(p.replicas) for p in t.partitions.values())

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
        t = image.topics.get(TOPIC)
        if t is None:
            return
        replaying = image.offset <= self.image_offset
        self.image_offset = max(self.image_offset, image.offset)
        for p in t.partitions.values():
            if p.leader >= 0 and p.leader not in p.isr:
                self.fail(f"the controller's image has leader {p.leader} outside the ISR {list(p.isr)} "
                          f"of partition {p.partition}")
            before = self.partition_states.get(p.partition)
            self.partition_states[p.partition] = p
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
            key = p.index
            if p.leader_epoch < h.seen_epoch.get(key, -1):
                self.fail(f"broker {h.id} went back from leader epoch {h.seen_epoch[key]} to {p.leader_epoch} "
                          f"on partition {key}")
            h.seen_epoch[key] = p.leader_epoch
            if p.is_leader:
                self.check_high_watermark(h, p, "leader")
                if self.leaders.setdefault((key, p.leader_epoch), h.id) != h.id:
                    self.fail(f"two leaders of partition {key} in epoch {p.leader_epoch}: "
                              f"{self.leaders[(key, p.leader_epoch)]} and {h.id}")
                if h.id not in p.isr:
                    self.fail(f"leader {h.id} of partition {key} is not in its ISR {list(p.isr)}")
            self.check_committed(h, p)

    def check_high_watermark(self, h: Host, p: Partition, role: str) -> None:
        """A leader's high watermark never goes back while it leads; a follower's never goes back
        between two answers of its leader in one epoch (the first answer of a new leader may
        bring a lower one: a new leader learns the high watermark only from its followers)."""
        key, hw = (p.index, role), p.high_watermark
        epoch, before = h.seen_hw.get(key, (-1, -1))
        if epoch == p.leader_epoch and hw < before:
            self.fail(f"{role} {h.id} high watermark of partition {p.index} went back from {before} to {hw} "
                      f"in leader epoch {epoch}")
        h.seen_hw[key] = (p.leader_epoch, hw)

    def check_committed(self, h: Host, p: Partition) -> None:
        """Everything below a replica's high watermark is committed: it must be what the committed
        log holds there, or extend it."""
        key = p.index
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
                              f"{key}, inside the committed log but not a committed batch")
                if base != end:
                    self.fail(f"broker {h.id} commits a batch at {base} on partition {key}, after a gap from {end}")
                committed[base] = (last, data)
                end = last + 1
            elif known != (last, data):
                self.fail(f"broker {h.id} holds a batch at {base} below its high watermark {hw} on partition {key} "
                          f"that differs from the committed one")
        self.committed_end[key] = end
        h.checked_to[key] = hw

    def check_truncation(self, h_id: int, p: Partition, offset: int) -> None:
        """Before a replica truncates to `offset`: nothing committed may go."""
        if offset < p.high_watermark:
            self.fail(f"broker {h_id} truncates partition {p.index} to {offset}, below its high watermark "
                      f"{p.high_watermark}")
        committed = self.committed.get(p.index, {})
        if offset >= self.committed_end.get(p.index, 0):
            return
        for base, last, data in batches(p.log.read_bytes(offset, 1 << 30)):
            known = committed.get(base)
            if known == (last, data):
                self.fail(f"broker {h_id} truncates committed batch at offset {base} of partition {p.index}")
        h = self.hosts[h_id]
        h.checked_to[p.index] = min(h.checked_to.get(p.index, 0), offset)

    def check_acknowledged(self, h: Host, parked: Parked) -> None:
        """An acks=all produce answered without error is committed, as sent."""
        key = parked.partition.index
        base = parked.result.base_offset
        self.check_committed(h, parked.partition)
        known = self.committed.get(key, {}).get(base)
        if known is None or values_of(known[1]) != values_of(parked.batch):
            self.fail(f"broker {h.id} acknowledges a produce at offset {base} of partition {key} that is not committed")

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
    failures, events = [], 0
    for cfg in configs:
        try:
            events += run(cfg).events
        except Exception as e:  # any exception is a finding: print the replay line
            failures.append(cfg)
            out(f"FAIL seed {cfg.seed} ({cfg.brokers} brokers): {type(e).__name__}: {e}")
            out(f"  replay: {cfg.replay_command()}")
    return failures, events


def main(argv: list[str] | None = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m kafka_compat.testing.cluster_sim",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="run seeds 0..N-1")
    parser.add_argument("--seed", type=int, help="run (replay) one seed")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--brokers", type=int)
    parser.add_argument("--partitions", type=int, default=SimConfig.partitions)
    parser.add_argument("--chaos-ms", type=int, default=SimConfig.chaos_ms)
    parser.add_argument("--settle-ms", type=int, default=SimConfig.settle_ms)
    parser.add_argument("--mode", choices=MODES)
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.first_seed, args.first_seed + args.seeds)
    kw = {} if args.brokers is None else {"brokers": args.brokers}
    if args.mode:
        kw["mode"] = args.mode
    configs = [default_config(seed, partitions=args.partitions, chaos_ms=args.chaos_ms, settle_ms=args.settle_ms, **kw)
               for seed in seeds]
    started = time.perf_counter()
    failures, events = run_many(configs)
    elapsed = time.perf_counter() - started
    print(f"{len(configs)} seeds ({configs[0].seed}..{configs[-1].seed}), {len(failures)} failed, {events} events, "
          f"{elapsed:.1f} s" + (f"; failing seeds: {' '.join(str(c.seed) for c in failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
