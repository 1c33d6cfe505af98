"""confluent-kafka produces every compression type (keys, a null key, null values, repeated headers,
CreateTimes); the broker keeps the producer's codec; confluent-kafka and kcat read it all back."""

import pytest
from confluent_kafka import Producer

from conformance.support import (CODEC_IDS, CODECS, TIMEOUT, check_partition_order, confluent_read, create_topic, kcat_read,
                                 log_dirs_of, sample_records, stored_batches)

pytestmark = pytest.mark.timeout(60)


def produce(bootstrap: str, topic: str, records, codec: str) -> dict[int, list[int]]:
    """Send `records`, wait for every delivery report; returns partition -> offsets acknowledged."""
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 20,
                  "message.timeout.ms": int(TIMEOUT * 1000)})
    acked: dict[int, list[int]] = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.setdefault(msg.partition(), []).append(msg.offset())

    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp, on_delivery=report)
    assert p.flush(TIMEOUT) == 0, "deliveries still outstanding"
    assert errors == []
    return acked


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"cfk-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    acked = produce(broker.bootstrap, topic, records, codec)
    assert acked == {0: list(range(6)), 1: list(range(6))}
    batches = [b for p in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, p)]
    assert sum(b.record_count for b in batches) == 12
    assert {b.codec for b in batches} == {CODEC_IDS[codec]}, "the broker must keep the producer's codec"

    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, kcat_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
