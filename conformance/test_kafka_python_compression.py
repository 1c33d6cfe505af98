"""kafka-python produces every compression type (keys, a null key, null values, repeated headers,
CreateTimes); the broker keeps the producer's codec; kafka-python and aiokafka read it all back."""

import pytest
from kafka import KafkaProducer
from kafka.codec import has_snappy

from conformance.support import (CODEC_IDS, TIMEOUT, aiokafka_read, check_partition_order, create_topic,
                                 kafka_python_read, log_dirs_of, sample_records, stored_batches)

pytestmark = pytest.mark.timeout(60)

CODECS = ["none", "gzip",
          pytest.param("snappy", marks=pytest.mark.skipif(
              not has_snappy(), reason="kafka-python's snappy codec needs python-snappy, not in the test extras")),
          "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"kp-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=None if codec == "none" else codec,
                      linger_ms=20, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        futures = [p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                          timestamp_ms=r.timestamp) for r in records]
        acked = [f.get(TIMEOUT) for f in futures]
    finally:
        p.close(TIMEOUT)
    assert [(m.partition, m.offset, m.timestamp) for m in acked] == \
        [(r.partition, i // 2, r.timestamp) for i, r in enumerate(records)]

    batches = [b for part in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, part)]
    assert sum(b.record_count for b in batches) == 12
    assert {b.codec for b in batches} == {CODEC_IDS[codec]}, "the broker must keep the producer's codec"

    check_partition_order(records, kafka_python_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, aiokafka_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
