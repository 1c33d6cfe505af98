"""aiokafka consumer without a group (group_id=None): assign() every partition of a topic, read
everything from the beginning, then from the end see only records produced after."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from conformance.support import TIMEOUT, Got, check_partition_order, collect_async, create_topic, sample_records

pytestmark = pytest.mark.timeout(60)


async def _produce(bootstrap: str, topic: str, records) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        futures = [await p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                                timestamp_ms=r.timestamp) for r in records]
        await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    finally:
        await p.stop()


async def _poll(c: AIOKafkaConsumer, n: int) -> list[Got]:
    async def poll() -> list[Got]:
        return [Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                for tp, msgs in (await c.getmany(timeout_ms=200)).items() for m in msgs]
    out = await collect_async(poll, n, "records", TIMEOUT)
    assert len(out) == n, f"got {len(out)} records, {n} expected"
    return out


async def scenario(bootstrap: str, topic: str) -> None:
    first = sample_records(16, partitions=4, tag="a")
    await _produce(bootstrap, topic, first)
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", fetch_max_wait_ms=100)
    tail = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="latest", fetch_max_wait_ms=100)
    await asyncio.wait_for(c.start(), TIMEOUT)
    await asyncio.wait_for(tail.start(), TIMEOUT)
    try:
        assert topic in await c.topics()
        parts = [0, 1, 2, 3]
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        assert c.assignment() == set(tps)
        check_partition_order(first, await _poll(c, 16))
        assert c.partitions_for_topic(topic) == set(parts)
        assert await c.getmany(timeout_ms=300) == {}

        tail.assign(tps)
        assert [await tail.position(tp) for tp in tps] == [4] * 4  # "latest" resolved before the second round
        second = sample_records(8, partitions=4, tag="b")
        await _produce(bootstrap, topic, second)
        check_partition_order(second, await _poll(c, 8), first_offsets=dict.fromkeys(parts, 4))
        check_partition_order(second, await _poll(tail, 8), first_offsets=dict.fromkeys(parts, 4))
        assert [await c.position(tp) for tp in tps] == [6] * 4
    finally:
        await c.stop()
        await tail.stop()


def test_assign_all_partitions(broker, unique):
    topic = create_topic(broker.bootstrap, unique("aio-assign"), partitions=4)
    asyncio.run(asyncio.wait_for(scenario(broker.bootstrap, topic), 45))
