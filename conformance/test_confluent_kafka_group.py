"""confluent-kafka (librdkafka) consumer groups over the classic protocol, eager (`range`,
`roundrobin`) and incremental (`cooperative-sticky`): three members split a topic's partitions and
consume every record once; when one closes (LeaveGroup) the others take its partitions over; when
one is killed, the coordinator expires it after its session timeout and the last member owns
everything. In the eager group, member a prefers `range` but c supports only `roundrobin`: the
coordinator picks the protocol every member supports."""

import pytest
from confluent_kafka.admin import AdminClient

from conformance.groups import python_member, split_and_rebalance
from conformance.support import TIMEOUT, create_topic

pytestmark = pytest.mark.timeout(90)
EAGER = {"a": "range,roundrobin", "b": "roundrobin,range", "c": "roundrobin"}
COOPERATIVE = dict.fromkeys("abc", "cooperative-sticky")


@pytest.mark.parametrize(("strategies", "chosen"), [(EAGER, "roundrobin"), (COOPERATIVE, "cooperative-sticky")],
                         ids=["eager", "cooperative"])
def test_group_splits_and_rebalances(broker, unique, strategies, chosen):
    topic = create_topic(broker.bootstrap, unique("cfk-group"), partitions=6)
    group = unique("cfk-group")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    assignors = []

    def after_split(members):
        [d] = admin.describe_consumer_groups([group], request_timeout=TIMEOUT).values()
        d = d.result(TIMEOUT)
        assert {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members} == \
            {mb.member_id: mb.assigned for mb in members}
        assignors.append(d.partition_assignor)

    split_and_rebalance(broker.bootstrap, topic, lambda name: python_member(
        "confluent-kafka", broker.bootstrap, topic, group, name,
        **{"client.id": f"cfk-{name}", "partition.assignment.strategy": strategies[name]}), after_split=after_split)
    assert assignors == [chosen] * 3
