"""KafkaJS and seeking: KafkaJS positions consumers only inside a group (that lands with the groups
issue), so here its ListOffsets lookups are checked: fetchTopicOffsets (earliest/latest) and
fetchTopicOffsetsByTimestamp (exact hit, between records, before all, after all), on records
KafkaJS produced (gzip) with CreateTimes; confluent-kafka then reads from the offsets KafkaJS found."""

import pytest

from conformance.support import (
    check_partition_order,
    confluent_read,
    create_topic,
    now_ms,
    records_json,
    run_node,
    sample_records,
)

pytestmark = pytest.mark.timeout(90)


def test_offsets_by_timestamp(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kjs-seek"), partitions=2)
    ts0 = now_ms() - 600_000
    records = sample_records(20, partitions=2, ts0=ts0)  # partition 0 at ts0 + 0, 2, 4 .. s; 1 at 1, 3, 5 .. s
    run_node("produce.js", broker.bootstrap, topic, "--chunk=5", "--codec=gzip", input=records_json(records))

    asked = [ts0 + 6000, ts0 + 6500, ts0 - 60_000, ts0 + 3_600_000]
    out = run_node("offsets.js", broker.bootstrap, topic, *map(str, asked))
    assert out["bounds"] == [{"partition": p, "low": 0, "high": 10, "offset": 10} for p in (0, 1)]
    found = out["byTimestamp"]
    assert found[str(ts0 + 6000)] == [{"partition": 0, "offset": 3}, {"partition": 1, "offset": 3}]  # 1: ts0+7s
    assert found[str(ts0 + 6500)] == [{"partition": 0, "offset": 4}, {"partition": 1, "offset": 3}]
    assert found[str(ts0 - 60_000)] == [{"partition": 0, "offset": 0}, {"partition": 1, "offset": 0}]
    # no record that late: Kafka answers -1, which KafkaJS turns into the latest offset
    assert found[str(ts0 + 3_600_000)] == [{"partition": 0, "offset": 10}, {"partition": 1, "offset": 10}]

    starts = {e["partition"]: e["offset"] for e in found[str(ts0 + 6500)]}
    want = [r for r in records if r.partition == 0][4:] + [r for r in records if r.partition == 1][3:]
    check_partition_order(want, confluent_read(broker.bootstrap, topic, starts, 13), first_offsets=starts)
