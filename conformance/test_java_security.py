"""The Java client and Kafka's tools against a secure broker (tests/security/secure_broker.py):
the producer, a consumer group and the AdminClient over SASL_SSL with SCRAM-SHA-512 and over
mutual TLS (the certificate's DN the principal); ACLs made, listed and removed by `kafka-acls.sh`
with `--command-config` and by the AdminClient (createAcls, describeAcls, deleteAcls); a SCRAM user
made by `kafka-configs.sh --add-config 'SCRAM-SHA-512=[password=...]'` then authenticating; a
listener's truststore changed by kafka-configs.sh; the clients re-authenticating (KIP-368)."""

import time
import uuid

import pytest

from conformance.jvm import Driver, JavaError, JavaGroup
from tests.security.secure_broker import PASSWORD, USERS, make_certs, running_broker
from tests.security.test_reauthentication import log_events

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure(tmp_path_factory, certs):
    yield from running_broker(tmp_path_factory, certs)


def properties(path, **settings: str):
    path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    return path


def scram_properties(tmp_path, certs, user: str, password: str):
    return properties(
        tmp_path / f"{user}.properties", **{
            "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.jaas.config": f'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                f'username="{user}" password="{password}";',
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs["ca.pem"])})


def round_trip(driver: Driver) -> list[str]:
    """Create a topic, produce to it, consume it in a group: the values consumed."""
    topic = f"java-sec-{uuid.uuid4().hex[:8]}"
    created = driver.call("admin.createTopics", topics=[{"name": topic, "partitions": 2, "replicationFactor": 1}])
    assert created[topic]["value"]["partitions"] == 2
    driver.call("produce", topic=topic, records=[{"partition": i % 2, "key": None, "value": f"v{i}", "headers": []}
                                                 for i in range(6)])
    group = JavaGroup(driver, topic, topic)
    group.join("m1")
    group.poll_until(lambda g: len(g.values()) == 6, "every record consumed in the group", timeout=60)
    group.leave("m1")
    return group.values()


def test_java_clients_over_sasl_ssl_with_scram_sha_512(secure, certs, tmp_path):
    config = scram_properties(tmp_path, certs, "alice", USERS["alice"])
    with Driver(secure.bootstrap("SASL_SSL"), properties=config) as driver:
        assert round_trip(driver) == [f"v{i}" for i in range(6)]


def test_java_clients_over_mutual_tls(secure, certs, tmp_path):
    config = properties(tmp_path / "mtls.properties", **{
        "security.protocol": "SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs["ca.pem"]),
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["alice.p12"]),
        "ssl.keystore.password": PASSWORD})
    with Driver(secure.bootstrap("MTLS"), properties=config) as driver:
        assert round_trip(driver) == [f"v{i}" for i in range(6)]


