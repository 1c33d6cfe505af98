"""Real clients (librdkafka through confluent-kafka and kcat, kafka-python) authenticate through the
security cores (TLS contexts, principals, the SASL authenticator and its mechanisms, configured
from Kafka's keys) and then produce and consume through a real broker behind them (`Front`)."""

import hashlib
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError as KafkaPythonError

from kafka_compat.cli.certs import dev_certs
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.scram_control import alter_user_scram_credentials
from kafka_compat.protocol import messages as m
from kafka_compat.security.sasl.listener import authenticators
from kafka_compat.security.sasl.scram import MECHANISMS
from kafka_compat.security.tls import server_context
from kafka_compat.testing.broker_process import BrokerProcess
from tests.security.front import Front

pytestmark = pytest.mark.timeout(120)
PASSWORD = "changeit"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" '
        'user_bob="bob-secret";')


def scram_image() -> MetadataImage:
    """alice's SCRAM credentials, as an admin client's AlterUserScramCredentials puts them in the log."""
    A = m.AlterUserScramCredentialsRequest
    ups = []
    for mech in MECHANISMS.values():
        salt = uuid.uuid4().bytes
        ups.append(A.ScramCredentialUpsertion(name="alice", mechanism=mech.type, iterations=4096, salt=salt,
                                              salted_password=hashlib.pbkdf2_hmac(mech.hash, b"alice-secret", salt,
                                                                                  4096)))
    records = []
    for u in ups:  # one user per request: a user may be altered once per request
        records += alter_user_scram_credentials(MetadataImage(cluster_id="c"), A(upsertions=[u]))[0]
    return MetadataImage(cluster_id="c").apply(records)


IMAGE = scram_image()
SASL = {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return dev_certs(tmp_path_factory.mktemp("certs"), ["localhost", "127.0.0.1"], ["alice"], PASSWORD)


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    front = Front()
    broker = BrokerProcess(tmp_path_factory.mktemp("broker"),
                           overrides={"advertised.listeners": f"PLAINTEXT://127.0.0.1:{front.port}"})
    front.upstream_port = broker.port
    broker.start()
    yield front
    front.close()
    broker.stop()


def sasl(front, listener="SASL_PLAINTEXT", ssl_context=None):
    return front.configure(ssl_context, authenticators(SASL, listener, lambda: IMAGE))


def tls(certs, **more):
    return server_context({"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["broker.p12"]),
                           "ssl.keystore.password": PASSWORD, "ssl.truststore.type": "PEM",
                           "ssl.truststore.location": str(certs["ca.pem"]), **more})


def confluent_round_trip(front, config: dict, n: int = 5) -> list[bytes]:
    topic, bootstrap = f"sec-{uuid.uuid4().hex[:8]}", f"127.0.0.1:{front.port}"
    p = Producer({"bootstrap.servers": bootstrap, **config})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest", **config})
    try:
        c.subscribe([topic])
        got, deadline = [], time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            msg = c.poll(1)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        return got
    finally:
        c.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_librdkafka_produces_and_consumes_in_a_group_after_sasl(front, mechanism):
    sasl(front)
    got = confluent_round_trip(front, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                                       "sasl.username": "alice", "sasl.password": "alice-secret"})
    assert got == [b"v%d" % i for i in range(5)]
    assert set(front.principals) == {"User:alice"} and front.failures == []


def test_librdkafka_with_an_unsecured_oauthbearer_token(front):
    sasl(front)
    got = confluent_round_trip(front, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
                                       "enable.sasl.oauthbearer.unsecure.jwt": True,
                                       "sasl.oauthbearer.config": "principal=carol scope=kafka"})
    assert len(got) == 5 and set(front.principals) == {"User:carol"}


def test_librdkafka_over_sasl_ssl_and_with_mutual_tls(front, certs):
    sasl(front, "SASL_SSL", tls(certs))
    got = confluent_round_trip(front, {"security.protocol": "SASL_SSL", "ssl.ca.location": str(certs["ca.pem"]),
                                       "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "alice",
                                       "sasl.password": "alice-secret"})
    assert len(got) == 5 and set(front.principals) == {"User:alice"}
    front.configure(tls(certs, **{"ssl.client.auth": "required"}))
    got = confluent_round_trip(front, {"security.protocol": "SSL", "ssl.ca.location": str(certs["ca.pem"]),
                                       "ssl.keystore.location": str(certs["alice.p12"]),
                                       "ssl.keystore.password": PASSWORD})
    assert len(got) == 5 and set(front.principals) == {"User:CN=alice,O=kafka-compat dev"}


