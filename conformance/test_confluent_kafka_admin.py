"""confluent-kafka AdminClient: a topic's whole life (create with configs, list, describe partitions
and configs, add partitions, alter configs, delete), with the errors librdkafka maps on the way."""

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from conformance.support import TIMEOUT, wait_until

pytestmark = pytest.mark.timeout(60)
TOPIC_CONFIG, DEFAULT_CONFIG = ConfigSource.DYNAMIC_TOPIC_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value


def _error_code(future) -> int:
    with pytest.raises(KafkaException) as e:
        future.result(TIMEOUT)
    return e.value.args[0].code()


def _value_source(cfg: dict, key: str) -> tuple[str, int]:
    return cfg[key].value, cfg[key].source


def _describe(admin: AdminClient, topic: str) -> dict:
    res = ConfigResource(ResourceType.TOPIC, topic)
    return admin.describe_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT)


def test_topic_lifecycle(broker, unique):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    name = unique("cfk-admin")
    created = admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1,
                                            config={"retention.ms": "3600000", "cleanup.policy": "compact"})],
                                  request_timeout=TIMEOUT)
    assert created[name].result(TIMEOUT) is None
    again = admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)], request_timeout=TIMEOUT)
    assert _error_code(again[name]) == KafkaError.TOPIC_ALREADY_EXISTS
    bad = admin.create_topics([NewTopic(unique("cfk-bad"), num_partitions=1, replication_factor=1,
                                        config={"no.such.config": "1"})], request_timeout=TIMEOUT)
    assert _error_code(next(iter(bad.values()))) == KafkaError.INVALID_CONFIG

    # list: both partitions led by the one broker
    md = admin.list_topics(timeout=TIMEOUT)
    assert name in md.topics
    assert sorted(md.topics[name].partitions) == [0, 1]
    node = next(iter(md.brokers))
    assert list(md.brokers) == [node]
    for p in md.topics[name].partitions.values():
        assert (p.leader, p.replicas, p.isrs, p.error) == (node, [node], [node], None)

    cluster = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert [n.id for n in cluster.nodes] == [node]
    assert cluster.controller.id == node

    desc = admin.describe_topics(TopicCollection([name]), request_timeout=TIMEOUT)[name].result(TIMEOUT)
    assert desc.name == name and not desc.is_internal
    assert [(p.id, p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr]) for p in desc.partitions] == \
        [(0, node, [node], [node]), (1, node, [node], [node])]

    # describe configs: the overrides as topic configs, the rest as defaults
    cfg = _describe(admin, name)
    assert _value_source(cfg, "retention.ms") == ("3600000", TOPIC_CONFIG)
    assert _value_source(cfg, "cleanup.policy") == ("compact", TOPIC_CONFIG)
    assert _value_source(cfg, "max.message.bytes") == ("1048588", DEFAULT_CONFIG)
    assert (cfg["segment.bytes"].value, cfg["segment.bytes"].is_default) == ("1073741824", True)

    # add partitions: 2 -> 4; shrinking is refused
    assert admin.create_partitions([NewPartitions(name, 4)], request_timeout=TIMEOUT)[name].result(TIMEOUT) is None
    wait_until(lambda: len(admin.list_topics(name, timeout=TIMEOUT).topics[name].partitions) == 4, "4 partitions")
    shrink = admin.create_partitions([NewPartitions(name, 3)], request_timeout=TIMEOUT)
    assert _error_code(shrink[name]) == KafkaError.INVALID_PARTITIONS

    # incremental alter: set one key, remove another (back to its default)
    res = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("max.message.bytes", "20000", incremental_operation=AlterConfigOpType.SET)])
    assert admin.incremental_alter_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT) is None
    cfg = _describe(admin, name)
    assert _value_source(cfg, "retention.ms") == ("7200000", TOPIC_CONFIG)
    assert _value_source(cfg, "max.message.bytes") == ("20000", TOPIC_CONFIG)
    assert _value_source(cfg, "cleanup.policy") == ("delete", DEFAULT_CONFIG)
    bad_value = ConfigResource(ResourceType.TOPIC, name, incremental_configs=[
        ConfigEntry("retention.ms", "not-a-number", incremental_operation=AlterConfigOpType.SET)])
    refused = admin.incremental_alter_configs([bad_value], request_timeout=TIMEOUT)[bad_value]
    assert _error_code(refused) == KafkaError.INVALID_CONFIG
    assert _describe(admin, name)["retention.ms"].value == "7200000"

    # delete: gone from the listing, and describing it is an unknown topic
    assert admin.delete_topics([name], request_timeout=TIMEOUT)[name].result(TIMEOUT) is None
    wait_until(lambda: name not in admin.list_topics(timeout=TIMEOUT).topics, "the topic to disappear")
    missing = ConfigResource(ResourceType.TOPIC, name)
    described = admin.describe_configs([missing], request_timeout=TIMEOUT)[missing]
    assert _error_code(described) == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert _error_code(admin.delete_topics([name], request_timeout=TIMEOUT)[name]) == KafkaError.UNKNOWN_TOPIC_OR_PART
