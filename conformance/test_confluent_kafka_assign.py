"""confluent-kafka consumer without a group: assign() every partition of a topic from the beginning,
read everything, then (with a second consumer assigned at the end offsets) see only records
produced after."""

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from conformance.support import TIMEOUT, Got, check_partition_order, create_topic, sample_records

pytestmark = pytest.mark.timeout(60)


def _produce(bootstrap: str, topic: str, records) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp)
    assert p.flush(TIMEOUT) == 0


def _poll(c: Consumer, n: int) -> list[Got]:
    out = []
    while len(out) < n:
        msg = c.poll(TIMEOUT)
        assert msg is not None, f"got {len(out)} of {n} records"
        assert msg.error() is None, msg.error()
        out.append(Got(msg.partition(), msg.offset(), msg.key(), msg.value(), tuple(msg.headers() or ()),
                       msg.timestamp()[1]))
    return out


def test_assign_all_partitions(broker, unique):
    topic = create_topic(broker.bootstrap, unique("cfk-assign"), partitions=4)
    first = sample_records(16, partitions=4, tag="a")
    _produce(broker.bootstrap, topic, first)

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "conformance-never-joined",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    tail = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "conformance-never-joined",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    try:
        parts = c.list_topics(topic, timeout=TIMEOUT).topics[topic].partitions
        assert sorted(parts) == [0, 1, 2, 3]
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        check_partition_order(first, _poll(c, 16))
        assert c.poll(0.3) is None  # nothing beyond what was produced

        # the end of every partition (ListOffsets latest), where a tailing consumer starts; taken
        # before the second round is produced (OFFSET_END would resolve at some unknown moment)
        ends = {p: tail.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT) for p in parts}
        assert ends == dict.fromkeys(parts, (0, 4))
        tail.assign([TopicPartition(topic, p, hi) for p, (_lo, hi) in ends.items()])
        second = sample_records(8, partitions=4, tag="b")
        _produce(broker.bootstrap, topic, second)
        check_partition_order(second, _poll(c, 8), first_offsets=dict.fromkeys(parts, 4))
        check_partition_order(second, _poll(tail, 8), first_offsets=dict.fromkeys(parts, 4))
        assert [tp.offset for tp in c.position([TopicPartition(topic, p) for p in parts])] == [6] * 4
    finally:
        c.close()
        tail.close()
