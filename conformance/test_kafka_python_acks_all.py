"""kafka-python with its defaults, acks=all and an idempotent producer: every record acknowledged at
the offset it was stored at, batches stored with the producer id InitProducerId handed out and
gap-free sequence numbers per partition; and an explicitly non-idempotent acks=all producer's
batches carry no producer id."""

import pytest
from kafka import KafkaProducer

from conformance.support import (
    TIMEOUT,
    check_partition_order,
    create_topic,
    kafka_python_read,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


def _send_all(p: KafkaProducer, topic: str, records):
    futures = []
    for i, r in enumerate(records):
        futures.append(p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                              timestamp_ms=r.timestamp))
        if i % 4 == 3:
            p.flush(TIMEOUT)  # several batches per partition, so sequences continue across batches
    return [f.get(TIMEOUT) for f in futures]


def test_idempotent_acks_all(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kp-idem"), partitions=3)
    records = sample_records(30, partitions=3)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        assert p.config["enable_idempotence"] is True and p.config["acks"] == -1
        acked = _send_all(p, topic, records)
    finally:
        p.close(TIMEOUT)
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
    check_partition_order(records, kafka_python_read(broker.bootstrap, topic, {0: 0, 1: 0, 2: 0}, 30))


def test_plain_acks_all(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kp-acks"), partitions=1)
    records = sample_records(6, partitions=1)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", enable_idempotence=False, linger_ms=5)
    try:
        acked = _send_all(p, topic, records)
    finally:
        p.close(TIMEOUT)
    assert [m.offset for m in acked] == list(range(6))
    assert {(b.producer_id, b.base_sequence) for b in stored_batches(log_dirs_of(broker), topic, 0)} == {(-1, -1)}
    check_partition_order(records, kafka_python_read(broker.bootstrap, topic, {0: 0}, 6))
