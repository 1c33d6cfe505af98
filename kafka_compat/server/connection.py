"""One client connection: frames in, each served in arrival order, responses out in request order.

The reader takes each frame as it arrives and hands it to `serve` (the listener's request pipeline,
`server.pipeline`); frames are served one after another in arrival order (as Kafka's network layer
does), so produce requests on one connection are appended in order. `serve` returns the response
frame's buffers, None (no response: acks=0), CLOSE, or a function to await for a response that
comes later (acks=all, long-poll fetch): the reader then moves on to the next frame while that
completes in its own task. At most `max_queued` requests (`queued.max.requests`) may wait for their
responses; then the reader stops reading until the oldest is written.

Responses that are ready when their requests have been served, with nothing ahead of them in the
response order, are written by the reader once it has served every whole frame received (one
non-blocking gather write on plaintext sockets): a client waiting for each answer costs one task
switch per request, not several, and a pipelined burst one write. What that write leaves over,
and every other response, goes through the writer task, which sends them strictly in request
order, as gather writes, with `os.sendfile` for log data on plaintext sockets; over TLS,
responses and log data are packed into one reused buffer and each full buffer is one encrypt and
one write. CLOSE closes the connection once the responses before it are written, a `LastReply`
once it is written (and the peer had a moment to read it); a frame above
`socket.request.max.bytes` closes it too (refused from its size alone). Either way only this
connection ends.

Each request carries the times it was read, taken in, answered by its handler and completed;
`observe(slot, written, peer)`, if given, is called once its response is written (the node's
request metrics and request log, `server.metrics`).
"""

from __future__ import annotations

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


class LastReply(list):
    """A response after which the connection closes (a failed authentication's answer); the peer
    gets a moment to read it and hang up first, as some clients lose an answer that arrives with
    the end of the stream."""


LINGER_S = 1.0
TLS_CHUNK = 256 * 1024  # log data over TLS: read into one reused buffer, encrypted and written per chunk
Reply = list | None | _Close  # a response frame's buffers (a LastReply too), no response, or CLOSE
Serve = Callable[[bytearray], Awaitable["Reply | Callable[[], Awaitable[Reply]]"]]


