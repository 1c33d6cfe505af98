"""One client connection: frames in, each served in arrival order, responses out in request order.

The reader takes each frame as it arrives and hands it to `serve` (the listener's request pipeline,
`server.pipeline`); frames are served one after another in arrival order (as Kafka's network layer
does), so produce requests on one connection are appended in order. `serve` returns the response
frame's buffers, None (no response: acks=0), CLOSE, or a function to await for a response that
comes later (acks=all, long-poll fetch): the reader then moves on to the next frame while that
completes in its own task. At most `max_queued` requests (`queued.max.requests`) may wait for their
responses; then the reader stops reading until the oldest is written.

The writer sends responses strictly in request order, as gather writes, with `os.sendfile` for log
data on plaintext sockets. CLOSE closes the connection once the responses before it are written,
as does a frame above `socket.request.max.bytes` (refused from its size alone). Either way only
this connection ends.

Each request's slot carries the times it was read, taken in, answered by its handler and
completed; `observe(slot, written, peer)`, if given, is called once its response is written (the
node's request metrics and request log, `server.metrics`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
import trio

from kafka_compat.net import receive_into
from kafka_compat.protocol import framing
from kafka_compat.protocol.framing import FrameBuffer, FrameTooLarge

log = structlog.get_logger("kafka_compat.server")

_CLOSED = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError)
IOV_MAX = 512


class _Close:
    def __repr__(self) -> str:
        return "CLOSE"


CLOSE = _Close()  # what `serve` returns to close the connection after the responses before
Reply = list | None | _Close  # a response frame's buffers, no response, or CLOSE
Serve = Callable[[bytearray], Awaitable["Reply | Callable[[], Awaitable[Reply]]"]]


class RequestCount:
    """Requests read and not yet answered, across the connections that share it."""

    def __init__(self):
        self.value = 0
        self._idle = trio.Event()

    def started(self) -> None:
        self.value += 1

    def finished(self) -> None:
        self.value -= 1
        if self.value == 0:
            self._idle.set()
            self._idle = trio.Event()

    async def wait_idle(self) -> None:
        while self.value:
            await self._idle.wait()


@dataclass(slots=True)
class _Slot:
    """One request's place in the response order."""

    api_key: int
    api_version: int
    started: float  # read, waiting for room in the queue
    dequeued: float = 0.0  # handed to the pipeline
    served: float = 0.0  # the pipeline returned (a response, or one to come later)
    completed: float = 0.0  # the response is ready to write
    done: trio.Event = field(default_factory=trio.Event)
    parts: list | None = None  # None: nothing to send (acks=0), or the connection is closing
    close_after: bool = False


