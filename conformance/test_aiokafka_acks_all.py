"""aiokafka with enable_idempotence (which implies acks=all): every record acknowledged at the
offset it was stored at, batches stored with the producer id InitProducerId handed out and gap-free
sequence numbers per partition, read back exactly once, in order."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from conformance.support import (
    TIMEOUT,
    aiokafka_read,
    check_partition_order,
    create_topic,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


async def produce(bootstrap: str, topic: str, records):
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                         request_timeout_ms=int(TIMEOUT * 1000))
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        acked = []
        for i in range(0, len(records), 6):  # several batches per partition
            futures = [await p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                                    timestamp_ms=r.timestamp) for r in records[i:i + 6]]
            acked += await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)
        return acked
    finally:
        await p.stop()


def test_idempotent_acks_all(broker, unique):
    topic = create_topic(broker.bootstrap, unique("aio-idem"), partitions=3)
    records = sample_records(30, partitions=3)
    acked = asyncio.run(produce(broker.bootstrap, topic, records))
    assert [(m.partition, m.offset) for m in acked] == [(r.partition, i // 3) for i, r in enumerate(records)]

    pids = set()
    for part in range(3):
        batches = stored_batches(log_dirs_of(broker), topic, part)
        assert sum(b.record_count for b in batches) == 10 and len(batches) >= 3
        seq = 0
        for b in batches:
            assert (b.base_sequence, b.producer_epoch) == (seq, 0)
            seq += b.record_count
        pids |= {b.producer_id for b in batches}
    assert len(pids) == 1 and pids.pop() >= 0
    check_partition_order(records, aiokafka_read(broker.bootstrap, topic, {0: 0, 1: 0, 2: 0}, 30))
