"""franz-go with KIP-848's consumer group protocol (kgo.ServerSideBalancer with the sticky balancer,
for which franz-go asks the broker's `uniform` assignor; franz-go opts in only where the broker
serves ConsumerGroupHeartbeat v1): three members split a topic's partitions and consume every record
once; when one closes (it leaves with member epoch -1) the others get its partitions once they are
revoked; when one is killed, the coordinator fences it after the group's session timeout
(`group.consumer.session.timeout.ms`, a broker setting in this protocol) and the last member owns
everything. After each split, kadm's DescribeConsumerGroups (ConsumerGroupDescribe) shows a stable
group, its assignor, and the members' assignments as they report them."""

import pytest

from conformance.golang import Session, go_member
from conformance.groups import SESSION_TIMEOUT_MS, split_and_rebalance
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_splits_and_rebalances(broker_factory, unique):
    b = broker_factory({"group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
                        "group.consumer.heartbeat.interval.ms": "500"})
    topic = create_topic(b.bootstrap, unique("fgo-cgroup"), partitions=6)
    group = unique("fgo-cgroup")

    with Session("franz-go", "admin", b.bootstrap) as admin:
        def after_split(members):
            d = admin.ask("describe_consumer_groups", names=[group])["groups"][group]
            assert (d["state"], d["assignor"]) == ("Stable", "uniform")
            assert {m["memberId"]: (m["clientId"], m["assignment"]) for m in d["members"]} == \
                {mb.member_id: (f"fgo-{mb.name}", mb.assigned) for mb in members}
            listed = admin.ask("list_groups")["groups"][group]
            assert (listed["type"], listed["protocolType"], listed["state"]) == ("consumer", "consumer", "Stable")

        split_and_rebalance(b.bootstrap, topic, lambda name: go_member("franz-go", b.bootstrap, topic, group, name,
                                                                       protocol="consumer"), after_split=after_split)
