"""The SASL mechanisms' server sides, driven by kafka-python's client mechanisms and by RFC 7677's
example, and fuzzed: a bad exchange fails with an error, never anything else."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.net.sasl.oauth import AbstractTokenProvider, SaslMechanismOAuth
from kafka.net.sasl.plain import SaslMechanismPlain
from kafka.net.sasl.scram import SaslMechanismScram

from kafka_compat.security.jaas import JaasError, parse_jaas, plain_users
from kafka_compat.security.sasl import SaslAuthenticationError, SaslError
from kafka_compat.security.sasl.oauthbearer import (
    JwksValidator,
    OAuthBearerServer,
    UnsecuredValidator,
    unsecured_token,
)
from kafka_compat.security.sasl.plain import PlainServer
from kafka_compat.security.sasl.scram import (
    SCRAM_SHA_256,
    SCRAM_SHA_512,
    ScramCredential,
    ScramServer,
    new_credential,
    username,
)

NOW_MS = int(time.time() * 1000)


def drive(client, server, now_ms=NOW_MS):
    """A kafka-python client mechanism against a server mechanism, token by token."""
    while not client.is_done():
        reply = server.evaluate(client.auth_bytes(), now_ms)
        client.receive(reply)
    return client.is_authenticated() and server.complete


# -- PLAIN ----------------------------------------------------------------------------------

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" user_admin="admin-secret" user_alice="alice secret";')


def plain(user, password):
    return SaslMechanismPlain(sasl_plain_username=user, sasl_plain_password=password)


def test_plain_authenticates_the_users_of_the_jaas_entry():
    server = PlainServer(plain_users(parse_jaas(JAAS)))
    assert drive(plain("alice", "alice secret"), server) and server.authorization_id == "alice"


@pytest.mark.parametrize("token, message", [
    (b"\0alice\0wrong", "Authentication failed: Invalid username or password"),
    (b"\0mallory\0x", "Authentication failed: Invalid username or password"),
    (b"\0\0x", "Authentication failed: username not specified"),
    (b"\0alice\0", "Authentication failed: password not specified"),
    (b"alice\0x", "Invalid SASL/PLAIN response: expected 3 tokens, got 2"),
    (b"a\0b\0c\0d", "Invalid SASL/PLAIN response: expected 3 tokens, got 4"),
    (b"bob\0alice\0alice secret",
     "Authentication failed: Client requested an authorization id that is different from username"),
])
def test_plain_refusals_say_why(token, message):
    with pytest.raises(SaslAuthenticationError, match=f"^{message}$"):
        PlainServer({"alice": "alice secret"}).evaluate(token, NOW_MS)


# -- JAAS -----------------------------------------------------------------------------------

def test_jaas_parses_as_kafka_does():
    entries = parse_jaas("""
        // a comment
        org.apache.kafka.common.security.plain.PlainLoginModule required /* block */
            user_a="x\\"y" user_b='single' user_c=word.with-dots_and$;
        other.Module optional key="v";""")
    assert [(e.login_module, e.flag) for e in entries] == [
        ("org.apache.kafka.common.security.plain.PlainLoginModule", "REQUIRED"), ("other.Module", "OPTIONAL")]
    assert plain_users(entries) == {"a": 'x"y', "b": "single", "c": "word.with-dots_and$"}


@pytest.mark.parametrize("text, message", [
    ("", "Login module not specified in JAAS config"),
    ("a.Module", "Login module control flag not specified in JAAS config"),
    ("a.Module always;", "Invalid login module control flag 'always' in JAAS config"),
    ("a.Module required k=123;", "Value not specified for key 'k' in JAAS config"),
    ("a.Module required k=\"v\"", "JAAS config entry not terminated by semi-colon"),
])
def test_jaas_refusals_carry_kafkas_message(text, message):
    with pytest.raises(JaasError, match=f"^{message}$"):
        parse_jaas(text)


# -- SCRAM ----------------------------------------------------------------------------------

def scram_client(user, password, mech):
    return SaslMechanismScram(sasl_plain_username=user, sasl_plain_password=password, sasl_mechanism=mech.name)


@pytest.mark.parametrize("mech", [SCRAM_SHA_256, SCRAM_SHA_512])
def test_scram_authenticates_kafka_pythons_client(mech):
    creds = {"alice": new_credential(mech, "alice-secret", 4096)}
    server = ScramServer(mech, creds.get)
    assert drive(scram_client("alice", "alice-secret", mech), server) and server.authorization_id == "alice"


def test_scram_matches_rfc_7677s_example():
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    server = ScramServer(SCRAM_SHA_256, {"user": new_credential(SCRAM_SHA_256, "pencil", 4096, salt)}.get,
                         nonce=lambda: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    first = server.evaluate(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", NOW_MS)
    assert first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final = server.evaluate(b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                            b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", NOW_MS)
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" and server.complete


def test_scram_refuses_a_wrong_password_an_unknown_user_and_a_weak_credential():
    creds = {"alice": new_credential(SCRAM_SHA_256, "right", 4096),
             "weak": new_credential(SCRAM_SHA_256, "pw", 4095)}
    with pytest.raises(SaslError, match="Invalid client credentials"):
        drive(scram_client("alice", "wrong", SCRAM_SHA_256), ScramServer(SCRAM_SHA_256, creds.get))
    with pytest.raises(SaslError, match="Invalid user credentials"):
        drive(scram_client("mallory", "x", SCRAM_SHA_256), ScramServer(SCRAM_SHA_256, creds.get))
    with pytest.raises(SaslError, match="Iterations 4095 is less than the minimum 4096 for SCRAM-SHA-256"):
        drive(scram_client("weak", "pw", SCRAM_SHA_256), ScramServer(SCRAM_SHA_256, creds.get))


def scram_first(server, message=b"n,,n=alice,r=abc"):
    return server.evaluate(message, NOW_MS).decode()


def test_scram_checks_the_nonce_the_channel_binding_and_the_authorization_id():
    creds = {"alice": new_credential(SCRAM_SHA_256, "pw")}.get
    server = ScramServer(SCRAM_SHA_256, creds, nonce=lambda: "xyz")
    scram_first(server)
    with pytest.raises(SaslError, match="Invalid client nonce"):
        server.evaluate(b"c=biws,r=abcxyQ,p=" + base64.b64encode(bytes(32)), NOW_MS)
    server = ScramServer(SCRAM_SHA_256, creds, nonce=lambda: "xyz")
    scram_first(server)
    with pytest.raises(SaslError, match="Invalid channel binding"):
        server.evaluate(b"c=eSws,r=abcxyz,p=" + base64.b64encode(bytes(32)), NOW_MS)
    with pytest.raises(SaslAuthenticationError, match="authorization id that is different"):
        scram_first(ScramServer(SCRAM_SHA_256, creds), b"n,a=bob,n=alice,r=abc")
    with pytest.raises(SaslError, match="Invalid SCRAM client first message format"):
        scram_first(ScramServer(SCRAM_SHA_256, creds), b"p=tls-unique,,n=alice,r=abc")


def scram_proof(mech, password, salt, iterations, auth_message):
    """A client's proof (RFC 5802), for exchanges kafka-python's client cannot make."""
    salted = hashlib.pbkdf2_hmac(mech.hash, password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", mech.hash)
    signature = hmac.digest(hashlib.new(mech.hash, client_key).digest(), auth_message, mech.hash)
    return base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature)))


def test_scram_token_authentication_asks_the_delegation_tokens():
    token_cred = new_credential(SCRAM_SHA_256, "hmac-of-token", 4096, b"salt")
    server = ScramServer(SCRAM_SHA_256, lambda u: None, tokens={"tok1": ("alice", token_cred, NOW_MS + 5000)}.get,
                         nonce=lambda: "S")
    bare = b"n=tok1,r=C,tokenauth=true"
    first = server.evaluate(b"n,," + bare, NOW_MS)
    without_proof = b"c=biws,r=CS"
    proof = scram_proof(SCRAM_SHA_256, "hmac-of-token", b"salt", 4096, bare + b"," + first + b"," + without_proof)
    server.evaluate(without_proof + b",p=" + proof, NOW_MS)
    assert server.complete and server.authorization_id == "alice" and server.credential_expiry_ms == NOW_MS + 5000
    assert server.token_authenticated
    with pytest.raises(SaslError, match="Token Authentication failed: Invalid tokenId : tok2"):
        ScramServer(SCRAM_SHA_256, lambda u: None).evaluate(b"n,,n=tok2,r=a,tokenauth=true", NOW_MS)


def test_scram_user_names_escape_comma_and_equals():
    assert username("a=2Cb=3Dc") == "a,b=c"
    with pytest.raises(ValueError):
        username("a=b")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=200))
def test_scram_fuzzed_exchanges_fail_cleanly(first, final):
    server = ScramServer(SCRAM_SHA_512, {"alice": new_credential(SCRAM_SHA_512, "pw", 4096, b"s")}.get)
    try:
        server.evaluate(first, NOW_MS)
        server.evaluate(final, NOW_MS)
    except SaslError:
        pass
    assert not server.complete


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=60))
def test_scram_garbled_messages_of_the_right_shape_fail_cleanly(nonce, proof):
    server = ScramServer(SCRAM_SHA_256, {"alice": ScramCredential(b"s", bytes(32), bytes(32), 4096)}.get)
    try:
        scram_first(server, f"n,,n=alice,r={nonce or 'x'}".encode())
        server.evaluate(f"c=biws,r={nonce},p={proof}".encode(), NOW_MS)
    except SaslError:
        pass
    assert not server.complete


# -- OAUTHBEARER ------------------------------------------------------------------------------

class Provider(AbstractTokenProvider):
    def __init__(self, value, extensions=None):
        self.value, self.ext = value, extensions or {}

    def token(self):
        return self.value

    def extensions(self):
        return self.ext


def oauth(token, **ext):
    return SaslMechanismOAuth(sasl_oauth_token_provider=Provider(token, ext))


def test_an_unsecured_token_authenticates_its_subject_until_it_expires():
    server = OAuthBearerServer(UnsecuredValidator())
    token = unsecured_token("alice", NOW_MS / 1000 + 60, NOW_MS / 1000, ["read"])
    assert drive(oauth(token, traceId="t1"), server)
    assert server.authorization_id == "alice" and server.credential_expiry_ms == round((NOW_MS / 1000 + 60) * 1000)
    assert server.extensions == {"traceId": "t1"}


def test_a_refused_token_is_answered_with_rfc_7628s_error_then_fails_on_the_clients_ack():
    server = OAuthBearerServer(UnsecuredValidator())
    client = oauth(unsecured_token("alice", NOW_MS / 1000 - 1))
    error = server.evaluate(client.auth_bytes(), NOW_MS)
    assert json.loads(error) == {"status": "invalid_token"} and not server.complete
    client.receive(error)
    with pytest.raises(SaslAuthenticationError, match='^{"status":"invalid_token"}$'):
        server.evaluate(client.auth_bytes(), NOW_MS)


@pytest.mark.parametrize("options, token, reason", [
    ({}, "e30.e30.", "Unsecured JWS must have 'none' for an algorithm"),
    ({}, unsecured_token("a", 9e9) + "sig", "Unsecured JWS must not contain a digital signature"),
    ({}, "a..b", "Malformed compact serialization contains '..'"),
    ({}, "a.b", "Unsecured JWS compact serializations must have 3 dot-separated Base64URL-encoded values"),
    ({}, "!!!.e30.", "malformed Base64 URL encoded value"),
    ({}, unsecured_token("", 9e9), "No principal name in JWT claim: sub"),
    ({}, unsecured_token("alice", 1.0), "minus allowable clock skew (0 ms) was on or after the Expiration Time"),
    ({}, unsecured_token("alice", 9e9, 8e9), "The Issued At value (8000000000.000000 seconds) was after"),
    ({"unsecuredValidatorRequiredScope": "admin"}, unsecured_token("alice", 9e9, scope=["read"]),
     "The provided scope ([read]) was missing a required scope (admin)."),
    ({"unsecuredValidatorPrincipalClaimName": "user"}, unsecured_token("alice", 9e9), "No principal name in JWT"),
])
def test_unsecured_validator_refusals(options, token, reason):
    from kafka_compat.security.sasl.oauthbearer import ValidationFailure

    with pytest.raises(ValidationFailure) as e:
        UnsecuredValidator(options).validate(token, NOW_MS)
    assert reason in e.value.reason


def test_a_missing_scope_answers_insufficient_scope():
    server = OAuthBearerServer(UnsecuredValidator({"unsecuredValidatorRequiredScope": "admin write"}))
    error = server.evaluate(oauth(unsecured_token("alice", 9e9)).auth_bytes(), NOW_MS)
    assert error == b'{"status":"insufficient_scope", "scope":"[admin, write]"}'


def keys():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks = {"keys": [dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), kid="r1",
                          alg="RS256"),
                     dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), kid="e1", alg="ES256")]}
    return rsa_key, ec_key, jwks


def signed(key, alg, kid, **claims):
    body = {"sub": "alice", "iat": NOW_MS // 1000, "exp": NOW_MS // 1000 + 300, "aud": "kafka", "iss": "idp"} | claims
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": kid})


def test_signed_tokens_are_checked_against_the_jwks_audience_and_issuer(tmp_path):
    rsa_key, ec_key, jwks = keys()
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    validator = JwksValidator.from_url(path.as_uri(), audience=["kafka"], issuer="idp")
    assert validator.validate(signed(rsa_key, "RS256", "r1"), NOW_MS).principal == "alice"
    assert validator.validate(signed(ec_key, "ES256", "e1", scope="a b"), NOW_MS).scope == {"a b"}
    server = OAuthBearerServer(validator)
    assert drive(oauth(signed(ec_key, "ES256", "e1")), server) and server.authorization_id == "alice"


@pytest.mark.parametrize("change", [
    dict(aud="other"), dict(iss="evil"), dict(exp=NOW_MS // 1000 - 31), dict(iat=None), dict(sub=None),
    dict(kid="r1"),  # an EC signature under the RSA key's id
])
def test_signed_tokens_that_fail_a_check_are_invalid(change):
    from kafka_compat.security.sasl.oauthbearer import ValidationFailure

    rsa_key, ec_key, jwks = keys()
    validator = JwksValidator(jwks, audience=["kafka"], issuer="idp")
    kid = change.pop("kid", "e1")
    with pytest.raises(ValidationFailure, match="Could not validate|must be"):
        validator.validate(signed(ec_key, "ES256", kid, **change), NOW_MS)
    unsigned = unsecured_token("alice", NOW_MS / 1000 + 60)
    with pytest.raises(ValidationFailure, match="not allowed"):
        validator.validate(unsigned, NOW_MS)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_oauthbearer_fuzzed_messages_fail_cleanly(token):
    server = OAuthBearerServer(UnsecuredValidator())
    try:
        server.evaluate(token, NOW_MS)
    except SaslError:
        pass
    assert not server.complete
