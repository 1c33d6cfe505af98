"""The Java consumer without a group: assign(), seek() back and forth, seekToBeginning/End,
position(), beginningOffsets/endOffsets (also after deleteRecords moves the log start), and
offsetsForTimes (ListOffsets by timestamp) to the first record at or after a time, over lz4
batches so that look-ups and reads land inside compressed batches; a seek past the end with
auto.offset.reset=none raises Kafka's OffsetOutOfRangeException (Fetch's OFFSET_OUT_OF_RANGE)."""

import pytest

from conformance.jvm import JavaError, gots, records_arg
from conformance.support import check_partition_order, create_topic, now_ms, sample_records

pytestmark = pytest.mark.timeout(90)


def poll(java, name: str, n: int) -> list:
    out = []
    for _ in range(100):
        out += java.call("consumer.poll", names=[name], ms=200)[name]["records"]
        if len(out) >= n:
            return gots(out)
    raise AssertionError(f"read {len(out)} of {n} records")


def test_assign_seek_and_offsets_for_times(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-seek"), partitions=2)
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)  # partition 0: ts0, ts0+2s, ...; partition 1: ts0+1s, ...
    java.call("produce", topic=topic, records=records_arg(records),
              config={"compression.type": "lz4", "linger.ms": "50"})
    p0 = [r for r in records if r.partition == 0]
    p1 = [r for r in records if r.partition == 1]

    name = unique("c")
    java.call("consumer.open", name=name, config={"auto.offset.reset": "none", "fetch.max.wait.ms": "100"})
    try:
        both = [[topic, 0], [topic, 1]]
        assert java.call("consumer.beginningOffsets", name=name, partitions=both) == {f"{topic}/0": 0, f"{topic}/1": 0}
        assert java.call("consumer.endOffsets", name=name, partitions=both) == {f"{topic}/0": 10, f"{topic}/1": 10}

        java.call("consumer.assign", name=name, partitions=[[topic, 0]])
        java.call("consumer.seek", name=name, topic=topic, partition=0, offset=7)
        check_partition_order(p0[7:], poll(java, name, 3), first_offsets={0: 7})
        assert java.call("consumer.position", name=name, partitions=[[topic, 0]]) == [10]

        java.call("consumer.seek", name=name, topic=topic, partition=0, offset=2)  # back into a batch
        check_partition_order(p0[2:5], poll(java, name, 3)[:3], first_offsets={0: 2})

        # exact hit, between two records, before all, after all
        found = java.call("consumer.offsetsForTimes", name=name, topic=topic, times={0: ts0 + 6000, 1: ts0 + 6500})
        assert found == {"0": {"offset": 3, "timestamp": ts0 + 6000}, "1": {"offset": 3, "timestamp": ts0 + 7000}}
        early = java.call("consumer.offsetsForTimes", name=name, topic=topic, times={0: ts0 - 60_000})
        assert early["0"]["offset"] == 0
        assert java.call("consumer.offsetsForTimes", name=name, topic=topic, times={0: ts0 + 3_600_000}) == {"0": None}

        java.call("consumer.assign", name=name, partitions=both)
        java.call("consumer.seek", name=name, topic=topic, partition=0, offset=3)
        java.call("consumer.seek", name=name, topic=topic, partition=1, offset=3)
        check_partition_order(p0[3:] + p1[3:], poll(java, name, 14), first_offsets={0: 3, 1: 3})

        java.call("consumer.seekToBeginning", name=name, partitions=[[topic, 1]])
        assert java.call("consumer.position", name=name, partitions=[[topic, 1]]) == [0]
        java.call("consumer.seekToEnd", name=name, partitions=[[topic, 1]])
        assert java.call("consumer.position", name=name, partitions=[[topic, 1]]) == [10]

        # deleteRecords moves the log start: beginningOffsets and seekToBeginning follow it
        assert java.call("admin.deleteRecords", topic=topic, before={1: 4}) == {"1": {"value": 4}}
        assert java.call("consumer.beginningOffsets", name=name, partitions=[[topic, 1]]) == {f"{topic}/1": 4}
        java.call("consumer.seekToBeginning", name=name, partitions=[[topic, 1]])
        assert java.call("consumer.position", name=name, partitions=[[topic, 1]]) == [4]

        # past the end, with no reset policy: the fetch's OFFSET_OUT_OF_RANGE surfaces from poll
        java.call("consumer.assign", name=name, partitions=[[topic, 0]])
        java.call("consumer.seek", name=name, topic=topic, partition=0, offset=50)
        with pytest.raises(JavaError) as e:
            for _ in range(50):
                java.call("consumer.poll", names=[name], ms=200)
        assert e.value.type == "OffsetOutOfRangeException"
    finally:
        java.call("consumer.close", name=name)
