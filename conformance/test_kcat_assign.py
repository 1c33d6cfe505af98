"""kcat's simple consumer (`kcat -C` without -G: no group, assign + seek) reading every partition of
a topic from the beginning to the end, and from the end seeing nothing."""

import pytest

from conformance.support import (
    by_partition,
    check_partition_order,
    create_topic,
    kcat,
    kcat_json_records,
    kcat_produce,
    kcat_records,
)

pytestmark = pytest.mark.timeout(60)


def test_all_partitions_without_a_group(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kcat-assign"), partitions=4)
    records = kcat_records(16, partitions=4)
    kcat_produce(broker.bootstrap, topic, records)

    got = kcat_json_records(kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-J").stdout)
    assert sorted(by_partition(got)) == [0, 1, 2, 3]
    check_partition_order(records, sorted(got, key=lambda g: (g.partition, g.offset)))

    at_end = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "end", "-e", "-J")
    assert at_end.stdout == b""
    two = kcat_json_records(
        kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "2", "-o", "1", "-c", "2", "-J").stdout)
    check_partition_order([r for r in records if r.partition == 2][1:3], two, first_offsets={2: 1})
