"""A deterministic simulation of a Raft quorum: one process, one event loop, one seed.

N voters and M observers run real `RaftNode`s over a virtual network that delays, reorders,
drops and duplicates messages and partitions the nodes; nodes take snapshots and trim their logs;
nodes crash (sometimes halfway through persisting a Ready, losing the unflushed log tail, an
unsaved quorum state, or a snapshot and the log trim after it) and restart from what was
durable. Every message goes through the generated codecs and the request/response framing, so the
codecs see real traffic.

After every event the invariants are checked: one leader per epoch; observers never stand;
epochs never go back on a node (nor on its disk); the high watermark never goes back on a leader within its leadership;
committed batches never change, are never truncated, and always live on a majority of voters
(in their logs or snapshots); every node applies exactly the committed batches, in order. At the
end the faults stop (a minority of voters may stay cut off) and liveness is required: a leader
is elected and a proposal commits and reaches every connected node.

`python -m kafka_compat.testing.raft_sim --seeds N` runs seeds 0..N-1 across 1, 3 and 5 voters;
a failure prints the one-line command that replays it.
"""

from __future__ import annotations

import heapq
import logging
import random
import sys
from ast import literal_eval
from dataclasses import dataclass, field, replace

import structlog

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as protocol_messages
from kafka_compat.raft import wire
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.log import MemoryLog
from kafka_compat.raft.node import Batch, RaftNode, Ready
from kafka_compat.raft.quorum_state import MemoryQuorumStateStore
from kafka_compat.raft.ready import persist
from kafka_compat.raft.snapshots import MemorySnapshotStore, read_values
from kafka_compat.testing import seeds

