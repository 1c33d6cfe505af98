"""SASL/OAUTHBEARER (RFC 7628), server side, with Kafka's two token validators:

- `UnsecuredValidator`, Kafka's default (OAuthBearerUnsecuredValidatorCallbackHandler), for
  development: an unsigned JWS (`alg: none`, empty signature) whose principal claim (`sub`), `exp`,
  optional `iat` and scope are checked, as the `unsecuredValidator*` JAAS options say.
- `JwksValidator` (OAuthBearerValidatorCallbackHandler): a signed JWT (RS256/384/512, PS*, ES256/384/512)
  checked against the keys of a JWKS file (`sasl.oauthbearer.jwks.endpoint.url=file:...`), with
  `exp` and `iat` required, the expected audience and issuer, and a clock skew.

The client's one message is `n,[a=authzid],^Aauth=Bearer <token>^A[key=value^A...]^A`. A token that
fails validation is answered (not failed) with RFC 7628's JSON error; the client then sends a single
^A and the exchange fails with that JSON as the message, as Kafka does. The session may last no
longer than the token (KIP-368): `credential_expiry_ms` is its `exp`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import jwt

from kafka_compat.security.sasl import SaslAuthenticationError, SaslError

NAME = "OAUTHBEARER"
UNSECURED_HANDLER = ("org.apache.kafka.common.security.oauthbearer.internals.unsecured."
                     "OAuthBearerUnsecuredValidatorCallbackHandler")
JWKS_HANDLERS = ("org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                 "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler")


@dataclass(frozen=True)
class Token:
    principal: str
    lifetime_ms: int  # expiry, ms since the epoch
    scope: frozenset[str] = frozenset()
    start_ms: int | None = None


class ValidationFailure(Exception):
    """A token refused; `scope` names the missing scope (RFC 7628's insufficient_scope)."""

    def __init__(self, reason: str, scope: str | None = None):
        super().__init__(reason)
        self.reason, self.scope = reason, scope


class Validator(Protocol):
    def validate(self, token: str, now_ms: int) -> Token: ...


def _b64json(part: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(part.replace("-", "+").replace("_", "/") + "=" * (-len(part) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationFailure("malformed Base64 URL encoded value") from None
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailure("malformed JSON") from None
    return value if isinstance(value, dict) else {}


def _java_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer" if -(2 ** 31) <= value < 2 ** 31 else "Long"
    return {float: "Double", list: "ArrayList", str: "String"}.get(type(value), "LinkedHashMap")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _java_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(items) + "]"


_SCOPE_ITEM = re.compile(r"[\x23-\x5b\x5d-\x7e\x21]+")


class UnsecuredValidator:
    """Kafka's unsecured JWS validator; its options are the JAAS entry's `unsecuredValidator*`."""

    def __init__(self, options: Mapping[str, str] | None = None):
        options = options or {}
        self.principal_claim = (options.get("unsecuredValidatorPrincipalClaimName") or "").strip() or "sub"
        self.scope_claim = (options.get("unsecuredValidatorScopeClaimName") or "").strip() or "scope"
        self.required_scope: list[str] = []
        for item in (options.get("unsecuredValidatorRequiredScope") or "").strip().split(" "):
            if item:
                if not _SCOPE_ITEM.fullmatch(item):
                    raise ValueError(f"Invalid scope value: {item}")
                self.required_scope.append(item)
        skew = (options.get("unsecuredValidatorAllowableClockSkewMs") or "").strip()
        self.skew_ms = int(skew) if skew else 0
        if self.skew_ms < 0:
            raise ValueError(f"Allowable clock skew millis must not be negative: {skew}")

    def validate(self, token: str, now_ms: int) -> Token:
        if ".." in token:
            raise ValidationFailure("Malformed compact serialization contains '..'")
        parts = token.split(".")
        if len(parts) != 3:
            raise ValidationFailure(
                "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values")
        header, claims = _b64json(parts[0]), _b64json(parts[1])
        if header.get("alg") != "none":
            raise ValidationFailure("Unsecured JWS must have 'none' for an algorithm")
        if parts[2]:
            raise ValidationFailure("Unsecured JWS must not contain a digital signature")
        scope = self._scope(claims)
        exp, iat = claims.get("exp"), claims.get("iat")
        for name, value in (("exp", exp), ("iat", iat)):
            if value is not None and not _number(value):
                raise ValidationFailure(f"The '{name}' claim was not of type Number: {_java_type(value)}")
        if exp is None:
            raise ValidationFailure("No expiration time in JWT")
        principal = claims.get(self.principal_claim)
        if principal is not None and not isinstance(principal, str):
            raise ValidationFailure(f"The '{self.principal_claim}' claim was not of type String: "
                                    f"{_java_type(principal)}")
        if not principal or not principal.strip():
            raise ValidationFailure(f"No principal name in JWT claim: {self.principal_claim}")
        if iat is not None and 1000 * iat > now_ms + self.skew_ms:
            raise ValidationFailure(f"The Issued At value ({iat:f} seconds) was after the indicated time ({now_ms} ms) "
                                    f"plus allowable clock skew ({self.skew_ms} ms)")
        if now_ms - self.skew_ms >= 1000 * exp:
            raise ValidationFailure(f"The indicated time ({now_ms} ms) minus allowable clock skew ({self.skew_ms} ms) "
                                    f"was on or after the Expiration Time value ({exp:f} seconds)")
        if iat is not None and exp <= iat:
            raise ValidationFailure(f"The Expiration Time time ({exp:f} seconds) was not after the Issued At time "
                                    f"({iat:f} seconds)")
        for required in self.required_scope:
            if required not in scope:
                raise ValidationFailure(
                    f"The provided scope ({_java_list(sorted(scope))}) was missing a required scope ({required}).  "
                    f"All required scope elements: {_java_list(self.required_scope)}", _java_list(self.required_scope))
        return Token(principal, round(exp * 1000), frozenset(scope), None if iat is None else round(iat * 1000))

    def _scope(self, claims: Mapping[str, Any]) -> set[str]:
        value = claims.get(self.scope_claim)
        if isinstance(value, str):
            return {value.strip()} if value.strip() else set()
        if value is None:
            return set()
        if not isinstance(value, list):
            raise ValidationFailure(f"The '{self.scope_claim}' claim was not of type List: {_java_type(value)}")
        return {str(s).strip() for s in value if str(s).strip()}


SIGNED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


class JwksValidator:
    """Signed JWTs against a JWKS (Kafka's OAuthBearerValidatorCallbackHandler with a file JWKS)."""

    def __init__(self, jwks: Mapping[str, Any], audience: Sequence[str] | None = None, issuer: str | None = None,
                 clock_skew_s: int = 30, scope_claim: str = "scope", sub_claim: str = "sub"):
        self.audience = list(audience or ()) or None
        self.issuer, self.clock_skew_s = issuer, clock_skew_s
        self.scope_claim, self.sub_claim = scope_claim, sub_claim
        self._keys = jwt.PyJWKSet.from_dict(dict(jwks)).keys

    @classmethod
    def from_url(cls, url: str, **kw) -> JwksValidator:
        """A `file:` URL (Kafka's sasl.oauthbearer.jwks.endpoint.url for a JWKS on disk)."""
        parsed = urlparse(url)
        if parsed.scheme != "file":
            raise ValueError(f"sasl.oauthbearer.jwks.endpoint.url: only file URLs are supported, not {url}")
        return cls(json.loads(Path(unquote(parsed.path)).read_text()), **kw)

    def validate(self, token: str, now_ms: int) -> Token:
        try:
            header = jwt.get_unverified_header(token)
            alg = header.get("alg")
            if alg not in SIGNED_ALGORITHMS:
                raise jwt.InvalidAlgorithmError(f"the algorithm {alg!r} is not allowed")
            kid = header.get("kid")
            kty = "EC" if alg.startswith("ES") else "RSA"
            keys = [k for k in self._keys if (kid is None or k.key_id == kid) and k.key_type == kty]
            if not keys:
                raise jwt.InvalidKeyError(f"no {kty} key in the JWKS for kid {kid!r}")
            claims, last = None, None
            for key in keys:
                try:
                    claims = jwt.decode(token, key.key, algorithms=[alg], audience=self.audience,
                                        issuer=self.issuer, options={"require": ["exp", "iat"], "verify_exp": False,
                                                                     "verify_nbf": False, "verify_iat": False})
                    break
                except jwt.InvalidSignatureError as e:
                    last = e
            if claims is None:
                raise last
        except jwt.PyJWTError as e:
            raise ValidationFailure(f"Could not validate the access token: {e}") from None
        exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf")
        if not _number(exp) or not _number(iat) or nbf is not None and not _number(nbf):
            raise ValidationFailure("Could not validate the access token: exp, iat and nbf must be numbers")
        if now_ms - self.clock_skew_s * 1000 >= exp * 1000:
            raise ValidationFailure(f"Could not validate the access token: the JWT is no longer valid (exp {exp}, "
                                    f"now {now_ms} ms, allowed clock skew {self.clock_skew_s} s)")
        if nbf is not None and now_ms + self.clock_skew_s * 1000 < nbf * 1000:
            raise ValidationFailure(f"Could not validate the access token: the JWT is not yet valid (nbf {nbf})")
        scope = claims.get(self.scope_claim)
        scopes = [scope] if isinstance(scope, str) else list(scope) if isinstance(scope, list) else []
        if any(not isinstance(s, str) or not s.strip() for s in scopes) or len(set(scopes)) != len(scopes):
            raise ValidationFailure(f"{self.scope_claim} value must be non-empty strings without duplicates")
        sub = claims.get(self.sub_claim)
        if not isinstance(sub, str) or not sub.strip():
            raise ValidationFailure(f"{self.sub_claim} value must be non-null and non-empty")
        if exp < 0 or iat < 0:
            raise ValidationFailure("exp and iat must be non-negative")
        return Token(sub.strip(), round(exp * 1000), frozenset(s.strip() for s in scopes), round(iat * 1000))


_SASLNAME = r"(?:[\x01-\x2b\x2d-\x3c\x3e-\x7f]|=2C|=3D)+"
_KEY = r"[A-Za-z]+"
_VALUE = r"[\x21-\x7e \t\r\n]+"
CLIENT_INITIAL = re.compile(rf"n,(?:a=(?P<authzid>{_SASLNAME}))?,\x01(?P<kvpairs>(?:{_KEY}={_VALUE}\x01)*)\x01")
AUTH = re.compile(r"(?P<scheme>[A-Za-z0-9_]+) +(?P<token>[-_~+/.a-zA-Z0-9]+=*)")


class OAuthBearerServer:
    def __init__(self, validator: Validator):
        self.name = NAME
        self._validator = validator
        self.complete = False
        self.authorization_id = ""
        self.credential_expiry_ms: int | None = None
        self.extensions: dict[str, str] = {}
        self._error: str | None = None

    def evaluate(self, token: bytes, now_ms: int) -> bytes:
        if self.complete:
            raise SaslError("Unexpected challenge in Sasl server state COMPLETE")
        if bytes(token) == b"\x01" and self._error is not None:
            raise SaslAuthenticationError(self._error)
        self._error = None
        m = CLIENT_INITIAL.fullmatch(bytes(token).decode("utf-8", "replace"))
        if m is None:
            raise SaslError("Invalid OAUTHBEARER client first message")
        pairs = dict(kv.split("=", 1) for kv in m["kvpairs"].split("\x01") if kv)
        auth = pairs.pop("auth", None)
        if auth is None:
            raise SaslError("Invalid OAUTHBEARER client first message: 'auth' not specified")
        a = AUTH.fullmatch(auth)
        if a is None:
            raise SaslError("Invalid OAUTHBEARER client first message: invalid 'auth' format")
        if a["scheme"].lower() != "bearer":
            raise SaslError(f"Invalid scheme in OAUTHBEARER client first message: {a['scheme']}")
        try:
            found = self._validator.validate(a["token"], now_ms)
        except ValidationFailure as e:
            status = "insufficient_scope" if e.scope is not None else "invalid_token"
            self._error = f'{{"status":"{status}"' + (f', "scope":"{e.scope}"' if e.scope is not None else "") + "}"
            return self._error.encode()
        authzid = m["authzid"] or ""
        if authzid and authzid != found.principal:
            raise SaslAuthenticationError(
                f"Authentication failed: Client requested an authorization id ({authzid}) that is different from "
                f"the token's principal name ({found.principal})")
        self.extensions = pairs
        self.authorization_id = found.principal
        self.credential_expiry_ms = found.lifetime_ms
        self.complete = True
        return b""


def unsecured_token(principal: str, exp_s: float, iat_s: float | None = None, scope: Sequence[str] | None = None,
                    claim: str = "sub") -> str:
    """An unsecured JWS as Kafka's unsecured login callback handler makes one (for tests and tools)."""
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {claim: principal, "exp": exp_s}
    if iat_s is not None:
        claims["iat"] = iat_s
    if scope is not None:
        claims["scope"] = list(scope)
    return f"{part({'alg': 'none'})}.{part(claims)}."