class RequestCount:
    """Requests read and not yet answered, across the connections that share it."""

    def __init__(self):
        self.value = 0
        self._idle: trio.Event | None = None  # made by a waiter: going idle is every request's path

    def started(self) -> None:
        self.value += 1

    def finished(self, n: int = 1) -> None:
        self.value -= n
        if self.value == 0 and self._idle is not None:
            self._idle.set()
            self._idle = None

    async def wait_idle(self) -> None:
        while self.value:
            if self._idle is None:
                self._idle = trio.Event()
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
    linger: bool = False
    answers: int = 1  # requests answered by `parts` (the reader hands over several at once)


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
        self._chunk: bytearray | None = None  # TLS: the reused buffer for log data
        self.frames = FrameBuffer(max_request_bytes)
        self.send_slots, self.receive_slots = trio.open_memory_channel[_Slot](max_queued)
        self.unwritten = 0  # slots sent to the writer and not written yet: responses ahead in line
        self.ready: list = []  # buffers of the responses the reader answered, first in line, to write
        self.ready_requests: list[tuple[int, int, float, float]] = []  # theirs: (api key, version, started, served)
        self.waiting_since: float | None = None  # when the reader began waiting for bytes, while it waits

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
            self.requests.finished(len(self.ready_requests))  # requests whose responses will never be written
            while True:
                try:
                    slot = self.receive_slots.receive_nowait()
                except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                    break
                self.requests.finished(slot.answers)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        idle_timer = trio.CancelScope()
        if self.idle_ms >= 0:
            nursery.start_soon(self._close_when_idle, idle_timer, nursery.cancel_scope)
        try:
            while True:
                self.waiting_since = trio.current_time()
                received = await receive_into(self.stream, self.frames)
                self.waiting_since = None
                if not received or not await self._serve_received(nursery):
                    return
        finally:
            idle_timer.cancel()

    async def _serve_received(self, nursery: trio.Nursery) -> bool:
        """Serve every whole frame received, then write the responses ready by then; False once
        the connection is to close."""
        more = True
        while more:
            try:
                frame = self.frames.next_frame()
            except FrameTooLarge as e:
                log.warning("request_too_large", peer=self.peer, size=e.size, limit=e.limit)
                more = False
                break
            if frame is None:
                break
            more = await self._serve(frame, nursery)
        self._write_ready()
        return more

    async def _close_when_idle(self, timer: trio.CancelScope, connection: trio.CancelScope) -> None:
        """Close the connection once it has waited `idle_ms` for a request with no response
        owed (`connections.max.idle.ms`); `timer` stops this when the reading stops. A timer task,
        not a timeout on every receive: that would cost each request a deadline set and cleared."""
        idle = self.idle_ms / 1000
        deadline = trio.current_time() + idle
        with timer:
            while True:
                await trio.sleep_until(deadline)
                since = self.waiting_since
                if since is None or self.unwritten:  # busy now: idle one period from now at the earliest
                    deadline = trio.current_time() + idle
                elif trio.current_time() - since >= idle:
                    log.info("connection_idle_closed", peer=self.peer, idle_ms=self.idle_ms)
                    connection.cancel()
                    return
                else:
                    deadline = since + idle

    async def _serve(self, frame: bytearray, nursery: trio.Nursery) -> bool:
        """Serve one frame; False once the connection is to close."""
        api_key, api_version = framing.API_PREFIX.unpack_from(frame)[:2] if len(frame) >= 8 else (-1, -1)
        started = time.perf_counter()
        if self.unwritten or self.sock is None:  # take a place in line first (waits while the line is full)
            slot = _Slot(api_key, api_version, started)
            await self.send_slots.send(slot)
            self.unwritten += 1
        else:
            slot = None  # first in line on a plain socket: the reader may write the response
        self.requests.started()
        if slot is not None:
            slot.dequeued = time.perf_counter()
        try:
            result = await self.serve(frame)
        except BaseException:
            if slot is None:
                self.requests.finished()
            else:
                slot.done.set()
            raise
        if slot is None:
            if type(result) is list and not any(hasattr(part, "fileno") for part in result):
                self.ready += result
                self.ready_requests.append((api_key, api_version, started, time.perf_counter()))
                return True
            if result is None or result is CLOSE:
                self.requests.finished()
                if self.observe is not None:
                    self._observe_inline([(api_key, api_version, started, time.perf_counter())])
                return result is not CLOSE
            # log data to send from its file, or a response that comes later: the writer's job,
            # after the responses ready before it
            self._write_ready()
            slot = _Slot(api_key, api_version, started, dequeued=started)
            try:
                self.send_slots.send_nowait(slot)
            except trio.WouldBlock:  # what the socket did not take of them fills the line
                await self.send_slots.send(slot)
            self.unwritten += 1
        slot.served = time.perf_counter()
        if result is None or isinstance(result, list) or result is CLOSE:
            return self._finish(slot, result)
        nursery.start_soon(self._complete, slot, result)
        return True

    def _write_ready(self) -> None:
        """Write the ready responses with one non-blocking gather write; the writer task gets
        what the socket does not take."""
        parts, answered = self.ready, self.ready_requests
        if not answered:
            return
        try:
            sent = os.writev(self.sock.fileno(), parts) if len(parts) <= IOV_MAX else 0
        except BlockingIOError:
            sent = 0
        except OSError as e:
            raise trio.BrokenResourceError(f"socket send failed: {e}") from e
        self.ready, self.ready_requests = [], []
        rest = _unsent(parts, sent)
        if rest is None:
            self.requests.finished(len(answered))
        else:
            slot = _Slot(-1, -1, 0.0, parts=rest, answers=len(answered))
            slot.done.set()
            self.send_slots.send_nowait(slot)  # the line was empty: the ready responses were first
            self.unwritten += 1
        if self.observe is not None:
            self._observe_inline(answered)

    def _observe_inline(self, answered: list[tuple[int, int, float, float]]) -> None:
        """`observe` the requests the reader answered (no queue wait; complete once served)."""
        written = time.perf_counter()
        for api_key, api_version, started, served in answered:
            self.observe(_Slot(api_key, api_version, started, dequeued=started, served=served, completed=served),
                         written, self.peer)

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
            slot.close_after = slot.linger = type(result) is LastReply
        slot.done.set()
        return not slot.close_after

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
                    self.unwritten -= len(batch)
                    for slot in batch:
                        self.requests.finished(slot.answers)
                if self.observe is not None:
                    written = time.perf_counter()
                    for slot in batch:
                        if slot.api_key >= 0:  # not the rest of responses the reader wrote (and observed)
                            self.observe(slot, written, self.peer)
                if batch[-1].close_after:
                    if batch[-1].linger:  # the reader has stopped: until the peer hangs up, briefly
                        with trio.move_on_after(LINGER_S):
                            while await self.stream.receive_some():
                                pass
                    cancel.cancel()
                    return
        finally:
            if carried is not None:  # its response will never be written
                self.requests.finished(carried.answers)

    async def _write(self, parts: list) -> None:
        if self.sock is None:
            await self._write_stream(parts)
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

    async def _write_stream(self, parts: list) -> None:
        """TLS and other wrapped streams cannot sendfile: the parts are packed into one reused
        buffer (log data read straight into it), and each full buffer is one encrypt and one write."""
        if self._chunk is None:
            self._chunk = bytearray(TLS_CHUNK)
        chunk, view, used = self._chunk, memoryview(self._chunk), 0
        for part in parts:
            if hasattr(part, "fileno"):
                fd, position, remaining = part.fileno(), part.position, len(part)
                while remaining:
                    if used == len(chunk):
                        await self.stream.send_all(view)
                        used = 0
                    n = os.preadv(fd, [view[used:used + remaining]], position)
                    if n == 0:
                        log.warning("short_log_read", file=repr(part), missing=remaining)
                        raise trio.BrokenResourceError("a log file was truncated while being sent")
                    used, position, remaining = used + n, position + n, remaining - n
                continue
            data = memoryview(part).cast("B")
            while len(data):
                if used == len(chunk):
                    await self.stream.send_all(view)
                    used = 0
                n = min(len(data), len(chunk) - used)
                view[used:used + n] = data[:n]
                used, data = used + n, data[n:]
        if used:
            await self.stream.send_all(view[:used])


def _unsent(parts: list, sent: int) -> list | None:
    """What of `parts` is left after the first `sent` bytes went out; None if nothing."""
    for i, part in enumerate(parts):
        n = part.nbytes if type(part) is memoryview else len(part)
        if sent < n:
            return [memoryview(part)[sent:], *parts[i + 1:]] if sent else parts[i:]
        sent -= n
    return None



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
