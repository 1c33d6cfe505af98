"""Listener sockets: accept connections and hand each to its connection task (Kafka's acceptor)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

from kafka_compat.net import configure_socket

log = structlog.get_logger("kafka_compat.server")

ACCEPT_BACKOFF_S = 0.1


async def accept(server: trio.SocketListener, serve: Callable[[trio.SocketStream, str], Awaitable[None]],
                 connections: trio.Nursery) -> None:
    """Accept on `server` until cancelled, running `serve(stream, "host:port")` for each connection
    in `connections`. Failing to accept one (EMFILE and friends) backs off and goes on; the socket
    is closed on the way out."""
    async with server:
        while True:
            try:
                stream = await server.accept()
            except OSError as e:
                log.warning("accept_failed", error=str(e))
                await trio.sleep(ACCEPT_BACKOFF_S)
                continue
            configure_socket(stream.socket)
            connections.start_soon(serve, stream, "%s:%s" % stream.socket.getpeername()[:2])
