"""kafka-python consumer groups (classic protocol, eager assignors): three members split a topic's
partitions and consume every record once; when one closes (LeaveGroup) the others take its
partitions over at once; when one is killed, the coordinator expires it after its session timeout
and the last member owns everything. The members list `range` and `roundrobin` in different orders
of preference; the coordinator picks the protocol by their vote (two for `range`)."""

import pytest
from kafka.admin import KafkaAdminClient

from conformance.groups import python_member, split_and_rebalance
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)
PREFERENCES = {"a": "roundrobin,range", "b": "range,roundrobin", "c": "range,roundrobin"}


def test_group_splits_and_rebalances(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kp-group"), partitions=6)
    group = unique("kp-group")
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    protocols = []

    def spawn(name):
        return python_member("kafka-python", broker.bootstrap, topic, group, name, client_id=f"kp-{name}",
                             partition_assignment_strategy=PREFERENCES[name])

    def after_split(members):
        # The coordinator's view (DescribeGroups) matches the members': ids, client ids, assignments.
        d = admin.describe_groups([group])[group]
        assert (d["error"], d["group_state"], d["protocol_type"]) == (None, "Stable", "consumer")
        described = {mb["member_id"]: (mb["client_id"], [p for a in mb["member_assignment"]["assigned_partitions"]
                                                          for p in a["partitions"]]) for mb in d["members"]}
        assert described == {mb.member_id: (f"kp-{mb.name}", mb.assigned) for mb in members}
        protocols.append(d["protocol_data"])

    try:
        split_and_rebalance(broker.bootstrap, topic, spawn, after_split=after_split)
    finally:
        admin.close()
    # Three members: two vote range. Two (b, c): both range. One (c): range.
    assert protocols == ["range", "range", "range"]
