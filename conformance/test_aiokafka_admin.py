"""aiokafka AIOKafkaAdminClient: a topic's whole life (create with configs, list, describe
partitions and configs, add partitions, alter configs, delete) over the older protocol versions
aiokafka speaks (CreateTopics v3, DescribeConfigs v2, CreatePartitions v1, Metadata v1+)."""

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidPartitionsError

from conformance.support import TIMEOUT
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)
TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5  # DescribeConfigs config_source


async def _configs(admin: AIOKafkaAdminClient, topic: str, keys=None) -> dict:
    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                              dict.fromkeys(keys) if keys else None)])
    [resource] = response.resources
    error_code, _msg, _type, name, entries = resource
    assert (error_code, name) == (ErrorCode.NONE, topic)
    return {e[0]: (e[1], e[3]) for e in entries}  # name -> (value, config_source)


async def lifecycle(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await asyncio.wait_for(admin.start(), TIMEOUT)
    try:
        r = await admin.create_topics([NewTopic(name, 2, 1, topic_configs={"retention.ms": "3600000",
                                                                           "cleanup.policy": "compact"})])
        assert [tuple(e[:2]) for e in r.topic_errors] == [(name, 0)]
        r = await admin.create_topics([NewTopic(name, 1, 1)])
        assert [tuple(e[:2]) for e in r.topic_errors] == [(name, 36)]  # TOPIC_ALREADY_EXISTS

        assert name in await admin.list_topics()
        [desc] = await admin.describe_topics([name])
        node = (await admin.describe_cluster())["brokers"][0]["node_id"]
        assert (desc["error_code"], desc["topic"], desc["is_internal"]) == (ErrorCode.NONE, name, False)
        assert [(p["partition"], p["error_code"], p["leader"], p["replicas"], p["isr"])
                for p in desc["partitions"]] == [(0, 0, node, [node], [node]), (1, 0, node, [node], [node])]

        cfg = await _configs(admin, name)
        assert cfg["retention.ms"] == ("3600000", TOPIC_CONFIG)
        assert cfg["cleanup.policy"] == ("compact", TOPIC_CONFIG)
        assert cfg["max.message.bytes"] == ("1048588", DEFAULT_CONFIG)
        assert await _configs(admin, name, ["retention.ms", "segment.bytes"]) == {
            "retention.ms": ("3600000", TOPIC_CONFIG), "segment.bytes": ("1073741824", DEFAULT_CONFIG)}

        r = await admin.create_partitions({name: NewPartitions(4)})
        assert [tuple(e[:2]) for e in r.topic_errors] == [(name, 0)]
        [desc] = await admin.describe_topics([name])
        assert [p["partition"] for p in desc["partitions"]] == [0, 1, 2, 3]
        with pytest.raises(InvalidPartitionsError):
            await admin.create_partitions({name: NewPartitions(3)})

        # AlterConfigs (not incremental) replaces the topic's whole set of overrides
        [r] = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": "7200000"})])
        assert [(e[0], e[2], e[3]) for e in r.resources] == [(0, ConfigResourceType.TOPIC, name)]
        cfg = await _configs(admin, name)
        assert cfg["retention.ms"] == ("7200000", TOPIC_CONFIG)
        assert cfg["cleanup.policy"] == ("delete", DEFAULT_CONFIG)

        r = await admin.delete_topics([name])
        assert [tuple(e) for e in r.topic_error_codes] == [(name, 0)]
        assert name not in await admin.list_topics()
        r = await admin.delete_topics([name])
        assert [tuple(e) for e in r.topic_error_codes] == [(name, 3)]  # UNKNOWN_TOPIC_OR_PARTITION
    finally:
        await admin.close()


def test_topic_lifecycle(broker, unique):
    asyncio.run(lifecycle(broker.bootstrap, unique("aio-admin")))
