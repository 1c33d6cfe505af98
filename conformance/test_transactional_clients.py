"""Transactional producers of kafka-python, aiokafka and KafkaJS: a committed transaction is read by
read_committed consumers (of the same client), an aborted one is not; read_uncommitted readers see
both."""

import asyncio

import pytest

from conformance.support import create_topic, run_node
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


def test_aiokafka_commit_and_abort(broker, unique):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    topic = create_topic(broker.bootstrap, unique("aio-txn"), partitions=2)

    async def scenario() -> list[bytes]:
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=unique("aio-txn"))
        await p.start()
        try:
            async with p.transaction():
                for i in range(5):
                    await p.send_and_wait(topic, f"committed-{i}".encode(), partition=i % 2)
            await p.begin_transaction()
            for i in range(5):
                await p.send_and_wait(topic, f"aborted-{i}".encode(), partition=i % 2)
            await p.abort_transaction()
        finally:
            await p.stop()
        c = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                             enable_auto_commit=False, auto_offset_reset="earliest")
        await c.start()
        try:
            c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
            got = []
            while True:
                batch = await c.getmany(timeout_ms=2000)
                if not batch:
                    return sorted(got)
                got += [m.value for msgs in batch.values() for m in msgs]
        finally:
            await c.stop()

    assert asyncio.run(scenario()) == COMMITTED
    assert read_all(broker.bootstrap, topic, "read_uncommitted", expect=10) == sorted(COMMITTED + ABORTED)


def test_kafkajs_commit_and_abort(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kjs-txn"), partitions=2)
    out = run_node("transactions.js", broker.bootstrap, topic, unique("kjs-txn"))
    assert [v.encode() for v in out["values"]] == COMMITTED
    assert read_all(broker.bootstrap, topic, "read_uncommitted", expect=10) == sorted(COMMITTED + ABORTED)
