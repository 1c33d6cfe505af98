"""The trio driver: a RaftNode over real TCP between controller processes, with files on disk.

One task owns the node (`_main_loop`) and runs it on the trio thread: every input (a request
from a peer, a response, a lost connection, a proposal, a snapshot) arrives on one channel, is fed
to the node, and then the node's Ready is handled in the order the node requires: its writes (the
quorum state, a snapshot and the log trim after it, the log fsync) are persisted in one worker
thread before any message goes out, then committed batches reach the state machine, then
`advance`. Inputs that arrive while a Ready is being persisted wait on the channel and are fed
together, so one fsync covers them all.

Outbound requests go through one connection per peer (`client.connection.Connection`), opened on
first use, re-opened after a failure with a backoff; a failed connection fails its requests at
once, so the node retries without waiting for the request timeout. They go at the versions in
`wire.VERSIONS`. Inbound requests arrive on the node's controller listener, through the request
pipeline like every other request: its Raft handlers (`server.handlers.quorum`) pass each one to
`handle_request`.

Disk layout under `data_dir`: `__cluster_metadata-0/` holding the log segments (`storage` format),
`leader-epoch-checkpoint`, `quorum-state` and the snapshots (`<offset>-<epoch>.checkpoint`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import structlog
import trio

from kafka_compat.client.connection import Connection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.protocol.primitives import Message
from kafka_compat.raft import wire
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.file_log import DIR_NAME, FileLog
from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.node import Batch, LeaderAndEpoch, NotLeaderError, Outbound, RaftNode
from kafka_compat.raft.quorum_state import FILE_NAME as QUORUM_STATE_FILE
from kafka_compat.raft.quorum_state import FileQuorumStateStore
from kafka_compat.raft.ready import persist
from kafka_compat.raft.snapshots import FileSnapshotStore
from kafka_compat.raft.state_machine import StateMachine, deliver

log = structlog.get_logger("kafka_compat.raft")

RECONNECT_BACKOFF_MS = (50, 1000)


def monotonic_ms() -> int:
    return int(time.monotonic() * 1000)


class CommitLost(Exception):
    """A proposal was appended but a new leader replaced it before it committed."""


@dataclass
class _Waiter:
    """A proposal waiting for its last offset to be applied (with the epoch it was written in)."""

    offset: OffsetAndEpoch
    done: trio.Event = field(default_factory=trio.Event)
    committed: bool = False


@dataclass
class _Slot:
    done: trio.Event = field(default_factory=trio.Event)
    response: object = None


class RaftDriver:
    """Runs `__cluster_metadata-0` for node `node_id` with its files under `data_dir`.

    `state_machine` receives committed batches (and snapshots) from the driver's task, in order.
    Requests from the other replicas come in through `handle_request`. `snapshot_every` takes a
    snapshot of the state machine whenever that many records were applied since the last one,
    `snapshot_every_bytes` whenever that many bytes of record values were (KRaft's
    metadata.log.max.record.bytes.between.snapshots); 0: never (`snapshot()` takes one on demand).
    `on_leader_change` is called with a LeaderAndEpoch each time the known leader changes.
    """

    def __init__(self, node_id: int, config: QuorumConfig, data_dir: Path, state_machine: StateMachine, *,
                 snapshot_every: int = 0, snapshot_every_bytes: int = 0,
                 on_leader_change: Callable[[LeaderAndEpoch], None] | None = None,
                 rng: random.Random | None = None):
        self.id = node_id
        self.config = config
        self.dir = Path(data_dir) / DIR_NAME
        self.state_machine = state_machine
        self.snapshot_every = snapshot_every
        self.snapshot_every_bytes = snapshot_every_bytes
        self.on_leader_change = on_leader_change
        self.snapshots = FileSnapshotStore(self.dir)
        self.log = FileLog(self.dir, self.snapshots)
        self.store = FileQuorumStateStore(self.dir / QUORUM_STATE_FILE, config.voters)
        self.node = RaftNode(node_id, config, self.log, self.snapshots, self.store.read(), monotonic_ms(), rng)
        self.node.wall_clock_offset_ms = int(time.time() * 1000) - monotonic_ms()
        self._events_in, self._events = trio.open_memory_channel(math.inf)
        self._peers: dict[int, Connection] = {}
        self._slots: dict[int, _Slot] = {}
        self._tokens = itertools.count(1)
        self._waiters: list[_Waiter] = []
        self._applied_since_snapshot = 0
        self._applied_bytes_since_snapshot = 0
        self._snapshot_requested = False
        self._nursery: trio.Nursery | None = None
        self._changed = trio.Condition()

    # Running

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run the node until cancelled; `task_status.started()` once it takes requests."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._process()
                nursery.start_soon(self._main_loop)
                log.info("raft_started", node=self.id, voters=sorted(self.config.voters), epoch=self.node.epoch,
                         log_end_offset=self.log.end_offset)
                task_status.started()
        finally:
            self.log.close()

    async def _main_loop(self) -> None:
        while True:
            timeout = (self.node.next_deadline() - monotonic_ms()) / 1000
            with trio.move_on_after(max(timeout, 0)):
                event = await self._events.receive()
                self._feed(event)
                while True:
                    try:
                        self._feed(self._events.receive_nowait())
                    except trio.WouldBlock:
                        break
            self.node.tick(monotonic_ms())
            await self._process()

    def _feed(self, event: tuple) -> None:
        kind, *args = event
        now = monotonic_ms()
        if kind == "step":
            source, message, correlation_id, version = args
            self.node.step(source, message, correlation_id, now, version)
        elif kind == "failed":
            self.node.request_failed(args[0], now)
        elif kind == "call":
            fn, slot = args
            try:
                slot.response = fn()
            except Exception as e:  # handed back to the caller, which re-raises it
                slot.response = e
            slot.done.set()

    async def _process(self) -> None:
        """Persist, send, apply, advance: until the node has nothing more."""
        node = self.node
        while node.has_ready():
            rd = node.ready()
            if rd.writes:
                await trio.to_thread.run_sync(persist, rd, self.store, self.log, self.snapshots)
            for out in rd.messages:
                self._route(out)
            deliver(rd, self.state_machine, self.snapshots)
            for batch in rd.committed:
                self._committed(batch)
            node.advance(rd)
            if rd.leader is not None:
                log.info("raft_leader", node=self.id, leader=rd.leader.leader_id, epoch=rd.leader.epoch)
                if self.on_leader_change is not None:
                    self.on_leader_change(rd.leader)
        async with self._changed:
            self._changed.notify_all()
        if self._snapshot_requested or (self.snapshot_every and self._applied_since_snapshot >= self.snapshot_every) \
                or (self.snapshot_every_bytes and self._applied_bytes_since_snapshot >= self.snapshot_every_bytes):
            await self._take_snapshot()

    def _committed(self, batch: Batch) -> None:
        self._applied_since_snapshot += len(batch.values)
        if self.snapshot_every_bytes:
            self._applied_bytes_since_snapshot += sum(map(len, batch.values))
        still = []
        for w in self._waiters:
            if batch.base_offset <= w.offset.offset <= batch.last_offset:
                w.committed = batch.epoch == w.offset.epoch
                w.done.set()
            elif w.offset.offset < batch.base_offset:
                w.done.set()  # skipped by a snapshot: whether it was ours cannot be told any more
            else:
                still.append(w)
        self._waiters = still

    async def _take_snapshot(self) -> None:
        end, values = self.state_machine.snapshot()
        self._applied_since_snapshot = self._applied_bytes_since_snapshot = 0
        self._snapshot_requested = False
        if end > self.log.start_offset and end <= self.node.applied_offset:
            snapshot_id = self.node.create_snapshot(end, values, monotonic_ms())
            await self._process()  # the Ready stores it, then trims the log
            log.info("raft_snapshot_taken", node=self.id, snapshot=snapshot_id)

    # Outbound messages

    def _route(self, out: Outbound) -> None:
        if out.is_request:
            peer = self._peers.get(out.dest)
            if peer is None:
                peer = self._peers[out.dest] = Connection(
                    partial(self._address, out.dest), f"raft-{self.id}",
                    connect_timeout=self.config.request_timeout_ms / 1000, backoff_ms=RECONNECT_BACKOFF_MS)
                self._nursery.start_soon(peer.run)
            version = wire.VERSIONS[out.message.API_KEY]
            peer.submit(out.message, version, partial(self._answered, out.dest, out.correlation_id, version))
        else:
            slot = self._slots.pop(out.correlation_id, None)
            if slot is not None:
                slot.response = out.message
                slot.done.set()

    def _address(self, peer_id: int) -> tuple[str, int] | None:
        endpoint = self.node.endpoints.get(peer_id)
        return None if endpoint is None else (endpoint.host, endpoint.port)

    def _answered(self, peer_id: int, correlation_id: int, version: int, result: Message | Exception) -> None:
        if isinstance(result, Exception):
            log.debug("raft_request_failed", node=self.id, peer=peer_id, reason=str(result))
            self._event("failed", correlation_id)
        else:
            self._event("step", peer_id, result, correlation_id, version)

    def _event(self, *event) -> None:
        self._events_in.send_nowait(event)

    # Inbound requests

    async def handle_request(self, message, version: int):
        """Feed one raft request (a decoded Vote, BeginQuorumEpoch, EndQuorumEpoch, Fetch,
        FetchSnapshot or DescribeQuorum) to the node and return its response (a parked Fetch
        returns when the leader answers it)."""
        token = next(self._tokens)
        slot = self._slots[token] = _Slot()
        self._event("step", _source(message, version), message, token, version)
        try:
            await slot.done.wait()
        finally:
            self._slots.pop(token, None)
        return slot.response

    # The application's side

    async def _call(self, fn):
        """Run `fn` on the node from the driver's task, between Readies."""
        slot = _Slot()
        self._event("call", fn, slot)
        await slot.done.wait()
        if isinstance(slot.response, Exception):
            raise slot.response
        return slot.response

    async def propose(self, values: list[bytes]) -> OffsetAndEpoch:
        """Append `values` as one batch and return its last offset and epoch once it is applied
        here. NotLeaderError (naming the leader) on a non-leader; CommitLost if a later leader
        replaced the batch. A deposed leader's batch may stay undecided until the log grows past
        it: callers bound the wait with a timeout."""
        def append():
            waiter = _Waiter(self.node.propose(values, monotonic_ms()))
            self._waiters.append(waiter)
            return waiter
        waiter = await self._call(append)
        await waiter.done.wait()
        if not waiter.committed:
            raise CommitLost(f"offset {waiter.offset.offset} of epoch {waiter.offset.epoch} was not committed")
        return waiter.offset

    async def resign(self) -> None:
        await self._call(lambda: self.node.resign(monotonic_ms()))

    async def shutdown(self, timeout: float = 2.0) -> None:
        """Stop the driver. A leader first resigns and waits (at most `timeout` seconds) until the
        voters acknowledged, so that they elect a successor without waiting out a fetch timeout."""
        if self.node.is_leader:
            # Leadership can be lost between the check and the resignation: nothing left to hand over.
            with trio.move_on_after(timeout), contextlib.suppress(NotLeaderError):
                await self.resign()
                await self.wait_for(lambda: self.node.role != "resigned" or not self.node.state.unacknowledged)
        self._nursery.cancel_scope.cancel()

    async def snapshot(self) -> None:
        """Snapshot the state machine at its applied offset (after the current Ready)."""
        def request():
            self._snapshot_requested = True
        await self._call(request)

    async def describe_quorum(self, version: int = wire.VERSIONS[ApiKey.DESCRIBE_QUORUM]) -> m.DescribeQuorumResponse:
        return await self._call(lambda: self.node.describe_quorum(version, monotonic_ms()))

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until `predicate()` (checked after each Ready) holds."""
        async with self._changed:
            while not predicate():
                await self._changed.wait()

    @property
    def leader(self) -> LeaderAndEpoch:
        return LeaderAndEpoch(self.node.leader_id, self.node.epoch)


def _source(message, version: int) -> int | None:
    """The sending replica of a raft request, from its own fields."""
    p = wire.partition_of(message)
    if isinstance(message, m.VoteRequest):
        return p.replica_id if p is not None else None
    if isinstance(message, (m.BeginQuorumEpochRequest, m.EndQuorumEpochRequest)):
        return p.leader_id if p is not None else None
    if isinstance(message, m.FetchRequest):
        return wire.fetch_replica_id(message, version)
    if isinstance(message, m.FetchSnapshotRequest):
        return message.replica_id
    return None