class Connection:
    def __init__(self, stream: trio.abc.Stream, serve: Serve, peer: str, *, max_request_bytes: int,
                 idle_ms: int = -1, max_queued: int = 500, requests: RequestCount | None = None,
                 observe: Callable[[_Slot, float, str], None] | None = None):
        self.stream = stream
        self.serve = serve
        self.peer = peer
        self.idle_ms = idle_ms
        self.requests = requests or RequestCount()
        self.observe = observe
        self.sock = getattr(stream, "socket", None)  # plaintext: gather writes and sendfile
        self.frames = FrameBuffer(max_request_bytes)
        self.send_slots, self.receive_slots = trio.open_memory_channel[_Slot](max_queued)

    async def run(self) -> None:
        """Serve until the peer closes, CLOSE closes us, or the broker shuts down."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_loop, nursery.cancel_scope)
                try:
                    await self._read_loop(nursery)
                finally:
                    self.send_slots.close()
        except BaseExceptionGroup as group:
            # A closed or broken connection is routine; anything else is logged. Either way only
            # this connection ends; cancellation (broker shutdown) propagates.
            _, rest = group.split(_CLOSED)
            if rest is not None:
                cancelled, other = rest.split(trio.Cancelled)
                if other is not None:
                    log.error("connection_failed", peer=self.peer, exc_info=other)
                if cancelled is not None:
                    raise cancelled from None
        finally:
            while True:  # requests whose responses will never be written
                try:
                    self.receive_slots.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                self.requests.finished()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        idle = self.idle_ms / 1000 if self.idle_ms >= 0 else math.inf
        while True:
            with trio.move_on_after(idle) as timer:
                received = await receive_into(self.stream, self.frames)
            if timer.cancelled_caught:
                if self.send_slots.statistics().current_buffer_used == 0:
                    log.info("connection_idle_closed", peer=self.peer, idle_ms=self.idle_ms)
                    return
                continue
            if not received:
                return
            while True:
                try:
                    frame = self.frames.next_frame()
                except FrameTooLarge as e:
                    log.warning("request_too_large", peer=self.peer, size=e.size, limit=e.limit)
                    return
                if frame is None:
                    break
                if not await self._serve(frame, nursery):
                    return

    async def _serve(self, frame: bytearray, nursery: trio.Nursery) -> bool:
        """Serve one frame; False once the connection is to close."""
        api_key, api_version = framing.API_PREFIX.unpack_from(frame)[:2] if len(frame) >= 8 else (-1, -1)
        slot = _Slot(api_key, api_version, time.perf_counter())
        await self.send_slots.send(slot)
        self.requests.started()
        slot.dequeued = time.perf_counter()
        try:
            result = await self.serve(frame)
        except BaseException:
            slot.done.set()
            raise
        slot.served = time.perf_counter()
        if result is None or type(result) is list or result is CLOSE:
            return self._finish(slot, result)
        nursery.start_soon(self._complete, slot, result)
        return True

    async def _complete(self, slot: _Slot, later: Callable[[], Awaitable[Reply]]) -> None:
        result = CLOSE
        try:
            result = await later()
        finally:
            self._finish(slot, result)

    def _finish(self, slot: _Slot, result: Reply) -> bool:
        slot.completed = time.perf_counter()
        if result is CLOSE:
            slot.close_after = True
        else:
            slot.parts = result
        slot.done.set()
        return result is not CLOSE

    async def _write_loop(self, cancel: trio.CancelScope) -> None:
        """Write responses in request order. Responses already finished behind the one just
        awaited go out in the same gather write: a client pipelining many small requests costs
        one syscall per burst, not one per request."""
        carried: _Slot | None = None  # taken from the channel, not finished yet: next in line
        try:
            while True:
                if carried is None:
                    try:
                        carried = await self.receive_slots.receive()
                    except trio.EndOfChannel:
                        return
                await carried.done.wait()
                batch, carried = [carried], None
                while not batch[-1].close_after:
                    try:
                        nxt = self.receive_slots.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    if not nxt.done.is_set():
                        carried = nxt
                        break
                    batch.append(nxt)
                try:
                    parts = [p for slot in batch if slot.parts is not None for p in slot.parts]
                    if parts:
                        await self._write(parts)
                finally:
                    for _ in batch:
                        self.requests.finished()
                if self.observe is not None:
                    written = time.perf_counter()
                    for slot in batch:
                        self.observe(slot, written, self.peer)
                if batch[-1].close_after:
                    cancel.cancel()
                    return
        finally:
            if carried is not None:  # its response will never be written
                self.requests.finished()

    async def _write(self, parts: list) -> None:
        if self.sock is None:  # TLS and other wrapped streams: one buffer
            await self.stream.send_all(b"".join(p if not hasattr(p, "fileno") else p.read() for p in parts))
            return
        batch: list = []
        for part in parts:
            if hasattr(part, "fileno"):
                if batch:
                    await _sendmsg_all(self.sock, batch)
                    batch = []
                await _sendfile_all(self.sock, part)
            elif len(part):
                batch.append(part)
                if len(batch) >= IOV_MAX:
                    await _sendmsg_all(self.sock, batch)
                    batch = []
        if batch:
            await _sendmsg_all(self.sock, batch)


async def _sendmsg_all(sock, buffers: list) -> None:
    views = [memoryview(b) for b in buffers]
    i = 0
    while i < len(views):
        sent = await sock.sendmsg(views[i:i + IOV_MAX])
        while sent and i < len(views):
            n = views[i].nbytes
            if sent >= n:
                sent -= n
                i += 1
            else:
                views[i] = views[i][sent:]
                sent = 0


async def _sendfile_all(sock, file_slice) -> None:
    """Send a log file range with sendfile(2); the trio socket is non-blocking."""
    fd, offset, remaining = sock.fileno(), file_slice.position, len(file_slice)
    while remaining:
        try:
            n = os.sendfile(fd, file_slice.fileno(), offset, remaining)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        if n == 0:  # the file was truncated under us: the frame cannot be completed
            log.warning("short_log_read", file=repr(file_slice), missing=remaining)
            raise trio.BrokenResourceError("a log file was truncated while being sent")
        offset += n
        remaining -= n
        if remaining:
            await trio.lowlevel.checkpoint()
