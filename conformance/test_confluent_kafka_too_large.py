"""confluent-kafka and a record above the topic's max.message.bytes: the broker refuses it with
MESSAGE_TOO_LARGE (librdkafka's own limit, message.max.bytes, is set far higher so the refusal is
the broker's), stores nothing of it, and keeps taking records that fit."""

import os

import pytest
from confluent_kafka import KafkaError, Producer

from conformance.support import TIMEOUT, confluent_read, create_topic, log_dirs_of, stored_batches

pytestmark = pytest.mark.timeout(60)


def _send(p: Producer, topic: str, value: bytes):
    """Produce one record and flush: (error or None, offset)."""
    out = []
    p.produce(topic, key=b"k", value=value, partition=0, on_delivery=lambda err, msg: out.append((err, msg.offset())))
    assert p.flush(TIMEOUT) == 0
    assert len(out) == 1
    return out[0]


def test_record_above_topic_limit_is_refused_by_the_broker(broker, unique):
    small = create_topic(broker.bootstrap, unique("cfk-small"), configs={"max.message.bytes": "10000"})
    roomy = create_topic(broker.bootstrap, unique("cfk-roomy"))
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.max.bytes": 1_000_000, "compression.type": "none",
                  "linger.ms": 0, "retries": 0, "message.timeout.ms": int(TIMEOUT * 1000)})
    big = os.urandom(20_000)

    err, _ = _send(p, roomy, big)  # the client itself lets 20000 bytes through
    assert err is None

    err, _ = _send(p, small, big)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert not err.retriable()
    assert stored_batches(log_dirs_of(broker), small, 0) == []

    fits = os.urandom(5_000)
    err, offset = _send(p, small, fits)
    assert (err, offset) == (None, 0)
    [got] = confluent_read(broker.bootstrap, small, {0: 0}, 1)
    assert (got.offset, got.value) == (0, fits)


def test_the_limit_follows_altered_topic_configs(broker, unique):
    """max.message.bytes altered on a live topic applies to the next produce, both ways."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    topic = create_topic(broker.bootstrap, unique("cfk-grow-limit"), configs={"max.message.bytes": "10000"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def set_limit(value: str) -> None:
        res = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("max.message.bytes", value, incremental_operation=AlterConfigOpType.SET)])
        assert admin.incremental_alter_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT) is None

    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": "none", "linger.ms": 0, "retries": 0,
                  "message.timeout.ms": int(TIMEOUT * 1000)})
    big = os.urandom(20_000)
    err, _ = _send(p, topic, big)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    set_limit("30000")
    assert _send(p, topic, big) == (None, 0)

    set_limit("10000")
    err, _ = _send(p, topic, big)
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    [got] = confluent_read(broker.bootstrap, topic, {0: 0}, 1)
    assert got.value == big
