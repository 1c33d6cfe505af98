"""kafka-python KafkaAdminClient: a topic's whole life (create with configs, list, describe
partitions and configs, add partitions, alter configs, delete) and the errors it raises."""

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import (
    InvalidConfigurationError,
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from conformance.support import wait_until
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


def _configs(admin: KafkaAdminClient, topic: str, **kw) -> dict:
    return admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], **kw)["topic"][topic]


def test_topic_lifecycle(broker, unique):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        name = unique("kp-admin")
        created = admin.create_topics([NewTopic(name, 2, 1, topic_configs={"retention.ms": "3600000",
                                                                         "cleanup.policy": "compact"})])
        [result] = created["topics"]
        assert [result[k] for k in ("name", "error_code", "num_partitions", "replication_factor")] == [name, 0, 2, 1]
        assert result["configs"]["retention.ms"]["value"] == "3600000"
        assert result["configs"]["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic(name, 1, 1)])
        with pytest.raises(InvalidConfigurationError):
            admin.create_topics([NewTopic(unique("kp-bad"), 1, 1, topic_configs={"retention.ms": "soon"})])

        assert name in admin.list_topics()
        [desc] = admin.describe_topics([name])
        node = admin.describe_cluster()["brokers"][0]["broker_id"]
        assert (desc["name"], desc["error_code"], desc["is_internal"]) == (name, 0, False)
        assert [(p["partition_index"], p["error_code"], p["leader_id"], p["replica_nodes"], p["isr_nodes"])
                for p in desc["partitions"]] == [(0, 0, node, [node], [node]), (1, 0, node, [node], [node])]

        # only the overrides are "modified"; the full list has the defaults too
        modified = _configs(admin, name)
        assert {k: (v["value"], v["config_source"]) for k, v in modified.items()} == {
            "retention.ms": ("3600000", "DYNAMIC_TOPIC_CONFIG"), "cleanup.policy": ("compact", "DYNAMIC_TOPIC_CONFIG")}
        everything = _configs(admin, name, config_filter="all")
        assert (everything["max.message.bytes"]["value"], everything["max.message.bytes"]["config_source"]) == \
            ("1048588", "DEFAULT_CONFIG")
        assert everything["retention.ms"]["config_type"] == "LONG"
        # synonyms: the override, then the broker key behind the default (Kafka's log.retention.ms
        # has none of its own: its default is log.retention.hours, which Kafka does not list here)
        synonyms = _configs(admin, name, include_synonyms=True)
        assert synonyms["retention.ms"]["synonyms"] == [
            {"name": "retention.ms", "value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"}]
        assert synonyms["cleanup.policy"]["synonyms"] == [
            {"name": "cleanup.policy", "value": "compact", "source": "DYNAMIC_TOPIC_CONFIG"},
            {"name": "log.cleanup.policy", "value": "delete", "source": "DEFAULT_CONFIG"}]

        # add partitions 2 -> 4; not down
        assert admin.create_partitions({name: NewPartitions(4)}).results[0].error_code == ErrorCode.NONE
        wait_until(lambda: len(admin.describe_topics([name])[0]["partitions"]) == 4, "4 partitions")
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions({name: NewPartitions(3)})

        # alter: set one key, delete another (back to its default)
        assert admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={
            "retention.ms": "7200000", "cleanup.policy": ("DELETE", None)})]) == {"topic": {name: "OK"}}
        assert {k: v["value"] for k, v in _configs(admin, name).items()} == {"retention.ms": "7200000"}
        assert _configs(admin, name, config_filter="all")["cleanup.policy"]["value"] == "delete"

        assert admin.delete_topics([name])["topics"][0]["error_code"] == ErrorCode.NONE
        wait_until(lambda: name not in admin.list_topics(), "the topic to disappear")
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics([name])
    finally:
        admin.close()
