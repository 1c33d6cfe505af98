"""Real clients (librdkafka through confluent-kafka and kcat, kafka-python, aiokafka, KafkaJS) against a real broker
process whose listeners speak TLS and SASL: produce, consume in a group, admin; and refusals that
fail cleanly on the client with the broker's reason while the broker goes on serving."""

import asyncio
import socket
import ssl
import subprocess
import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin import NewTopic as AioNewTopic
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.admin import NewTopic as KpNewTopic
from kafka.errors import KafkaError as KafkaPythonError

from conformance.support import run_node
from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.client.security import ClientSecurity
from kafka_compat.protocol import messages as m
from kafka_compat.testing.waiting import wait_until
from tests.security.secure_broker import PASSWORD, make_certs, running_broker

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, certs):
    yield from running_broker(tmp_path_factory, certs)


def sasl(mechanism: str, user: str = "alice", password: str = "alice-secret", tls: bool = False, certs=None) -> dict:
    config = {"security.protocol": "SASL_SSL" if tls else "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
              "sasl.username": user, "sasl.password": password}
    return {**config, "ssl.ca.location": str(certs["ca.pem"])} if tls else config


def confluent_round_trip(bootstrap: str, config: dict, n: int = 5) -> list[bytes]:
    topic = f"sec-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, **config})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    p = Producer({"bootstrap.servers": bootstrap, **config})
    for i in range(n):
        p.produce(topic, value=b"v%d" % i, partition=0)
    assert p.flush(30) == 0
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest", **config})
    try:
        c.subscribe([topic])
        got, deadline = [], time.monotonic() + 30
        while len(got) < n and time.monotonic() < deadline:
            msg = c.poll(1)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        c.commit(asynchronous=False)
        return got
    finally:
        c.close()


VALUES = [b"v%d" % i for i in range(5)]


