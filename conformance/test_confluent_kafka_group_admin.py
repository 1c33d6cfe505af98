"""confluent-kafka AdminClient on consumer groups: list (with state and type filters), describe
(classic groups through DescribeGroups, KIP-848 groups through ConsumerGroupDescribe: members,
client ids and hosts, assignments, the assignor), list/alter committed offsets, delete groups; and
consumer lag (latest offset minus committed offset, per partition) from ListOffsets and OffsetFetch.
Three groups: an active classic one, an active KIP-848 one (two member processes each) and a
stopped one (its consumer committed and closed)."""


import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    ConsumerGroupType,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from conformance.groups import SESSION_TIMEOUT_MS, produce, python_member, wait_consumed_once, wait_split
from conformance.support import TIMEOUT, collect, create_topic, wait_until

pytestmark = pytest.mark.timeout(90)
STOPPED_AT = {0: 3, 1: 10, 2: 0, 3: 7}  # what the stopped group committed, of 10 records a partition
S, T = ConsumerGroupState, ConsumerGroupType


def _stop_after_committing(bootstrap: str, topic: str, group: str) -> None:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    try:
        c.subscribe([topic])
        assert len(collect(lambda: c.consume(100, 0.2), 40, "records", TIMEOUT)) == 40
        c.commit(offsets=[TopicPartition(topic, p, o, metadata=f"at-{o}") for p, o in STOPPED_AT.items()],
                 asynchronous=False)
    finally:
        c.close()


def _error(future) -> int:
    with pytest.raises(KafkaException) as e:
        future.result(TIMEOUT)
    return e.value.args[0].code()


def test_group_admin(broker_factory, unique):
    b = broker_factory({"group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
                        "group.consumer.heartbeat.interval.ms": "500"})
    topic = create_topic(b.bootstrap, unique("cfk-gadmin"), partitions=4)
    classic, consumer, stopped = unique("cfk-classic"), unique("cfk-consumer"), unique("cfk-stopped")
    members = [python_member("confluent-kafka", b.bootstrap, topic, classic, n, **{"client.id": f"cfk-{n}"})
               for n in "ab"]
    members += [python_member("confluent-kafka", b.bootstrap, topic, consumer, n,
                              **{"client.id": f"cfk-{n}", "group.protocol": "consumer"}) for n in "cd"]
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    try:
        owners = [wait_split(group_members, 4) for group_members in (members[:2], members[2:])]
        sent = produce(b.bootstrap, topic, 4, 10, "x")
        for group_members, owned in zip((members[:2], members[2:]), owners):
            wait_consumed_once(group_members, sent, "x", owned)
        _stop_after_committing(b.bootstrap, topic, stopped)

        # ListGroups: every group with its state and type; filtered by state and by type
        def listed(**filters) -> dict:
            r = admin.list_consumer_groups(request_timeout=TIMEOUT, **filters).result(TIMEOUT)
            assert r.errors == []
            return {g.group_id: (g.state, g.type, g.is_simple_consumer_group) for g in r.valid}

        assert listed() == {classic: (S.STABLE, T.CLASSIC, False), consumer: (S.STABLE, T.CONSUMER, False),
                            stopped: (S.EMPTY, T.CLASSIC, False)}
        assert list(listed(states={S.EMPTY})) == [stopped]
        assert list(listed(types={T.CONSUMER})) == [consumer]

        # Describe: the members as they see themselves
        described = {g: f.result(TIMEOUT) for g, f in admin.describe_consumer_groups(
            [classic, consumer, stopped], request_timeout=TIMEOUT).items()}
        node = next(iter(admin.list_topics(timeout=TIMEOUT).brokers))
        for group, kind, assignor, mbs in ((classic, T.CLASSIC, "range", members[:2]),
                                           (consumer, T.CONSUMER, "uniform", members[2:])):
            d = described[group]
            assert (d.group_id, d.state, d.type, d.partition_assignor, d.coordinator.id, d.is_simple_consumer_group) \
                == (group, S.STABLE, kind, assignor, node, False)
            assert {m.member_id: (m.client_id, m.host,
                                  [(tp.topic, tp.partition) for tp in m.assignment.topic_partitions])
                    for m in d.members} == \
                {mb.member_id: (f"cfk-{mb.name}", "/127.0.0.1", [(topic, p) for p in mb.assigned]) for mb in mbs}
        for m in described[consumer].members:  # KIP-848: the target assignment too (reached here)
            assert sorted(tp.partition for tp in m.target_assignment.topic_partitions) == \
                sorted(tp.partition for tp in m.assignment.topic_partitions)
        assert (described[stopped].state, described[stopped].members) == (S.EMPTY, [])

        # lag = latest offset - committed offset, per partition
        def committed(group: str) -> dict:
            [r] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                    request_timeout=TIMEOUT).values()
            return {tp.partition: (tp.offset, tp.metadata) for tp in r.result(TIMEOUT).topic_partitions}

        def lag(group: str) -> dict:
            ends = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(4)},
                                      request_timeout=TIMEOUT)
            end = {tp.partition: f.result(TIMEOUT).offset for tp, f in ends.items()}
            return {p: end[p] - off for p, (off, _) in committed(group).items()}

        assert lag(classic) == lag(consumer) == {0: 0, 1: 0, 2: 0, 3: 0}
        assert lag(stopped) == {p: 10 - o for p, o in STOPPED_AT.items()}
        assert committed(stopped) == {p: (o, f"at-{o}") for p, o in STOPPED_AT.items()}
        more = produce(b.bootstrap, topic, 4, 2, "y")
        for group_members, owned in zip((members[:2], members[2:]), owners):
            wait_consumed_once(group_members, more, "y", owned)
        assert lag(classic) == lag(consumer) == {0: 0, 1: 0, 2: 0, 3: 0}
        assert lag(stopped) == {p: 12 - o for p, o in STOPPED_AT.items()}

        # alter offsets: only while the group has no members
        [f] = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(stopped, [
            TopicPartition(topic, 0, 5), TopicPartition(topic, 3, 12)])], request_timeout=TIMEOUT).values()
        assert [(tp.partition, tp.offset, tp.error) for tp in f.result(TIMEOUT).topic_partitions] == \
            [(0, 5, None), (3, 12, None)]
        assert lag(stopped) == {0: 7, 1: 2, 2: 12, 3: 0}
        for group in (classic, consumer):
            [f] = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [
                TopicPartition(topic, 0, 5)])], request_timeout=TIMEOUT).values()
            assert [tp.error.code() for tp in f.result(TIMEOUT).topic_partitions] == [KafkaError.UNKNOWN_MEMBER_ID]

        # delete groups: not while it has members; a deleted group is gone, with its offsets
        never = unique("cfk-never")
        deleted = admin.delete_consumer_groups([classic, consumer, stopped, never], request_timeout=TIMEOUT)
        assert _error(deleted[classic]) == _error(deleted[consumer]) == KafkaError.NON_EMPTY_GROUP
        assert deleted[stopped].result(TIMEOUT) is None
        assert _error(deleted[never]) == KafkaError.GROUP_ID_NOT_FOUND
        assert stopped not in listed()
        assert committed(stopped) == {}
        for mb in members:
            mb.close()
        wait_until(lambda: listed(states={S.EMPTY}).keys() == {classic, consumer}, "both groups to be empty")
        deleted = admin.delete_consumer_groups([classic, consumer], request_timeout=TIMEOUT)
        assert [f.result(TIMEOUT) for f in deleted.values()] == [None, None]
        assert listed() == {}
    finally:
        for mb in members:
            mb.kill()
