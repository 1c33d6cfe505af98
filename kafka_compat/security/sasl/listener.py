"""A listener's SASL setup from Kafka's keys: which mechanisms, with which users or validators.

    new_authenticator = authenticators(config, "SASL_SSL", lambda: broker.metadata.image)
    auth = new_authenticator()      # one per connection

Keys, each also in its `listener.name.<listener>.` form, and mechanism-specific ones also with the
mechanism's name (`listener.name.sasl_ssl.plain.sasl.jaas.config`):
`sasl.enabled.mechanisms` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; GSSAPI is not
supported), `sasl.jaas.config` (PLAIN's `user_<name>` options; OAUTHBEARER's `unsecuredValidator*`
options), `sasl.server.callback.handler.class` (OAUTHBEARER: Kafka's OAuthBearerValidatorCallbackHandler
selects JWKS validation), `sasl.oauthbearer.jwks.endpoint.url` (a file: URL),
`sasl.oauthbearer.expected.audience`, `sasl.oauthbearer.expected.issuer`,
`sasl.oauthbearer.clock.skew.seconds` (30), `sasl.oauthbearer.scope.claim.name` (scope),
`sasl.oauthbearer.sub.claim.name` (sub), `connections.max.reauth.ms` (0: no limit),
`sasl.server.max.receive.size` (524288). SCRAM users are the metadata image's credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kafka_compat.security.config import as_int, as_list, as_str, for_listener, for_mechanism
from kafka_compat.security.jaas import OAUTHBEARER_LOGIN_MODULE, parse_jaas, plain_users
from kafka_compat.security.sasl import Mechanism
from kafka_compat.security.sasl.authenticator import DEFAULT_MAX_RECEIVE_SIZE, SaslAuthenticator
from kafka_compat.security.sasl.oauthbearer import (
    JWKS_HANDLERS,
    UNSECURED_HANDLER,
    JwksValidator,
    OAuthBearerServer,
    UnsecuredValidator,
)
from kafka_compat.security.sasl.plain import PlainServer
from kafka_compat.security.sasl.scram import MECHANISMS as SCRAM
from kafka_compat.security.sasl.scram import ScramServer


class SaslConfigError(ValueError):
    """A SASL setting that cannot work, naming the key."""


def authenticators(config: Mapping[str, Any], listener: str, image: Callable[[], Any],
                   tokens=None) -> Callable[[], SaslAuthenticator]:
    """A factory of per-connection authenticators for `listener`; SaslConfigError up front for a
    setting that cannot work. `image()` is read at each SCRAM exchange (credentials change live)."""
    c = for_listener(config, listener)
    enabled = as_list(c.get("sasl.enabled.mechanisms")) or ["GSSAPI"]  # Kafka's default
    factories: dict[str, Callable[[], Mechanism]] = {}
    for mech in enabled:
        if mech == "PLAIN":
            factories[mech] = _plain(c, listener)
        elif mech in SCRAM:
            factories[mech] = _scram(SCRAM[mech], image, tokens)
        elif mech == "OAUTHBEARER":
            factories[mech] = _oauthbearer(c, listener)
        elif mech == "GSSAPI":
            raise SaslConfigError(f"listener {listener}: GSSAPI (Kerberos) is not supported; set "
                                  "sasl.enabled.mechanisms to PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
        else:
            raise SaslConfigError(f"listener {listener}: sasl.enabled.mechanisms: unknown mechanism {mech}")
    reauth = {mech: as_int(for_mechanism(c, mech, "connections.max.reauth.ms"), 0) for mech in factories}
    size = as_int(c.get("sasl.server.max.receive.size"), DEFAULT_MAX_RECEIVE_SIZE)
    return lambda: SaslAuthenticator(factories, max_reauth_ms=reauth, max_receive_size=size)


def _jaas(c: Mapping[str, Any], mech: str, listener: str):
    text = as_str(for_mechanism(c, mech, "sasl.jaas.config"))
    return parse_jaas(text) if text else None


def _plain(c: Mapping[str, Any], listener: str) -> Callable[[], Mechanism]:
    if as_str(for_mechanism(c, "PLAIN", "sasl.server.callback.handler.class")):
        raise SaslConfigError(f"listener {listener}: a custom PLAIN sasl.server.callback.handler.class is not "
                              "supported; list the users in the PlainLoginModule JAAS entry")
    entries = _jaas(c, "PLAIN", listener)
    users = plain_users(entries) if entries else {}
    if not users:
        raise SaslConfigError(f"listener {listener}: PLAIN needs listener.name.{listener.lower()}.plain."
                              "sasl.jaas.config with user_<name>=\"<password>\" options")
    return lambda: PlainServer(users)


def _scram(mech, image: Callable[[], Any], tokens) -> Callable[[], Mechanism]:
    def credentials(user: str):
        return image().scram.get((user, mech.type))

    return lambda: ScramServer(mech, credentials, tokens)


def _oauthbearer(c: Mapping[str, Any], listener: str) -> Callable[[], Mechanism]:
    handler = as_str(for_mechanism(c, "OAUTHBEARER", "sasl.server.callback.handler.class"))
    if handler in JWKS_HANDLERS:
        url = as_str(c.get("sasl.oauthbearer.jwks.endpoint.url"))
        if not url:
            raise SaslConfigError(f"listener {listener}: sasl.oauthbearer.jwks.endpoint.url must be set for "
                                  "OAuthBearerValidatorCallbackHandler")
        try:
            validator = JwksValidator.from_url(
                url, audience=as_list(c.get("sasl.oauthbearer.expected.audience")) or None,
                issuer=as_str(c.get("sasl.oauthbearer.expected.issuer")),
                clock_skew_s=as_int(c.get("sasl.oauthbearer.clock.skew.seconds"), 30),
                scope_claim=as_str(c.get("sasl.oauthbearer.scope.claim.name")) or "scope",
                sub_claim=as_str(c.get("sasl.oauthbearer.sub.claim.name")) or "sub")
        except (OSError, ValueError) as e:
            raise SaslConfigError(f"listener {listener}: sasl.oauthbearer.jwks.endpoint.url: {e}") from None
    elif handler in (None, UNSECURED_HANDLER):
        entries = _jaas(c, "OAUTHBEARER", listener) or []
        options = next((e.options for e in entries if e.login_module == OAUTHBEARER_LOGIN_MODULE), {})
        try:
            validator = UnsecuredValidator(options)
        except ValueError as e:
            raise SaslConfigError(f"listener {listener}: OAUTHBEARER JAAS options: {e}") from None
    else:
        raise SaslConfigError(f"listener {listener}: sasl.server.callback.handler.class {handler} is not supported")
    return lambda: OAuthBearerServer(validator)
