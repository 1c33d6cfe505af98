"""The server side of Kafka's SASL exchange on one connection, sans-I/O (Kafka's SaslServerAuthenticator).

The connection feeds it every frame (size prefix removed) until `complete`, then only frames of the
SASL APIs (SaslHandshake, SaslAuthenticate: re-authentication, KIP-368), and acts on what
`receive(frame, now_ms)` returns, in order:

    Send(parts)          write this frame (a list of buffers, size prefix included)
    Serve(frame)         serve this request as any other (ApiVersions before the handshake; after
                         authentication, anything that is not a SASL request)
    Authenticated(...)   the principal may now make requests; the session ends at `session_expiry_ms`
    Failed(reason, response, detail)
                         authentication failed: wait `connection.failed.authentication.delay.ms`,
                         write `response` if there is one, close; log `detail`

The exchange, by state: a client may send ApiVersions first, then SaslHandshake with a mechanism the
listener enables. After a v1 handshake each token travels in a SaslAuthenticate request (v0-v2);
after a v0 handshake tokens travel raw, size-prefixed, and so do the answers. A failed exchange is
answered with SASL_AUTHENTICATION_FAILED and a message: the mechanism's own for the failures Kafka
words (`SaslAuthenticationError`), else Kafka's generic sentence. Until `complete`, frames larger
than `max_frame` (`sasl.server.max.receive.size`) must be refused (`oversized()`).

Session lifetime: the earlier of the credential's expiry (an OAUTHBEARER token's `exp`) and
`connections.max.reauth.ms` for the mechanism; a client that re-authenticates (SaslAuthenticate
v1+ tells that it can) gets it in `session_lifetime_ms`. Once `session_expired(now)`, any request
other than a re-authentication closes the connection, as Kafka does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import DecodeError
from kafka_compat.security.sasl import Mechanism, SaslAuthenticationError, SaslError

DEFAULT_MAX_RECEIVE_SIZE = 524288  # sasl.server.max.receive.size
SASL_APIS = {m.ApiKey.SASL_HANDSHAKE: (0, 1), m.ApiKey.SASL_AUTHENTICATE: (0, 2)}  # for ApiVersions


@dataclass(frozen=True)
class Send:
    parts: list


@dataclass(frozen=True)
class Serve:
    frame: bytes


@dataclass(frozen=True)
class Authenticated:
    principal: str
    mechanism: str
    session_expiry_ms: int | None
    reauthentication: bool = False


@dataclass(frozen=True)
class Failed:
    reason: str
    response: list | None = None
    detail: str | None = None


# States (Kafka's SaslState names).
INITIAL, HANDSHAKE_OR_VERSIONS, HANDSHAKE, AUTHENTICATE, COMPLETE, FAILED = (
    "INITIAL_REQUEST", "HANDSHAKE_OR_VERSIONS_REQUEST", "HANDSHAKE_REQUEST", "AUTHENTICATE", "COMPLETE", "FAILED")
REAUTH_HANDSHAKE, REAUTH_BAD_MECHANISM = "REAUTH_PROCESS_HANDSHAKE", "REAUTH_BAD_MECHANISM"

API_VERSIONS_MAX = m.ApiVersionsRequest.VALID_VERSIONS[1]


def _raw(token: bytes) -> list:
    return [framing.SIZE.pack(len(token)), token]


class SaslAuthenticator:
    """`mechanisms`: name -> a factory of a fresh mechanism for one exchange (the listener's
    `sasl.enabled.mechanisms`, in order). `max_reauth_ms`: `connections.max.reauth.ms` per mechanism
    (0 or absent: no limit)."""

    def __init__(self, mechanisms: Mapping[str, Callable[[], Mechanism]], *,
                 max_reauth_ms: Mapping[str, int] | None = None, max_receive_size: int = DEFAULT_MAX_RECEIVE_SIZE):
        if not mechanisms:
            raise ValueError("No SASL mechanisms are enabled")
        self._factories = dict(mechanisms)
        self._max_reauth = dict(max_reauth_ms or {})
        self.max_frame = max_receive_size  # until authentication completes
        self.state = INITIAL
        self.headers = False  # SaslAuthenticate requests (v1 handshake) rather than raw tokens (v0)
        self.mechanism: str | None = None
        self.principal: str | None = None
        self.session_expiry_ms: int | None = None
        self.supports_reauthentication = False
        self._server: Mechanism | None = None
        self._previous: tuple[str, str] | None = None  # (mechanism, principal) of the session being renewed
        self._states = {INITIAL: self._initial, HANDSHAKE_OR_VERSIONS: self._handshake,
                        HANDSHAKE: self._handshake, AUTHENTICATE: self._authenticate, COMPLETE: self._complete,
                        REAUTH_HANDSHAKE: self._handshake, REAUTH_BAD_MECHANISM: self._bad_mechanism,
                        FAILED: self._failed}

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @property
    def _doing(self) -> str:
        return "re-authentication" if self._previous else "authentication"

    def session_expired(self, now_ms: int) -> bool:
        return self.session_expiry_ms is not None and now_ms >= self.session_expiry_ms

    def oversized(self) -> Failed:
        """What to do with a frame above `max_frame` before authentication completes."""
        self.state = FAILED
        return Failed("Failing SASL authentication due to invalid receive size")

    def receive(self, frame: bytes, now_ms: int) -> list:
        return self._states[self.state](frame, now_ms)

    # -- states ----------------------------------------------------------------------------

    def _initial(self, frame: bytes, now_ms: int) -> list:
        try:
            api_key = framing.read_request(frame).api_key
        except DecodeError:
            api_key = None
        if api_key not in m.REQUESTS:  # not a Kafka request: a GSSAPI token, which Kafka would then expect
            return self._fail("Exception handling first SASL packet from client, GSSAPI is not supported by server")
        self.state = HANDSHAKE_OR_VERSIONS
        return self._handshake(frame, now_ms)

    def _handshake(self, frame: bytes, now_ms: int) -> list:
        try:
            rf = framing.read_request(frame)
        except DecodeError as e:
            return self._fail(f"Invalid SASL handshake request: {e}")
        if rf.api_key == m.ApiKey.API_VERSIONS and self.state == HANDSHAKE_OR_VERSIONS:
            if rf.api_version <= API_VERSIONS_MAX:
                self.state = HANDSHAKE
            return [Serve(frame)]  # the broker's ApiVersions answer (UNSUPPORTED_VERSION lets a client retry)
        if rf.api_key != m.ApiKey.SASL_HANDSHAKE:
            return self._fail(f"Unexpected Kafka request of type {_api_name(rf.api_key)} during SASL handshake.")
        if rf.header is None:
            return self._fail(f"Version {rf.api_version} is not supported for apiKey SASL_HANDSHAKE")
        try:
            request = rf.decode_body(m.SaslHandshakeRequest)
        except DecodeError as e:
            return self._fail(f"Invalid SaslHandshake request: {e}")
        self.headers = rf.api_version >= 1
        enabled = list(self._factories)
        R = m.SaslHandshakeResponse
        if request.mechanism not in self._factories:
            response = framing.response_frame(R(error_code=ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms=enabled),
                                              rf.api_version, rf.correlation_id)
            return self._fail(f"Unsupported SASL mechanism {request.mechanism}", response)
        out = [Send(framing.response_frame(R(error_code=ErrorCode.NONE, mechanisms=enabled), rf.api_version,
                                           rf.correlation_id))]
        if self._previous and self._previous[0] != request.mechanism:
            self._bad = (f"SASL mechanism '{request.mechanism}' requested by client is not supported for "
                         f"re-authentication of mechanism '{self._previous[0]}'")
            self.state = REAUTH_BAD_MECHANISM
            return out
        self.mechanism = request.mechanism
        self._server = self._factories[request.mechanism]()
        self.state = AUTHENTICATE
        return out

    def _bad_mechanism(self, frame: bytes, now_ms: int) -> list:
        return self._fail(self._bad)

    def _authenticate(self, frame: bytes, now_ms: int) -> list:
        if not self.headers:
            try:
                token = self._server.evaluate(bytes(frame), now_ms)
                principal = self._finish(now_ms)
            except SaslError as e:
                return self._fail(str(e))
            out = [Send(_raw(token))]
            return out + ([principal] if principal else [])
        try:
            rf = framing.read_request(frame)
        except DecodeError as e:
            return self._fail(f"Invalid SASL authenticate request: {e}")
        if rf.api_key != m.ApiKey.SASL_AUTHENTICATE:
            message = f"Unexpected Kafka request of type {_api_name(rf.api_key)} during SASL authentication."
            return self._fail(message, _illegal_state_response(rf))
        if rf.header is None:
            return self._fail(f"Version {rf.api_version} is not supported for apiKey SASL_AUTHENTICATE")
        try:
            request = rf.decode_body(m.SaslAuthenticateRequest)
        except DecodeError as e:
            return self._fail(f"Invalid SaslAuthenticate request: {e}")
        if not self.supports_reauthentication:
            self.supports_reauthentication = rf.api_version > 0
        R = m.SaslAuthenticateResponse

        def answer(**fields) -> list:
            return framing.response_frame(R(**fields), rf.api_version, rf.correlation_id)

        try:
            token = self._server.evaluate(bytes(request.auth_bytes), now_ms)
            done = self._finish(now_ms)
        except SaslAuthenticationError as e:
            return self._fail(str(e), answer(error_code=ErrorCode.SASL_AUTHENTICATION_FAILED, error_message=str(e)))
        except SaslError as e:
            message = (f"Authentication failed during {self._doing} due to invalid credentials with SASL mechanism "
                       f"{self.mechanism}")
            return self._fail(message, answer(error_code=ErrorCode.SASL_AUTHENTICATION_FAILED, error_message=message),
                              detail=str(e))
        lifetime = 0 if done is None or done.session_expiry_ms is None else done.session_expiry_ms - now_ms
        out = [Send(answer(error_code=ErrorCode.NONE, auth_bytes=token, session_lifetime_ms=lifetime))]
        return out + ([done] if done else [])

    def _finish(self, now_ms: int) -> Authenticated | None:
        """After a token: None while the exchange goes on; the outcome once the mechanism is complete."""
        server = self._server
        if not server.complete:
            return None
        principal = f"User:{server.authorization_id}"
        if self._previous and self._previous[1] != principal:
            old, new = self._previous[1].split(":", 1), principal.split(":", 1)
            raise SaslAuthenticationError(f"Cannot change principals during re-authentication from "
                                          f"{old[0]}.{old[1]}: {new[0]}.{new[1]}")
        expiry, most = server.credential_expiry_ms, self._max_reauth.get(self.mechanism) or 0
        if expiry is None and most <= 0:
            self.session_expiry_ms = None
        else:
            lifetime = most if expiry is None else expiry - now_ms if most <= 0 else min(expiry - now_ms, most)
            self.session_expiry_ms = now_ms + max(0, lifetime)
        again = self._previous is not None
        self.principal, self.state, self._previous, self._server = principal, COMPLETE, None, None
        return Authenticated(principal, self.mechanism, self.session_expiry_ms, again)

    def _complete(self, frame: bytes, now_ms: int) -> list:
        """After authentication: a SaslHandshake starts a re-authentication (for a client that can);
        the SASL APIs are otherwise answered ILLEGAL_SASL_STATE; other requests are not ours."""
        try:
            rf = framing.read_request(frame)
        except DecodeError:
            return [Serve(frame)]
        if rf.api_key == m.ApiKey.SASL_HANDSHAKE and rf.header is not None and self.supports_reauthentication:
            self._previous = (self.mechanism, self.principal)
            self.state = REAUTH_HANDSHAKE
            return self._handshake(frame, now_ms)
        if rf.api_key == m.ApiKey.SASL_HANDSHAKE and rf.header is not None:
            return [Send(framing.response_frame(m.SaslHandshakeResponse(error_code=ErrorCode.ILLEGAL_SASL_STATE),
                                                rf.api_version, rf.correlation_id))]
        if rf.api_key == m.ApiKey.SASL_AUTHENTICATE and rf.header is not None:
            R = m.SaslAuthenticateResponse
            return [Send(framing.response_frame(
                R(error_code=ErrorCode.ILLEGAL_SASL_STATE,
                  error_message="SaslAuthenticate request received after successful authentication"),
                rf.api_version, rf.correlation_id))]
        return [Serve(frame)]

    def _failed(self, frame: bytes, now_ms: int) -> list:
        return [Failed("Authentication has failed on this connection")]

    def _fail(self, reason: str, response: list | None = None, detail: str | None = None) -> list:
        self.state, self._server = FAILED, None
        return [Failed(reason, response, detail)]


def _api_name(api_key: int) -> str:
    try:
        return m.ApiKey(api_key).name
    except ValueError:
        return str(api_key)


def _illegal_state_response(rf: framing.RequestFrame) -> list | None:
    """The request's own response type with ILLEGAL_SASL_STATE, where it has a top-level error code."""
    if rf.header is None:
        return None
    cls = m.response_class(rf.api_key)
    if not cls.has_field("error_code", rf.api_version):
        return None
    return framing.response_frame(cls(error_code=ErrorCode.ILLEGAL_SASL_STATE), rf.api_version, rf.correlation_id)