def test_a_java_client_without_a_certificate_gets_an_ssl_authentication_exception(secure, certs, tmp_path):
    """The listener requires a certificate: the broker's TLS alert reaches the client, which fails
    at once with Kafka's SslAuthenticationException rather than retrying until it times out."""
    config = properties(tmp_path / "no-certificate.properties", **{
        "security.protocol": "SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs["ca.pem"])})
    with Driver(secure.bootstrap("MTLS"), properties=config) as driver, pytest.raises(JavaError) as refused:
        driver.call("admin.listTopics")
    assert refused.value.type == "SslAuthenticationException"


def test_kafka_acls_creates_lists_and_removes_acls_with_command_config(secure, certs, tmp_path):
    config = scram_properties(tmp_path, certs, "alice", USERS["alice"])
    topic = f"acl-tool-{uuid.uuid4().hex[:8]}"
    common = ["--bootstrap-server", secure.bootstrap("SASL_SSL"), "--command-config", str(config)]
    with Driver(secure.bootstrap("SASL_SSL"), properties=config) as driver:
        driver.tool("kafka-acls", *common, "--add", "--allow-principal", "User:bob", "--operation", "Read",
                    "--operation", "Describe", "--topic", topic)
        driver.tool("kafka-acls", *common, "--add", "--deny-principal", "User:bob", "--operation", "Write",
                    "--topic", topic, "--resource-pattern-type", "prefixed")
        listed = driver.tool("kafka-acls", *common, "--list", "--topic", topic).stdout
        assert f"ResourcePattern(resourceType=TOPIC, name={topic}, patternType=LITERAL)" in listed
        assert "(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)" in listed
        assert "(principal=User:bob, host=*, operation=DESCRIBE, permissionType=ALLOW)" in listed
        prefixed = driver.tool("kafka-acls", *common, "--list", "--topic", topic, "--resource-pattern-type",
                               "prefixed").stdout
        assert "(principal=User:bob, host=*, operation=WRITE, permissionType=DENY)" in prefixed
        seen = driver.call("admin.describeAclBindings", filter={"resourceType": "TOPIC", "name": topic,
                                                                  "patternType": "ANY"})
        assert sorted((b["patternType"], b["operation"], b["permission"]) for b in seen) == [
            ("LITERAL", "DESCRIBE", "ALLOW"), ("LITERAL", "READ", "ALLOW"), ("PREFIXED", "WRITE", "DENY")]
        driver.tool("kafka-acls", *common, "--remove", "--force", "--topic", topic)
        left = driver.call("admin.describeAclBindings", filter={"resourceType": "TOPIC", "name": topic,
                                                                  "patternType": "ANY"})
        assert [(b["patternType"], b["operation"]) for b in left] == [("PREFIXED", "WRITE")]
        driver.tool("kafka-acls", *common, "--remove", "--force", "--topic", topic, "--resource-pattern-type",
                    "prefixed")
        assert driver.call("admin.describeAclBindings", filter={"name": topic}) == []


def test_the_java_admin_creates_describes_and_deletes_acls(secure, certs, tmp_path):
    config = scram_properties(tmp_path, certs, "alice", USERS["alice"])
    group = f"acl-admin-{uuid.uuid4().hex[:8]}"
    acls = [{"resourceType": "GROUP", "name": group, "patternType": "LITERAL", "principal": "User:bob",
             "host": "*", "operation": op, "permission": "ALLOW"} for op in ("READ", "DESCRIBE")]
    acls.append({"resourceType": "TOPIC", "name": group, "patternType": "PREFIXED", "principal": "User:bob",
                 "host": "10.0.0.1", "operation": "WRITE", "permission": "DENY"})
    with Driver(secure.bootstrap("SASL_SSL"), properties=config) as driver:
        driver.call("admin.createAcls", acls=acls)
        described = driver.call("admin.describeAclBindings", filter={"name": group})
        assert sorted(described, key=str) == sorted(acls, key=str)
        on_group = driver.call("admin.describeAclBindings", filter={"resourceType": "GROUP", "name": group})
        assert sorted(b["operation"] for b in on_group) == ["DESCRIBE", "READ"]
        deleted = driver.call("admin.deleteAcls", filter={"resourceType": "GROUP", "name": group,
                                                          "operation": "READ"})
        assert [(b["resourceType"], b["operation"]) for b in deleted] == [("GROUP", "READ")]
        deleted = driver.call("admin.deleteAcls", filter={"name": group})
        assert sorted(b["operation"] for b in deleted) == ["DESCRIBE", "WRITE"]
        assert driver.call("admin.describeAclBindings", filter={"name": group}) == []


def test_a_scram_user_made_by_kafka_configs_authenticates(secure, certs, tmp_path):
    admin_config = scram_properties(tmp_path, certs, "alice", USERS["alice"])
    with Driver(secure.bootstrap("SASL_SSL"), properties=admin_config) as driver:
        driver.tool("kafka-configs", "--bootstrap-server", secure.bootstrap("SASL_SSL"), "--command-config",
                    str(admin_config), "--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=dave-pw]",
                    "--entity-type", "users", "--entity-name", "dave")
        described = driver.tool("kafka-configs", "--bootstrap-server", secure.bootstrap("SASL_SSL"),
                                "--command-config", str(admin_config), "--describe", "--entity-type", "users",
                                "--entity-name", "dave").stdout
        assert "SCRAM-SHA-512=iterations=8192" in described
    with Driver(secure.bootstrap("SASL_SSL"), properties=scram_properties(tmp_path, certs, "dave", "dave-pw")) as dave:
        assert isinstance(dave.call("admin.listTopics"), list)
    wrong = scram_properties(tmp_path, certs, "dave", "not-daves")
    with Driver(secure.bootstrap("SASL_SSL"), properties=wrong) as impostor, pytest.raises(JavaError) as refused:
        impostor.call("admin.listTopics")
    assert refused.value.type == "SaslAuthenticationException"


def test_kafka_configs_changes_a_listener_truststore_and_is_refused_its_client_auth(secure, certs, tmp_path):
    """Kafka's dynamic listener configs: the truststore changes at run time, ssl.client.auth does not."""
    config = scram_properties(tmp_path, certs, "alice", USERS["alice"])
    common = ["--bootstrap-server", secure.bootstrap("SASL_SSL"), "--command-config", str(config),
              "--entity-type", "brokers", "--entity-name", "1", "--alter"]
    with Driver(secure.bootstrap("SASL_SSL"), properties=config) as driver:
        changed = driver.tool("kafka-configs", *common, "--add-config",
                              f"listener.name.mtls.ssl.truststore.location={certs['ca.pem']}")
        assert "Completed updating config for broker 1." in changed.stdout
        refused = driver.tool("kafka-configs", *common, "--add-config", "listener.name.mtls.ssl.client.auth=none",
                              check=False)
        assert refused.returncode != 0
        assert ("Configs cannot be updated dynamically for existing listener ListenerName(MTLS), restart broker or "
                "create a new listener for update") in refused.stdout + refused.stderr
        driver.tool("kafka-configs", *common, "--delete-config", "listener.name.mtls.ssl.truststore.location")


@pytest.fixture(scope="module")
def reauthenticating(tmp_path_factory, certs):
    yield from running_broker(tmp_path_factory, certs, "reauth-broker", **{"connections.max.reauth.ms": "1500"})


def test_the_java_clients_reauthenticate_and_go_on(reauthenticating, certs, tmp_path):
    """KIP-368: sessions of 1.5 s; the producer, consumer and admin re-authenticate on their connections."""
    broker = reauthenticating
    config = scram_properties(tmp_path, certs, "alice", USERS["alice"])
    topic = f"java-reauth-{uuid.uuid4().hex[:8]}"
    with Driver(broker.bootstrap("SASL_SSL"), properties=config) as driver:
        driver.call("admin.createTopics", topics=[{"name": topic, "partitions": 1, "replicationFactor": 1}])
        group = JavaGroup(driver, topic, topic)
        group.join("m1")
        deadline, sent = time.monotonic() + 5, 0
        while time.monotonic() < deadline:  # several sessions' worth of traffic
            driver.call("produce", topic=topic, records=[{"partition": 0, "key": None, "value": f"v{sent}",
                                                          "headers": []}])
            sent += 1
            group.poll()
        group.poll_until(lambda g: len(g.values()) == sent, "every record consumed", timeout=60)
        assert isinstance(driver.call("admin.listTopics"), list)
    again = [e for e in log_events(broker, "authenticated") if e["principal"] == "User:alice"]
    assert len(again) >= 2 and all(e["reauthentication"] for e in again)
    assert log_events(broker, "sasl_session_expired") == []
