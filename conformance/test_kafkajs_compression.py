"""KafkaJS produces with the codecs it has here (none and gzip built in, snappy via kafkajs-snappy,
which sends raw unframed snappy, lz4 via kafkajs-lz4; @kafkajs/zstd's native cppzst does not build
on Node 20): keys, a null key, null values, repeated headers, CreateTimes. The broker keeps the
codec; confluent-kafka and aiokafka read it back (KafkaJS only consumes through a group)."""

import pytest

from conformance.support import (
    CODEC_IDS,
    aiokafka_read,
    check_partition_order,
    confluent_read,
    create_topic,
    log_dirs_of,
    records_json,
    run_node,
    sample_records,
    stored_batches,
)
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4"])
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"kjs-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    out = run_node("produce.js", broker.bootstrap, topic, f"--codec={codec}", "--chunk=6", input=records_json(records))
    assert out["acks"] == [[{"partition": p, "errorCode": ErrorCode.NONE, "baseOffset": base} for p in (0, 1)]
                           for base in (0, 3)]

    batches = [b for part in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, part)]
    assert [b.record_count for b in batches] == [3, 3, 3, 3]
    assert {b.codec for b in batches} == {CODEC_IDS[codec]}, "the broker must keep the producer's codec"

    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, aiokafka_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
