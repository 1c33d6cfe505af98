"""Client-side security for outbound connections: TLS, then SASL (PLAIN, SCRAM), from Kafka's keys.

    security = ClientSecurity.from_properties(read("client.properties"))     # the CLI's --command-config
    security = ClientSecurity.for_listener(broker_config, "CONTROLLER", "sasl.mechanism.controller.protocol")
    stream = await security.secure(stream, host)       # trio (a node's Raft, controller and fetcher connections)
    sock = security.secure_socket(sock, host)          # blocking (the CLI)

Client keys as Kafka's clients read them: `security.protocol`, `ssl.truststore.*` (or librdkafka's
`ssl.ca.location`), `ssl.keystore.*`, `ssl.endpoint.identification.algorithm`, `sasl.mechanism`,
`sasl.jaas.config` (the login module's `username` and `password`; librdkafka's `sasl.username` and
`sasl.password` too). A broker's own connections use the listener's settings, as Kafka does: its
TLS keys (its keystore as the client certificate) and the JAAS entry of the mechanism named by
`sasl.mechanism.inter.broker.protocol` or `sasl.mechanism.controller.protocol`.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from kafka_compat.net import receive_into
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.framing import FrameBuffer
from kafka_compat.protocol.primitives import join
from kafka_compat.security.config import as_str, for_listener, for_mechanism
from kafka_compat.security.jaas import parse_jaas
from kafka_compat.security.sasl import SaslError
from kafka_compat.security.sasl.client import client_exchange
from kafka_compat.security.tls import client_context
from kafka_compat.tls_stream import TlsStream

CLIENT_ID = "kafka-compat-sasl"
MAX_FRAME = 1024 * 1024


class AuthenticationFailed(ConnectionError):
    """The broker refused the TLS handshake or the SASL exchange; the message says why."""


@dataclass(frozen=True)
class ClientSecurity:
    protocol: str = "PLAINTEXT"
    tls: ssl.SSLContext | None = None
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def plaintext(self) -> bool:
        return self.protocol == "PLAINTEXT"

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> ClientSecurity:
        """From a client's settings; ValueError names one that cannot work."""
        protocol = (as_str(props.get("security.protocol")) or "PLAINTEXT").upper()
        settings = dict(props)
        if props.get("ssl.ca.location") and not props.get("ssl.truststore.location"):
            settings.update({"ssl.truststore.type": "PEM", "ssl.truststore.location": props["ssl.ca.location"]})
        return cls._build(protocol, settings, as_str(props.get("sasl.mechanism")) or "GSSAPI", props)

    @classmethod
    def for_listener(cls, config: Mapping[str, Any], listener: str, protocol: str,
                     mechanism_key: str) -> ClientSecurity:
        """A node's own connections to `listener` (of `protocol`) of another node."""
        settings = for_listener(config, listener)
        mechanism = as_str(config.get(mechanism_key)) or "GSSAPI"
        jaas = as_str(for_mechanism(settings, mechanism, "sasl.jaas.config"))
        return cls._build(protocol, settings, mechanism, {"sasl.jaas.config": jaas})

    @classmethod
    def _build(cls, protocol: str, settings: Mapping[str, Any], mechanism: str,
               props: Mapping[str, Any]) -> ClientSecurity:
        if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            raise ValueError(f"security.protocol: unknown protocol {protocol}")
        tls = client_context(settings) if protocol in ("SSL", "SASL_SSL") else None
        if not protocol.startswith("SASL"):
            return cls(protocol, tls)
        username, password = as_str(props.get("sasl.username")), as_str(props.get("sasl.password"))
        jaas = as_str(props.get("sasl.jaas.config"))
        if jaas:
            options = {k: v for entry in parse_jaas(jaas) for k, v in entry.options.items()}
            username, password = options.get("username", username), options.get("password", password)
        if mechanism not in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            raise ValueError(f"sasl.mechanism: {mechanism} is not supported here (PLAIN, SCRAM-SHA-256, "
                             "SCRAM-SHA-512)")
        if not username or password is None:
            raise ValueError(f"{mechanism} needs a username and a password (sasl.jaas.config)")
        return cls(protocol, tls, mechanism, username, password)

    # -- trio -------------------------------------------------------------------------------

    async def secure(self, stream: trio.abc.Stream, host: str) -> trio.abc.Stream:
        """The stream after the TLS handshake and the SASL exchange; AuthenticationFailed if refused."""
        if self.tls is not None:
            stream = TlsStream(stream, self.tls, server_hostname=host)
            try:
                await stream.do_handshake()
            except trio.BrokenResourceError as e:
                raise AuthenticationFailed(f"SSL handshake failed: {e.__cause__ or e}") from None
        if self.mechanism is not None:
            steps, buffer = self._exchange(), FrameBuffer(MAX_FRAME)
            try:
                parts = next(steps)
                while True:
                    await stream.send_all(join(parts))
                    while (frame := buffer.next_frame()) is None:
                        if not await receive_into(stream, buffer):
                            raise AuthenticationFailed("the broker closed the connection during authentication")
                    parts = steps.send(frame)
            except StopIteration:
                pass
        return stream

    # -- blocking ---------------------------------------------------------------------------

    def secure_socket(self, sock: socket.socket, host: str) -> socket.socket:
        if self.tls is not None:
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, ssl.CertificateError) as e:
                raise AuthenticationFailed(f"SSL handshake failed: {e}") from None
        if self.mechanism is not None:
            steps, buffer = self._exchange(), FrameBuffer(MAX_FRAME)
            try:
                parts = next(steps)
                while True:
                    sock.sendall(join(parts))
                    while (frame := buffer.next_frame()) is None:
                        n = sock.recv_into(buffer.space())
                        if not n:
                            raise AuthenticationFailed("the broker closed the connection during authentication")
                        buffer.received(n)
                    parts = steps.send(frame)
            except StopIteration:
                pass
        return sock

    def _exchange(self) -> Generator[list, bytearray, None]:
        """Frames to send, answers in: SaslHandshake v1, then SaslAuthenticate v1 per token."""
        parts = framing.request_frame(m.SaslHandshakeRequest(mechanism=self.mechanism), 1, 1, CLIENT_ID)
        _, r = framing.read_response((yield parts), m.ApiKey.SASL_HANDSHAKE, 1)
        if r.error_code:
            raise AuthenticationFailed(f"the broker does not enable SASL mechanism {self.mechanism} "
                                       f"(it enables {', '.join(r.mechanisms)})")
        tokens = client_exchange(self.mechanism, self.username, self.password)
        token, cid = next(tokens), 2
        while True:
            request = m.SaslAuthenticateRequest(auth_bytes=token)
            _, r = framing.read_response((yield framing.request_frame(request, 1, cid, CLIENT_ID)),
                                         m.ApiKey.SASL_AUTHENTICATE, 1)
            if r.error_code:
                raise AuthenticationFailed(r.error_message or f"SASL authentication failed ({r.error_code})")
            try:
                token, cid = tokens.send(bytes(r.auth_bytes)), cid + 1
            except StopIteration:
                return
            except SaslError as e:
                raise AuthenticationFailed(str(e)) from None
