"""franz-go produces with every codec (none, gzip, snappy, lz4, zstd) and its defaults, acks=all and
idempotent writes: keys, a null key, null values, repeated headers and CreateTimes, six records a
ProduceSync. Each record is acknowledged at the offset it was stored at; the broker keeps the
codec, the producer id and gap-free sequences; confluent-kafka and franz-go itself read the
records back exactly, in order."""

import pytest

from conformance.golang import check_idempotent_batches, go_produce, go_read, offsets_in_order
from conformance.support import (
    CODEC_IDS,
    CODECS,
    check_partition_order,
    confluent_read,
    create_topic,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"fgo-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    out = go_produce("franz-go", broker.bootstrap, topic, records, f"--codec={codec}", "--chunk=6")
    assert out["offsets"] == offsets_in_order(records)
    check_idempotent_batches({p: stored_batches(log_dirs_of(broker), topic, p) for p in (0, 1)}, CODEC_IDS[codec])

    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, go_read("franz-go", broker.bootstrap, topic, {0: 0, 1: 0}, 12))
