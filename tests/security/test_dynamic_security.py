"""Security settings changed at run time, as Kafka's DynamicBrokerConfig allows (KRaft mode):
a listener's keystore and truststore (`listener.name.<l>.ssl.*store.*`) apply to new connections
without a restart; the plain keys, a listener's other settings and per-broker settings at the
cluster-wide level are refused with INVALID_REQUEST and Kafka's messages."""

import pytest

from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.client.security import ClientSecurity
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.testing.waiting import wait_until
from tests.security.secure_broker import PASSWORD, make_certs, running_broker

pytestmark = pytest.mark.timeout(120)
A = m.IncrementalAlterConfigsRequest
SET, DELETE = 0, 1


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    yield from running_broker(tmp_path_factory)


def alter(broker, key: str, value: str | None, resource: str = "1", validate_only: bool = False):
    with BrokerConnection.to(broker.bootstrap("PLAINTEXT")) as conn:
        r = conn.request(A(resources=[A.AlterConfigsResource(resource_type=4, resource_name=resource, configs=[
            A.AlterableConfig(name=key, config_operation=SET if value is not None else DELETE, value=value)])],
            validate_only=validate_only))
    (result,) = r.responses
    return result.error_code, result.error_message


def connects(bootstrap: str, security: ClientSecurity) -> bool:
    try:
        with BrokerConnection.to(bootstrap, security=security, timeout=5) as conn:
            return bool(conn.versions())
    except BrokerUnreachable:
        return False


def test_a_new_truststore_on_a_listener_admits_the_clients_of_another_ca_without_a_restart(broker, tmp_path):
    other = make_certs(tmp_path / "other")  # a client certificate signed by a CA the broker does not trust yet
    client = ClientSecurity.from_properties({
        "security.protocol": "SSL", "ssl.ca.location": str(broker.certs["ca.pem"]),
        "ssl.keystore.location": str(other["alice.p12"]), "ssl.keystore.password": PASSWORD})
    both = tmp_path / "both-cas.pem"
    both.write_bytes(broker.certs["ca.pem"].read_bytes() + other["ca.pem"].read_bytes())
    assert not connects(broker.bootstrap("MTLS"), client)
    assert alter(broker, "listener.name.mtls.ssl.truststore.location", str(both)) == (ErrorCode.NONE, None)
    try:
        wait_until(lambda: connects(broker.bootstrap("MTLS"), client), "the other CA's client admitted")
    finally:
        assert alter(broker, "listener.name.mtls.ssl.truststore.location", None)[0] == ErrorCode.NONE
    wait_until(lambda: not connects(broker.bootstrap("MTLS"), client), "the static truststore back")


def test_a_keystore_that_cannot_be_loaded_is_refused(broker, tmp_path):
    code, message = alter(broker, "listener.name.ssl.ssl.keystore.location", str(tmp_path / "missing.p12"))
    assert code == ErrorCode.INVALID_REQUEST
    assert message.startswith("Invalid value org.apache.kafka.common.config.ConfigException: Validation of dynamic "
                              "config update of SSLFactory failed: ")
    assert message.endswith(" for configuration Invalid dynamic configuration")


@pytest.mark.parametrize("key", ["ssl.keystore.location", "ssl.truststore.location", "ssl.key.password"])
def test_keystore_and_truststore_keys_change_only_per_listener(broker, key):
    assert alter(broker, key, "x") == (
        ErrorCode.INVALID_REQUEST,
        f"These security configs can be dynamically updated only per-listener using the listener prefix: Set({key})")


@pytest.mark.parametrize("key, value", [
    ("listener.name.mtls.ssl.client.auth", "none"),
    ("listener.name.ssl.ssl.enabled.protocols", "TLSv1.3"),
    ("listener.name.sasl_ssl.plain.sasl.jaas.config", "org.apache.kafka.common.security.plain.PlainLoginModule "
                                                      'required user_eve="eve";'),
    ("listener.name.sasl_plaintext.sasl.enabled.mechanisms", "PLAIN"),
])
def test_other_settings_of_an_existing_listener_are_refused(broker, key, value):
    listener = key.split(".")[2].upper()
    assert alter(broker, key, value) == (
        ErrorCode.INVALID_REQUEST,
        "Invalid value org.apache.kafka.common.config.ConfigException: Configs cannot be updated dynamically for "
        f"existing listener ListenerName({listener}), restart broker or create a new listener for update for "
        "configuration Invalid dynamic configuration")


@pytest.mark.parametrize("key", ["listener.name.ssl.ssl.keystore.location", "ssl.client.auth"])
def test_per_broker_settings_are_refused_at_the_cluster_wide_level(broker, key):
    assert alter(broker, key, "x", resource="") == (
        ErrorCode.INVALID_REQUEST,
        f"Cannot update these configs at default cluster level, broker id must be specified: Set({key})")
