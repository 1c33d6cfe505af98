"""confluent-kafka produces every compression type (keys, a null key, null values, repeated headers,
CreateTimes); the broker keeps the producer's codec; confluent-kafka and kcat read it all back."""

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from conformance.support import (
    CODEC_IDS,
    CODECS,
    TIMEOUT,
    assert_codec_kept,
    check_partition_order,
    confluent_read,
    create_topic,
    kcat_read,
    log_dirs_of,
    now_ms,
    sample_records,
    stored_batches,
)

pytestmark = pytest.mark.timeout(60)


def produce(bootstrap: str, topic: str, records, codec: str) -> dict[int, list[int]]:
    """Send `records`, wait for every delivery report; returns partition -> offsets acknowledged."""
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec, "linger.ms": 100,
                  "message.timeout.ms": int(TIMEOUT * 1000)})
    acked: dict[int, list[int]] = {}
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.setdefault(msg.partition(), []).append(msg.offset())

    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp, on_delivery=report)
    assert p.flush(TIMEOUT) == 0, "deliveries still outstanding"
    assert errors == []
    return acked


@pytest.mark.parametrize("codec", CODECS)
def test_compression_roundtrip(broker, unique, codec):
    topic = create_topic(broker.bootstrap, unique(f"cfk-{codec}"), partitions=2)
    records = sample_records(12, partitions=2, tag=codec)
    acked = produce(broker.bootstrap, topic, records, codec)
    assert acked == {0: list(range(6)), 1: list(range(6))}
    batches = [b for p in (0, 1) for b in stored_batches(log_dirs_of(broker), topic, p)]
    assert sum(b.record_count for b in batches) == 12
    assert_codec_kept(batches, CODEC_IDS[codec])

    check_partition_order(records, confluent_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))
    check_partition_order(records, kcat_read(broker.bootstrap, topic, {0: 0, 1: 0}, 12))


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_log_append_time_topics_stamp_the_broker_time(broker, unique, codec):
    """message.timestamp.type=LogAppendTime, set at creation or altered on a live topic: every record
    reads back with the broker's append time (the same for a whole batch) instead of its CreateTime."""
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

    created = create_topic(broker.bootstrap, unique(f"cfk-lat-{codec}"),
                           configs={"message.timestamp.type": "LogAppendTime"})
    altered = create_topic(broker.bootstrap, unique(f"cfk-lat-alt-{codec}"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ResourceType.TOPIC, altered, incremental_configs=[
        ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET)])
    assert admin.incremental_alter_configs([res], request_timeout=TIMEOUT)[res].result(TIMEOUT) is None

    for topic in (created, altered):
        records = sample_records(6, partitions=1)
        before = now_ms()
        p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 50})
        reports = []
        for r in records:
            p.produce(topic, key=r.key, value=r.value, partition=0, headers=list(r.headers), timestamp=r.timestamp,
                      on_delivery=lambda err, msg, reports=reports: reports.append((err, msg.timestamp())))
        assert p.flush(TIMEOUT) == 0
        after = now_ms()
        assert [e for e, _ in reports] == [None] * 6
        assert {ts_type for _, (ts_type, _) in reports} == {TIMESTAMP_LOG_APPEND_TIME}, topic
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "conformance-never-joined",
                      "enable.auto.commit": False})
        try:
            c.assign([TopicPartition(topic, 0, 0)])
            got = [c.poll(TIMEOUT) for _ in range(6)]
        finally:
            c.close()
        assert [(m.offset(), m.value()) for m in got] == [(i, r.value) for i, r in enumerate(records)]
        stamps = {m.timestamp() for m in got}
        assert all(ts_type == TIMESTAMP_LOG_APPEND_TIME and before <= ts <= after for ts_type, ts in stamps), \
            (topic, stamps)
