"""aiokafka seeking without a group: seek() to an explicit offset, seek_to_beginning/end, and
offsets_for_times (ListOffsets by timestamp) with the timestamp of the record found; the records
sit in zstd batches, so lookups and reads land inside compressed batches."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from conformance.support import TIMEOUT, Got, check_partition_order, collect_async, create_topic, now_ms, sample_records

pytestmark = pytest.mark.timeout(60)


async def _poll(c: AIOKafkaConsumer, n: int) -> list[Got]:
    got: list[Got] = []

    async def poll() -> list[Got]:  # never more than the n asked for
        batch = [Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                 for tp, msgs in (await c.getmany(timeout_ms=200, max_records=n - len(got))).items() for m in msgs]
        got.extend(batch)
        return batch
    return await collect_async(poll, n, "records", TIMEOUT)


async def scenario(bootstrap: str, topic: str) -> None:
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, compression_type="zstd")
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        futures = [await p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                                timestamp_ms=r.timestamp) for r in records]
        await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    finally:
        await p.stop()
    p0 = [r for r in records if r.partition == 0]
    p1 = [r for r in records if r.partition == 1]
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         fetch_max_wait_ms=100, auto_offset_reset="none")
    await asyncio.wait_for(c.start(), TIMEOUT)
    try:
        assert await c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert await c.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 10}
        c.assign([tp0])
        c.seek(tp0, 7)
        check_partition_order(p0[7:], await _poll(c, 3), first_offsets={0: 7})
        assert await c.position(tp0) == 10
        c.seek(tp0, 2)
        check_partition_order(p0[2:5], await _poll(c, 3), first_offsets={0: 2})
        await c.seek_to_beginning(tp0)
        check_partition_order(p0[:1], await _poll(c, 1))

        found = await c.offsets_for_times({tp0: ts0 + 6000, tp1: ts0 + 6500})
        assert (found[tp0].offset, found[tp0].timestamp) == (3, ts0 + 6000)
        assert (found[tp1].offset, found[tp1].timestamp) == (3, ts0 + 7000)
        assert (await c.offsets_for_times({tp0: ts0 - 60_000}))[tp0].offset == 0
        assert await c.offsets_for_times({tp0: ts0 + 3_600_000}) == {tp0: None}

        c.assign([tp0, tp1])
        c.seek(tp0, found[tp0].offset)
        c.seek(tp1, found[tp1].offset)
        check_partition_order(p0[3:] + p1[3:], await _poll(c, 14), first_offsets={0: 3, 1: 3})
        await c.seek_to_end(tp1)
        assert await c.position(tp1) == 10
    finally:
        await c.stop()


def test_seek_by_offset_and_timestamp(broker, unique):
    topic = create_topic(broker.bootstrap, unique("aio-seek"), partitions=2)
    asyncio.run(asyncio.wait_for(scenario(broker.bootstrap, topic), 45))
