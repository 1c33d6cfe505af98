"""kafka-python and topic auto-creation (auto.create.topics.enable defaults to true): sending to a
missing topic creates it with the broker's defaults (one partition), and so does a consumer's
metadata request naming a missing topic."""

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from conformance.support import TIMEOUT, kafka_python_read
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


def test_produce_creates_the_topic(broker, unique):
    topic = unique("kp-auto")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert topic not in admin.list_topics()
        p = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=int(TIMEOUT * 1000))
        try:
            md = p.send(topic, key=b"k", value=b"first").get(TIMEOUT)
            assert (md.topic, md.partition, md.offset) == (topic, 0, 0)
            assert p.partitions_for(topic) == {0}
        finally:
            p.close(TIMEOUT)
        [desc] = admin.describe_topics([topic])
        assert (desc["error_code"], [q["partition_index"] for q in desc["partitions"]]) == (ErrorCode.NONE, [0])
    finally:
        admin.close()
    [got] = kafka_python_read(broker.bootstrap, topic, {0: 0}, 1)
    assert (got.key, got.value) == (b"k", b"first")


def test_consumer_metadata_request_creates_the_topic(broker, unique):
    """kafka-python's metadata requests always carry allow_auto_topic_creation=true (even with
    allow_auto_create_topics=False), so an assigned missing topic is created and read from."""
    topic = unique("kp-auto-md")
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, fetch_max_wait_ms=100,
                      auto_offset_reset="earliest")
    try:
        c.assign([TopicPartition(topic, 0)])
        assert c.poll(timeout_ms=300) == {}
        assert c.partitions_for_topic(topic) == {0}
        assert c.end_offsets([TopicPartition(topic, 0)]) == {TopicPartition(topic, 0): 0}
    finally:
        c.close()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        [desc] = admin.describe_topics([topic])
        assert (desc["error_code"], [q["partition_index"] for q in desc["partitions"]]) == (ErrorCode.NONE, [0])
    finally:
        admin.close()