VOTER_COUNTS = (1, 3, 5)
# Where a crash may cut a Ready's writes short (see `Simulation.torn_persist`).
TORN_CRASH_POINTS = ("before-state", "before-snapshot", "before-flush")
MARKER = b"liveness-marker"
# Nodes log only errors here: thousands of elections would drown a failure's report.
QUIET = structlog.wrap_logger(structlog.PrintLogger(sys.stderr),
                              wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


class InvariantViolation(AssertionError):
    pass


@dataclass
class SimConfig:
    seed: int
    voters: int = 3
    observers: int = 0
    chaos_ms: int = 12_000
    settle_ms: int = 12_000
    node_class: type = RaftNode

    def replay_command(self) -> str:
        return (f"python -m kafka_compat.testing.raft_sim --seed {self.seed} --voters {self.voters} "
                f"--observers {self.observers} --chaos-ms {self.chaos_ms} --settle-ms {self.settle_ms}")


@dataclass
class SimResult:
    config: SimConfig
    events: int
    committed_offset: int
    elections: int
    crashes: int
    virtual_ms: int


class HistoryStateMachine:
    """Keeps every applied batch, so that its whole history can be checked; its snapshot is that
    history, one record per batch."""

    def __init__(self):
        self.batches: list[tuple[int, int, int, tuple[bytes, ...]]] = []
        self.end_offset = 0

    def apply(self, batch: Batch) -> None:
        self.batches.append((batch.base_offset, batch.last_offset, batch.epoch, tuple(batch.values)))
        self.end_offset = batch.last_offset + 1

    def snapshot(self) -> tuple[int, list[bytes]]:
        return self.end_offset, [repr(b).encode() for b in self.batches]

    def restore(self, end_offset: int, values: list[bytes]) -> None:
        self.batches = [literal_eval(v.decode()) for v in values]
        self.end_offset = end_offset


@dataclass
class Host:
    """A simulated process: its disk survives crashes, its node and state machine do not."""

    id: int
    store: MemoryQuorumStateStore = field(default_factory=MemoryQuorumStateStore)
    log: MemoryLog = field(default_factory=MemoryLog)
    snapshots: MemorySnapshotStore = field(default_factory=MemorySnapshotStore)
    node: RaftNode | None = None
    sm: HistoryStateMachine | None = None
    tick_generation: int = 0
    tick_at: int = -1
    torn_crash: str | None = None  # crash halfway through the next Ready's writes: one of TORN_CRASH_POINTS
    last_epoch: int = 0
    disk_epoch: int = 0
    leader_hw: tuple[int, int] = (-1, -1)
    last_hw: int = 0
    checked_to: int = 0


class Simulation:
    def __init__(self, config: SimConfig):
        self.cfg = config
        self.rng = random.Random(config.seed)
        r = self.rng
        self.drop = r.choice([0.0, 0.01, 0.05, 0.1])
        self.duplicate = r.choice([0.0, 0.02, 0.05])
        self.max_delay = r.choice([5, 20, 100])
        self.crash_every = r.choice([2000, 4000, 8000])
        self.partition_every = r.choice([3000, 6000])
        self.snapshot_every = r.choice([1500, 4000])
        self.propose_every = r.choice([50, 150, 300])
        self.slow_messages = 0.01  # delayed up to 3 s: stale by the time they arrive
        self.voter_ids = list(range(1, config.voters + 1))
        self.observer_ids = list(range(100, 100 + config.observers))
        self.quorum = QuorumConfig(voters=frozenset(self.voter_ids), cluster_id="sim-cluster")
        self.hosts = {i: Host(i) for i in self.voter_ids + self.observer_ids}
        self.now = 0
        self.events = 0
        self.queue: list = []
        self.seq = 0
        self.groups: dict[int, int] = {}  # node -> partition group; absent = everyone together
        self.chaos = True
        # Global truth, built from what nodes report as committed.
        self.committed: dict[int, bytes] = {}  # base offset -> batch bytes
        self.committed_end = 0
        self.applied: dict[int, tuple] = {}  # base offset -> (last offset, epoch, values)
        self.leaders: dict[int, int] = {}  # epoch -> leader id
        self.crashes = 0
        self.marker: tuple[int, int] | None = None  # (last offset, epoch) of the liveness proposal
        self.isolated: set[int] = set()
        self.client_values = 0

    # Scheduling

    def at(self, when: int, kind: str, *args) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, kind, args))

    def run(self) -> SimResult:
        for h in self.hosts.values():
            self.start(h)
        self.at(self.exp(self.propose_every), "propose")
        self.at(self.exp(self.crash_every), "crash")
        self.at(self.exp(self.partition_every), "partition")
        self.at(self.exp(self.snapshot_every), "snapshot")
        self.at(self.cfg.chaos_ms, "settle")
        end = self.cfg.chaos_ms + self.cfg.settle_ms
        while self.queue and self.queue[0][0] <= end:
            when, _, kind, args = heapq.heappop(self.queue)
            self.now = when
            self.events += 1
            getattr(self, "on_" + kind)(*args)
        self.now = end
        self.check_liveness()
        return SimResult(self.cfg, self.events, self.committed_end, len(self.leaders), self.crashes, end)

    def exp(self, mean: int) -> int:
        return self.now + 1 + int(self.rng.expovariate(1 / mean))

    def fail(self, reason: str) -> None:
        raise InvariantViolation(f"{reason} (event {self.events}, t={self.now} ms)")

    # Processes

    def start(self, h: Host) -> None:
        rng = random.Random(self.rng.getrandbits(64))
        h.node = self.cfg.node_class(h.id, self.quorum, h.log, h.snapshots, h.store.read(), self.now, rng, QUIET)
        h.sm = HistoryStateMachine()
        h.log.on_truncate = lambda end, h=h: self.check_truncation(h, end)
        h.last_epoch = h.node.epoch
        h.leader_hw = (-1, -1)
        h.last_hw = h.node.high_watermark
        h.checked_to = h.log.start_offset
        self.process(h)

    def crash(self, h: Host, keep_unflushed: int = 0) -> None:
        self.crashes += 1
        h.log.on_truncate = None
        h.log = h.log.crash(keep_unflushed)
        self.check_majority_holds_committed()
        h.node = h.sm = None
        h.tick_generation += 1
        h.tick_at = -1
        h.torn_crash = None
        self.at(self.now + self.rng.randint(100, 3000), "restart", h.id)

    def process(self, h: Host) -> None:
        """Hand the node's Ready to 'disk', 'network' and state machine, as a driver would."""
        node = h.node
        while node.has_ready():
            rd = node.ready()
            if h.torn_crash is not None and rd.writes:
                self.torn_persist(h, rd)
                return
            if rd.quorum_state is not None:
                if rd.quorum_state.epoch < h.disk_epoch:
                    self.fail(f"node {h.id} persisted epoch {rd.quorum_state.epoch} after {h.disk_epoch}")
                h.disk_epoch = rd.quorum_state.epoch
            persist(rd, h.store, h.log, h.snapshots)
            for out in rd.messages:
                self.send(h.id, out)
            self.record_committed(h)
            self.apply(h, rd)
            node.advance(rd)
        self.check_node(h)
        deadline = max(node.next_deadline(), self.now + 1)
        if deadline != h.tick_at:
            h.tick_generation += 1
            h.tick_at = deadline
            self.at(deadline, "tick", h.id, h.tick_generation)

    def torn_persist(self, h: Host, rd: Ready) -> None:
        """Crash part-way through persisting `rd`, at the point `h.torn_crash` names: before the
        quorum state, before the snapshot, or before the log flush (the snapshot stored and the
        log trimmed or reset after it, but none of that flushed)."""
        point = h.torn_crash
        if point != "before-state" and rd.quorum_state is not None:
            h.store.write(rd.quorum_state)
        if point == "before-flush":
            persist(replace(rd, quorum_state=None, flush=False), h.store, h.log, h.snapshots)
        self.crash(h, keep_unflushed=self.rng.randint(0, 2))

    # Network

    def connected(self, a: int, b: int) -> bool:
        return self.groups.get(a, 0) == self.groups.get(b, 0) and a not in self.isolated and b not in self.isolated

    def send(self, src: int, out) -> None:
        msg, dst = out.message, out.dest
        if dst not in self.hosts or not self.connected(src, dst):
            return
        version = wire.VERSIONS[msg.API_KEY]
        if out.is_request:
            frame = framing.request_frame(msg, version, out.correlation_id, f"node-{src}")
        else:
            frame = framing.response_frame(msg, version, out.correlation_id)
        data = b"".join(frame)
        copies = 0 if self.rng.random() < self.drop else 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            slow = self.rng.random() < self.slow_messages
            delay = self.rng.randint(1, 3000) if slow else self.rng.randint(1, self.max_delay)
            self.at(self.now + delay, "deliver", src, dst, out.is_request, msg.API_KEY, version, data)

    def on_deliver(self, src, dst, is_request, api_key, version, data) -> None:
        h = self.hosts[dst]
        if h.node is None or not self.connected(src, dst):
            return
        body = data[framing.SIZE.size:]
        if is_request:
            frame = framing.read_request(body)
            message = frame.decode_body(protocol_messages.request_class(frame.api_key))
            correlation = frame.correlation_id
        else:
            correlation, message = framing.read_response(body, api_key, version)
        h.node.step(src, message, correlation, self.now, version)
        self.process(h)

    # Fault and workload events

    def on_tick(self, node_id: int, generation: int) -> None:
        h = self.hosts[node_id]
        if h.node is not None and generation == h.tick_generation:
            h.node.tick(self.now)
            self.process(h)

    def on_propose(self) -> None:
        leaders = [h for h in self.hosts.values() if h.node is not None and h.node.is_leader]
        if leaders:
            h = self.rng.choice(leaders)
            values = [f"v{self.client_values + i}".encode() for i in range(self.rng.randint(1, 3))]
            self.client_values += len(values)
            h.node.propose(values, self.now)
            self.process(h)
        self.at(self.exp(self.propose_every), "propose")

    def on_crash(self) -> None:
        if not self.chaos:
            return
        up = [h for h in self.hosts.values() if h.node is not None]
        if up:
            # Leaders half the time: their crashes are the interesting ones.
            leaders = [h for h in up if h.node.is_leader]
            h = self.rng.choice(leaders if leaders and self.rng.random() < 0.5 else up)
            if self.rng.random() < 0.5:
                h.torn_crash = self.rng.choice(TORN_CRASH_POINTS)
            else:
                self.crash(h)
        self.at(self.exp(self.crash_every), "crash")

    def on_restart(self, node_id: int) -> None:
        h = self.hosts[node_id]
        if h.node is None:
            self.start(h)

    def on_partition(self) -> None:
        if not self.chaos:
            return
        ids = list(self.hosts)
        leaders = [h.id for h in self.hosts.values() if h.node is not None and h.node.is_leader]
        if self.groups or self.rng.random() < 0.3:
            self.groups = {}
        elif leaders and self.rng.random() < 0.5:
            self.groups = {leaders[0]: 1}  # cut the leader off, alone or with an observer or two
            self.groups.update({o: self.rng.randint(0, 1) for o in self.observer_ids})
        else:
            self.groups = {i: self.rng.randint(0, 1) for i in ids}
        self.at(self.exp(self.partition_every), "partition")

    def on_snapshot(self) -> None:
        up = [h for h in self.hosts.values() if h.node is not None]
        if up:
            h = self.rng.choice(up)
            end, values = h.sm.snapshot()
            if end > h.log.start_offset and end <= h.node.high_watermark:
                h.node.create_snapshot(end, values, self.now, trim_log=self.rng.random() < 0.7)
                if self.chaos and self.rng.random() < 0.2:
                    h.torn_crash = self.rng.choice(TORN_CRASH_POINTS[1:])  # while storing the snapshot
                self.process(h)
        self.at(self.exp(self.snapshot_every), "snapshot")

    def on_settle(self) -> None:
        """Faults stop; sometimes a minority of voters stays cut off for the rest of the run."""
        self.chaos = False
        self.groups = {}
        self.drop = self.slow_messages = 0.0
        minority = (len(self.voter_ids) - 1) // 2
        if minority and self.rng.random() < 0.5:
            self.isolated = set(self.rng.sample(self.voter_ids, minority))
        for h in self.hosts.values():
            h.torn_crash = None
            if h.node is None:
                self.start(h)
        self.at(self.now + 1000, "liveness_probe")

    def on_liveness_probe(self) -> None:
        """Once the connected voters agree on a leader, propose the marker the run must commit
        (again if a later leader lost it before it committed)."""
        if not any(self.has_marker(h) for h in self.hosts.values() if h.sm is not None):
            live = [self.hosts[v].node for v in self.voter_ids if v not in self.isolated]
            leader = [n for n in live if n.is_leader]
            if leader and all(n.leader_id == leader[0].id and n.epoch == leader[0].epoch for n in live) \
                    and (self.marker is None or self.marker.epoch != leader[0].epoch):
                self.marker = leader[0].propose([MARKER], self.now)
                self.process(self.hosts[leader[0].id])
        self.at(self.now + 500, "liveness_probe")

    @staticmethod
    def has_marker(h: Host) -> bool:
        return any(values == (MARKER,) for _, _, _, values in reversed(h.sm.batches))

    # Invariants

    def check_node(self, h: Host) -> None:
        node = h.node
        if node.epoch < h.last_epoch:
            self.fail(f"node {h.id} went from epoch {h.last_epoch} back to {node.epoch}")
        h.last_epoch = node.epoch
        if node.high_watermark < h.last_hw:
            self.fail(f"node {h.id} high watermark went back from {h.last_hw} to {node.high_watermark}")
        h.last_hw = node.high_watermark
        if h.id in self.observer_ids and node.role not in ("unattached", "follower"):
            self.fail(f"observer {h.id} became {node.role}")
        if node.is_leader:
            if self.leaders.setdefault(node.epoch, h.id) != h.id:
                self.fail(f"two leaders in epoch {node.epoch}: {self.leaders[node.epoch]} and {h.id}")
            epoch, hw = h.leader_hw
            if epoch == node.epoch and node.high_watermark < hw:
                self.fail(f"leader {h.id} high watermark went back from {hw} to {node.high_watermark}")
            h.leader_hw = (node.epoch, node.high_watermark)

    def record_committed(self, h: Host) -> None:
        """Everything below a node's high watermark is committed: it must agree with what other
        nodes reported committed."""
        node = h.node
        end = min(node.high_watermark, h.log.end_offset)
        committed_end = self.committed_end
        for b in h.log.batches(max(h.checked_to, h.log.start_offset), end):
            known = self.committed.get(b.base_offset)
            if known is None:
                if b.base_offset < self.committed_end:
                    self.fail(f"node {h.id} commits a batch at {b.base_offset} inside the committed log")
                if b.base_offset != self.committed_end:
                    self.fail(f"node {h.id} commits a batch at {b.base_offset}, "
                              f"leaving a gap after {self.committed_end}")
                self.committed[b.base_offset] = b.data
                self.committed_end = b.next_offset
            elif known != b.data:
                self.fail(f"node {h.id} has a different committed batch at offset {b.base_offset}")
            h.checked_to = b.next_offset
        if self.committed_end != committed_end:
            self.check_majority_holds_committed()

    def check_truncation(self, h: Host, new_end: int) -> None:
        for b in h.log.batches(new_end, h.log.end_offset):
            if self.committed.get(b.base_offset) == b.data:
                self.fail(f"node {h.id} truncates committed batch at offset {b.base_offset}")

    def check_majority_holds_committed(self) -> None:
        """Checked when the committed log grows and when a crash loses data: the rest (a
        truncation, a snapshot load) cannot remove committed batches unnoticed."""
        if not self.committed_end:
            return
        last = max(self.committed)
        data = self.committed[last]
        holders = 0
        for v in self.voter_ids:
            h = self.hosts[v]
            snapshot = h.snapshots.latest()
            if (snapshot is not None and snapshot.offset > last) or \
                    any(b.data == data for b in h.log.batches(last, self.committed_end)):
                holders += 1
        if holders < self.quorum.majority:
            self.fail(f"committed batch at offset {last} is on {holders} voters only")

    def apply(self, h: Host, rd: Ready) -> None:
        sm = h.sm
        if rd.snapshot is not None:
            sm.restore(rd.snapshot.offset, read_values(h.snapshots.read(rd.snapshot)))
            for base, last, epoch, values in sm.batches:
                self.check_applied(h, base, (last, epoch, values))
        for b in rd.committed:
            if b.base_offset != sm.end_offset:
                self.fail(f"node {h.id} applies offset {b.base_offset} after {sm.end_offset}")
            if self.committed.get(b.base_offset) is None:
                self.fail(f"node {h.id} applies offset {b.base_offset}, which is not committed")
            self.check_applied(h, b.base_offset, (b.last_offset, b.epoch, tuple(b.values)))
            sm.apply(b)

    def check_applied(self, h: Host, base: int, signature: tuple) -> None:
        if self.applied.setdefault(base, signature) != signature:
            self.fail(f"node {h.id} applies {signature} at {base}, others applied {self.applied[base]}")

    def check_liveness(self) -> None:
        if self.marker is None:
            self.fail("no leader was agreed on by the connected voters after the faults stopped")
        for h in self.hosts.values():
            if h.id not in self.isolated and not self.has_marker(h):
                self.fail(f"the liveness proposal ({self.marker}) did not reach node {h.id} "
                          f"(applied up to {h.sm.end_offset}, role {h.node.role}, epoch {h.node.epoch})")


