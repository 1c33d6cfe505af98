"""A blocking connection to one broker, for the CLI's commands and for tests that speak the wire
protocol directly; failures surface as `BrokerUnreachable` (naming the address) or `UnsupportedApi`.
With a `ClientSecurity` the connection speaks TLS and SASL first, as Kafka's clients do."""

from __future__ import annotations

import socket

from kafka_compat.client.security import AuthenticationFailed, ClientSecurity
from kafka_compat.net import configure_socket
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.framing import FrameBuffer
from kafka_compat.protocol.primitives import Message, join

MAX_FRAME = 2**31 - 1  # whatever the broker sends: it was asked for
# The newest versions this client speaks where the codecs go further: from the next version on,
# these requests name topics by id only (Produce v13, OffsetCommit and OffsetFetch v10), and this
# client names them.
SPOKEN = {m.ApiKey.PRODUCE: 12, m.ApiKey.OFFSET_COMMIT: 9, m.ApiKey.OFFSET_FETCH: 9}
MAX_VERSION = 0x7FFF


class BrokerUnreachable(ConnectionError):
    """A broker could not be reached, did not answer in time or dropped the connection."""


class ConnectionClosed(BrokerUnreachable):
    """The broker closed the connection instead of answering."""


class UnsupportedApi(RuntimeError):
    """The broker does not serve an API (or no version of it this client knows)."""


def error_code(n: int) -> ErrorCode:
    try:
        return ErrorCode(n)
    except ValueError:  # a code newer than this table
        return ErrorCode.UNKNOWN_SERVER_ERROR


def split_address(address: str) -> tuple[str, int]:
    """'host:port' (or '[v6]:port') -> (host, port); ValueError naming the address otherwise."""
    host, _, port = address.strip().rpartition(":")
    if not port.isdigit():
        raise ValueError(f"bad broker address {address!r}: expected host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


class BrokerConnection:
    """One blocking connection to one broker, one request at a time; requests go at the highest
    version both sides support unless a version is given. Frames are received as the node's own
    `client.connection.Connection` receives them (`FrameBuffer`), each request in one write."""

    def __init__(self, host: str, port: int, client_id: str = "kafka-compat", timeout: float = 30.0,
                 security: ClientSecurity | None = None):
        self.address = f"{host}:{port}"
        self.security = security
        try:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise BrokerUnreachable(f"cannot connect to {self.address}: {e.strerror or e}") from None
        configure_socket(self.sock)
        if security is not None and not security.plaintext:
            try:
                self.sock = security.secure_socket(self.sock, host)
            except AuthenticationFailed as e:
                self.sock.close()
                raise BrokerUnreachable(f"cannot authenticate to {self.address}: {e}") from None
            except OSError as e:
                self.sock.close()
                raise BrokerUnreachable(f"lost the connection to {self.address}: {e.strerror or e}") from None
        self.client_id = client_id
        self._cid = 0
        self._frames = FrameBuffer(MAX_FRAME)
        self._versions: dict[int, tuple[int, int]] | None = None

    @classmethod
    def to(cls, bootstrap: str, **kw) -> BrokerConnection:
        return cls(*split_address(bootstrap), **kw)

    def send(self, request: Message, version: int) -> int:
        """Send without waiting for an answer; returns the correlation id."""
        self._cid += 1
        try:
            self.sock.sendall(join(framing.request_frame(request, version, self._cid, self.client_id)))
        except OSError as e:
            raise BrokerUnreachable(f"lost the connection to {self.address}: {e.strerror or e}") from None
        return self._cid

    def receive(self, api_key: int, version: int) -> tuple[int, Message]:
        """The next response on the connection, read as `api_key` at `version`."""
        frames = self._frames
        while (frame := frames.next_frame()) is None:
            try:
                n = self.sock.recv_into(frames.space())
            except TimeoutError:
                raise BrokerUnreachable(f"{self.address} did not answer within {self.sock.gettimeout()}s") from None
            except OSError as e:
                raise BrokerUnreachable(f"lost the connection to {self.address}: {e.strerror or e}") from None
            if not n:
                raise ConnectionClosed(f"the broker at {self.address} closed the connection")
            frames.received(n)
        return framing.read_response(frame, api_key, version)

    def versions(self) -> dict[int, tuple[int, int]]:
        """The broker's ApiVersions, fetched once (v0: every broker answers it)."""
        if self._versions is None:
            self.send(m.ApiVersionsRequest(), 0)
            _, resp = self.receive(m.ApiKey.API_VERSIONS, 0)
            self._versions = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
        return self._versions

    def version_for(self, cls: type[Message]) -> int:
        lo, hi = self.versions().get(cls.API_KEY, (None, None))
        name = cls.NAME.removesuffix("Request")
        if lo is None:
            raise UnsupportedApi(f"the broker at {self.address} does not support {name}")
        ours_lo, ours_hi = cls.VALID_VERSIONS[0], min(cls.VALID_VERSIONS[1], SPOKEN.get(cls.API_KEY, MAX_VERSION))
        if ours_hi < lo or hi < ours_lo:
            raise UnsupportedApi(f"no common version of {name}: broker {lo}-{hi}, ours {ours_lo}-{ours_hi}")
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

    def __enter__(self) -> BrokerConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
