"""kafka-python consumer without a group (group_id=None): assign() every partition of a topic,
read everything from the beginning, then from the end see only records produced after."""


import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from conformance.support import TIMEOUT, Got, check_partition_order, collect, create_topic, sample_records

pytestmark = pytest.mark.timeout(60)


def _produce(bootstrap: str, topic: str, records) -> None:
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for f in [p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                         timestamp_ms=r.timestamp) for r in records]:
            f.get(TIMEOUT)
    finally:
        p.close(TIMEOUT)


def _poll(c: KafkaConsumer, n: int) -> list[Got]:
    out = collect(lambda: [Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                           for tp, msgs in c.poll(timeout_ms=200).items() for m in msgs], n, "records", TIMEOUT)
    assert len(out) == n, f"got {len(out)} records, {n} expected"
    return out


def test_assign_all_partitions(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kp-assign"), partitions=4)
    first = sample_records(16, partitions=4, tag="a")
    _produce(broker.bootstrap, topic, first)

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=100)
    tail = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="latest", fetch_max_wait_ms=100)
    try:
        parts = c.partitions_for_topic(topic)
        assert parts == {0, 1, 2, 3}
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        c.assign(tps)
        assert c.assignment() == set(tps) and c.subscription() is None
        check_partition_order(first, _poll(c, 16))
        assert c.poll(timeout_ms=300) == {}

        tail.assign(tps)
        assert [tail.position(tp) for tp in tps] == [4] * 4  # "latest" resolved before the second round
        second = sample_records(8, partitions=4, tag="b")
        _produce(broker.bootstrap, topic, second)
        check_partition_order(second, _poll(c, 8), first_offsets=dict.fromkeys(parts, 4))
        check_partition_order(second, _poll(tail, 8), first_offsets=dict.fromkeys(parts, 4))
        assert [c.position(tp) for tp in tps] == [6] * 4
    finally:
        c.close()
        tail.close()
