"""sarama's ClusterAdmin on consumer groups (`golang.group_admin`): ListConsumerGroups,
DescribeConsumerGroups (members, client ids and hosts, assignments decoded by sarama),
ListConsumerGroupOffsets, DeleteConsumerGroup (NON_EMPTY_GROUP while members are in,
GROUP_ID_NOT_FOUND for a group that never existed), DeleteConsumerGroupOffset
(GROUP_SUBSCRIBED_TO_TOPIC while members consume the topic), on a group of two sarama members."""

import pytest

from conformance.golang import group_admin
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_admin(broker, unique):
    topic = create_topic(broker.bootstrap, unique("srm-gadmin"), partitions=4)
    group_admin("sarama", broker, topic, unique("srm-active"), unique("srm-never"))
