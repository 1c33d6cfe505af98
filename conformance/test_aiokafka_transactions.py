"""The transactional producer of aiokafka: a committed transaction is read by its read_committed
consumer, an aborted one is not; read_uncommitted readers see both."""

import asyncio

import pytest

from conformance.support import create_topic
from conformance.test_confluent_kafka_transactions import read_all

pytestmark = pytest.mark.timeout(120)

COMMITTED = sorted(f"committed-{i}".encode() for i in range(5))
ABORTED = sorted(f"aborted-{i}".encode() for i in range(5))


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
