"""The SASL handshake state machine: frames in, frames and outcomes out, as Kafka's
SaslServerAuthenticator answers them. Tokens come from kafka-python's client mechanisms."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.net.sasl.oauth import AbstractTokenProvider, SaslMechanismOAuth
from kafka.net.sasl.plain import SaslMechanismPlain
from kafka.net.sasl.scram import SaslMechanismScram

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.security.sasl.authenticator import Authenticated, Failed, SaslAuthenticator, Send, Serve
from kafka_compat.security.sasl.oauthbearer import OAuthBearerServer, UnsecuredValidator, unsecured_token
from kafka_compat.security.sasl.plain import PlainServer
from kafka_compat.security.sasl.scram import SCRAM_SHA_256, ScramServer, new_credential

NOW = 1_700_000_000_000
USERS = {"alice": "alice-pw", "bob": "bob-pw"}
CREDS = {"alice": new_credential(SCRAM_SHA_256, "alice-pw")}


def authenticator(**kw):
    return SaslAuthenticator({"PLAIN": lambda: PlainServer(USERS),
                              "SCRAM-SHA-256": lambda: ScramServer(SCRAM_SHA_256, CREDS.get),
                              "OAUTHBEARER": lambda: OAuthBearerServer(UnsecuredValidator())}, **kw)


def frame(request, version, correlation_id=7, client_id="test"):
    return b"".join(bytes(p) for p in framing.request_frame(request, version, correlation_id, client_id)[1:])


def response(event, api_key, version):
    assert isinstance(event, Send | Failed)
    parts = event.parts if isinstance(event, Send) else event.response
    body = b"".join(bytes(p) for p in parts)
    assert int.from_bytes(body[:4], "big") == len(body) - 4
    return framing.read_response(body[4:], api_key, version)[1]


def handshake(auth, mechanism, version=1):
    (event,) = auth.receive(frame(m.SaslHandshakeRequest(mechanism=mechanism), version), NOW)
    return event


def authenticate(auth, token, version=2, now=NOW):
    return auth.receive(frame(m.SaslAuthenticateRequest(auth_bytes=token), version), now)


def run(auth, client, version=2, now=NOW):
    """The client's tokens in SaslAuthenticate requests until it is done; the last events."""
    while True:
        events = authenticate(auth, client.auth_bytes(), version, now)
        reply = response(events[0], m.ApiKey.SASL_AUTHENTICATE, version)
        if reply.error_code or client.is_done():
            return events
        client.receive(reply.auth_bytes)
        if client.is_done():
            return events


def plain(user="alice", password="alice-pw"):
    return SaslMechanismPlain(sasl_plain_username=user, sasl_plain_password=password)


def test_api_versions_then_handshake_then_authenticate():
    auth = authenticator()
    api_versions = frame(m.ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3)
    assert auth.receive(api_versions, NOW) == [Serve(api_versions)]
    ok = response(handshake(auth, "PLAIN"), m.ApiKey.SASL_HANDSHAKE, 1)
    assert ok.error_code == 0 and ok.mechanisms == ["PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"]
    events = run(auth, plain())
    assert response(events[0], m.ApiKey.SASL_AUTHENTICATE, 2).error_code == 0
    assert events[1] == Authenticated("User:alice", "PLAIN", None) and auth.complete


def test_an_unknown_mechanism_is_refused_with_the_enabled_ones():
    (failed,) = authenticator().receive(frame(m.SaslHandshakeRequest(mechanism="GSSAPI"), 1), NOW)
    assert failed.reason == "Unsupported SASL mechanism GSSAPI"
    answer = response(failed, m.ApiKey.SASL_HANDSHAKE, 1)
    assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM and "PLAIN" in answer.mechanisms


def test_a_wrong_password_fails_with_the_mechanisms_words_or_kafkas_generic_ones():
    auth = authenticator()
    handshake(auth, "PLAIN")
    (failed,) = run(auth, plain(password="nope"))
    answer = response(failed, m.ApiKey.SASL_AUTHENTICATE, 2)
    assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert answer.error_message == "Authentication failed: Invalid username or password" == failed.reason
    auth = authenticator()
    handshake(auth, "SCRAM-SHA-256")
    client = SaslMechanismScram(sasl_plain_username="alice", sasl_plain_password="nope",
                                sasl_mechanism="SCRAM-SHA-256")
    (failed,) = run(auth, client)
    assert failed.reason == ("Authentication failed during authentication due to invalid credentials with SASL "
                             "mechanism SCRAM-SHA-256") and failed.detail == "Invalid client credentials"
    assert response(failed, m.ApiKey.SASL_AUTHENTICATE, 2).error_message == failed.reason


def test_after_a_v0_handshake_tokens_travel_raw():
    auth = authenticator()
    handshake(auth, "SCRAM-SHA-256", version=0)
    client = SaslMechanismScram(sasl_plain_username="alice", sasl_plain_password="alice-pw",
                                sasl_mechanism="SCRAM-SHA-256")
    while not client.is_done():
        events = auth.receive(client.auth_bytes(), NOW)
        raw = b"".join(bytes(p) for p in events[0].parts)
        client.receive(raw[4:])
    assert events[-1] == Authenticated("User:alice", "SCRAM-SHA-256", None) and client.is_authenticated()


