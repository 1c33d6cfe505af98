"""Socket helpers for both ends of a Kafka connection (the server's and the client's)."""

from __future__ import annotations

import os
import socket

import trio

from kafka_compat.protocol.framing import FrameBuffer
from kafka_compat.tls_stream import TlsStream

STREAM_RECEIVE_BYTES = 64 * 1024  # per receive from another stream: it allocates the size asked for


def configure_socket(sock) -> None:
    """Requests and responses are whole frames written at once: no Nagle delay."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def receive_into(stream: trio.abc.ReceiveStream, buffer: FrameBuffer) -> int:
    """Receive what has arrived into `buffer`; return how many bytes (0: the peer closed).

    A plain TCP stream receives straight into the buffer's space, a TlsStream decrypts into it;
    other streams (the memory streams of tests) through one copy. Socket errors surface as
    trio.BrokenResourceError, as `receive_some` raises them."""
    space = buffer.space()
    sock = getattr(stream, "socket", None)
    if sock is not None:
        # Wait, then read: one pass through trio's scheduler per receive. (trio's recv_into tries
        # first, fails when the peer waits for our answer, then waits; and checkpoints after.)
        while True:
            if sock.fileno() < 0:
                raise trio.ClosedResourceError("the socket was closed")
            await trio.lowlevel.wait_readable(sock)
            try:
                n = os.readv(sock.fileno(), [space])
                break
            except BlockingIOError:
                continue
            except OSError as e:
                raise trio.BrokenResourceError(f"socket receive failed: {e}") from e
    elif type(stream) is TlsStream:
        n = await stream.receive_into(space)
    else:
        data = await stream.receive_some(min(len(space), STREAM_RECEIVE_BYTES))
        n = len(data)
        space[:n] = data
    buffer.received(n)
    return n
