"""sarama consumer groups over the classic protocol with its cooperative-sticky strategy (one
session across rebalances: revoked claims end, new claims start; manual commits): three members
split a topic's partitions and consume every record once; when one closes (it leaves the group)
the others take its partitions over; when one is killed, the coordinator expires it after its
session timeout and the last member owns everything. After each split, the ClusterAdmin's
DescribeConsumerGroups shows the coordinator's view: the members, their client ids and the
assignments they report."""

import pytest

from conformance.golang import Session, go_member
from conformance.groups import split_and_rebalance
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_splits_and_rebalances(broker, unique):
    topic = create_topic(broker.bootstrap, unique("srm-group"), partitions=6)
    group = unique("srm-group")

    with Session("sarama", "admin", broker.bootstrap) as admin:
        def after_split(members):
            d = admin.ask("describe_groups", names=[group])["groups"][group]
            assert (d["state"], d["protocolType"], d["protocol"]) == ("Stable", "consumer", "cooperative-sticky")
            assert {m["memberId"]: (m["clientId"], m["assignment"]) for m in d["members"]} == \
                {mb.member_id: (f"sarama-{mb.name}", mb.assigned) for mb in members}

        split_and_rebalance(broker.bootstrap, topic, lambda name: go_member("sarama", broker.bootstrap, topic, group,
                                                                            name), after_split=after_split)
