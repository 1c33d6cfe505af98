"""aiokafka across a broker restart: records acknowledged by its idempotent acks=all producer are
all there, at the same offsets, after a graceful stop (SIGTERM) and after a crash (SIGKILL right
after the acknowledgements). The same producer goes on afterwards with its producer id and next
sequence numbers (the broker rebuilt its producer state from the log)."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from conformance.support import (
    TIMEOUT,
    aiokafka_read_async,
    check_partition_order,
    create_topic,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(90)


async def _produce(p: AIOKafkaProducer, topic: str, records) -> list[tuple[int, int]]:
    futures = [await p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                            timestamp_ms=r.timestamp) for r in records]
    return [(m.partition, m.offset) for m in await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT)]


async def scenario(b, topic: str, clean: bool) -> None:
    records = sample_records(40, partitions=2)
    p = AIOKafkaProducer(bootstrap_servers=b.bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                         compression_type="lz4", request_timeout_ms=int(TIMEOUT * 1000), retry_backoff_ms=100)
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        assert await _produce(p, topic, records) == [(r.partition, i // 2) for i, r in enumerate(records)]

        await asyncio.to_thread(b.restart, clean=clean)

        check_partition_order(records, await aiokafka_read_async(b.bootstrap, topic, {0: 0, 1: 0}, 40))
        more = sample_records(4, partitions=2, tag="after")
        assert await _produce(p, topic, more) == [(0, 20), (1, 20), (0, 21), (1, 21)]
    finally:
        await p.stop()
    check_partition_order(more, await aiokafka_read_async(b.bootstrap, topic, {0: 20, 1: 20}, 4),
                          first_offsets={0: 20, 1: 20})


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_restart(broker_factory, unique, clean):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("aio-restart"), partitions=2)
    asyncio.run(asyncio.wait_for(scenario(b, topic, clean), 60))
    for part in (0, 1):
        batches = stored_batches(log_dirs_of(b), topic, part)
        assert len({(x.producer_id, x.producer_epoch) for x in batches}) == 1, "one producer id and epoch throughout"
        assert [x.base_sequence for x in batches] == [sum(y.record_count for y in batches[:i])
                                                      for i in range(len(batches))]
        assert sum(x.record_count for x in batches) == 22
