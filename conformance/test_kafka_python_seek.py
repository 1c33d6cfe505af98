"""kafka-python seeking without a group: seek() to an explicit offset, seek_to_beginning/end, and
offsets_for_times (ListOffsets by timestamp) with the timestamp of the record found; the records
sit in gzip batches, so lookups and reads land inside compressed batches."""


import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import OffsetOutOfRangeError

from conformance.support import TIMEOUT, Got, check_partition_order, collect, create_topic, now_ms, sample_records

pytestmark = pytest.mark.timeout(60)


def _poll(c: KafkaConsumer, n: int) -> list[Got]:
    got: list[Got] = []

    def poll() -> list[Got]:  # never more than the n asked for
        batch = [Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                 for tp, msgs in c.poll(timeout_ms=200, max_records=n - len(got)).items() for m in msgs]
        got.extend(batch)
        return batch
    return collect(poll, n, "records", TIMEOUT)


def test_seek_by_offset_and_timestamp(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kp-seek"), partitions=2)
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20, compression_type="gzip")
    try:
        for f in [p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                         timestamp_ms=r.timestamp) for r in records]:
            f.get(TIMEOUT)
    finally:
        p.close(TIMEOUT)
    p0 = [r for r in records if r.partition == 0]
    p1 = [r for r in records if r.partition == 1]
    tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=100, auto_offset_reset="none")
    try:
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 10}
        c.assign([tp0])
        c.seek(tp0, 7)
        check_partition_order(p0[7:], _poll(c, 3), first_offsets={0: 7})
        assert c.position(tp0) == 10
        c.seek(tp0, 2)
        check_partition_order(p0[2:5], _poll(c, 3), first_offsets={0: 2})
        c.seek_to_beginning(tp0)
        check_partition_order(p0[:1], _poll(c, 1))

        found = c.offsets_for_times({tp0: ts0 + 6000, tp1: ts0 + 6500})
        assert (found[tp0].offset, found[tp0].timestamp) == (3, ts0 + 6000)
        assert (found[tp1].offset, found[tp1].timestamp) == (3, ts0 + 7000)
        assert c.offsets_for_times({tp0: ts0 - 60_000})[tp0].offset == 0
        assert c.offsets_for_times({tp0: ts0 + 3_600_000}) == {tp0: None}

        c.assign([tp0, tp1])
        c.seek(tp0, found[tp0].offset)
        c.seek(tp1, found[tp1].offset)
        check_partition_order(p0[3:] + p1[3:], _poll(c, 14), first_offsets={0: 3, 1: 3})
        c.seek_to_end(tp1)
        assert c.position(tp1) == 10

        # past the end: the broker answers OFFSET_OUT_OF_RANGE, which auto_offset_reset="none" surfaces
        c.assign([tp0])
        c.seek(tp0, 50)
        with pytest.raises(OffsetOutOfRangeError) as e:
            for _ in range(25):
                c.poll(timeout_ms=200)
        assert e.value.args[0] == {tp0: 50}
    finally:
        c.close()
