"""A secured listener in front of a real broker process, for driving the security cores with real
clients before the broker's own listeners speak TLS and SASL.

Each connection: TLS with a context from `tls.server_context` (if configured), the principal from
the client's certificate, then SASL through a `SaslAuthenticator` (if configured): frames in,
its events acted on (Send written, Serve relayed to the broker, whose ApiVersions answer gains the
SASL APIs the broker does not serve itself yet, Failed answered and closed). From then on bytes are
piped to the broker untouched. The broker advertises the front's port, so clients reconnect here.
Blocking sockets and threads: the clients under test are blocking too.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import join
from kafka_compat.security.principal import ANONYMOUS, SslPrincipalMapper, ssl_principal
from kafka_compat.security.sasl.authenticator import SASL_APIS, Authenticated, Failed, Send, Serve

FAILED_AUTHENTICATION_DELAY_S = 0.1  # Kafka's connection.failed.authentication.delay.ms


class Front:
    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.upstream_port: int | None = None
        self.ssl_context: ssl.SSLContext | None = None
        self.authenticator = None  # a factory of SaslAuthenticator
        self.mapper = SslPrincipalMapper()
        self.principals: list[str] = []
        self.failures: list[str] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def configure(self, ssl_context=None, authenticator=None) -> Front:
        self.ssl_context, self.authenticator = ssl_context, authenticator
        self.principals, self.failures = [], []
        return self

    def close(self) -> None:
        self._closed = True
        self.sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client, self.ssl_context, self.authenticator),
                             daemon=True).start()

    def _serve(self, client: socket.socket, ctx, authenticator) -> None:
        upstream = None
        try:
            principal = ANONYMOUS
            if ctx is not None:
                try:
                    client = ctx.wrap_socket(client, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    self.failures.append(f"TLS: {e}")
                    return
                principal = ssl_principal(client.getpeercert(binary_form=True), self.mapper)
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            if authenticator is not None:
                principal = self._authenticate(client, upstream, authenticator())
                if principal is None:
                    return
            self.principals.append(principal)
            threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
            _pipe(client, upstream)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    s.close()

    def _authenticate(self, client, upstream, auth) -> str | None:
        buffer = framing.FrameBuffer(auth.max_frame)
        while True:
            n = client.recv_into(buffer.space())
            if not n:
                return None
            buffer.received(n)
            try:
                frames = list(iter(buffer.next_frame, None))
            except framing.FrameTooLarge:
                self.failures.append(auth.oversized().reason)
                return None
            for frame in frames:
                for event in auth.receive(frame, int(time.time() * 1000)):
                    if isinstance(event, Send):
                        client.sendall(join(event.parts))
                    elif isinstance(event, Serve):
                        client.sendall(_relay(upstream, bytes(frame)))
                    elif isinstance(event, Failed):
                        self.failures.append(event.reason)
                        time.sleep(FAILED_AUTHENTICATION_DELAY_S)
                        if event.response:
                            client.sendall(join(event.response))
                        _close_gracefully(client)
                        return None
                    elif isinstance(event, Authenticated):
                        return event.principal


def _close_gracefully(s: socket.socket) -> None:
    """Let the client read the answer and hang up first (for at most a second): some clients lose
    an answer that arrives together with the end of the stream."""
    s.settimeout(1.0)
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass


def _relay(upstream: socket.socket, frame: bytes) -> bytes:
    """One request to the broker and its answer; ApiVersions answers list the SASL APIs too."""
    api_key, version, _ = framing.peek_request(frame)
    upstream.sendall(framing.SIZE.pack(len(frame)) + frame)
    body = _recv(upstream, framing.SIZE.unpack(_recv(upstream, 4))[0])
    if api_key == m.ApiKey.API_VERSIONS:
        correlation_id, response = framing.read_response(body, api_key, version)
        if response.error_code == 0:
            R = m.ApiVersionsResponse
            response.api_keys = sorted(response.api_keys + [R.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                                                            for k, (lo, hi) in SASL_APIS.items()],
                                       key=lambda a: a.api_key)
            return join(framing.response_frame(response, version, correlation_id))
    return framing.SIZE.pack(len(body)) + body


def _recv(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("closed")
        buf += chunk
    return bytes(buf)


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
