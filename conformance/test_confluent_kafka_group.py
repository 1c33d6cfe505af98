"""confluent-kafka (librdkafka) consumer groups over the classic protocol, with the eager `range`
and `roundrobin` assignors and the incremental `cooperative-sticky` one: three members split a
topic's partitions and consume every record once; when one closes (LeaveGroup) the others take its
partitions over; when one is killed, the coordinator expires it after its session timeout and the
last member owns everything."""

import pytest

from conformance.groups import python_member, split_and_rebalance
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("assignor", ["range", "roundrobin", "cooperative-sticky"])
def test_group_splits_and_rebalances(broker, unique, assignor):
    topic = create_topic(broker.bootstrap, unique("cfk-group"), partitions=6)
    group = unique("cfk-group")
    split_and_rebalance(broker.bootstrap, topic, lambda name: python_member(
        "confluent-kafka", broker.bootstrap, topic, group, name, **{"client.id": f"cfk-{name}",
                                                                   "partition.assignment.strategy": assignor}))
