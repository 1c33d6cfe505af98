"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as Kafka runs them.

Credentials are what the metadata log holds (UserScramCredentialRecord): salt, iterations, stored
key and server key, never the password. The exchange:

    client-first  n,[a=authzid],n=user,r=cnonce[,ext=value...]     -> r=cnonce+snonce,s=salt,i=N
    client-final  c=biws,r=cnonce+snonce,p=proof                     -> v=server-signature

Only the "n" GS2 flag is accepted (no channel binding), so the final message's channel binding
must be the base64 of the GS2 header. The `tokenauth=true` extension authenticates a delegation
token: the user name is the token id, and `tokens` (token id -> owner, credential, expiry) is asked
instead of the credentials. Kafka's rules: at least 4096 iterations, a final message whose nonce ends
with the server's, an authorization id (if any) equal to the user name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from kafka_compat.security.sasl import SaslAuthenticationError, SaslError


@dataclass(frozen=True, slots=True)
class ScramMechanism:
    name: str
    type: int  # the code in UserScramCredentialRecord and the SCRAM admin APIs
    hash: str
    min_iterations: int = 4096
    max_iterations: int = 16384


SCRAM_SHA_256 = ScramMechanism("SCRAM-SHA-256", 1, "sha256")
SCRAM_SHA_512 = ScramMechanism("SCRAM-SHA-512", 2, "sha512")
MECHANISMS = {m.name: m for m in (SCRAM_SHA_256, SCRAM_SHA_512)}
BY_TYPE = {m.type: m for m in (SCRAM_SHA_256, SCRAM_SHA_512)}


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def salted_password(mech: ScramMechanism, password: str, salt: bytes, iterations: int) -> bytes:
    """Hi(password, salt, i): PBKDF2 with the mechanism's HMAC, one block."""
    return hashlib.pbkdf2_hmac(mech.hash, password.encode(), salt, iterations)


def credential_from_salted(mech: ScramMechanism, salt: bytes, salted: bytes, iterations: int) -> ScramCredential:
    client_key = hmac.digest(salted, b"Client Key", mech.hash)
    return ScramCredential(salt, hashlib.new(mech.hash, client_key).digest(),
                           hmac.digest(salted, b"Server Key", mech.hash), iterations)


def new_credential(mech: ScramMechanism, password: str, iterations: int = 4096,
                   salt: bytes | None = None) -> ScramCredential:
    salt = secrets.token_bytes(24) if salt is None else salt
    return credential_from_salted(mech, salt, salted_password(mech, password, salt, iterations), iterations)


def username(sasl_name: str) -> str:
    """The user name a SASL name stands for (",", "=" travel as "=2C", "=3D"); ValueError otherwise."""
    name = sasl_name.replace("=2C", ",")
    if "=" in name.replace("=3D", ""):
        raise ValueError(f"Invalid username: {sasl_name}")
    return name.replace("=3D", "=")


def sasl_name(user: str) -> str:
    return user.replace("=", "=3D").replace(",", "=2C")


def server_nonce() -> str:
    """130 random bits in base 36, as Kafka makes them."""
    n, digits = secrets.randbits(130), []
    while n:
        n, d = divmod(n, 36)
        digits.append("0123456789abcdefghijklmnopqrstuvwxyz"[d])
    return "".join(reversed(digits)) or "0"


# RFC 5802's grammar as Kafka's ScramMessages reads it.
_SASLNAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"
_VALUE = r"[\x01-\x2b\x2d-\x7f]+"
_PRINTABLE = r"[\x21-\x2b\x2d-\x7e]+"
_B64 = r"(?:[a-zA-Z0-9/+]{4})*(?:[a-zA-Z0-9/+]{3}=|[a-zA-Z0-9/+]{2}==)?"
_EXTENSIONS = rf"(?:,[A-Za-z]+={_VALUE})*"
CLIENT_FIRST = re.compile(
    rf"(?P<gs2>n,(?:a=(?P<authzid>{_SASLNAME}))?,)(?:m={_VALUE},)?"
    rf"(?P<bare>n=(?P<saslname>{_SASLNAME}),r=(?P<nonce>{_PRINTABLE})(?P<extensions>{_EXTENSIONS}))")
