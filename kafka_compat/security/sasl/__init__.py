"""SASL mechanisms as small sans-I/O state machines, and the per-connection authenticator.

A mechanism takes the client's tokens one at a time (`evaluate(token, now_ms) -> bytes` for the
client) until `complete`; then `authorization_id` names the user and `credential_expiry_ms` (a
token's expiry, or None) bounds the session. A failure raises `SaslAuthenticationError`, whose
message the client is shown, or `SaslError`, whose detail is only logged: the client is told
Kafka's generic "Authentication failed during authentication due to invalid credentials with SASL
mechanism X", so that nothing about users or credentials leaks to an unauthenticated peer.
"""

from __future__ import annotations

from typing import Protocol


class SaslError(Exception):
    """The exchange failed; the message is for the broker's log, not for the client."""


class SaslAuthenticationError(SaslError):
    """The exchange failed; the message is what the client is told."""


class Mechanism(Protocol):
    name: str
    complete: bool
    authorization_id: str
    credential_expiry_ms: int | None

    def evaluate(self, token: bytes, now_ms: int) -> bytes: ...
