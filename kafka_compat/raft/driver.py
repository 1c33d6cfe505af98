"""The trio driver: a RaftNode over real TCP between controller processes, with files on disk.

One task owns the node (`_main_loop`): every input (a request from a peer, a response, a lost
connection, a proposal) arrives on one channel, is fed to the node, and then the node's Ready is
handled in the order the node requires: the quorum state is written atomically and the log is
fsynced (both in a worker thread) before any message goes out, then committed batches reach the
state machine, then `advance`. Inputs that arrive while a Ready is being persisted wait on the
channel and are fed together, so one fsync covers them all.

Outbound requests go through one connection per peer (`_Peer`), opened on first use, re-opened
after a failure with a backoff; a failed connection fails its requests at once, so the node
retries without waiting for the request timeout. Inbound connections are served by
`serve_connection`, one request at a time per connection so responses keep request order;
`handle_request` is the entry point for a broker that receives raft requests on its own
controller listener.

Requests use the normal Kafka framing at the versions in `wire.VERSIONS`; ApiVersions is answered
on the listener so Kafka tools can talk to it.

Disk layout under `data_dir`: `__cluster_metadata-0/` holding the log segments (`storage` format),
`leader-epoch-checkpoint`, `quorum-state` and the snapshots (`<offset>-<epoch>.checkpoint`).
"""

from __future__ import annotations

import itertools
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import structlog
import trio

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.framing import FrameReader
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.protocol.primitives import DecodeError, EncodeError
from kafka_compat.raft import wire
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.file_log import DIR_NAME, FileLog
from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.node import Batch, LeaderAndEpoch, Outbound, RaftNode
from kafka_compat.raft.quorum_state import FILE_NAME as QUORUM_STATE_FILE
from kafka_compat.raft.quorum_state import FileQuorumStateStore
from kafka_compat.raft.snapshots import FileSnapshotStore
from kafka_compat.raft.state_machine import StateMachine, deliver

log = structlog.get_logger("kafka_compat.raft")

