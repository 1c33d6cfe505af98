"""kafka-python and a record above the topic's max.message.bytes: the broker refuses it with
MESSAGE_TOO_LARGE (MessageSizeTooLargeError; the client's own max_request_size is set far higher, and
the same record goes through to a topic without the limit), stores nothing, and takes what fits."""

import os

import pytest
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from conformance.support import TIMEOUT, create_topic, kafka_python_read, log_dirs_of, stored_batches

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
        assert e.value.errno == 10
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