def test_kafka_python_over_sasl_ssl_with_scram(front, certs):
    sasl(front, "SASL_SSL", tls(certs))
    topic, bootstrap = f"sec-{uuid.uuid4().hex[:8]}", f"127.0.0.1:{front.port}"
    config = dict(bootstrap_servers=bootstrap, security_protocol="SASL_SSL", ssl_cafile=str(certs["ca.pem"]),
                  sasl_mechanism="SCRAM-SHA-512", sasl_plain_username="alice", sasl_plain_password="alice-secret")
    producer = KafkaProducer(**config)
    for i in range(3):
        producer.send(topic, b"k%d" % i).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=15000, **config)
    try:
        got = []
        for record in consumer:
            got.append(record.value)
            if len(got) == 3:
                break
        assert got == [b"k0", b"k1", b"k2"]
    finally:
        consumer.close()
    assert set(front.principals) == {"User:alice"}


def test_kcat_lists_metadata_after_scram(front):
    sasl(front)
    out = subprocess.run(["kcat", "-b", f"127.0.0.1:{front.port}", "-X", "security.protocol=SASL_PLAINTEXT",
                          "-X", "sasl.mechanisms=SCRAM-SHA-256", "-X", "sasl.username=alice",
                          "-X", "sasl.password=alice-secret", "-L", "-J"], capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert b'"brokers"' in out.stdout and front.principals == ["User:alice"]


def auth_errors(front, config: dict) -> list:
    errors = []
    p = Producer({"bootstrap.servers": f"127.0.0.1:{front.port}", "error_cb": errors.append, **config})
    p.produce("never", b"x")
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    p.purge()
    return errors


@pytest.mark.parametrize("mechanism, password, reason", [
    ("PLAIN", "wrong", "Authentication failed: Invalid username or password"),
    ("SCRAM-SHA-256", "wrong", "Authentication failed during authentication due to invalid credentials with SASL "
                               "mechanism SCRAM-SHA-256"),
])
def test_a_wrong_password_fails_on_the_client_with_the_reason(front, mechanism, password, reason):
    sasl(front)
    errors = auth_errors(front, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                                 "sasl.username": "alice", "sasl.password": password})
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION and reason in errors[0].str()
    assert reason in front.failures
    assert len(confluent_round_trip(front, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                                            "sasl.username": "alice", "sasl.password": "alice-secret"}, 1)) == 1


def test_a_mechanism_the_listener_does_not_enable_is_refused(front):
    front.configure(None, authenticators({**SASL, "sasl.enabled.mechanisms": "SCRAM-SHA-512"}, "SASL_PLAINTEXT",
                                         lambda: IMAGE))
    errors = auth_errors(front, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                                 "sasl.username": "alice", "sasl.password": "alice-secret"})
    assert errors and "PLAIN" in errors[0].str() and front.failures == ["Unsupported SASL mechanism PLAIN"]


def test_kafka_python_reports_a_wrong_password(front, caplog):
    """kafka-python logs the broker's reason for each failed bootstrap, then gives up."""
    sasl(front)
    with pytest.raises(KafkaPythonError, match="Unable to bootstrap"):
        KafkaConsumer(bootstrap_servers=f"127.0.0.1:{front.port}", security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice", sasl_plain_password="nope",
                      bootstrap_timeout_ms=3000)
    reason = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    assert any("SaslAuthenticationFailedError" in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    assert reason in front.failures


def test_a_plaintext_client_on_a_tls_listener_fails_and_the_listener_goes_on(front, certs):
    front.configure(tls(certs))
    errors = auth_errors(front, {"security.protocol": "PLAINTEXT"})
    assert errors and any(f.startswith("TLS:") for f in front.failures)
    assert len(confluent_round_trip(front, {"security.protocol": "SSL", "ssl.ca.location": str(certs["ca.pem"])},
                                    1)) == 1
