"""franz-go's kadm: a topic's whole life (`golang.topic_lifecycle`: create with configs, list, describe
the cluster (DescribeCluster through kmsg) and the partitions (Metadata), describe configs, add
partitions (UpdatePartitions), alter configs incrementally (AlterTopicConfigs) and not
(AlterTopicConfigsState), describe log dirs, list offsets (ListStart/EndOffsets), delete records, delete), with the
errors kadm surfaces as kerr names on refusals: TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR
(replication factor 3 on a single broker), INVALID_CONFIG, INVALID_PARTITIONS, OFFSET_OUT_OF_RANGE,
UNKNOWN_TOPIC_OR_PARTITION."""

import pytest

from conformance.golang import topic_lifecycle

pytestmark = pytest.mark.timeout(60)


def test_topic_lifecycle(broker, unique):
    topic_lifecycle("franz-go", broker, unique("fgo-admin"))
