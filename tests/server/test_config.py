"""Broker configuration: Kafka's keys from a file, KAFKA_* variables and overrides, checked at start."""

import pytest

from kafka_compat.server.config import ConfigError, env_key, load_config, read_properties


def test_defaults_make_a_single_combined_node():
    c = load_config(env={})
    assert c.node_id == 1 and c.roles == {"broker", "controller"}
    assert [(l.name, l.host, l.port) for l in c.listeners] == [("PLAINTEXT", "127.0.0.1", 9092)]
    assert c.advertised_listeners == c.listeners
    assert c["num.partitions"] == 1 and c["auto.create.topics.enable"] is True


def test_precedence_file_then_environment_then_overrides(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("# comment\nnum.partitions = 3\nlog.dirs=/from/file\n! other comment\nmessage.max.bytes: 2000\n")
    c = load_config(props, env={"KAFKA_LOG_DIRS": "/from/env", "KAFKA_NUM_PARTITIONS": "4"},
                    overrides=["num.partitions=5"])
    assert c["num.partitions"] == 5 and c.log_dirs == ["/from/env"] and c["message.max.bytes"] == 2000
    assert not c.is_default("num.partitions") and c.is_default("default.replication.factor")


def test_kafka_image_environment_mapping():
    assert env_key("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP") == "listener.security.protocol.map"
    assert env_key("KAFKA_LOG__DIRS") == "log_dirs"
    assert env_key("KAFKA_SOME___DASH") == "some-dash"
    assert env_key("PATH") is None
    assert load_config(env={"KAFKA_HEAP_OPTS": "-Xmx1G"}).node_id == 1  # not a config


def test_properties_continuation_lines(tmp_path):
    p = tmp_path / "p"
    p.write_text("listeners=PLAINTEXT://127.0.0.1:1,\\\n  INTERNAL://127.0.0.1:2\n")
    assert read_properties(p)["listeners"] == "PLAINTEXT://127.0.0.1:1,INTERNAL://127.0.0.1:2"


@pytest.mark.parametrize("override, message", [
    ("bogus.key=1", "unknown config key 'bogus.key'"),
    ("num.partitions=zero", "num.partitions"),
    ("num.partitions=0", "num.partitions"),
    ("auto.create.topics.enable=maybe", "auto.create.topics.enable"),
    ("listeners=PLAINTEXT:/127.0.0.1:9092", "listeners"),
    ("listeners=PLAINTEXT://127.0.0.1:99999", "bad port"),
    ("process.roles=worker", "process.roles"),
    ("advertised.listeners=OTHER://h:1", "OTHER"),
    ("nokeyvalue", "key=value"),
])
def test_bad_configuration_is_one_clear_line(override, message):
    with pytest.raises(ConfigError, match=message) as e:
        load_config(env={}, overrides=[override])
    assert "\n" not in str(e.value)


def test_known_kafka_keys_that_are_not_used_are_accepted_and_reported():
    c = load_config(env={}, overrides=["num.network.threads=8", "ssl.keystore.location=/x",
                                       "listener.name.plaintext.ssl.client.auth=required", "metrics.context.foo=1"])
    assert c.unused == ["metrics.context.foo", "num.network.threads"]
    assert c["ssl.keystore.location"] == "/x" and c["listener.name.plaintext.ssl.client.auth"] == "required"


def test_controller_listener_is_not_advertised_to_clients():
    c = load_config(env={}, overrides=["listeners=PLAINTEXT://:9092,CONTROLLER://127.0.0.1:9093"])
    assert [l.name for l in c.advertised_listeners] == ["PLAINTEXT"]
    assert c.advertised_listeners[0].host == "127.0.0.1"
    assert c.security_protocols()["CONTROLLER"] == "PLAINTEXT"


def test_broker_id_is_a_synonym_of_node_id():
    assert load_config(env={}, overrides=["broker.id=7"]).node_id == 7


def kraft(*overrides):
    return load_config(env={}, overrides=list(overrides))


def test_a_node_with_no_voters_is_a_one_voter_quorum_of_its_own():
    c = kraft("node.id=4")
    q = c.quorum_config("cid")
    assert c.single_node and q.voters == {4} and q.endpoints == {} and c.controller_listener is None


def test_kafka_kraft_settings_give_the_quorum_its_voters_and_controller_listener():
    c = kraft("node.id=2", "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
              "controller.quorum.voters=1@h1:9093,2@h2:9093,3@h3:9093", "controller.quorum.fetch.timeout.ms=3000")
    q = c.quorum_config("cid")
    assert not c.single_node and q.voters == {1, 2, 3} and q.endpoints[3] == ("h3", 9093)
    assert q.fetch_timeout_ms == 3000 and q.cluster_id == "cid" and q.listener_name == "CONTROLLER"
    assert c.controller_listener.port == 9093 and c.broker_listener_names == ["PLAINTEXT"]


@pytest.mark.parametrize("overrides, message", [
    (["node.id=4", "controller.quorum.voters=1@h:1,2@h:2", "listeners=PLAINTEXT://:1,CONTROLLER://:2"],
     "the node id 4 must be included in the set of voters"),
    (["controller.quorum.voters=1@h:1,2@h:2"], "controller.listener.names must contain at least one value"),
    (["process.roles=broker", "node.id=1", "controller.quorum.voters=1@h:1"],
     "must not be included in the set of voters"),
    (["process.roles=broker"], "either controller.quorum.bootstrap.servers must contain"),
    (["process.roles=broker", "node.id=3", "controller.quorum.voters=1@h:1",
      "listeners=PLAINTEXT://:1,CONTROLLER://:2"], "must not contain a value appearing in the 'listeners'"),
    (["controller.quorum.voters=1@nohostport"], "expected host:port"),
])
def test_kraft_role_rules_are_checked_at_start(overrides, message):
    with pytest.raises(ConfigError, match=message):
        kraft(*overrides)
