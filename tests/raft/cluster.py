"""An in-memory quorum for tests that read like the protocol: messages wait in a list until the
test delivers them (all, or those it picks), time moves only when the test says so.

Every delivered message goes through encode/decode at the version the driver would use.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kafka_compat.protocol import messages as m
from kafka_compat.raft import wire
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.log import MemoryLog, OffsetAndEpoch, split_batches
from kafka_compat.raft.node import Outbound, RaftNode, Ready
from kafka_compat.raft.quorum_state import MemoryQuorumStateStore
from kafka_compat.raft.ready import persist
from kafka_compat.raft.snapshots import MemorySnapshotStore
from kafka_compat.raft.state_machine import deliver
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.testing.raft_peer import KeyValueStateMachine

Q = "__cluster_metadata"


def roundtrip(message):
    version = wire.VERSIONS[message.API_KEY]
    return type(message).decode(message.encode(version), version)


@dataclass
class Member:
    id: int
    node: RaftNode | None
    log: MemoryLog
    snapshots: MemorySnapshotStore
    store: MemoryQuorumStateStore
    sm: KeyValueStateMachine = field(default_factory=KeyValueStateMachine)
    readies: list[Ready] = field(default_factory=list)


@dataclass
class Envelope:
    src: int
    out: Outbound

    @property
    def dst(self):
        return self.out.dest

    @property
    def message(self):
        return self.out.message


class Cluster:
    def __init__(self, voters=(1, 2, 3), observers=(), seed=0, logs=None, elections=None, **config):
        self.now = 0
        self.config = QuorumConfig(voters=frozenset(voters), cluster_id="test-cluster", **config)
        self.rng = random.Random(seed)
        self.members: dict[int, Member] = {}
        self.in_flight: list[Envelope] = []
        self.cut: set[frozenset] = set()  # pairs that cannot talk
        for i in list(voters) + list(observers):
            store = MemoryQuorumStateStore()
            if elections and i in elections:
                store.write(elections[i])
            self.members[i] = Member(i, None, (logs or {}).get(i) or MemoryLog(), MemorySnapshotStore(), store)
            self.start(i)

    def __getitem__(self, node_id: int) -> RaftNode:
        return self.members[node_id].node

    def start(self, node_id: int) -> RaftNode:
        mb = self.members[node_id]
        mb.node = RaftNode(node_id, self.config, mb.log, mb.snapshots, mb.store.read(), self.now,
                           random.Random(self.rng.random()))
        mb.sm = KeyValueStateMachine()
        self.flush(node_id)
        return mb.node

    def stop(self, node_id: int) -> None:
        mb = self.members[node_id]
        mb.node = None
        mb.log = mb.log.crash()
        self.in_flight = [e for e in self.in_flight if node_id not in (e.src, e.dst)]

    def flush(self, node_id: int) -> None:
        """Handle the node's Ready the way a driver does; its messages go in flight."""
        mb = self.members[node_id]
        while mb.node.has_ready():
            rd = mb.node.ready()
            persist(rd, mb.store, mb.log, mb.snapshots)
            self.in_flight += [Envelope(node_id, out) for out in rd.messages]
            deliver(rd, mb.sm, mb.snapshots)
            mb.readies.append(rd)
            mb.node.advance(rd)

    def isolate(self, node_id: int) -> None:
        self.cut |= {frozenset((node_id, other)) for other in self.members if other != node_id}

    def heal(self) -> None:
        self.cut = set()

    def deliver(self, pick=lambda e: True) -> int:
        """Deliver the in-flight messages `pick` accepts (others stay); returns how many."""
        batch = [e for e in self.in_flight if pick(e)]
        self.in_flight = [e for e in self.in_flight if not pick(e)]
        for e in batch:
            mb = self.members.get(e.dst)
            if mb is None or mb.node is None or frozenset((e.src, e.dst)) in self.cut:
                continue
            mb.node.step(e.src, roundtrip(e.message), e.out.correlation_id, self.now)
            self.flush(e.dst)
        return len(batch)

    def stabilize(self, rounds: int = 200) -> None:
        for _ in range(rounds):
            if not self.deliver():
                return

    def tick(self, ms: int = 0) -> None:
        self.now += ms
        for i, mb in self.members.items():
            if mb.node is not None:
                mb.node.tick(self.now)
                self.flush(i)

    def run(self, ms: int, step: int = 10) -> None:
        """Let `ms` pass in steps, delivering everything as it goes."""
        for _ in range(ms // step):
            self.tick(step)
            self.stabilize()

    def run_until(self, predicate, ms: int = 20_000, step: int = 10) -> None:
        for _ in range(ms // step):
            if predicate():
                return
            self.tick(step)
            self.stabilize()
        assert predicate(), "condition not reached in time"

    def leader(self) -> RaftNode | None:
        leaders = [mb.node for mb in self.members.values() if mb.node is not None and mb.node.is_leader]
        return max(leaders, key=lambda n: n.epoch) if leaders else None

    def elect(self, node_id: int, only_elections: bool = False) -> RaftNode:
        """Make `node_id` stand now (its election timer runs out first) and let the votes flow;
        with `only_elections`, nothing else (no Fetch) is delivered."""
        node = self[node_id]
        node.state.election_deadline = self.now
        if hasattr(node.state, "fetch_deadline"):
            node.state.fetch_deadline = self.now
        node.tick(self.now)
        self.flush(node_id)
        electoral = (m.VoteRequest, m.VoteResponse, m.BeginQuorumEpochRequest, m.BeginQuorumEpochResponse)
        for _ in range(20):
            if not self.deliver((lambda e: isinstance(e.message, electoral)) if only_elections else (lambda e: True)):
                break
        assert node.is_leader, f"node {node_id} is {node.role}"
        return node

    def propose(self, *values: str) -> int:
        leader = self.leader()
        last = leader.propose([v.encode() for v in values], self.now)
        self.flush(leader.id)
        return last.offset


def log_with(*epochs, flushed=True) -> MemoryLog:
    """A log holding one single-record batch per epoch given."""
    lg = MemoryLog()
    for offset, epoch in enumerate(epochs):
        lg.append(split_batches(build_batch([Record(None, b"x%d" % offset)], base_offset=offset,
                                            partition_leader_epoch=epoch)))
    if flushed:
        lg.flush()
    return lg


def requests(rd_or_list, cls) -> list[Outbound]:
    outs = rd_or_list.messages if isinstance(rd_or_list, Ready) else rd_or_list
    return [o for o in outs if isinstance(o.message, cls)]


def take(node: RaftNode, store: MemoryQuorumStateStore | None = None) -> Ready:
    """One Ready, acknowledged (for tests that drive a single node by hand)."""
    rd = node.ready()
    persist(rd, store or MemoryQuorumStateStore(), node.log, node.snapshots)
    node.advance(rd)
    return rd


def vote(candidate: int, epoch: int, last_offset: int = 0, last_epoch: int = 0, pre_vote: bool = False, voter=1):
    return wire.vote_request("test-cluster", candidate, epoch, OffsetAndEpoch(last_offset, last_epoch), voter, pre_vote)


def vote_partition(out: Outbound) -> m.VoteResponse.PartitionData:
    return wire.partition_of(out.message)
