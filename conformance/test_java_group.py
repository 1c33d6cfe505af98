"""Java consumer groups (kafka-clients, every member a KafkaConsumer in one driver JVM, polled in
turn):

- classic protocol, eager (`RangeAssignor`) and incremental (`CooperativeStickyAssignor`): three
  members split six partitions and consume every record once; the coordinator's description
  matches; when one closes (LeaveGroup) the other two take its partitions over, the eager ones
  after revoking everything, the cooperative ones without giving up what they own; records sent
  after the rebalance are consumed exactly once from the committed offsets, and a member joining
  the group later starts at those offsets;
- static membership (KIP-345): a static member that closes does not leave; the same instance id
  rejoining gets its partitions back without a rebalance; the admin's removeMembersFromConsumerGroup
  removes it and the other member takes everything;
- a crashed member (its JVM killed) expires after session.timeout.ms and its partitions move;
- `group.protocol=consumer` (KIP-848): the broker assigns (`uniform`), describes a CONSUMER group
  with member epochs, and moves a leaving member's partitions to the others.
"""

import pytest

from conformance.groups import SESSION_TIMEOUT_MS
from conformance.jvm import Driver, JavaGroup
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(120)
ASSIGNORS = {"eager": "org.apache.kafka.clients.consumer.RangeAssignor",
             "cooperative": "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"}


def produce(java, topic: str, partitions: int, per_partition: int, tag: str) -> list[str]:
    values = [f"{tag}-{p}-{i}" for i in range(per_partition) for p in range(partitions)]
    java.call("produce", topic=topic, records=[{"partition": int(v.split("-")[1]), "key": None, "value": v,
                                                "headers": []} for v in values])
    return sorted(values)


def commit_all(java, g: JavaGroup) -> None:
    for name in g.assigned:
        java.call("consumer.commit", name=name)


def described(java, group: str) -> dict:
    [(_, d)] = java.call("admin.describeConsumerGroups", groups=[group]).items()
    return d["value"]


@pytest.mark.parametrize("kind", ["eager", "cooperative"])
def test_classic_group_splits_rebalances_and_resumes_from_commits(broker, java, unique, kind):
    topic = create_topic(broker.bootstrap, unique("java-group"), partitions=6)
    conf = {"partition.assignment.strategy": ASSIGNORS[kind], "heartbeat.interval.ms": "500"}
    g = JavaGroup(java, topic, unique("java-group"), **conf)
    try:
        for name in "abc":
            g.join(name)
        g.poll_until(lambda g: g.split(6), "three members to split 6 partitions")
        sent = produce(java, topic, 6, 5, "one")
        g.poll_until(lambda g: g.values() == sent, "the members to read every record once")
        if kind == "eager":
            assert sorted(g.assigned.values()) == [[0, 1], [2, 3], [4, 5]]  # range: consecutive partitions
        d = described(java, g.group)
        assert (d["type"], d["state"], d["assignor"], d["simple"]) == \
            ("CLASSIC", "STABLE", "range" if kind == "eager" else "cooperative-sticky", False)
        assert {m["clientId"]: [p for _, p in m["assignment"]] for m in d["members"]} == g.assigned
        commit_all(java, g)

        before = {n: list(g.assigned[n]) for n in "ab"}
        g.events = {n: [] for n in "ab"}
        g.leave("c")
        g.poll_until(lambda g: g.split(6), "a and b to take c's partitions")
        for n in "ab":
            revoked = [p for kind_, parts in g.events[n] if kind_ == "revoked" for p in parts]
            if kind == "eager":
                assert revoked == before[n], f"an eager member revokes everything it owned: {g.events[n]}"
            else:
                assert revoked == [] and set(before[n]) <= set(g.assigned[n]), g.events[n]

        sent += produce(java, topic, 6, 2, "two")
        g.poll_until(lambda g: g.values() == sorted(sent), "a and b to read the new records once each")
        commit_all(java, g)
        offsets = java.call("admin.listConsumerGroupOffsets", group=g.group)
        assert {k: v["offset"] for k, v in offsets.items()} == {f"{topic}/{p}": 7 for p in range(6)}
        g.close()

        late = JavaGroup(java, topic, g.group, **conf)
        late.join("d")
        third = produce(java, topic, 6, 1, "three")
        late.poll_until(lambda g: g.split(6) and g.values() == third, "a new member to start at the commits")
        late.close()
    finally:
        g.close()