def run(config: SimConfig) -> SimResult:
    return Simulation(config).run()


def default_config(seed: int, voters: int | None = None, observers: int | None = None, **kw) -> SimConfig:
    """Seed i runs 1, 3 or 5 voters in turn and 0-2 observers, unless given."""
    if voters is None:
        voters = VOTER_COUNTS[seed % len(VOTER_COUNTS)]
    if observers is None:
        observers = (seed // len(VOTER_COUNTS)) % 3
    return SimConfig(seed=seed, voters=voters, observers=observers, **kw)


def run_many(configs, out=print) -> tuple[list[SimConfig], int]:
    """Run every config; print a failure with its replay command. Returns (failed, events)."""
    return seeds.run_many(configs, run, lambda cfg: f"{cfg.voters} voters, {cfg.observers} observers", out)


def main(argv: list[str] | None = None) -> int:
    parser = seeds.parser("kafka_compat.testing.raft_sim", __doc__, "run seeds 0..N-1 across 1, 3 and 5 voters",
                          SimConfig)
    parser.add_argument("--voters", type=int)
    parser.add_argument("--observers", type=int)
    args = parser.parse_args(argv)
    configs = [default_config(seed, args.voters, args.observers, chaos_ms=args.chaos_ms, settle_ms=args.settle_ms)
               for seed in seeds.chosen(args)]
    voters = ", ".join(f"{v} voters" for v in sorted({c.voters for c in configs}))
    return seeds.run_and_report(configs, run_many, f"; {voters}")


if __name__ == "__main__":
    sys.exit(main())
