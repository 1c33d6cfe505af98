"""kafka-python and a record above the topic's max.message.bytes: the broker refuses it with
MESSAGE_TOO_LARGE (MessageSizeTooLargeError; the client's own max_request_size is set far higher, and
the same record goes through to a topic without the limit), stores nothing, and takes what fits."""

import os

import pytest
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from conformance.support import TIMEOUT, create_topic, kafka_python_read, log_dirs_of, stored_batches
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


def test_record_above_topic_limit_is_refused_by_the_broker(broker, unique):
    small = create_topic(broker.bootstrap, unique("kp-small"), configs={"max.message.bytes": "10000"})
    roomy = create_topic(broker.bootstrap, unique("kp-roomy"))
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=1_000_000, linger_ms=0,
                      request_timeout_ms=int(TIMEOUT * 1000))
    try:
        big = os.urandom(20_000)
        assert p.send(roomy, key=b"k", value=big, partition=0).get(TIMEOUT).offset == 0

        future = p.send(small, key=b"k", value=big, partition=0)
        with pytest.raises(MessageSizeTooLargeError) as e:
            future.get(TIMEOUT)
        assert e.value.errno == ErrorCode.MESSAGE_TOO_LARGE
        assert stored_batches(log_dirs_of(broker), small, 0) == []
    finally:
        p.close(TIMEOUT)
    # kafka-python's idempotent producer turns any non-retriable batch error fatal for the producer
    # (its own choice, not Kafka's), so what fits goes through a new one.
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=0, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        fits = os.urandom(5_000)
        assert p.send(small, key=b"k", value=fits, partition=0).get(TIMEOUT).offset == 0
    finally:
        p.close(TIMEOUT)
    [got] = kafka_python_read(broker.bootstrap, small, {0: 0}, 1)
    assert (got.offset, got.key, got.value) == (0, b"k", fits)


def test_a_refused_batch_is_split_and_resent(broker, unique):
    """A batch of records that each fit but together exceed max.message.bytes is refused whole with
    MESSAGE_TOO_LARGE; kafka-python splits it and resends, and every record lands once, in order."""
    topic = create_topic(broker.bootstrap, unique("kp-split"), configs={"max.message.bytes": "10000"})
    values = [os.urandom(1_500) for _ in range(12)]  # ~18 KB in one batch, each record well under 10000
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=200, batch_size=100_000,
                      request_timeout_ms=int(TIMEOUT * 1000))
    try:
        futures = [p.send(topic, key=b"%d" % i, value=v, partition=0) for i, v in enumerate(values)]
        assert [f.get(TIMEOUT).offset for f in futures] == list(range(12))
    finally:
        p.close(TIMEOUT)
    batches = stored_batches(log_dirs_of(broker), topic, 0)
    assert len(batches) >= 2 and sum(b.record_count for b in batches) == 12
    got = kafka_python_read(broker.bootstrap, topic, {0: 0}, 12)
    assert [(g.offset, g.key, g.value) for g in got] == [(i, b"%d" % i, v) for i, v in enumerate(values)]


def test_the_limit_follows_altered_topic_configs(broker, unique):
    """max.message.bytes raised with AdminClient.alter_configs applies to the next produce."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = create_topic(broker.bootstrap, unique("kp-grow-limit"), configs={"max.message.bytes": "10000"})
    big = os.urandom(20_000)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, max_request_size=1_000_000, enable_idempotence=False,
                      retries=0, linger_ms=0, request_timeout_ms=int(TIMEOUT * 1000))
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        with pytest.raises(MessageSizeTooLargeError):
            p.send(topic, value=big, partition=0).get(TIMEOUT)
        assert admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                   configs={"max.message.bytes": "30000"})]) == {"topic": {topic: "OK"}}
        assert p.send(topic, value=big, partition=0).get(TIMEOUT).offset == 0
    finally:
        p.close(TIMEOUT)
        admin.close()