MAX_FRAME = 64 * 1024 * 1024
RECEIVE_SIZE = 256 * 1024
RECONNECT_BACKOFF_MS = (50, 1000)
# The versions a Kafka tool may use on the controller listener: those the node's handlers read.
SERVED_VERSIONS = {
    ApiKey.VOTE: (0, 1), ApiKey.BEGIN_QUORUM_EPOCH: (0, 1), ApiKey.END_QUORUM_EPOCH: (0, 1),
    ApiKey.DESCRIBE_QUORUM: (0, 2), ApiKey.FETCH: (13, 17), ApiKey.FETCH_SNAPSHOT: (0, 1),
    ApiKey.API_VERSIONS: (0, 3),
}
_CLOSED = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError, OSError)


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
    `listen` is the controller listener to bind, or its sockets already bound (None when a broker
    routes raft requests to `handle_request` itself). `snapshot_every` takes a snapshot of the state
    machine whenever that many records were applied since the last one, `snapshot_every_bytes` whenever that many
    bytes of record values were (KRaft's metadata.log.max.record.bytes.between.snapshots);
    0: never (`snapshot()` takes one on demand).
    `on_leader_change` is called with a LeaderAndEpoch each time the known leader changes.
    `admin` handles connections whose first byte cannot start a Kafka frame (the standalone
    node's JSON commands); None closes them. `apis` adds the APIs other than Raft's that the
    listener serves (a controller's): api key -> ((min, max) versions, `async fn(request, version)`
    returning the response).
    """

    def __init__(self, node_id: int, config: QuorumConfig, data_dir: Path, state_machine: StateMachine, *,
                 listen: tuple[str, int] | list[socket.socket] | None = None, snapshot_every: int = 0,
                 snapshot_every_bytes: int = 0,
                 on_leader_change: Callable[[LeaderAndEpoch], None] | None = None,
                 admin: Callable[[trio.SocketStream, bytes], Awaitable[None]] | None = None,
                 apis: Mapping[int, tuple[tuple[int, int], Callable[[object, int], Awaitable[object]]]] | None = None,
                 rng: random.Random | None = None):
        self.id = node_id
        self.config = config
        self.dir = Path(data_dir) / DIR_NAME
        self.state_machine = state_machine
        self.listen = listen
        self.snapshot_every = snapshot_every
        self.snapshot_every_bytes = snapshot_every_bytes
        self.on_leader_change = on_leader_change
        self.admin = admin
        self.apis = dict(apis or {})
        self.snapshots = FileSnapshotStore(self.dir)
        self.log = FileLog(self.dir, self.snapshots)
        self.store = FileQuorumStateStore(self.dir / QUORUM_STATE_FILE, config.voters)
        self.node = RaftNode(node_id, config, self.log, self.snapshots, self.store.read(), monotonic_ms(), rng)
        self.node.wall_clock_offset_ms = int(time.time() * 1000) - monotonic_ms()
        self.port: int | None = None
        self._events_in, self._events = trio.open_memory_channel(math.inf)
        self._peers: dict[int, _Peer] = {}
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
        """Serve until cancelled. `task_status.started` reports the bound port (or None)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if isinstance(self.listen, list):
                    listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in self.listen]
                elif self.listen is not None:
                    host, port = self.listen
                    listeners = await trio.open_tcp_listeners(port, host=host)
                if self.listen is not None:
                    self.port = listeners[0].socket.getsockname()[1]
                    nursery.start_soon(trio.serve_listeners, self.serve_connection, listeners)
                await self._process()
                nursery.start_soon(self._main_loop)
                log.info("raft_started", node=self.id, port=self.port, voters=sorted(self.config.voters),
                         epoch=self.node.epoch, log_end_offset=self.log.end_offset)
                task_status.started(self.port)
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
            if rd.quorum_state is not None:
                await trio.to_thread.run_sync(self.store.write, rd.quorum_state)
            if rd.flush:
                await trio.to_thread.run_sync(self.log.flush)
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
            snapshot_id = await trio.to_thread.run_sync(self.node.create_snapshot, end, values, monotonic_ms())
            log.info("raft_snapshot_taken", node=self.id, snapshot=snapshot_id)
            await self._process()

    # Outbound messages

    def _route(self, out: Outbound) -> None:
        if out.is_request:
            peer = self._peers.get(out.dest)
            if peer is None:
                peer = self._peers[out.dest] = _Peer(self, out.dest)
                self._nursery.start_soon(peer.run)
            peer.send(out)
        else:
            slot = self._slots.pop(out.correlation_id, None)
            if slot is not None:
                slot.response = out.message
                slot.done.set()

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

    async def serve_connection(self, stream: trio.SocketStream) -> None:
        """One inbound connection: requests answered one at a time, in order."""
        reader = FrameReader(MAX_FRAME)
        try:
            first = await stream.receive_some(RECEIVE_SIZE)
            if first and first[0] != 0:  # a Kafka frame below 16 MiB starts with a zero byte
                if self.admin is not None:
                    await self.admin(stream, first)
                return
            reader.feed(first)
            while first:
                while (frame := reader.next_frame()) is not None:
                    response = await self._answer(frame)
                    if response is None:
                        return
                    await stream.send_all(b"".join(response))
                first = await stream.receive_some(RECEIVE_SIZE)
                reader.feed(first)
        except _CLOSED + (framing.FrameTooLarge, DecodeError, EncodeError) as e:
            log.debug("raft_connection_closed", node=self.id, reason=f"{type(e).__name__}: {e}")
        finally:
            await stream.aclose()

    async def _answer(self, frame: bytes) -> list | None:
        rf = framing.read_request(frame)
        served = {**SERVED_VERSIONS, **{k: versions for k, (versions, _) in self.apis.items()}}
        lo, hi = served.get(rf.api_key, (0, -1))
        if rf.api_key == ApiKey.API_VERSIONS:
            keys = [m.ApiVersionsResponse.ApiVersion(api_key=k, min_version=a, max_version=b)
                    for k, (a, b) in sorted(served.items())]
            error = ErrorCode.NONE if lo <= rf.api_version <= hi else ErrorCode.UNSUPPORTED_VERSION
            version = rf.api_version if error == ErrorCode.NONE else 0
            return framing.response_frame(m.ApiVersionsResponse(error_code=error, api_keys=keys), version,
                                          rf.correlation_id)
        if rf.header is None or not lo <= rf.api_version <= hi:
            log.info("raft_unsupported_request", node=self.id, api_key=rf.api_key, version=rf.api_version)
            return None
        request = rf.decode_body(m.request_class(rf.api_key))
        if rf.api_key in self.apis:
            try:
                response = await self.apis[rf.api_key][1](request, rf.api_version)
            except Exception:  # a bug in a handler closes this connection, not the listener
                log.exception("controller_api_failed", node=self.id, api_key=rf.api_key, version=rf.api_version)
                return None
        else:
            response = await self.handle_request(request, rf.api_version)
        return framing.response_frame(response, rf.api_version, rf.correlation_id)

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
            with trio.move_on_after(timeout):
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
        return p.candidate_id if p is not None else None
    if isinstance(message, (m.BeginQuorumEpochRequest, m.EndQuorumEpochRequest)):
        return p.leader_id if p is not None else None
    if isinstance(message, m.FetchRequest):
        return wire.fetch_replica_id(message, version)
    if isinstance(message, m.FetchSnapshotRequest):
        return message.replica_id
    return None


class _Peer:
    """Requests to one peer over one connection: pipelined, matched by correlation id."""

    def __init__(self, driver: RaftDriver, peer_id: int):
        self.driver = driver
        self.id = peer_id
        self._send, self._queue = trio.open_memory_channel(math.inf)
        self._backoff_ms = 0

    def send(self, out: Outbound) -> None:
        self._send.send_nowait(out)

    async def run(self) -> None:
        while True:
            first = await self._queue.receive()
            endpoint = self.driver.node.endpoints.get(self.id)
            stream = None
            if endpoint is not None:
                with trio.move_on_after(self.driver.config.request_timeout_ms / 1000):
                    try:
                        stream = await trio.open_tcp_stream(endpoint.host, endpoint.port)
                    except OSError:
                        pass
            if stream is None:
                self._fail([first] + self._drain())
                self._backoff_ms = min(max(self._backoff_ms * 2, RECONNECT_BACKOFF_MS[0]), RECONNECT_BACKOFF_MS[1])
                await trio.sleep(self._backoff_ms / 1000)
                self._fail(self._drain())
                continue
            self._backoff_ms = 0
            in_flight: dict[int, int] = {}
            async with stream, trio.open_nursery() as nursery:
                nursery.start_soon(self._read, stream, in_flight, nursery.cancel_scope)
                nursery.start_soon(self._write, stream, first, in_flight, nursery.cancel_scope)
            for corr in list(in_flight):
                self.driver._event("failed", corr)

    async def _write(self, stream, out: Outbound, in_flight: dict[int, int], scope: trio.CancelScope) -> None:
        try:
            while True:
                version = wire.VERSIONS[out.message.API_KEY]
                in_flight[out.correlation_id] = out.message.API_KEY
                await stream.send_all(b"".join(
                    framing.request_frame(out.message, version, out.correlation_id, f"raft-{self.driver.id}")))
                out = await self._queue.receive()
        except _CLOSED + (EncodeError,) as e:
            log.debug("raft_peer_write_failed", node=self.driver.id, peer=self.id, reason=str(e))
        scope.cancel()

    async def _read(self, stream, in_flight: dict[int, int], scope: trio.CancelScope) -> None:
        reader = FrameReader(MAX_FRAME)
        try:
            while data := await stream.receive_some(RECEIVE_SIZE):
                reader.feed(data)
                while (frame := reader.next_frame()) is not None:
                    (corr,) = framing.SIZE.unpack_from(frame, 0)
                    api_key = in_flight.pop(corr, None)
                    if api_key is None:
                        continue
                    corr, response = framing.read_response(frame, api_key, wire.VERSIONS[api_key])
                    self.driver._event("step", self.id, response, corr, wire.VERSIONS[api_key])
        except _CLOSED + (framing.FrameTooLarge, DecodeError) as e:
            log.debug("raft_peer_read_failed", node=self.driver.id, peer=self.id, reason=str(e))
        scope.cancel()

    def _drain(self) -> list[Outbound]:
        outs = []
        while True:
            try:
                outs.append(self._queue.receive_nowait())
            except trio.WouldBlock:
                return outs

    def _fail(self, outs: list[Outbound]) -> None:
        for out in outs:
            self.driver._event("failed", out.correlation_id)
