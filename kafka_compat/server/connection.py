"""One client connection: frames in, handlers in request order, responses out in request order.

The reader decodes each frame as it arrives and calls its handler; handlers run one after another
in arrival order (as Kafka's network layer does), so produce requests on one connection are
appended in order. A handler that must wait (acks=all, long-poll fetch) returns a `Deferred`: the
reader moves on to the next request while the deferred work completes in its own task. The writer
sends responses strictly in request order, as gather writes, with `os.sendfile` for log data on
plaintext sockets.

A malformed frame, an unknown API key or an oversized request closes this connection only, with
one log line; other connections are unaffected.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
import trio

from kafka_compat.protocol import framing, messages
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.framing import FrameReader, FrameTooLarge
from kafka_compat.protocol.primitives import DecodeError, EncodeError
from kafka_compat.server import errors
from kafka_compat.server.handlers import HANDLERS, CloseConnection, RequestContext

if TYPE_CHECKING:
    from kafka_compat.server.broker import Broker
    from kafka_compat.server.config import Listener

log = structlog.get_logger("kafka_compat.server")

_CLOSED = (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError, CloseConnection)
MAX_IN_FLIGHT = 64  # responses queued per connection before the reader stops reading
RECEIVE_SIZE = 256 * 1024
IOV_MAX = 512


class Deferred:
    """A response to be produced later: `await deferred.run()` returns it (or None for none)."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[], Awaitable[object]]):
        self.run = run


@dataclass(slots=True)
class _Slot:
    """One request's place in the response order."""

    api_key: int
    api_version: int
    correlation_id: int
    started: float
    done: trio.Event = field(default_factory=trio.Event)
    parts: list | None = None  # None: nothing to send (acks=0), or the connection is closing
    close_after: bool = False


