"""`kafka-compat config get/set` against a cluster of its own (broker-wide changes must not reach
the session broker): values with Kafka's sources and synonyms, as DescribeConfigs reports them,
changed with IncrementalAlterConfigs."""

from __future__ import annotations

import json

import pytest

from kafka_compat.testing import KafkaCluster

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def cluster():
    with KafkaCluster(config={"log.retention.ms": 86_400_000}) as c:
        yield c


@pytest.fixture
def run(invoke, cluster):
    def call(*args: str):
        return invoke(*args, brokers=cluster.bootstrap_servers)

    return call


def got(result) -> dict[str, dict]:
    assert result.code == 0, result.stderr
    return {c["key"]: c for c in json.loads(result.stdout)}


def test_a_topic_config_set_then_removed_shows_each_level_it_comes_from(run, cluster):
    cluster.create_topic("configured")
    assert got(run("config", "get", "topic:configured", "--output", "json")) == {
        "retention.ms": {"key": "retention.ms", "value": "86400000", "source": "STATIC_BROKER_CONFIG",
                         "read_only": False, "synonyms": [
                             {"key": "log.retention.ms", "value": "86400000", "source": "STATIC_BROKER_CONFIG"}]}}

    changed = got(run("config", "set", "topic:configured", "retention.ms=60000", "cleanup.policy=compact",
                      "--output", "json"))
    assert changed["retention.ms"]["value"] == "60000" and changed["retention.ms"]["source"] == "DYNAMIC_TOPIC_CONFIG"
    assert [s["source"] for s in changed["retention.ms"]["synonyms"]] == ["DYNAMIC_TOPIC_CONFIG",
                                                                          "STATIC_BROKER_CONFIG"]
    assert changed["cleanup.policy"]["synonyms"][-1] == {"key": "log.cleanup.policy", "value": "delete",
                                                          "source": "DEFAULT_CONFIG"}

    text = run("config", "get", "topic:configured")
    assert text.code == 0
    rows = {line.split()[0]: line.split() for line in text.stdout.splitlines()[1:]}
    assert rows["retention.ms"][:4] == ["retention.ms", "60000", "DYNAMIC_TOPIC_CONFIG", "no"]
    assert "STATIC_BROKER_CONFIG:log.retention.ms=86400000" in rows["retention.ms"][4:][-1]

    reverted = got(run("config", "set", "topic:configured", "--delete", "retention.ms", "--output", "json"))
    assert reverted["retention.ms"]["source"] == "STATIC_BROKER_CONFIG"
    everything = got(run("config", "get", "topic:configured", "--all", "--output", "json"))
    assert everything["segment.bytes"]["source"] == "DEFAULT_CONFIG" and "cleanup.policy" in everything


def test_broker_configs_per_broker_and_for_every_broker(run):
    before = got(run("config", "get", "broker:1", "num.partitions", "message.max.bytes", "--output", "json"))
    assert before["num.partitions"]["source"] == "DEFAULT_CONFIG" and before["num.partitions"]["value"] == "1"

    assert run("config", "set", "broker", "num.partitions=3").code == 0
    assert got(run("config", "get", "broker", "--output", "json"))["num.partitions"]["source"] == \
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    assert run("config", "set", "broker:1", "num.partitions=4").code == 0
    now = got(run("config", "get", "broker:1", "num.partitions", "--output", "json"))["num.partitions"]
    assert now["value"] == "4" and [s["source"] for s in now["synonyms"]] == [
        "DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG", "DEFAULT_CONFIG"]
    assert run("config", "set", "broker:1", "--delete", "num.partitions").code == 0
    assert run("config", "set", "broker", "--delete", "num.partitions").code == 0
    assert got(run("config", "get", "broker:1", "num.partitions", "--output", "json"))["num.partitions"][
        "source"] == "DEFAULT_CONFIG"


def test_a_dry_run_changes_nothing(run, cluster):
    cluster.create_topic("dry")
    r = run("config", "set", "topic:dry", "retention.ms=1000", "--dry-run")
    assert r.code == 0 and "OK (dry run)" in r.stdout
    assert "retention.ms" not in got(run("config", "get", "topic:dry", "--output", "json")) or \
        got(run("config", "get", "topic:dry", "--output", "json"))["retention.ms"]["value"] != "1000"


@pytest.mark.parametrize(("args", "code", "says"), [
    (("get", "topic:missing"), 1, "error: UNKNOWN_TOPIC_OR_PARTITION: Topic missing does not exist.; "
                                  "`kafka-compat topic list` shows the topics"),
    (("get", "partition:0"), 2, "error: Invalid value for RESOURCE: 'partition:0': give topic:NAME, broker:ID, or "
                                "broker for the default of every broker (Kafka's --entity-default); "
                                "see kafka-compat config get --help"),
    (("set", "topic:x"), 2, "error: nothing to change: give key=value pairs or --delete KEY"),
    (("set", "broker:1", "node.id=7"), 1, "error: broker:1: INVALID_REQUEST: Cannot update these configs "
                                          "dynamically: Set(node.id)"),
    (("set", "broker", "retention.ms"), 2, "error: Invalid value for key=value: 'retention.ms' is not key=value; "
                                           "see kafka-compat config set --help"),
])
def test_mistakes_are_one_line_through_the_executable(cli, cluster, args, code, says):
    r = cli("config", *args, brokers=cluster.bootstrap_servers)
    assert r.code == code and r.stdout == ""
    assert r.stderr.splitlines() == [says]
