"""SASL/PLAIN (RFC 4616), server side, with Kafka's default callback handler: the users and passwords
are the `user_<name>="<password>"` options of the listener's PlainLoginModule JAAS entry
(`jaas.plain_users`). One message, `authzid NUL user NUL password`; an authorization id, if given,
must be the user name.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from kafka_compat.security.sasl import SaslAuthenticationError, SaslError

NAME = "PLAIN"


class PlainServer:
    def __init__(self, users: Mapping[str, str]):
        self.name = NAME
        self._users = users
        self.complete = False
        self.authorization_id = ""
        self.credential_expiry_ms: int | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if self.complete:
            raise SaslError("Unexpected challenge in Sasl server state COMPLETE")
        parts = bytes(token).decode("utf-8", "replace").split("\0", 3)
        if len(parts) != 3:
            raise SaslAuthenticationError(f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}")
        authzid, user, password = parts
        if not user:
            raise SaslAuthenticationError("Authentication failed: username not specified")
        if not password:
            raise SaslAuthenticationError("Authentication failed: password not specified")
        expected = self._users.get(user)
        # compared in constant time, and against something even for an unknown user
        matches = hmac.compare_digest(password.encode(), (expected if expected is not None else "\0").encode())
        if expected is None or not matches:
            raise SaslAuthenticationError("Authentication failed: Invalid username or password")
        if authzid and authzid != user:
            raise SaslAuthenticationError(
                "Authentication failed: Client requested an authorization id that is different from username")
        self.authorization_id = user
        self.complete = True
        return b""
