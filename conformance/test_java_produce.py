"""The Java producer (kafka-clients, default configuration: idempotence on, acks=all) sends keys,
a null key, null values, repeated headers and CreateTimes with every codec. The broker keeps the
producer's codec and its producer id and gap-free sequences; the Java consumer and confluent-kafka
read the records back exactly, in order. Unpartitioned keyed records land where Java's murmur2
partitioner puts them; a LogAppendTime topic hands back the broker's time."""

import pytest

from conformance.jvm import gots, records_arg
from conformance.support import (
    CODEC_IDS,
    CODECS,
    check_partition_order,
    confluent_read,
    create_topic,
    log_dirs_of,
    now_ms,
    sample_records,
    stored_batches,
)
from kafka_compat.client import partition_for_key

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip_with_default_idempotent_producer(broker, java, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"java-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    acks = java.call("produce", topic=topic, records=records_arg(records), chunk=6,
                     config={"compression.type": codec, "linger.ms": "100"})
    assert [(a["partition"], a["offset"]) for a in acks] == [(i % 2, i // 2) for i in range(12)]
    assert [a["timestamp"] for a in acks] == [r.timestamp for r in records]  # CreateTime is echoed

    for part in (0, 1):
        batches = stored_batches(log_dirs_of(broker), topic, part)
        assert [b.record_count for b in batches] == [3, 3]
        assert {b.codec for b in batches} == {CODEC_IDS[codec]}, "the broker must keep the producer's codec"
        assert [(b.base_sequence, b.producer_epoch) for b in batches] == [(0, 0), (3, 0)]
        assert len({b.producer_id for b in batches}) == 1 and batches[0].producer_id >= 0

    check_partition_order(records, gots(java.call("read", topic=topic, starts={0: 0, 1: 0}, count=12)))
    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))


def test_keyed_records_go_where_murmur2_puts_them(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-keys"), partitions=5)
    keys = [f"user-{i}" for i in range(40)]
    acks = java.call("produce", topic=topic, records=[{"key": k, "value": "v", "headers": []} for k in keys])
    assert [a["partition"] for a in acks] == [partition_for_key(k.encode(), 5) for k in keys]
    got = java.call("read", topic=topic, starts={p: 0 for p in range(5)}, count=40)
    assert sorted(r["key"] for r in got) == sorted(keys)
    for r in got:
        assert r["partition"] == partition_for_key(r["key"].encode(), 5)


def test_log_append_time_topic_returns_the_broker_time(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-lat"), configs={"message.timestamp.type": "LogAppendTime"})
    before = now_ms()
    records = sample_records(4, partitions=1)  # CreateTimes an hour ago: the broker replaces them
    acks = java.call("produce", topic=topic, records=records_arg(records))
    after = now_ms()
    assert all(before <= a["timestamp"] <= after for a in acks), acks
    got = java.call("read", topic=topic, starts={0: 0}, count=4)
    assert {r["timestampType"] for r in got} == {"LogAppendTime"}
    assert [r["timestamp"] for r in got] == [a["timestamp"] for a in acks]
