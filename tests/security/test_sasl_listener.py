"""A listener's SASL setup from Kafka's keys: what it enables, and the settings it refuses up front."""

import json
import re

import pytest

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.security.sasl.authenticator import Authenticated
from kafka_compat.security.sasl.listener import SaslConfigError, authenticators
from tests.security.test_authenticator import NOW, frame, handshake, response
from tests.security.test_sasl_mechanisms import NOW_MS, keys, signed

IMAGE = MetadataImage(cluster_id="c")
PLAIN_JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="a";'


def plain_login(auth, user="alice", password="a"):
    handshake(auth, "PLAIN")
    token = f"\0{user}\0{password}".encode()
    return auth.receive(frame(m.SaslAuthenticateRequest(auth_bytes=token), 2), NOW)


def test_the_listeners_own_keys_win_over_the_plain_ones():
    config = {"sasl.enabled.mechanisms": "SCRAM-SHA-256",
              "listener.name.external.sasl.enabled.mechanisms": "PLAIN",
              "listener.name.external.plain.sasl.jaas.config": PLAIN_JAAS,
              "listener.name.external.plain.connections.max.reauth.ms": "30000"}
    events = plain_login(authenticators(config, "EXTERNAL", lambda: IMAGE)())
    assert events[-1] == Authenticated("User:alice", "PLAIN", NOW + 30_000)


@pytest.mark.parametrize("config, message", [
    ({}, "GSSAPI (Kerberos) is not supported"),
    ({"sasl.enabled.mechanisms": "PLAIN"}, "PLAIN needs listener.name.sasl_plaintext.plain.sasl.jaas.config"),
    ({"sasl.enabled.mechanisms": "DIGEST-MD5"}, "unknown mechanism DIGEST-MD5"),
    ({"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.server.callback.handler.class":
      "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"},
     "sasl.oauthbearer.jwks.endpoint.url must be set"),
    ({"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.server.callback.handler.class":
      "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
      "sasl.oauthbearer.jwks.endpoint.url": "https://idp/jwks"}, "only file URLs are supported"),
    ({"sasl.enabled.mechanisms": "PLAIN", "sasl.jaas.config": "x.Module required a=1;"}, "Value not specified"),
])
def test_settings_that_cannot_work_are_refused_up_front(config, message):
    with pytest.raises((SaslConfigError, ValueError), match=re.escape(message)):
        authenticators(config, "SASL_PLAINTEXT", lambda: IMAGE)


def test_oauthbearer_with_a_jwks_file_and_its_expectations(tmp_path):
    _, ec_key, jwks = keys()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    factory = authenticators({"sasl.enabled.mechanisms": "OAUTHBEARER",
                              "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class":
                                  "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                              "sasl.oauthbearer.jwks.endpoint.url": path.as_uri(),
                              "sasl.oauthbearer.expected.audience": "other,kafka",
                              "sasl.oauthbearer.expected.issuer": "idp"}, "SASL_SSL", lambda: IMAGE)

    def login(token):
        auth = factory()
        handshake(auth, "OAUTHBEARER")
        message = f"n,,\x01auth=Bearer {token}\x01\x01".encode()
        return auth.receive(frame(m.SaslAuthenticateRequest(auth_bytes=message), 2), NOW_MS)

    events = login(signed(ec_key, "ES256", "e1"))
    assert events[-1].principal == "User:alice" and events[-1].session_expiry_ms == (NOW_MS // 1000 + 300) * 1000
    (refusal,) = login(signed(ec_key, "ES256", "e1", iss="elsewhere"))
    answer = response(refusal, m.ApiKey.SASL_AUTHENTICATE, 2)
    assert answer.error_code == 0 and answer.auth_bytes == b'{"status":"invalid_token"}'
