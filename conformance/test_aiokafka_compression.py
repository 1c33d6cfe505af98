"""aiokafka produces every compression type (keys, a null key, null values, repeated headers,
CreateTimes); the broker keeps the producer's codec; aiokafka and confluent-kafka read it back."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from conformance.support import (
    CODEC_IDS,
    CODECS,
    TIMEOUT,
    aiokafka_read,
    check_partition_order,
    confluent_read,
    create_topic,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


async def produce(bootstrap: str, topic: str, records, codec: str):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec,
                         linger_ms=20, request_timeout_ms=int(TIMEOUT * 1000))
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        futures = [await p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                                timestamp_ms=r.timestamp) for r in records]
        return await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
    finally:
        await p.stop()


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"aio-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    acked = asyncio.run(produce(broker.bootstrap, topic, records, codec))
    # (aiokafka's RecordMetadata repeats a batch's first CreateTime for every record: the consumed
    # timestamps are checked below instead)
    assert [(m.partition, m.offset) for m in acked] == [(r.partition, i // 2) for i, r in enumerate(records)]

    batches = [b for part in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, part)]
    assert sum(b.record_count for b in batches) == 12
    assert {b.codec for b in batches} == {CODEC_IDS[codec]}, "the broker must keep the producer's codec"

    check_partition_order(records, aiokafka_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
