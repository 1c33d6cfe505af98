"""kcat with acks=all and enable.idempotence: every record stored once, in batches carrying the
producer id InitProducerId handed out and gap-free sequence numbers; read back in order."""

import pytest

from conformance.support import (
    check_partition_order,
    create_topic,
    kcat_produce,
    kcat_read,
    kcat_records,
    log_dirs_of,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


def test_idempotent_acks_all(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kcat-idem"), partitions=2)
    records = kcat_records(24, partitions=2)
    kcat_produce(broker.bootstrap, topic, records, "-X", "acks=all", "-X", "enable.idempotence=true",
                 "-X", "batch.num.messages=4")

    for part in (0, 1):
        batches = stored_batches(log_dirs_of(broker), topic, part)
        assert sum(b.record_count for b in batches) == 12 and len(batches) >= 3
        seq = 0
        for b in batches:
            assert (b.base_sequence, b.producer_epoch) == (seq, 0)
            assert b.producer_id >= 0
            seq += b.record_count
    check_partition_order(records, kcat_read(broker.bootstrap, topic, {0: 0, 1: 0}, 24))
