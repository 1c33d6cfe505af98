"""confluent-kafka with acks=all and enable.idempotence: every record acknowledged at the offset it
was stored at, batches stored with the producer id InitProducerId handed out and gap-free sequence
numbers per partition, and read back exactly once, in order."""

import pytest
from confluent_kafka import Producer

from conformance.support import (
    TIMEOUT,
    check_partition_order,
    confluent_read,
    create_topic,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


def test_idempotent_acks_all(broker, unique):
    topic = create_topic(broker.bootstrap, unique("cfk-idem"), partitions=3)
    records = sample_records(30, partitions=3)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "batch.num.messages": 4, "message.timeout.ms": int(TIMEOUT * 1000)})
    acked = []

    def report(err, msg):
        acked.append((err, msg.partition(), msg.offset(), msg.key()))

    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp, on_delivery=report)
    assert p.flush(TIMEOUT) == 0
    assert [a[0] for a in acked] == [None] * 30
    for part in range(3):
        keys = [r.key for r in records if r.partition == part]
        assert [(a[2], a[3]) for a in acked if a[1] == part] == list(enumerate(keys))

    pids = set()
    for part in range(3):
        batches = stored_batches(log_dirs_of(broker), topic, part)
        assert sum(b.record_count for b in batches) == 10
        assert len(batches) >= 3  # batch.num.messages=4: sequences span several batches
        seq = 0
        for b in batches:
            assert (b.base_sequence, b.producer_epoch) == (seq, 0)
            seq += b.record_count
        pids |= {b.producer_id for b in batches}
    assert len(pids) == 1 and pids.pop() >= 0

    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0, 2: 0}, 30))


def test_min_insync_replicas_is_capped_at_the_replication_factor(broker, unique):
    """With min.insync.replicas=2 and one replica, acks=all is taken as Kafka 3.7+ does (the
    effective min ISR is at most the replication factor, KAFKA-15583), and so is acks=1.
    NOT_ENOUGH_REPLICAS needs a replica out of the ISR: the replication tests have it."""
    topic = create_topic(broker.bootstrap, unique("cfk-misr"), configs={"min.insync.replicas": "2"})
    reports = []

    def send(acks: str) -> None:
        p = Producer({"bootstrap.servers": broker.bootstrap, "acks": acks, "retries": 0,
                      "message.timeout.ms": int(TIMEOUT * 1000)})
        p.produce(topic, value=b"acks=" + acks.encode(), partition=0,
                  on_delivery=lambda err, msg: reports.append((err and err.code(), msg.offset())))
        assert p.flush(TIMEOUT) == 0

    send("all")
    send("1")
    assert reports == [(None, 0), (None, 1)]
    assert [m.value for m in confluent_read(broker.bootstrap, topic, {0: 0}, 2)] == [b"acks=all", b"acks=1"]
