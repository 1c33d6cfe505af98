"""aiokafka consumer groups (classic protocol, its default `roundrobin` assignor): three members split a
topic's partitions and consume every record once; when one closes (LeaveGroup) the others take its
partitions over; when one is killed, the coordinator expires it after its session timeout and the
last member owns everything."""

import pytest

from conformance.groups import python_member, split_and_rebalance
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_splits_and_rebalances(broker, unique):
    topic = create_topic(broker.bootstrap, unique("aio-group"), partitions=6)
    group = unique("aio-group")
    split_and_rebalance(broker.bootstrap, topic, lambda name: python_member(
        "aiokafka", broker.bootstrap, topic, group, name, client_id=f"aio-{name}"))
