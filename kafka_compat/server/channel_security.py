"""A listener's security, between the accepted socket and the request pipeline (Kafka's channel
builders and SaslServerAuthenticator driver).

    security = ListenerSecurity.from_config(config, listener, lambda: broker.metadata)
    secured = await security.accept(stream, peer)      # TLS handshake; None: refused, closed
    serve = security.serve(pipeline, connection)       # the SASL gate in front of the pipeline

SSL and SASL_SSL listeners wrap the stream in a `TlsStream` with the listener's context
(`security.tls.server_context` from its `ssl.*` keys; `reload_tls` swaps it for new connections
after a dynamic `ssl.keystore.*` change). The principal is the client certificate's (mapped by
`ssl.principal.mapping.rules`), else `User:ANONYMOUS`. SASL_PLAINTEXT and SASL_SSL listeners put a
`SaslGate` in front of the pipeline: every frame goes to the connection's `SaslAuthenticator`
until it completes (frames above `sasl.server.max.receive.size` close the connection), its events
are acted on (Send: written; Serve: served by the pipeline, ApiVersions before the handshake;
Authenticated: the pipeline's principal; Failed: `connection.failed.authentication.delay.ms`, the
answer, then close). After authentication SaslHandshake and SaslAuthenticate still go to the
authenticator (re-authentication, KIP-368), and once the session has expired any other request
closes the connection.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import structlog
import trio

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.security.config import as_int, for_listener
from kafka_compat.security.principal import ANONYMOUS, SslPrincipalMapper, ssl_principal
from kafka_compat.security.sasl.authenticator import Authenticated, Failed, SaslAuthenticator, Send, Serve
from kafka_compat.security.sasl.listener import authenticators
from kafka_compat.security.tls import server_context
from kafka_compat.server.connection import CLOSE, LastReply
from kafka_compat.tls_stream import TlsStream

log = structlog.get_logger("kafka_compat.server")

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
HANDSHAKE_TIMEOUT_S = 10.0
DEFAULT_FAILED_AUTHENTICATION_DELAY_MS = 100
_SASL_KEYS = frozenset({m.ApiKey.SASL_HANDSHAKE, m.ApiKey.SASL_AUTHENTICATE})


class ListenerSecurity:
    """What a listener's security protocol asks of each of its connections."""

    def __init__(self, name: str, protocol: str, settings: Mapping[str, Any],
                 tls: ssl.SSLContext | None, new_authenticator: Callable[[], SaslAuthenticator] | None):
        self.name, self.protocol, self.settings = name, protocol, settings
        self.tls = tls
        self.new_authenticator = new_authenticator
        self.mapper = SslPrincipalMapper.from_config(settings)
        self.failed_delay_s = as_int(settings.get("connection.failed.authentication.delay.ms"),
                                     DEFAULT_FAILED_AUTHENTICATION_DELAY_MS) / 1000

    @classmethod
    def from_config(cls, config: Mapping[str, Any], name: str, protocol: str,
                    image: Callable[[], Any]) -> ListenerSecurity:
        """TlsConfigError / SaslConfigError (ValueError) name a setting that cannot work."""
        settings = for_listener(config, name)
        tls = server_context(settings) if protocol in TLS_PROTOCOLS else None
        sasl = authenticators(config, name, image) if protocol in SASL_PROTOCOLS else None
        return cls(name, protocol, settings, tls, sasl)

    def reload_tls(self, config: Mapping[str, Any]) -> None:
        """New connections use the keystore as `config` now names it (existing ones keep theirs)."""
        if self.protocol in TLS_PROTOCOLS:
            self.settings = for_listener(config, self.name)
            self.tls = server_context(self.settings)

    async def accept(self, stream: trio.abc.Stream, peer: str) -> tuple[trio.abc.Stream, str] | None:
        """The stream to serve and its principal; None after a failed TLS handshake (closed, logged)."""
        if self.tls is None:
            return stream, ANONYMOUS
        tls = TlsStream(stream, self.tls, server_side=True)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                await tls.do_handshake()
            principal = ssl_principal(tls.getpeercert(binary_form=True), self.mapper)
        except (trio.BrokenResourceError, trio.TooSlowError, ssl.SSLError, OSError, ValueError) as e:
            cause = e.__cause__ if isinstance(e, trio.BrokenResourceError) and e.__cause__ else e
            log.info("failed_authentication", peer=peer, listener=self.name, reason=f"SSL handshake failed: {cause}")
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(tls)
            return None
        return tls, principal

    def serve(self, pipeline, frames) -> Callable:
        """What the connection calls with each frame: the pipeline, behind a SASL gate on SASL listeners."""
        if self.new_authenticator is None:
            return pipeline
        return SaslGate(self.new_authenticator(), pipeline, frames, self.failed_delay_s, self.name)


class SaslGate:
    """One connection's SASL exchange in front of its request pipeline (see the module docstring).
    `frames` is the connection's FrameBuffer: its limit is the authenticator's until authenticated."""

    __slots__ = ("auth", "pipeline", "frames", "failed_delay_s", "listener", "_max_request")

    def __init__(self, auth: SaslAuthenticator, pipeline, frames: framing.FrameBuffer, failed_delay_s: float,
                 listener: str):
        self.auth, self.pipeline, self.frames = auth, pipeline, frames
        self.failed_delay_s, self.listener = failed_delay_s, listener
        self._max_request = frames.max_frame
        frames.max_frame = min(frames.max_frame, auth.max_frame)

    async def __call__(self, frame: bytearray):
        auth = self.auth
        if auth.complete and not _is_sasl(frame):
            if auth.session_expired(_now_ms()):
                log.info("sasl_session_expired", peer=self.pipeline.peer, principal=auth.principal)
                return CLOSE
            return await self.pipeline(frame)
        out: list = []
        for event in auth.receive(frame, _now_ms()):
            if isinstance(event, Send):
                out += event.parts
            elif isinstance(event, Serve):
                reply = await self.pipeline(bytearray(event.frame))
                if type(reply) is list:
                    out += reply
                elif reply is not None:  # CLOSE, or an answer to come (after what is said here: none)
                    return CLOSE if out else reply
            elif isinstance(event, Authenticated):
                self.pipeline.principal = event.principal
                self.frames.max_frame = self._max_request
                # a re-authentication (KIP-368) is rare enough to be told at info
                (log.info if event.reauthentication else log.debug)(
                    "authenticated", peer=self.pipeline.peer, principal=event.principal, mechanism=event.mechanism,
                    reauthentication=event.reauthentication)
            elif isinstance(event, Failed):
                log.info("failed_authentication", peer=self.pipeline.peer, listener=self.listener,
                         reason=event.reason, detail=event.detail)
                await trio.sleep(self.failed_delay_s)
                return LastReply(out + (event.response or []))
        return out or None


def _is_sasl(frame: bytearray) -> bool:
    return len(frame) >= 8 and framing.API_PREFIX.unpack_from(frame)[0] in _SASL_KEYS


def _now_ms() -> int:
    return int(time.time() * 1000)
