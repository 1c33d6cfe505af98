"""kafka-compat's own client (kafka_compat.client, behind the `kafka-compat` admin commands, which
work against any Kafka-compatible cluster) against Apache Kafka 4.4.0. Its codecs go further than
its semantics (Kafka 4.4's Produce v13 and OffsetCommit/OffsetFetch v10 name topics by id only), so
it speaks the versions before those: on Kafka it produces, fetches, commits and reads committed
offsets, and an unknown group describes as Dead (DescribeGroups v6 says GROUP_ID_NOT_FOUND)."""

import uuid

import pytest

from conformance.conftest import PEER
from conformance.support import create_topic
from kafka_compat.client import Cluster, iter_fetched
from kafka_compat.records import Record, build_batch

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(PEER == "apache-kafka", reason="runs against Apache Kafka already")]


def test_produce_fetch_commit_and_describe(apache_kafka):
    topic, group = f"own-{uuid.uuid4().hex[:8]}", f"own-{uuid.uuid4().hex[:8]}"
    create_topic(apache_kafka.bootstrap, topic)
    with Cluster(apache_kafka.bootstrap) as cluster:
        batch = build_batch([Record(key=b"k", value=b"v%d" % i, timestamp=1_700_000_000_000, offset=i)
                             for i in range(3)])
        [acked] = cluster.produce(topic, {0: bytes(batch)}).values()
        assert (acked.error_code, acked.base_offset) == (0, 0)
        [fetched] = cluster.fetch(topic, {0: 0}).values()
        assert [r.value for r in iter_fetched(fetched.records)] == [b"v0", b"v1", b"v2"]

        cluster.commit(group, topic, {0: 2})
        assert cluster.committed(group, topic, [0]) == {0: 2}
        assert cluster.group_offsets(group) == {(topic, 0): 2}
        assert cluster.describe_group(f"{group}-unknown").group_state == "Dead"
