"""`kafka-compat acl`, `user scram` and `quota` against a real broker with ACLs on: what they set
is what the broker then enforces and describes, through a secured listener with --command-config."""

import subprocess

import pytest
from confluent_kafka import KafkaError, Producer

from tests.security.secure_broker import running_broker

pytestmark = pytest.mark.timeout(120)
CLI = ".venv/bin/kafka-compat"


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from running_broker(tmp_path_factory)


def run(broker, *args, listener="PLAINTEXT", config=None) -> subprocess.CompletedProcess:
    cmd = [CLI, *args, "-b", broker.bootstrap(listener)] + (["--command-config", str(config)] if config else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_scram_set_then_a_client_authenticates_with_it_and_list_shows_it(broker, tmp_path):
    out = run(broker, "user", "scram", "set", "carol", "--password", "carol-pw", "--mechanism", "SCRAM-SHA-256")
    assert out.returncode == 0, out.stderr
    props = tmp_path / "carol.properties"
    props.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                     "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                     'username="carol" password="carol-pw";\n')
    listed = run(broker, "user", "scram", "list", "--output", "json", listener="SASL_PLAINTEXT", config=props)
    assert listed.returncode == 0, listed.stderr
    assert '"carol"' in listed.stdout and "SCRAM-SHA-256" in listed.stdout
    assert run(broker, "user", "scram", "delete", "carol", "--mechanism", "SCRAM-SHA-256").returncode == 0
    refused = run(broker, "topic", "list", listener="SASL_PLAINTEXT", config=props)
    assert refused.returncode != 0 and "authenticate" in refused.stderr


def test_acl_create_list_delete_is_what_the_broker_enforces(broker):
    assert run(broker, "topic", "create", "guarded").returncode == 0
    out = run(broker, "acl", "create", "topic:guarded", "--principal", "User:alice", "--operation", "write")
    assert out.returncode == 0, out.stderr
    listed = run(broker, "acl", "list", "topic:guarded")
    assert "User:alice" in listed.stdout and "write" in listed.stdout and "allow" in listed.stdout
    errors = []
    p = Producer({"bootstrap.servers": broker.bootstrap("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                  "sasl.mechanism": "PLAIN", "sasl.username": "bob", "sasl.password": "bob-secret"})
    p.produce("guarded", b"x", on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert run(broker, "acl", "delete", "topic:guarded").returncode == 0
    assert "User:alice" not in run(broker, "acl", "list", "topic:guarded").stdout


def test_quota_set_and_describe(broker):
    out = run(broker, "quota", "set", "--entity", "client-id=slow", "producer_byte_rate=1024")
    assert out.returncode == 0, out.stderr
    described = run(broker, "quota", "describe", "--entity", "client-id=slow")
    assert "client-id=slow" in described.stdout and "producer_byte_rate" in described.stdout
    assert run(broker, "quota", "set", "--entity", "client-id=slow", "producer_byte_rate=").returncode == 0
    assert "producer_byte_rate" not in run(broker, "quota", "describe", "--entity", "client-id=slow").stdout
