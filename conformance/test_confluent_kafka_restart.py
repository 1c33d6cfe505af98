"""confluent-kafka across a broker restart: records acknowledged with acks=all (idempotent producer)
are all there after a graceful stop (SIGTERM) and after a crash (SIGKILL right after the
acknowledgements), at the same offsets. The same producer, still running, goes on after the restart
with its producer id and next sequence numbers (the broker rebuilt its producer state from the log),
and a consumer that stayed assigned through the restart picks up where it was."""

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from conformance.support import (
    TIMEOUT,
    Got,
    check_partition_order,
    confluent_read,
    create_topic,
    log_dirs_of,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(90)


def _produce(p: Producer, topic: str, records) -> dict[int, list[int]]:
    acked: dict[int, list[int]] = {}
    failed = []

    def report(err, msg):
        (failed.append(err) if err else acked.setdefault(msg.partition(), []).append(msg.offset()))

    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp, on_delivery=report)
    assert p.flush(TIMEOUT) == 0 and failed == []
    return acked


def _poll(c: Consumer, n: int) -> list[Got]:
    out = []
    while len(out) < n:
        msg = c.poll(TIMEOUT)
        assert msg is not None, f"got {len(out)} of {n} records"
        assert msg.error() is None, msg.error()
        out.append(Got(msg.partition(), msg.offset(), msg.key(), msg.value(), tuple(msg.headers() or ()),
                       msg.timestamp()[1]))
    return out


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_restart(broker_factory, unique, clean):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("cfk-restart"), partitions=2)
    records = sample_records(40, partitions=2)
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                  "compression.type": "zstd", "message.timeout.ms": int(TIMEOUT * 1000),
                  "reconnect.backoff.max.ms": 200})
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "conformance-never-joined", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 100, "reconnect.backoff.max.ms": 200})
    try:
        assert _produce(p, topic, records) == {0: list(range(20)), 1: list(range(20))}
        c.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        check_partition_order(records, _poll(c, 40))

        b.restart(clean=clean)

        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(topic, timeout=TIMEOUT).topics[topic]
        assert (sorted(md.partitions), md.error) == ([0, 1], None)
        check_partition_order(records, confluent_read(b.bootstrap, topic, {0: 0, 1: 0}, 40))

        more = sample_records(4, partitions=2, tag="after")
        assert _produce(p, topic, more) == {0: [20, 21], 1: [20, 21]}
        check_partition_order(more, _poll(c, 4), first_offsets={0: 20, 1: 20})
    finally:
        c.close()

    for part in (0, 1):
        batches = stored_batches(log_dirs_of(b), topic, part)
        assert len({(x.producer_id, x.producer_epoch) for x in batches}) == 1, "one producer id and epoch throughout"
        seq = 0
        for x in batches:
            assert x.base_sequence == seq
            seq += x.record_count
        assert seq == 22
