"""Fuzzed SASL exchanges over the wire against a real broker: truncated and mangled SCRAM
messages, bad nonces, bad base64, random tokens, oversized frames, requests out of turn, an
expired OAUTHBEARER token. Each
fails its own connection (an error answer or a close); nothing crashes and the broker goes on
authenticating everyone else."""

import random
import socket
import time

import pytest

from kafka_compat.client import BrokerConnection
from kafka_compat.client.security import ClientSecurity
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import join
from kafka_compat.security.sasl.oauthbearer import unsecured_token
from tests.security.secure_broker import running_broker

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from running_broker(tmp_path_factory)


def recv_frame(s: socket.socket) -> bytes | None:
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    size, body = framing.SIZE.unpack(head)[0], b""
    while len(body) < size:
        chunk = s.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def authenticate_tokens(port: int, mechanism: str, tokens: list[bytes]) -> list[int]:
    """Handshake, then each token in a SaslAuthenticate; the error codes answered until the close."""
    codes = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(join(framing.request_frame(m.SaslHandshakeRequest(mechanism=mechanism), 1, 1, "fuzz")))
        frame = recv_frame(s)
        if frame is None:
            return codes
        codes.append(framing.read_response(frame, m.ApiKey.SASL_HANDSHAKE, 1)[1].error_code)
        for i, token in enumerate(tokens):
            try:
                s.sendall(join(framing.request_frame(m.SaslAuthenticateRequest(auth_bytes=token), 1, i + 2, "fuzz")))
                frame = recv_frame(s)
            except OSError:
                break
            if frame is None:
                break
            codes.append(framing.read_response(frame, m.ApiKey.SASL_AUTHENTICATE, 1)[1].error_code)
    return codes


def mutate(rng: random.Random, token: bytes) -> bytes:
    choice = rng.randrange(6)
    if choice == 0:
        return token[: rng.randrange(len(token) + 1)]  # truncated
    if choice == 1:
        return token.replace(b"r=", b"r=X", 1)  # a nonce the server never sent
    if choice == 2:
        return token.replace(b"p=", b"p=!!!", 1).replace(b"s=", b"s=*", 1)  # bad base64
    if choice == 3:
        return rng.randbytes(rng.randrange(1, 300))
    if choice == 4:
        b = bytearray(token)
        for _ in range(rng.randrange(1, 5)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    return b",".join(rng.sample(token.split(b","), len(token.split(b","))))  # attributes out of order


@pytest.mark.parametrize("seed", range(40))
def test_a_mangled_scram_exchange_fails_cleanly(broker, seed):
    rng = random.Random(seed)
    mechanism = rng.choice(["SCRAM-SHA-256", "SCRAM-SHA-512"])
    first = b"n,,n=alice,r=" + rng.randbytes(12).hex().encode()
    final = b"c=biws,r=" + rng.randbytes(12).hex().encode() + b",p=" + b"QUJD" * 8
    tokens = [mutate(rng, first) if rng.random() < 0.7 else first, mutate(rng, final)]
    codes = authenticate_tokens(broker.ports["SASL_PLAINTEXT"], mechanism, tokens)
    assert codes[:1] == [0]  # the mechanism is enabled
    assert 0 not in codes[2:] and (len(codes) < 3 or codes[-1] != 0)  # never authenticated


def test_an_oversized_sasl_frame_closes_only_that_connection(broker):
    with socket.create_connection(("127.0.0.1", broker.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(framing.SIZE.pack(10 * 1024 * 1024) + b"\x00" * 1024)
        assert recv_frame(s) is None
    assert_healthy(broker)


def test_a_request_before_authentication_closes_the_connection(broker):
    with socket.create_connection(("127.0.0.1", broker.ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(join(framing.request_frame(m.MetadataRequest(topics=None), 1, 1, "early")))
        assert recv_frame(s) is None
    assert_healthy(broker)


def assert_healthy(broker) -> None:
    security = ClientSecurity.from_properties({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
                                               "sasl.username": "alice", "sasl.password": "alice-secret"})
    with BrokerConnection.to(broker.bootstrap("SASL_PLAINTEXT"), security=security) as conn:
        assert conn.request(m.MetadataRequest(topics=None), 1).brokers


def test_the_broker_authenticates_after_the_fuzzing(broker):
    assert_healthy(broker)


def oauth(token: str) -> bytes:
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def test_an_expired_oauthbearer_token_is_refused_and_a_fresh_one_accepted(broker):
    port = broker.ports["SASL_PLAINTEXT"]
    expired = unsecured_token("carol", time.time() - 60, time.time() - 120)
    codes = authenticate_tokens(port, "OAUTHBEARER", [oauth(expired), b"\x01"])
    assert codes[0] == 0 and codes[-1] == ErrorCode.SASL_AUTHENTICATION_FAILED
    fresh = unsecured_token("carol", time.time() + 600, time.time())
    assert authenticate_tokens(port, "OAUTHBEARER", [oauth(fresh)]) == [0, 0]
