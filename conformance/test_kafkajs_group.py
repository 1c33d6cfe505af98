"""KafkaJS consumer groups (classic protocol, its `RoundRobinAssigner`): three members split a
topic's partitions and consume every record once; when one disconnects (LeaveGroup) the others take
its partitions over; when one is killed, the coordinator expires it after its session timeout and
the last member owns everything."""

import pytest

from conformance.groups import node_member, split_and_rebalance
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_splits_and_rebalances(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kjs-group"), partitions=6)
    group = unique("kjs-group")
    split_and_rebalance(broker.bootstrap, topic, lambda name: node_member(broker.bootstrap, topic, group, name))
