"""A three-node cluster (processes) with SASL_SSL on every listener: the Raft quorum, broker
registration and heartbeats, and forwarded admin requests travel over TLS and SASL between the
nodes; librdkafka and the project's CLI (`--command-config`) use it like any Kafka cluster."""

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.protocol import messages as m
from kafka_compat.testing.cluster_process import ClusterProcess
from tests.security.secure_broker import PASSWORD, make_certs

pytestmark = pytest.mark.timeout(180)
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    overrides = {
        "listener.security.protocol.map": "PLAINTEXT:SASL_SSL,CONTROLLER:SASL_SSL",
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["broker.p12"]),
        "ssl.keystore.password": PASSWORD, "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs["ca.pem"]),
        "sasl.enabled.mechanisms": "PLAIN", "sasl.mechanism.controller.protocol": "PLAIN",
        "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": JAAS,
        "listener.name.plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin", "allow.everyone.if.no.acl.found": "true",
    }
    cluster = ClusterProcess(tmp_path_factory.mktemp("cluster"), 3, overrides=overrides)
    cluster.certs = certs
    with cluster:
        yield cluster


def client_config(cluster, user="alice") -> dict:
    return {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(cluster.certs["ca.pem"]), "sasl.mechanism": "PLAIN", "sasl.username": user,
            "sasl.password": f"{user}-secret"}


def test_the_cli_creates_a_topic_over_sasl_ssl_with_command_config(cluster, tmp_path):
    props = tmp_path / "client.properties"
    props.write_text(f"security.protocol=SASL_SSL\nssl.truststore.type=PEM\n"
                     f"ssl.truststore.location={cluster.certs['ca.pem']}\nsasl.mechanism=PLAIN\n"
                     f"sasl.jaas.config={JAAS.replace(' user_admin=', ' x=')}\n")
    out = subprocess.run([".venv/bin/kafka-compat", "topic", "create", "secure-cli", "-p", "3", "-b", cluster.bootstrap,
                          "--command-config", str(props)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([".venv/bin/kafka-compat", "topic", "list", "-b", cluster.bootstrap,
                          "--command-config", str(props)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "secure-cli" in out.stdout, out.stderr


def test_librdkafka_produces_and_consumes_across_the_three_nodes(cluster):
    topic = f"secure-{uuid.uuid4().hex[:8]}"
    p = Producer({**client_config(cluster), "topic.metadata.refresh.interval.ms": 500})
    for i in range(30):
        while True:
            try:
                p.produce(topic, value=b"%d" % i)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(60) == 0
    c = Consumer({**client_config(cluster), "group.id": topic, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got, deadline = set(), time.monotonic() + 60
        while len(got) < 30 and time.monotonic() < deadline:
            msg = c.poll(1)
            if msg is not None and msg.error() is None:
                got.add(msg.value())
    finally:
        c.close()
    assert got == {b"%d" % i for i in range(30)}


def test_a_plaintext_client_gets_nothing_from_any_node(cluster):
    for node in cluster.brokers:
        with pytest.raises(BrokerUnreachable):
            with BrokerConnection("127.0.0.1", node.broker_port, timeout=5) as conn:
                conn.request(m.MetadataRequest(topics=None), 1)
