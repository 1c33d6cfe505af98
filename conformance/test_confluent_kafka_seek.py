"""confluent-kafka seeking without a group: assign at an explicit offset, seek() back and forth, and
offsets_for_times (ListOffsets by timestamp) to the first record at or after a time; the records sit
in lz4 batches, so lookups and reads land inside compressed batches."""

import pytest
from confluent_kafka import OFFSET_END, Consumer, KafkaError, Producer, TopicPartition

from conformance.support import TIMEOUT, Got, check_partition_order, create_topic, now_ms, sample_records

pytestmark = pytest.mark.timeout(60)


def _poll(c: Consumer, n: int) -> list[Got]:
    out = []
    while len(out) < n:
        msg = c.poll(TIMEOUT)
        assert msg is not None, f"got {len(out)} of {n} records"
        assert msg.error() is None, msg.error()
        out.append(Got(msg.partition(), msg.offset(), msg.key(), msg.value(), tuple(msg.headers() or ()),
                       msg.timestamp()[1]))
    return out


def test_seek_by_offset_and_timestamp(broker, unique):
    topic = create_topic(broker.bootstrap, unique("cfk-seek"), partitions=2)
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)  # partition 0: ts0, ts0+2s, ...; partition 1: ts0+1s, ...
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "compression.type": "lz4"})
    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp)
    assert p.flush(TIMEOUT) == 0
    p0 = [r for r in records if r.partition == 0]

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "conformance-never-joined",
                  "enable.auto.commit": False, "auto.offset.reset": "error", "fetch.wait.max.ms": 100})
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT) == (0, 10)

        # an explicit start offset
        c.assign([TopicPartition(topic, 0, 7)])
        check_partition_order(p0[7:], _poll(c, 3), first_offsets={0: 7})

        # seek back to offset 2 of the assigned partition
        c.seek(TopicPartition(topic, 0, 2))
        check_partition_order(p0[2:5], _poll(c, 3), first_offsets={0: 2})

        # offsets for times: exact hit, between two records, before all, after all
        asked = [TopicPartition(topic, 0, ts0 + 6000), TopicPartition(topic, 1, ts0 + 6500)]
        found = c.offsets_for_times(asked, timeout=TIMEOUT)
        assert [(f.partition, f.offset, f.error) for f in found] == [(0, 3, None), (1, 3, None)]
        before = c.offsets_for_times([TopicPartition(topic, 0, ts0 - 60_000)], timeout=TIMEOUT)
        assert before[0].offset == 0
        after = c.offsets_for_times([TopicPartition(topic, 0, ts0 + 3_600_000)], timeout=TIMEOUT)
        assert after[0].offset == OFFSET_END  # Kafka answers -1: no record that late

        # consume from what the lookup found
        c.assign(found)
        p1 = [r for r in records if r.partition == 1]
        check_partition_order(p0[3:] + p1[3:], _poll(c, 14), first_offsets={0: 3, 1: 3})

        # past the end: the broker answers OFFSET_OUT_OF_RANGE, which auto.offset.reset=error surfaces
        c.assign([TopicPartition(topic, 0, 50)])
        msg = c.poll(TIMEOUT)
        assert msg is not None and msg.error() is not None and msg.error().code() == KafkaError._AUTO_OFFSET_RESET
        assert "Offset out of range" in msg.error().str()
    finally:
        c.close()

