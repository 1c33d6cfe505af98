"""One outbound connection to a Kafka listener, for a node's own requests (trio).

Raft's RPCs to the other voters and the channel to the active controller use it (replication's
follower fetchers will too). Requests go out in the order they are submitted, pipelined, each
with a correlation id of its own; answers come back in that order and are matched to their
requests, and one that does not match ends the connection, as Kafka's clients do.

On SSL and SASL listeners (`security`) each connection is secured first, as a Kafka client does:
the TLS handshake, then the SASL exchange; a refusal counts as a failed connect.

The connection is opened when a request waits, and opened again after a loss, with an exponential
backoff after each failed attempt. A loss fails every request sent and not yet answered at once
(`ConnectionLost`), so that callers retry without waiting out a timeout; requests not yet written
go out on the next connection. While no connection can be made, requests fail at the end of each
backoff.

Writes: every request waiting when the writer wakes goes out in one write. Reads: into a reused
buffer, and a big response straight into a buffer of its own (`FrameBuffer`).

`run()` owns the socket: the owner runs it in its nursery; `close()` (or cancelling it) ends it,
and requests still waiting then fail with ConnectionLost.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import trio

from kafka_compat.client.security import AuthenticationFailed, ClientSecurity
from kafka_compat.net import configure_socket, receive_into
from kafka_compat.protocol import framing
from kafka_compat.protocol.framing import FrameBuffer, FrameTooLarge
from kafka_compat.protocol.primitives import DecodeError, EncodeError, Message, join

log = structlog.get_logger("kafka_compat.client")

MAX_CORRELATION_ID = 2**31 - 1
_LOST = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, FrameTooLarge, DecodeError)

# Called once with the response, or with the exception that ended the request (ConnectionLost,
# or EncodeError for a request that cannot be put on the wire at its version).
Done = Callable[[Message | Exception], None]


class ConnectionLost(ConnectionError):
    """The connection failed, or could not be made, before the request was answered."""


@dataclass(slots=True)
class _Request:
    message: Message
    version: int
    done: Done
    correlation_id: int = -1


class Connection:
    """Requests to the listener at `address()` (host, port), asked again at every connect; None
    while it is unknown, which fails like a refused connection."""

    def __init__(self, address: Callable[[], tuple[str, int] | None], client_id: str, *,
                 connect_timeout: float = 30.0, backoff_ms: tuple[int, int] = (50, 1000),
                 max_frame: int = 64 * 1024 * 1024, security: ClientSecurity | None = None):
        self.address = address
        self.security = security if security is not None and not security.plaintext else None
        self.client_id = client_id
        self.connect_timeout = connect_timeout
        self.backoff_ms = backoff_ms
        self.max_frame = max_frame
        self._queue: deque[_Request] = deque()  # submitted, not yet written
        self._in_flight: deque[_Request] = deque()  # written, not yet answered, in order
        self._wake = trio.Event()
        self._correlation_id = 0
        self._backoff_ms = 0
        self._scope = trio.CancelScope()

    def submit(self, request: Message, version: int, done: Done) -> None:
        """Send `request` at `version` after those submitted before it; `done` gets the answer."""
        self._queue.append(_Request(request, version, done))
        self._wake.set()

    async def request(self, request: Message, version: int) -> Message:
        """Send `request` and return its response. ConnectionLost if the connection fails first."""
        answered = trio.Event()
        result: list = []

        def done(r) -> None:
            result.append(r)
            answered.set()

        self.submit(request, version, done)
        await answered.wait()
        if isinstance(result[0], Exception):
            raise result[0]
        return result[0]

    def close(self) -> None:
        """End `run` (now, or as soon as it starts)."""
        self._scope.cancel()

    async def run(self) -> None:
        try:
            with self._scope:
                while True:
                    await self._requests_waiting()
                    stream = await self._connect()
                    if stream is None:
                        self._fail(self._queue, "cannot connect")
                        self._backoff_ms = min(max(self._backoff_ms * 2, self.backoff_ms[0]), self.backoff_ms[1])
                        await trio.sleep(self._backoff_ms / 1000)
                        self._fail(self._queue, "cannot connect")
                        continue
                    self._backoff_ms = 0
                    async with stream:
                        reason = await self._serve(stream)
                    log.debug("connection_lost", client_id=self.client_id, address=self.address(), reason=reason)
                    self._fail(self._in_flight, reason)
        finally:
            self._fail(self._in_flight, "connection closed")
            self._fail(self._queue, "connection closed")

    async def _requests_waiting(self) -> None:
        while not self._queue:
            self._wake = trio.Event()
            await self._wake.wait()

    async def _connect(self) -> trio.abc.Stream | None:
        address = self.address()
        if address is None:
            return None
        with trio.move_on_after(self.connect_timeout):
            try:
                stream = await trio.open_tcp_stream(*address)
            except OSError:
                return None
            configure_socket(stream.socket)
            if self.security is None:
                return stream
            try:
                return await self.security.secure(stream, address[0])
            except (AuthenticationFailed, OSError, trio.BrokenResourceError) as e:
                log.warning("outbound_authentication_failed", client_id=self.client_id, address=address, reason=str(e))
                await trio.aclose_forcefully(stream)
                return None
        return None

    async def _serve(self, stream: trio.SocketStream) -> str:
        """Write and read until one of them fails; return why."""
        reasons: list[str] = []

        async def guarded(loop) -> None:
            try:
                await loop(stream)
            except _LOST as e:
                reasons.append(f"{type(e).__name__}: {e}")
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(guarded, self._write_loop)
            nursery.start_soon(guarded, self._read_loop)
        return reasons[0] if reasons else "cancelled"

    async def _write_loop(self, stream: trio.SocketStream) -> None:
        while True:
            await self._requests_waiting()
            parts: list = []
            while self._queue:
                r = self._queue.popleft()
                cid = self._correlation_id = self._correlation_id % MAX_CORRELATION_ID + 1
                try:
                    parts += framing.request_frame(r.message, r.version, cid, self.client_id)
                except EncodeError as e:
                    r.done(e)
                    continue
                r.correlation_id = cid
                self._in_flight.append(r)
            if parts:
                await stream.send_all(join(parts))

    async def _read_loop(self, stream: trio.SocketStream) -> None:
        buffer = FrameBuffer(self.max_frame)
        in_flight = self._in_flight
        while await receive_into(stream, buffer):
            while (frame := buffer.next_frame()) is not None:
                (cid,) = framing.SIZE.unpack_from(frame, 0)
                if not in_flight or in_flight[0].correlation_id != cid:
                    raise DecodeError(f"correlation id {cid} answers no request waiting here", 0)
                r = in_flight[0]
                _, response = framing.read_response(frame, r.message.API_KEY, r.version)
                in_flight.popleft()
                r.done(response)
        raise trio.BrokenResourceError("the peer closed the connection")

    def _fail(self, requests: deque[_Request], reason: str) -> None:
        while requests:
            requests.popleft().done(ConnectionLost(f"{reason} ({self.client_id} to {self.address()})"))
