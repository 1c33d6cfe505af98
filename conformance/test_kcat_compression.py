"""kcat produces every compression type (keys, a null key and null values with -Z, repeated headers
with -H); the broker keeps kcat's codec and stamps nothing (CreateTime from librdkafka);
kcat and confluent-kafka read it all back."""

import pytest

from conformance.support import (
    CODEC_IDS,
    CODECS,
    assert_codec_kept,
    check_partition_order,
    confluent_read,
    create_topic,
    kcat_produce,
    kcat_read,
    kcat_records,
    log_dirs_of,
    now_ms,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"kcat-{codec}"), partitions=2)
    records = kcat_records(12, partitions=2, tag=codec)
    before = now_ms()
    kcat_produce(broker.bootstrap, topic, records, "-X", f"compression.codec={codec}", "-X", "linger.ms=20")
    after = now_ms()

    batches = [b for part in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, part)]
    assert sum(b.record_count for b in batches) == 12
    assert_codec_kept(batches, CODEC_IDS[codec])

    by_kcat = kcat_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12)
    check_partition_order(records, by_kcat)
    assert all(before - 1000 <= g.timestamp <= after for g in by_kcat)
    by_confluent = confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12)
    check_partition_order(records, by_confluent)
    assert sorted(by_confluent, key=lambda g: (g.partition, g.offset)) == by_kcat