@pytest.mark.parametrize("tls", [False, True], ids=["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_librdkafka_produces_consumes_and_administers_after_sasl(broker, certs, mechanism, tls):
    listener = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    assert confluent_round_trip(broker.bootstrap(listener), sasl(mechanism, tls=tls, certs=certs)) == VALUES


def test_librdkafka_with_an_unsecured_oauthbearer_token(broker):
    config = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER",
              "enable.sasl.oauthbearer.unsecure.jwt": True, "sasl.oauthbearer.config": "principal=carol scope=kafka"}
    assert confluent_round_trip(broker.bootstrap("SASL_PLAINTEXT"), config) == VALUES


def test_librdkafka_over_tls_and_with_mutual_tls(broker, certs):
    assert confluent_round_trip(broker.bootstrap("SSL"), {"security.protocol": "SSL",
                                                          "ssl.ca.location": str(certs["ca.pem"])}) == VALUES
    mutual = {"security.protocol": "SSL", "ssl.ca.location": str(certs["ca.pem"]),
              "ssl.keystore.location": str(certs["alice.p12"]), "ssl.keystore.password": PASSWORD}
    assert confluent_round_trip(broker.bootstrap("MTLS"), mutual) == VALUES


def kafka_python_round_trip(config: dict) -> list[bytes]:
    topic = f"sec-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**config)
    try:
        admin.create_topics([KpNewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(**config)
    for i in range(3):
        producer.send(topic, b"k%d" % i).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=topic, auto_offset_reset="earliest", consumer_timeout_ms=15000, **config)
    try:
        got = []
        for record in consumer:
            got.append(record.value)
            if len(got) == 3:
                break
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python_over_sasl_ssl(broker, certs, mechanism):
    config = dict(bootstrap_servers=broker.bootstrap("SASL_SSL"), security_protocol="SASL_SSL",
                  ssl_cafile=str(certs["ca.pem"]), sasl_mechanism=mechanism, sasl_plain_username="alice",
                  sasl_plain_password="alice-secret")
    assert kafka_python_round_trip(config) == [b"k0", b"k1", b"k2"]


def test_kafka_python_over_mutual_tls(broker, certs):
    config = dict(bootstrap_servers=broker.bootstrap("MTLS"), security_protocol="SSL", ssl_cafile=str(certs["ca.pem"]),
                  ssl_certfile=str(certs["alice.pem"]), ssl_check_hostname=True)
    assert kafka_python_round_trip(config) == [b"k0", b"k1", b"k2"]


def test_kcat_lists_metadata_after_scram_over_tls(broker, certs):
    out = subprocess.run(["kcat", "-b", broker.bootstrap("SASL_SSL"), "-X", "security.protocol=SASL_SSL",
                          "-X", f"ssl.ca.location={certs['ca.pem']}", "-X", "sasl.mechanisms=SCRAM-SHA-256",
                          "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret", "-L", "-J"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f'"127.0.0.1:{broker.ports["SASL_SSL"]}"'.encode() in out.stdout or b'"brokers"' in out.stdout


def auth_errors(bootstrap: str, config: dict) -> list:
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "error_cb": errors.append, **config})
    p.produce("never", b"x")
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        p.poll(0.2)
    p.purge()
    return errors


@pytest.mark.parametrize("mechanism, user, reason", [
    ("PLAIN", "alice", "Authentication failed: Invalid username or password"),
    ("PLAIN", "nobody", "Authentication failed: Invalid username or password"),
    ("SCRAM-SHA-256", "alice", "Authentication failed during authentication due to invalid credentials with SASL "
                               "mechanism SCRAM-SHA-256"),
    ("SCRAM-SHA-512", "nobody", "Authentication failed during authentication due to invalid credentials with SASL "
                                "mechanism SCRAM-SHA-512"),
], ids=["plain-wrong-password", "plain-unknown-user", "scram-wrong-password", "scram-unknown-user"])
def test_a_failed_authentication_fails_on_the_client_with_the_reason(broker, mechanism, user, reason):
    errors = auth_errors(broker.bootstrap("SASL_PLAINTEXT"), sasl(mechanism, user, "wrong"))
    assert errors and errors[0].code() == KafkaError._AUTHENTICATION and reason in errors[0].str()
    assert reason in broker.failures()
    assert confluent_round_trip(broker.bootstrap("SASL_PLAINTEXT"), sasl(mechanism), 1) == [b"v0"]


def test_a_mechanism_the_client_wants_and_the_listener_lacks_is_refused(broker):
    errors = auth_errors(broker.bootstrap("SASL_PLAINTEXT"), sasl("SCRAM-SHA-1"))
    assert errors
    assert "Unsupported SASL mechanism SCRAM-SHA-1" in broker.failures()


def test_kafka_python_reports_a_wrong_password(broker, caplog):
    """kafka-python logs the broker's reason for each failed bootstrap, then gives up."""
    with pytest.raises(KafkaPythonError, match="Unable to bootstrap"):
        KafkaConsumer(bootstrap_servers=broker.bootstrap("SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice", sasl_plain_password="nope",
                      bootstrap_timeout_ms=3000)
    reason = "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    assert any("SaslAuthenticationFailedError" in r.getMessage() and reason in r.getMessage() for r in caplog.records)


def test_a_plaintext_client_on_a_tls_listener_fails_and_the_listener_goes_on(broker, certs):
    errors = auth_errors(broker.bootstrap("SSL"), {"security.protocol": "PLAINTEXT"})
    assert errors and any("SSL handshake failed" in f for f in broker.failures())
    assert confluent_round_trip(broker.bootstrap("SSL"), {"security.protocol": "SSL",
                                                          "ssl.ca.location": str(certs["ca.pem"])}, 1) == [b"v0"]


def test_a_client_without_a_certificate_is_refused_where_one_is_required(broker, certs):
    errors = auth_errors(broker.bootstrap("MTLS"), {"security.protocol": "SSL",
                                                    "ssl.ca.location": str(certs["ca.pem"])})
    assert errors and errors[0].code() in (KafkaError._SSL, KafkaError._TRANSPORT)
    assert "certificate required" in errors[0].str()  # the broker's TLS alert: the client is told why


def test_a_new_keystore_set_at_run_time_serves_new_connections(broker, certs, tmp_path):
    """Kafka's dynamic keystore update: IncrementalAlterConfigs of the listener's keystore on the broker;
    no restart."""
    other = make_certs(tmp_path / "other")  # another CA: clients trusting only it see the switch
    trusting_other = ClientSecurity.from_properties({"security.protocol": "SSL",
                                                     "ssl.ca.location": str(other["ca.pem"])})

    def alter(location: str) -> None:
        A = m.IncrementalAlterConfigsRequest
        with BrokerConnection.to(broker.bootstrap("PLAINTEXT")) as conn:
            r = conn.request(A(resources=[A.AlterConfigsResource(resource_type=4, resource_name="1", configs=[
                A.AlterableConfig(name="listener.name.ssl.ssl.keystore.location", config_operation=0,
                                  value=location)])]))
        assert [x.error_code for x in r.responses] == [0], r

    with pytest.raises(BrokerUnreachable, match="SSL handshake failed"):
        BrokerConnection.to(broker.bootstrap("SSL"), security=trusting_other)
    alter(str(other["broker.p12"]))
    try:
        wait_until(lambda: _connects(broker.bootstrap("SSL"), trusting_other), "the new certificate", timeout=10)
    finally:
        alter(str(certs["broker.p12"]))
    wait_until(lambda: not _connects(broker.bootstrap("SSL"), trusting_other), "the old certificate", timeout=10)


def _connects(bootstrap: str, security) -> bool:
    try:
        with BrokerConnection.to(bootstrap, security=security) as conn:
            return bool(conn.versions())
    except BrokerUnreachable:
        return False


def test_a_certificate_from_an_untrusted_ca_is_refused_and_the_broker_goes_on(broker, certs, tmp_path):
    stranger = make_certs(tmp_path / "stranger")
    errors = auth_errors(broker.bootstrap("MTLS"), {
        "security.protocol": "SSL", "ssl.ca.location": str(certs["ca.pem"]),
        "ssl.keystore.location": str(stranger["alice.p12"]), "ssl.keystore.password": PASSWORD})
    assert errors
    assert any("SSL handshake failed" in f and "certificate" in f for f in broker.failures())
    assert _connects(broker.bootstrap("PLAINTEXT"), None)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TLSv1_1 itself, which is the point
def test_a_tls_1_1_client_is_refused(broker, certs):
    context = ssl.create_default_context(cafile=str(certs["ca.pem"]))
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", broker.ports["SSL"]), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert _connects(broker.bootstrap("PLAINTEXT"), None)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafkajs_over_sasl_ssl(broker, certs, mechanism):
    topic = f"sec-js-{uuid.uuid4().hex[:8]}"
    out = run_node("secure.js", broker.bootstrap("SASL_SSL"), str(certs["ca.pem"]), mechanism, "alice", "alice-secret",
                   topic)
    assert out["values"] == ["a", "b", "c"] and topic in out["topics"]


def test_kafkajs_reports_a_wrong_password(broker, certs):
    out = run_node("secure.js", broker.bootstrap("SASL_SSL"), str(certs["ca.pem"]), "SCRAM-SHA-256", "alice", "nope",
                   "never", check=False)
    assert out["error"]["name"] == "KafkaJSSASLAuthenticationError"
    assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in out["error"]["message"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_aiokafka_over_sasl_ssl(broker, certs, mechanism):
    async def round_trip():
        topic = f"sec-aio-{uuid.uuid4().hex[:8]}"
        config = dict(bootstrap_servers=broker.bootstrap("SASL_SSL"), security_protocol="SASL_SSL",
                      ssl_context=create_ssl_context(cafile=str(certs["ca.pem"])), sasl_mechanism=mechanism,
                      sasl_plain_username="alice", sasl_plain_password="alice-secret")
        admin = AIOKafkaAdminClient(**config)
        await admin.start()
        try:
            await admin.create_topics([AioNewTopic(topic, 1, 1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(**config)
        await producer.start()
        try:
            for v in (b"x", b"y"):
                await producer.send_and_wait(topic, v)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=topic, auto_offset_reset="earliest", **config)
        await consumer.start()
        try:
            got = []
            async with asyncio.timeout(30):
                async for msg in consumer:
                    got.append(msg.value)
                    if len(got) == 2:
                        return got
        finally:
            await consumer.stop()

    assert asyncio.run(round_trip()) == [b"x", b"y"]


def test_kcat_produces_and_consumes_in_a_group_over_sasl_ssl(broker, certs):
    topic = f"sec-kcat-{uuid.uuid4().hex[:8]}"
    auth = ["-X", "security.protocol=SASL_SSL", "-X", f"ssl.ca.location={certs['ca.pem']}",
            "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"]
    produced = subprocess.run(["kcat", "-b", broker.bootstrap("SASL_SSL"), *auth, "-P", "-t", topic],
                              input=b"one\ntwo\nthree\n", capture_output=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(["kcat", "-b", broker.bootstrap("SASL_SSL"), *auth, "-G", topic, topic, "-o", "beginning",
                               "-e", "-c", "3", "-q"], capture_output=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.split() == [b"one", b"two", b"three"]