def test_static_member_rejoins_without_a_rebalance(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-static"), partitions=4)
    g = JavaGroup(java, topic, unique("java-static"), **{"session.timeout.ms": "30000", "heartbeat.interval.ms": "500"})
    try:
        g.join("a", **{"group.instance.id": "a-static"})
        g.join("b", **{"group.instance.id": "b-static"})
        g.poll_until(lambda g: g.split(4) and len(set(g.generation.values())) == 1, "two static members to split")
        owned_b, generation = g.assigned["b"], g.generation["a"]
        g.events["a"] = []
        d = described(java, g.group)
        assert sorted(m["instanceId"] for m in d["members"]) == ["a-static", "b-static"]

        g.leave("b")  # a static member's close() sends no LeaveGroup: it stays in the group
        g.poll()
        assert len(described(java, g.group)["members"]) == 2
        g.join("b2", **{"group.instance.id": "b-static"})
        g.poll_until(lambda g: g.assigned["b2"] == owned_b, "the same instance id to get its partitions back")
        g.poll()
        assert g.generation["a"] == generation and [e for e in g.events["a"] if e[0] != "assigned"] == []

        g.leave("b2")
        assert java.call("admin.removeMembersFromConsumerGroup", group=g.group, instances=["b-static"]) is True
        g.poll_until(lambda g: g.assigned["a"] == [0, 1, 2, 3], "a to own everything once b-static is removed")
        assert [m["instanceId"] for m in described(java, g.group)["members"]] == ["a-static"]
    finally:
        g.close()


def test_crashed_member_expires_after_its_session_timeout(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-crash"), partitions=4)
    group = unique("java-crash")
    conf = {"session.timeout.ms": str(SESSION_TIMEOUT_MS), "heartbeat.interval.ms": "500"}
    g = JavaGroup(java, topic, group, **conf)
    victim_jvm = Driver(broker.bootstrap)
    try:
        victim = JavaGroup(victim_jvm, topic, group, **conf)
        g.join("a")
        victim.join("v")
        g.poll_until(lambda _: (victim.poll() or True) and g.assigned["a"] and victim.assigned["v"]
                     and sorted(g.assigned["a"] + victim.assigned["v"]) == [0, 1, 2, 3], "a and v to split")
        victim_jvm.proc.kill()  # no LeaveGroup, no more heartbeats
        g.poll_until(lambda g: g.assigned["a"] == [0, 1, 2, 3], "a to own everything after v's session expires",
                     timeout=SESSION_TIMEOUT_MS / 1000 + 15)
    finally:
        g.close()
        victim_jvm.close()


def test_consumer_protocol_group(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-848"), partitions=6)
    g = JavaGroup(java, topic, unique("java-848"), **{"group.protocol": "consumer"})
    try:
        for name in "abc":
            g.join(name)
        g.poll_until(lambda g: g.split(6), "three members to split 6 partitions")
        sent = produce(java, topic, 6, 3, "one")
        g.poll_until(lambda g: g.values() == sent, "the members to read every record once")
        d = described(java, g.group)
        assert (d["type"], d["state"], d["assignor"]) == ("CONSUMER", "STABLE", "uniform")
        assert {m["clientId"]: [p for _, p in m["assignment"]] for m in d["members"]} == g.assigned
        assert all(m["memberEpoch"] == d["groupEpoch"] for m in d["members"])
        assert all(m["upgraded"] is True for m in d["members"]), "consumer-protocol members (MemberType 1)"
        commit_all(java, g)

        before = {n: list(g.assigned[n]) for n in "ab"}
        g.leave("c")
        g.poll_until(lambda g: g.split(6), "a and b to take c's partitions")
        assert all(set(before[n]) <= set(g.assigned[n]) for n in "ab"), "the uniform assignor is sticky"
        sent += produce(java, topic, 6, 1, "two")
        g.poll_until(lambda g: g.values() == sorted(sent), "a and b to read the new records once each")
    finally:
        g.close()
