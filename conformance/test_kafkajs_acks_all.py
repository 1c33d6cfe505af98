"""KafkaJS with acks=-1 and an idempotent producer: each send() acknowledged at the offsets the
records were stored at, batches carrying the producer id InitProducerId handed out and gap-free
sequence numbers per partition; confluent-kafka reads them back exactly once, in order."""

import pytest

from conformance.support import (
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


def test_idempotent_acks_all(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kjs-idem"), partitions=3)
    records = sample_records(30, partitions=3)
    out = run_node("produce.js", broker.bootstrap, topic, "--acks=-1", "--idempotent", "--chunk=6",
                   input=records_json(records))
    assert out["acks"] == [[{"partition": p, "errorCode": ErrorCode.NONE, "baseOffset": 2 * i} for p in range(3)]
                           for i in range(5)]

    pids = set()
    for part in range(3):
        batches = stored_batches(log_dirs_of(broker), topic, part)
        assert [b.record_count for b in batches] == [2] * 5
        assert [(b.base_sequence, b.producer_epoch) for b in batches] == [(2 * i, 0) for i in range(5)]
        pids |= {b.producer_id for b in batches}
    assert len(pids) == 1 and pids.pop() >= 0
    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0, 2: 0}, 30))
