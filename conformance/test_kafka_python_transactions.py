"""The transactional producer of kafka-python: a committed transaction is read by its read_committed
consumer, an aborted one is not; read_uncommitted readers see both."""

import pytest

from conformance.support import create_topic
from conformance.test_confluent_kafka_transactions import read_all

pytestmark = pytest.mark.timeout(120)

COMMITTED = sorted(f"committed-{i}".encode() for i in range(5))
ABORTED = sorted(f"aborted-{i}".encode() for i in range(5))


def test_kafka_python_commit_and_abort(broker, unique):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    topic = create_topic(broker.bootstrap, unique("kp-txn"), partitions=2)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=unique("kp-txn"))
    p.init_transactions()
    for tag, commit in (("committed", True), ("aborted", False)):
        p.begin_transaction()
        for i in range(5):
            p.send(topic, value=f"{tag}-{i}".encode(), partition=i % 2)
        p.flush()
        p.commit_transaction() if commit else p.abort_transaction()
    p.close()

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, consumer_timeout_ms=3000)
    c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    c.seek_to_beginning()
    assert sorted(m.value for m in c) == COMMITTED
    c.close()
    assert read_all(broker.bootstrap, topic, "read_uncommitted", expect=10) == sorted(COMMITTED + ABORTED)
