"""confluent-kafka with `group.protocol=consumer` (KIP-848): the broker advertises
ConsumerGroupHeartbeat v1, the version librdkafka 2.16 requires, and assigns partitions itself
(its `uniform` assignor): three members split a topic's partitions and consume every record once;
when one closes (it leaves with member epoch -1) the others get its partitions once they are
revoked; when one is killed, the coordinator fences it after the group's session timeout
(`group.consumer.session.timeout.ms`, a broker setting in this protocol) and the last member owns
everything."""

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupType
from confluent_kafka.admin import AdminClient
from kafka.admin import KafkaAdminClient

from conformance.groups import SESSION_TIMEOUT_MS, python_member, split_and_rebalance
from conformance.support import TIMEOUT, create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_splits_and_rebalances(broker_factory, unique):
    b = broker_factory({"group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
                        "group.consumer.heartbeat.interval.ms": "500"})
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=10_000)
    try:
        versions = admin.api_versions()
    finally:
        admin.close()
    assert versions[68] == (0, 1) and versions[69] == (0, 1)  # ConsumerGroupHeartbeat, ConsumerGroupDescribe

    topic = create_topic(b.bootstrap, unique("cfk-cgroup"), partitions=6)
    group = unique("cfk-cgroup")
    admin = AdminClient({"bootstrap.servers": b.bootstrap})

    def after_split(members):
        # A consumer group (ConsumerGroupDescribe): the coordinator's view matches the members'.
        [d] = admin.describe_consumer_groups([group], request_timeout=TIMEOUT).values()
        d = d.result(TIMEOUT)
        assert (d.type, d.state, d.partition_assignor) == (ConsumerGroupType.CONSUMER, ConsumerGroupState.STABLE,
                                                           "uniform")
        assert {m.member_id: sorted(tp.partition for tp in m.assignment.topic_partitions) for m in d.members} == \
            {mb.member_id: mb.assigned for mb in members}

    split_and_rebalance(b.bootstrap, topic, lambda name: python_member(
        "confluent-kafka", b.bootstrap, topic, group, name,
        **{"client.id": f"cfk-{name}", "group.protocol": "consumer"}), after_split=after_split)
