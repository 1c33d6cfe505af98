"""kafka-python produces every compression type (keys, a null key, null values, repeated headers,
CreateTimes); the broker keeps the producer's codec; kafka-python and aiokafka read it all back."""

import pytest
from kafka import KafkaProducer

from conformance.support import (
    CODEC_IDS,
    CODECS,
    TIMEOUT,
    Rec,
    aiokafka_read,
    check_partition_order,
    confluent_read,
    create_topic,
    kafka_python_read,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)

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


@pytest.mark.parametrize("codec", ["none", "gzip", "lz4"])
def test_legacy_message_format(broker, unique, codec):
    """kafka-python pinned to api_version 0.10.1 speaks Produce v2 / Fetch v3: magic-1 message sets
    (no headers). The broker stores them as it stores everything (magic-2 batches, same codec, the
    CreateTimes kept), a current client reads them, and the old client gets them down-converted."""
    topic = create_topic(broker.bootstrap, unique(f"kp-legacy-{codec}"), partitions=2)
    records = [Rec(r.partition, r.key, r.value, (), r.timestamp) for r in sample_records(12, partitions=2, tag=codec)]
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 1), enable_idempotence=False,
                      compression_type=None if codec == "none" else codec, linger_ms=20,
                      request_timeout_ms=int(TIMEOUT * 1000))
    try:
        acked = [f.get(TIMEOUT) for f in [p.send(topic, key=r.key, value=r.value, partition=r.partition,
                                                 timestamp_ms=r.timestamp) for r in records]]
    finally:
        p.close(TIMEOUT)
    assert [(m.partition, m.offset) for m in acked] == [(r.partition, i // 2) for i, r in enumerate(records)]
    batches = [b for part in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, part)]
    assert sum(b.record_count for b in batches) == 12 and {b.codec for b in batches} == {CODEC_IDS[codec]}

    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, kafka_python_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12, api_version=(0, 10, 1)))
    check_partition_order(records[7::2], kafka_python_read(broker.bootstrap, topic, {1: 3}, 3, api_version=(0, 10, 1)),
                          first_offsets={1: 3})
