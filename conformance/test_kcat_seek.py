"""kcat seeking (no group): -o <offset>, -o -<n> (from the end), -o s@<ts> (by timestamp,
ListOffsets), -o e@<ts> (stop at a timestamp), and -Q (offset for a timestamp), on records in snappy
batches (produced by confluent-kafka)."""

import pytest
from confluent_kafka import Producer

from conformance.support import (
    TIMEOUT,
    check_partition_order,
    create_topic,
    kcat,
    kcat_json_records,
    now_ms,
    sample_records,
)

pytestmark = pytest.mark.timeout(60)


def _consume(bootstrap: str, topic: str, *args: str):
    return kcat_json_records(kcat("-b", bootstrap, "-C", "-t", topic, "-e", "-J", *args).stdout)


def test_seek_by_offset_and_timestamp(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kcat-seek"), partitions=2)
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)  # partition 0 at ts0 + 0, 2, 4 .. s; 1 at 1, 3, 5 .. s
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "compression.type": "snappy"})
    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp)
    assert p.flush(TIMEOUT) == 0
    p0 = [r for r in records if r.partition == 0]
    p1 = [r for r in records if r.partition == 1]

    check_partition_order(p0[7:], _consume(broker.bootstrap, topic, "-p", "0", "-o", "7"), first_offsets={0: 7})
    check_partition_order(p0[8:], _consume(broker.bootstrap, topic, "-p", "0", "-o", "-2"), first_offsets={0: 8})
    check_partition_order(p0[3:], _consume(broker.bootstrap, topic, "-p", "0", "-o", f"s@{ts0 + 6000}"),
                          first_offsets={0: 3})
    check_partition_order(p1[3:], _consume(broker.bootstrap, topic, "-p", "1", "-o", f"s@{ts0 + 6500}"),
                          first_offsets={1: 3})
    # both partitions from a time, up to (not including) a later time
    got = _consume(broker.bootstrap, topic, "-o", f"s@{ts0 + 6000}", "-o", f"e@{ts0 + 12000}")
    check_partition_order(p0[3:6] + p1[3:6], sorted(got, key=lambda g: (g.partition, g.offset)),
                          first_offsets={0: 3, 1: 3})

    q = kcat("-b", broker.bootstrap, "-Q", "-t", f"{topic}:0:{ts0 + 6000}", "-t", f"{topic}:1:{ts0 + 6500}")
    assert sorted(q.stdout.decode().split("\n")[:2]) == [f"{topic} [0] offset 3", f"{topic} [1] offset 3"]
    q = kcat("-b", broker.bootstrap, "-Q", "-t", f"{topic}:0:{ts0 - 60_000}")
    assert q.stdout.decode().strip() == f"{topic} [0] offset 0"
    q = kcat("-b", broker.bootstrap, "-Q", "-t", f"{topic}:0:{ts0 + 3_600_000}")
    assert q.stdout.decode().strip() == f"{topic} [0] offset -1"  # no record that late
