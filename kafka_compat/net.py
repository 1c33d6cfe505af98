"""Socket helpers for both ends of a Kafka connection (the server's and the client's)."""

from __future__ import annotations

import os
import socket

import trio

from kafka_compat.protocol.framing import FrameBuffer

STREAM_RECEIVE_BYTES = 64 * 1024  # per receive from another stream: it allocates the size asked for
# Bytes certain to arrive (the rest of a big frame) are awaited in one wake-up, up to LOWAT_MAX;
# below LOWAT_MIN the two setsockopt calls would cost more than the wake-ups they save.
LOWAT_MIN, LOWAT_MAX = 32 * 1024, 1 << 20


def configure_socket(sock) -> None:
    """Requests and responses are whole frames written at once: no Nagle delay."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def wait_readable(sock, coming: int = 0) -> None:
    """Wait until `sock` has bytes to read; when `coming` bytes are certain to arrive, until up to
    LOWAT_MAX of them have (SO_RCVLOWAT). A client that writes a large request in small pieces (librdkafka
    over TLS: a record per buffer segment, down to 10 bytes) would otherwise wake us for each few."""
    lowat = min(coming, LOWAT_MAX)
    if lowat < LOWAT_MIN:
        await trio.lowlevel.wait_readable(sock)
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, lowat)
    try:
        await trio.lowlevel.wait_readable(sock)
    finally:
        if sock.fileno() >= 0:  # back to the default: the next wait may be for a frame's 4-byte size
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)


async def read_into(sock, view, coming: int = 0) -> int:
    """Wait (see `wait_readable`), then read what `sock` holds into `view`: one pass through trio's
    scheduler per read. (trio's recv_into tries first, fails when the peer waits for our answer, then
    waits; and checkpoints after.) 0: the peer closed. Socket errors raise trio.BrokenResourceError."""
    while True:
        if sock.fileno() < 0:
            raise trio.ClosedResourceError("the socket was closed")
        await wait_readable(sock, coming)
        try:
            return os.readv(sock.fileno(), [view])
        except BlockingIOError:
            continue
        except OSError as e:
            raise trio.BrokenResourceError(f"socket receive failed: {e}") from e


async def receive_into(stream: trio.abc.ReceiveStream, buffer: FrameBuffer) -> int:
    """Receive what has arrived into `buffer`; return how many bytes (0: the peer closed).

    A plain TCP stream receives straight into the buffer's space, a TlsStream decrypts into it (both
    waiting for the rest of a big frame in few wake-ups);
    other streams (the memory streams of tests) through one copy. Socket errors surface as
    trio.BrokenResourceError, as `receive_some` raises them."""
    space = buffer.space()
    sock = getattr(stream, "socket", None)
    if sock is not None:
        n = await read_into(sock, space, buffer.coming())
    elif (tls_receive_into := getattr(stream, "receive_into", None)) is not None:  # a TlsStream
        n = await tls_receive_into(space, buffer.coming())
    else:
        data = await stream.receive_some(min(len(space), STREAM_RECEIVE_BYTES))
        n = len(data)
        space[:n] = data
    buffer.received(n)
    return n