CLIENT_FINAL = re.compile(
    rf"(?P<without_proof>c=(?P<channel>{_B64}),r=(?P<nonce>{_PRINTABLE}){_EXTENSIONS}),p=(?P<proof>{_B64})")

TokenLookup = Callable[[str], "tuple[str, ScramCredential, int] | None"]  # token id -> (owner, credential, expiry)


class ScramServer:
    """One SCRAM exchange. `credentials(user)` reads the current metadata image."""

    def __init__(self, mech: ScramMechanism, credentials: Callable[[str], ScramCredential | None],
                 tokens: TokenLookup | None = None, nonce: Callable[[], str] = server_nonce):
        self.name = mech.name
        self.mech = mech
        self._credentials = credentials
        self._tokens = tokens
        self._nonce = nonce
        self.complete = False
        self.authorization_id = ""
        self.credential_expiry_ms: int | None = None
        self.extensions: dict[str, str] = {}
        self._step = self._first
        self._failed = False

    @property
    def token_authenticated(self) -> bool:
        return self.extensions.get("tokenauth", "").lower() == "true"

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if self._failed or self.complete:
            raise SaslError(f"Unexpected challenge in Sasl server state {'FAILED' if self._failed else 'COMPLETE'}")
        try:
            return self._step(bytes(token).decode("utf-8", "replace"))
        except SaslError:
            self._failed = True
            self._credential = None
            raise

    def _first(self, message: str) -> bytes:
        m = CLIENT_FIRST.fullmatch(message)
        if m is None:
            raise SaslError(f"Invalid SCRAM client first message format: {message}")
        ext = m["extensions"]
        self.extensions = dict(kv.split("=", 1) for kv in ext[1:].split(",")) if ext else {}
        try:
            user = username(m["saslname"])
        except ValueError:
            raise SaslError("Authentication failed: Credentials could not be obtained") from None
        if self.token_authenticated:
            found = self._tokens(user) if self._tokens else None
            if found is None:
                raise SaslError(f"Token Authentication failed: Invalid tokenId : {user}")
            self.authorization_id, credential, self.credential_expiry_ms = found
        else:
            credential = self._credentials(user)
            self.authorization_id = user
        if credential is None:
            raise SaslError("Authentication failed: Invalid user credentials")
        if m["authzid"] and m["authzid"] != user:
            raise SaslAuthenticationError(
                "Authentication failed: Client requested an authorization id that is different from username")
        if credential.iterations < self.mech.min_iterations:
            raise SaslError(f"Iterations {credential.iterations} is less than the minimum "
                            f"{self.mech.min_iterations} for {self.name}")
        self._credential = credential
        self._gs2 = m["gs2"]
        self._nonce_full = m["nonce"] + self._nonce()
        self._server_first = (f"r={self._nonce_full},s={base64.b64encode(credential.salt).decode()},"
                              f"i={credential.iterations}")
        self._client_first_bare = m["bare"]
        self._step = self._final
        return self._server_first.encode()

    def _final(self, message: str) -> bytes:
        m = CLIENT_FINAL.fullmatch(message)
        if m is None:
            raise SaslError(f"Invalid SCRAM client final message format: {message}")
        # Kafka checks that the nonce ends with the one it sent (not that it equals it): librdkafka
        # before 2.1 sends the client nonce twice.
        if not m["nonce"].endswith(self._nonce_full):
            raise SaslError("Invalid client nonce in the final client message.")
        try:
            channel, proof = base64.b64decode(m["channel"]), base64.b64decode(m["proof"])
        except binascii.Error:
            raise SaslError("Invalid SCRAM client final message format: bad base64") from None
        if channel != self._gs2.encode():
            raise SaslError("Invalid channel binding in the final client message.")
        auth = f"{self._client_first_bare},{self._server_first},{m['without_proof']}".encode()
        cred, h = self._credential, self.mech.hash
        signature = hmac.digest(cred.stored_key, auth, h)
        if len(proof) != len(signature):
            raise SaslError("Invalid client credentials")
        client_key = bytes(a ^ b for a, b in zip(signature, proof))
        if not hmac.compare_digest(hashlib.new(h, client_key).digest(), cred.stored_key):
            raise SaslError("Invalid client credentials")
        self._credential = None
        self.complete = True
        return b"v=" + base64.b64encode(hmac.digest(cred.server_key, auth, h))
