"""A small synchronous client for the Kafka protocol, built on the project's codecs.

For the CLI's admin commands and for tests that speak the wire protocol directly. One
`BrokerConnection` is one TCP connection to one broker; requests go at the highest version both
sides support unless a version is given.
"""

from __future__ import annotations

import socket

from kafka_compat.protocol import framing, messages as m
from kafka_compat.protocol.primitives import Message, join


class ConnectionClosed(ConnectionError):
    """The broker closed the connection instead of answering."""


class BrokerConnection:
    def __init__(self, host: str, port: int, client_id: str = "kafka-compat", timeout: float = 30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.client_id = client_id
        self._cid = 0
        self._versions: dict[int, tuple[int, int]] | None = None

    @classmethod
    def to(cls, bootstrap: str, **kw) -> "BrokerConnection":
        host, _, port = bootstrap.rpartition(":")
        return cls(host or "127.0.0.1", int(port), **kw)

    def _recv(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = self.sock.recv(min(n - got, 1 << 20))
            if not chunk:
                raise ConnectionClosed("the broker closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def send(self, request: Message, version: int) -> int:
        """Send without waiting for an answer; returns the correlation id."""
        self._cid += 1
        self.sock.sendall(join(framing.request_frame(request, version, self._cid, self.client_id)))
        return self._cid

    def receive(self, api_key: int, version: int) -> tuple[int, Message]:
        (size,) = framing.SIZE.unpack(self._recv(4))
        return framing.read_response(self._recv(size), api_key, version)

    def versions(self) -> dict[int, tuple[int, int]]:
        """The broker's ApiVersions, fetched once (v0: every broker answers it)."""
        if self._versions is None:
            self.send(m.ApiVersionsRequest(), 0)
            _, resp = self.receive(m.ApiKey.API_VERSIONS, 0)
            self._versions = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
        return self._versions

    def version_for(self, cls: type[Message]) -> int:
        lo, hi = self.versions().get(cls.API_KEY, (None, None))
        if lo is None:
            raise RuntimeError(f"the broker does not support {cls.NAME}")
        ours_lo, ours_hi = cls.VALID_VERSIONS
        if ours_hi < lo or hi < ours_lo:
            raise RuntimeError(f"no common version of {cls.NAME}: broker {lo}-{hi}, ours {ours_lo}-{ours_hi}")
        return min(hi, ours_hi)

    def request(self, request: Message, version: int | None = None) -> Message:
        """Send a request and return its response (a request version both sides support)."""
        if version is None:
            version = self.version_for(type(request))
        cid = self.send(request, version)
        got, response = self.receive(request.API_KEY, version)
        if got != cid:
            raise ConnectionError(f"response correlation id {got} does not match request {cid}")
        return response

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "BrokerConnection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