class Connection:
    def __init__(self, broker: Broker, stream: trio.abc.Stream, listener: Listener, peer: str):
        self.broker = broker
        self.stream = stream
        self.listener = listener
        self.peer = peer
        self.peer_host = peer.rsplit(":", 1)[0]
        self.sock = getattr(stream, "socket", None)  # plaintext: gather writes and sendfile
        self.frames = FrameReader(broker.config["socket.request.max.bytes"])
        self.send_slots, self.receive_slots = trio.open_memory_channel[_Slot](MAX_IN_FLIGHT)
        self.last_active = time.monotonic()

    async def serve(self) -> None:
        """Serve until the peer closes, an error closes us, or the broker shuts down."""
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
                self.broker.request_finished()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self.stream)

    async def _read_loop(self, nursery: trio.Nursery) -> None:
        idle_ms = self.broker.config["connections.max.idle.ms"]
        idle = idle_ms / 1000 if idle_ms >= 0 else float("inf")
        while True:
            with trio.move_on_after(idle) as timer:
                data = await self.stream.receive_some(RECEIVE_SIZE)
            if timer.cancelled_caught:
                if self.send_slots.statistics().current_buffer_used == 0:
                    log.info("connection_idle_closed", peer=self.peer, idle_ms=idle_ms)
                    return
                continue
            if not data:
                return
            self.last_active = time.monotonic()
            self.frames.feed(data)
            while True:
                try:
                    frame = self.frames.next_frame()
                except FrameTooLarge as e:
                    log.warning("request_too_large", peer=self.peer, size=e.size, limit=e.limit)
                    return
                if frame is None:
                    break
                await self._dispatch(frame, nursery)

    async def _dispatch(self, frame: bytes, nursery: trio.Nursery) -> None:
        try:
            rf = framing.read_request(frame)
        except DecodeError as e:
            log.warning("malformed_request", peer=self.peer, reason=str(e))
            raise CloseConnection from None
        slot = _Slot(rf.api_key, rf.api_version, rf.correlation_id, time.perf_counter())
        handler = HANDLERS.get(rf.api_key)
        if rf.api_key not in messages.REQUESTS or handler is None:
            log.warning("unknown_api", peer=self.peer, api_key=rf.api_key, client_id=rf.client_id)
            raise CloseConnection
        if rf.header is None or not handler.min_version <= rf.api_version <= handler.max_version:
            await self._unsupported_version(rf, slot, handler)
            return
        try:
            request = rf.decode_body(messages.request_class(rf.api_key))
        except DecodeError as e:
            log.warning("malformed_request", peer=self.peer, api=messages.ApiKey(rf.api_key).name,
                        version=rf.api_version, client_id=rf.client_id, reason=str(e), head=bytes(frame[:64]).hex())
            raise CloseConnection from None
        ctx = RequestContext(self.broker, rf.api_key, rf.api_version, rf.correlation_id, rf.client_id,
                             self.peer_host, self.listener.name)
        await self._enqueue(slot)
        try:
            result = await handler.fn(ctx, request)
        except CloseConnection:
            slot.done.set()
            raise
        except KafkaError as e:
            result = errors.error_response(rf.api_key, request, rf.api_version, e.code, e.message)
            if result is None:
                log.warning("request_failed", api=messages.ApiKey(rf.api_key).name, error=e.code.name, reason=e.message)
                slot.close_after = True
        except Exception:
            log.exception("handler_crashed", api=messages.ApiKey(rf.api_key).name, version=rf.api_version,
                          client_id=rf.client_id)
            result = errors.error_response(rf.api_key, request, rf.api_version, ErrorCode.UNKNOWN_SERVER_ERROR)
            slot.close_after = result is None
        if isinstance(result, Deferred):
            nursery.start_soon(self._complete, slot, result)
        else:
            self._finish(slot, result)

    async def _complete(self, slot: _Slot, deferred: Deferred) -> None:
        try:
            result = await deferred.run()
        except Exception:
            log.exception("handler_crashed", api=messages.ApiKey(slot.api_key).name, version=slot.api_version)
            result, slot.close_after = None, True
        self._finish(slot, result)

    def _finish(self, slot: _Slot, response) -> None:
        if response is not None:
            try:
                slot.parts = framing.response_frame(response, slot.api_version, slot.correlation_id)
            except EncodeError as e:
                log.error("response_encode_failed", api=messages.ApiKey(slot.api_key).name, version=slot.api_version,
                          reason=str(e))
                slot.close_after = True
        slot.done.set()

    async def _unsupported_version(self, rf, slot: _Slot, handler) -> None:
        """ApiVersions answers with a v0 body listing what we serve; others get UNSUPPORTED_VERSION
        where their response can say so at that version, else the connection is closed."""
        log.info("unsupported_version", peer=self.peer, api=messages.ApiKey(rf.api_key).name,
                 version=rf.api_version, client_id=rf.client_id)
        if rf.api_key == messages.ApiKey.API_VERSIONS:
            from kafka_compat.server.handlers.api_versions import api_versions_response

            slot.api_version = 0
            await self._enqueue(slot)
            self._finish(slot, api_versions_response(ErrorCode.UNSUPPORTED_VERSION))
            return
        response = None
        if rf.header is not None:
            response = errors.error_response(rf.api_key, None, rf.api_version, ErrorCode.UNSUPPORTED_VERSION)
        if response is None:
            raise CloseConnection
        await self._enqueue(slot)
        self._finish(slot, response)

    async def _enqueue(self, slot: _Slot) -> None:
        await self.send_slots.send(slot)
        self.broker.request_started()

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
                        self.broker.request_finished()
                self.last_active = time.monotonic()
                for slot in batch:
                    log.debug("request", api=messages.ApiKey(slot.api_key).name, version=slot.api_version,
                              latency_ms=round((time.perf_counter() - slot.started) * 1000, 3), peer=self.peer)
                if batch[-1].close_after:
                    cancel.cancel()
                    return
        finally:
            if carried is not None:  # its response will never be written
                self.broker.request_finished()

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
            raise CloseConnection
        offset += n
        remaining -= n
        if remaining:
            await trio.lowlevel.checkpoint()


def configure_socket(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
