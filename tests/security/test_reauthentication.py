"""Re-authentication (KIP-368) over the wire: the broker answers a session's lifetime
(`connections.max.reauth.ms`) in SaslAuthenticate's session_lifetime_ms; librdkafka re-authenticates
on the same connection before it ends and goes on producing and consuming; a client whose SCRAM
credentials were deleted meanwhile fails its re-authentication and its connection is closed."""

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.testing.waiting import wait_until
from tests.security.secure_broker import USERS, running_broker

pytestmark = pytest.mark.timeout(120)
REAUTH_MS = 2000


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from running_broker(tmp_path_factory, **{"connections.max.reauth.ms": str(REAUTH_MS)})


def scram(user: str, password: str) -> dict:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": user,
            "sasl.password": password}


def log_events(broker, event: str) -> list[dict]:
    lines = broker.process.log_path.read_text(errors="replace").splitlines()
    return [e for e in (json.loads(line) for line in lines if f'"{event}"' in line) if e.get("event") == event]


def test_the_session_lifetime_is_connections_max_reauth_ms(broker):
    with BrokerConnection.to(broker.bootstrap("SASL_PLAINTEXT")) as conn:
        handshake = conn.request(m.SaslHandshakeRequest(mechanism="PLAIN"), 1)
        assert handshake.error_code == ErrorCode.NONE
        token = b"\0alice\0" + USERS["alice"].encode()
        answer = conn.request(m.SaslAuthenticateRequest(auth_bytes=token), 2)
    assert answer.error_code == ErrorCode.NONE
    assert answer.session_lifetime_ms == REAUTH_MS


def test_librdkafka_reauthenticates_on_its_connection_and_goes_on_producing_and_consuming(broker):
    topic = f"reauth-{uuid.uuid4().hex[:8]}"
    config = {"bootstrap.servers": broker.bootstrap("SASL_PLAINTEXT"), **scram("alice", USERS["alice"])}
    errors = []
    p = Producer({**config, "linger.ms": 0, "error_cb": errors.append})
    c = Consumer({**config, "group.id": topic, "auto.offset.reset": "earliest", "error_cb": errors.append})
    c.subscribe([topic])
    sent, got = [], []
    try:
        start = time.monotonic()
        while time.monotonic() - start < 3 * REAUTH_MS / 1000:  # three sessions' worth
            sent.append(b"v%d" % len(sent))
            p.produce(topic, sent[-1])
            p.poll(0)
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        assert p.flush(30) == 0
        wait_until(lambda: _drain(c, got) >= len(sent), "everything produced consumed")
    finally:
        c.close()
    assert sorted(got, key=lambda v: int(v[1:])) == sent
    assert [e for e in errors if e.code() == KafkaError._AUTHENTICATION] == []
    again = [e for e in log_events(broker, "authenticated") if e["principal"] == "User:alice"]
    assert len(again) >= 2 and all(e["reauthentication"] and e["mechanism"] == "SCRAM-SHA-512" for e in again)
    assert log_events(broker, "sasl_session_expired") == []  # nobody's session ran out unrenewed


def _drain(consumer: Consumer, got: list) -> int:
    msg = consumer.poll(0.2)
    if msg is not None and msg.error() is None:
        got.append(msg.value())
    return len(got)


def test_a_session_whose_scram_credentials_were_deleted_is_closed_at_reauthentication(broker):
    broker.add_scram_user("carol", "carol-secret")
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap("SASL_PLAINTEXT"), **scram("carol", "carol-secret"),
                  "error_cb": errors.append})
    p.produce("reauth-deleted", b"before")
    assert p.flush(30) == 0
    A = m.AlterUserScramCredentialsRequest
    with BrokerConnection.to(broker.bootstrap("PLAINTEXT")) as admin:
        for mechanism in (1, 2):  # SCRAM-SHA-256, -512: one request each (a user twice in one is a duplicate)
            deleted = admin.request(A(deletions=[A.ScramCredentialDeletion(name="carol", mechanism=mechanism)],
                                      upsertions=[]))
            assert [r.error_code for r in deleted.results] == [ErrorCode.NONE]

    def refused() -> bool:
        p.poll(0.2)
        return any(e.code() == KafkaError._AUTHENTICATION for e in errors)

    wait_until(refused, "the client told its re-authentication failed", timeout=30)
    reasons = broker.failures()
    assert ("Authentication failed during re-authentication due to invalid credentials with SASL mechanism "
            "SCRAM-SHA-512") in reasons, reasons
    p.purge()
