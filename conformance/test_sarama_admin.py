"""sarama's ClusterAdmin: a topic's whole life (`golang.topic_lifecycle`: create with configs, list,
describe the cluster (DescribeCluster) and the partitions, describe configs, add partitions, alter
configs incrementally (IncrementalAlterConfig) and not (AlterConfig), describe log dirs, list offsets (the ClusterAdmin
has none: Client.GetOffset), delete records, delete), with the KError codes sarama surfaces on
refusals: TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR (replication factor 3 on a single
broker), INVALID_CONFIG, INVALID_PARTITIONS, OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION."""

import pytest

from conformance.golang import topic_lifecycle

pytestmark = pytest.mark.timeout(60)


def test_topic_lifecycle(broker, unique):
    topic_lifecycle("sarama", broker, unique("srm-admin"))