def test_requests_other_than_the_handshakes_are_refused_before_authentication():
    (failed,) = authenticator().receive(frame(m.MetadataRequest(topics=[]), 12), NOW)
    assert failed == Failed("Unexpected Kafka request of type METADATA during SASL handshake.")
    (failed,) = authenticator().receive(b"\x60\x82\x01\x00garbage", NOW)
    assert failed.reason == "Exception handling first SASL packet from client, GSSAPI is not supported by server"
    auth = authenticator()
    handshake(auth, "PLAIN")
    (failed,) = auth.receive(frame(m.ListGroupsRequest(), 4), NOW)
    assert failed.reason == "Unexpected Kafka request of type LIST_GROUPS during SASL authentication."
    assert response(failed, m.ApiKey.LIST_GROUPS, 4).error_code == ErrorCode.ILLEGAL_SASL_STATE


def test_the_session_lasts_connections_max_reauth_ms_or_until_the_token_expires():
    auth = authenticator(max_reauth_ms={"PLAIN": 60_000, "OAUTHBEARER": 60_000})
    handshake(auth, "PLAIN")
    events = run(auth, plain())
    assert response(events[0], m.ApiKey.SASL_AUTHENTICATE, 2).session_lifetime_ms == 60_000
    assert events[1].session_expiry_ms == NOW + 60_000
    assert not auth.session_expired(NOW + 59_999) and auth.session_expired(NOW + 60_000)

    class Token(AbstractTokenProvider):
        def token(self):
            return unsecured_token("carol", (NOW + 10_000) / 1000)

    auth = authenticator(max_reauth_ms={"OAUTHBEARER": 60_000})
    handshake(auth, "OAUTHBEARER")
    events = run(auth, SaslMechanismOAuth(sasl_oauth_token_provider=Token()))
    assert response(events[0], m.ApiKey.SASL_AUTHENTICATE, 2).session_lifetime_ms == 10_000
    assert events[1] == Authenticated("User:carol", "OAUTHBEARER", NOW + 10_000)


def test_an_expired_token_fails_with_rfc_7628s_error_as_the_message():
    class Token(AbstractTokenProvider):
        def token(self):
            return unsecured_token("carol", (NOW - 1) / 1000)

    auth = authenticator()
    handshake(auth, "OAUTHBEARER")
    (failed,) = run(auth, SaslMechanismOAuth(sasl_oauth_token_provider=Token()))
    assert failed.reason == '{"status":"invalid_token"}'


def reauthenticated(user, password="x", mechanism="PLAIN"):
    auth = authenticator(max_reauth_ms={"PLAIN": 1000})
    handshake(auth, "PLAIN")
    run(auth, plain())
    ok = response(handshake(auth, mechanism), m.ApiKey.SASL_HANDSHAKE, 1)
    assert ok.error_code == 0 and not auth.complete
    return auth, run(auth, plain(user, password), now=NOW + 900)


def test_a_client_that_can_reauthenticates_as_the_same_principal():
    auth, events = reauthenticated("alice", "alice-pw")
    assert events[1] == Authenticated("User:alice", "PLAIN", NOW + 1900, reauthentication=True)


def test_reauthentication_may_not_change_the_principal_or_the_mechanism():
    _, (failed,) = reauthenticated("bob", "bob-pw")
    assert failed.reason == "Cannot change principals during re-authentication from User.alice: User.bob"
    auth = authenticator()
    handshake(auth, "PLAIN")
    run(auth, plain())
    handshake(auth, "SCRAM-SHA-256")
    (failed,) = authenticate(auth, b"n,,n=alice,r=x")
    assert failed.reason == ("SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for "
                             "re-authentication of mechanism 'PLAIN'")


def test_after_authentication_the_sasl_apis_are_illegal_for_a_client_that_cannot_reauthenticate():
    auth = authenticator()
    handshake(auth, "PLAIN")
    run(auth, plain(), version=0)
    (sent,) = auth.receive(frame(m.SaslHandshakeRequest(mechanism="PLAIN"), 1), NOW)
    assert response(sent, m.ApiKey.SASL_HANDSHAKE, 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    (sent,) = authenticate(auth, b"\0alice\0alice-pw", 1)
    answer = response(sent, m.ApiKey.SASL_AUTHENTICATE, 1)
    assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE and auth.complete
    metadata = frame(m.MetadataRequest(topics=[]), 12)
    assert auth.receive(metadata, NOW) == [Serve(metadata)]


def test_a_frame_above_the_sasl_limit_fails_authentication():
    auth = authenticator(max_receive_size=1024)
    assert auth.max_frame == 1024
    assert auth.oversized().reason == "Failing SASL authentication due to invalid receive size"
    assert isinstance(auth.receive(frame(m.SaslHandshakeRequest(mechanism="PLAIN"), 1), NOW)[0], Failed)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=5), st.sampled_from(["PLAIN", "SCRAM-SHA-256", "OAUTHBEARER"]),
       st.sampled_from([0, 1]))
def test_fuzzed_exchanges_end_in_events_never_in_exceptions(tokens, mechanism, version):
    auth = authenticator()
    handshake(auth, mechanism, version)
    for token in tokens:
        for event in auth.receive(token if version == 0 else frame(m.SaslAuthenticateRequest(auth_bytes=token), 2),
                                  NOW):
            assert isinstance(event, Send | Failed)


@pytest.mark.parametrize("prefix", [b"", b"\x00\x11", b"\x00\x24\x00\x02\x00\x00\x00\x01\xff\xff"])
@settings(max_examples=100, deadline=None)
@given(tail=st.binary(max_size=60))
def test_fuzzed_frames_before_the_handshake_end_in_events(prefix, tail):
    for event in authenticator().receive(prefix + tail, NOW):
        assert isinstance(event, Send | Serve | Failed)
