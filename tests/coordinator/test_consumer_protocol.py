"""KIP-848 consumer groups: ConsumerGroupHeartbeat and ConsumerGroupDescribe."""

import random

import pytest

from kafka_compat.coordinator import GroupConfig, records
from kafka_compat.coordinator.classic import ClassicGroup
from kafka_compat.coordinator.consumer import ConsumerGroup, ConsumerGroupState, MemberState
from kafka_compat.protocol import messages as m
from tests.coordinator.helpers import (
    E,
    Harness,
    commit_errors,
    commit_req,
    fetch_req_v8,
    join_req,
    topic_id,
    topics,
)

G = "cg"
FOO, BAR = topic_id("foo"), topic_id("bar")
HR = m.ConsumerGroupHeartbeatRequest


def hb(member_id="", epoch=0, names=("foo",), owned=(), *, rebalance=30000, instance=None, assignor=None,
       regex=None, group=G, rack=None):
    """A full heartbeat (what a client sends when joining, or after an error)."""
    return HR(group_id=group, member_id=member_id, member_epoch=epoch, instance_id=instance, rack_id=rack,
              rebalance_timeout_ms=rebalance, subscribed_topic_names=None if names is None else list(names),
              subscribed_topic_regex=regex, server_assignor=assignor,
              topic_partitions=None if owned is None else [
                  HR.TopicPartitions(topic_id=t, partitions=sorted(ps))
                  for t, ps in (owned.items() if isinstance(owned, dict) else owned)])


def light(member_id, epoch, owned=None, group=G):
    """A steady-state heartbeat: only what changed (here: owned partitions, when given)."""
    return hb(member_id, epoch, names=None, owned=owned, rebalance=-1, group=group)


def assigned(r) -> dict:
    return {tp.topic_id: set(tp.partitions) for tp in r.assignment.topic_partitions}


class Client:
    """An honest client: owns what the coordinator assigned, revokes what it took away."""

    def __init__(self, h: Harness, names=("foo",), instance=None, assignor=None, version=0, regex=None):
        self.h, self.names, self.instance = h, names, instance
        self.assignor, self.version, self.regex = assignor, version, regex
        self.member_id, self.epoch, self.owned = "", 0, {}

    def heartbeat(self, full=False):
        if self.epoch == 0 or full:
            req = hb(self.member_id, self.epoch, self.names, self.owned, instance=self.instance,
                     assignor=self.assignor, regex=self.regex)
        else:
            req = light(self.member_id, self.epoch, self.owned)
        r = self.h.send("consumer_group_heartbeat", req, self.version)
        assert r.error_code == E.NONE, r
        self.member_id, self.epoch = r.member_id, r.member_epoch
        if r.assignment is not None:
            self.owned = assigned(r)
        return r

    def leave(self, epoch=-1):
        r = self.h.send("consumer_group_heartbeat", hb(self.member_id, epoch, names=None, owned=None,
                                                       rebalance=-1, instance=self.instance), self.version)
        assert r.error_code == E.NONE, r
        return r


def harness(**counts):
    return Harness(topics=topics(**(counts or {"foo": 6, "bar": 3})))


def owned_everywhere(clients):
    seen = {}
    for c in clients:
        for t, ps in c.owned.items():
            for p in ps:
                assert (t, p) not in seen, f"{t}-{p} owned by {seen[(t, p)]} and {c.member_id}"
                seen[(t, p)] = c.member_id
    return seen


def converge(clients, rounds=10):
    for _ in range(rounds):
        for c in clients:
            c.heartbeat()
            owned_everywhere(clients)
    return owned_everywhere(clients)


# -- joining and reconciling ------------------------------------------------------------------------

def test_first_member_gets_everything_and_records_are_written():
    h = harness()
    r = h.send("consumer_group_heartbeat", hb(), 0)
    assert r.error_code == E.NONE and r.member_epoch == 1 and r.heartbeat_interval_ms == 5000
    assert assigned(r) == {FOO: set(range(6))}
    assert len(r.member_id) == 22  # a Kafka Uuid string
    g = h.group(G)
    assert isinstance(g, ConsumerGroup) and g.state is ConsumerGroupState.STABLE
    types = [rec.type for rec in h.records() if rec.group_id == G]
    assert types == [records.CONSUMER_GROUP_MEMBER_METADATA, records.CONSUMER_GROUP_PARTITION_METADATA,
                     records.CONSUMER_GROUP_METADATA, records.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER,
                     records.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA,
                     records.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT]
    # A heartbeat that changes nothing writes nothing and carries no assignment.
    n = len(h.records())
    r2 = h.send("consumer_group_heartbeat", light(r.member_id, 1), 0)
    assert r2.member_epoch == 1 and r2.assignment is None and len(h.records()) == n


def test_revocation_before_assignment():
    h = harness()
    a, b = Client(h), Client(h)
    a.heartbeat()
    assert a.owned == {FOO: set(range(6))} and a.epoch == 1
    b.heartbeat()  # epoch 2: target gives b half, but a still owns it
    assert b.epoch == 2 and b.owned == {}
    assert h.group(G).members[b.member_id].state is MemberState.UNRELEASED_PARTITIONS
    assert h.group(G).state is ConsumerGroupState.RECONCILING
    a.heartbeat()  # a is asked to revoke 3 partitions; it stays at epoch 1 until it does
    assert a.epoch == 1 and len(a.owned[FOO]) == 3
    assert h.group(G).members[a.member_id].state is MemberState.UNREVOKED_PARTITIONS
    b.heartbeat()  # still not released: a has not confirmed
    assert b.owned == {}
    a.heartbeat()  # a reports only its 3: revocation acknowledged, it moves to epoch 2
    assert a.epoch == 2 and h.group(G).members[a.member_id].state is MemberState.STABLE
    b.heartbeat()
    assert len(b.owned[FOO]) == 3 and b.epoch == 2
    assert owned_everywhere([a, b]) and h.group(G).state is ConsumerGroupState.STABLE


def test_random_joins_and_leaves_never_double_assign_and_converge():
    rnd = random.Random(7)
    h = Harness(topics=topics(foo=7, bar=5, baz=2))
    subs = [("foo",), ("foo", "bar"), ("bar", "baz"), ("foo", "bar", "baz")]
    clients = []
    for _step in range(40):
        action = rnd.random()
        if action < 0.3 or not clients:
            clients.append(Client(h, names=rnd.choice(subs)))
            clients[-1].heartbeat()
        elif action < 0.4 and len(clients) > 1:
            clients.pop(rnd.randrange(len(clients))).leave()
        else:
            rnd.choice(clients).heartbeat()
        owned_everywhere(clients)
    owners = converge(clients)
    g = h.group(G)
    assert g.state is ConsumerGroupState.STABLE
    wanted = {(topic_id(t), p) for c in clients for t in c.names for p in range(dict(foo=7, bar=5, baz=2)[t])}
    assert set(owners) == wanted
    assert all(c.epoch == g.group_epoch for c in clients)


def test_previous_epoch_with_subset_is_accepted_otherwise_fenced():
    h = harness()
    a = Client(h)
    a.heartbeat()
    b = Client(h)
    b.heartbeat()
    a.heartbeat()
    a.heartbeat()  # a at epoch 2 owning 3
    assert a.epoch == 2
    g = h.group(G)
    assert g.members[a.member_id].previous_member_epoch == 1
    r = h.send("consumer_group_heartbeat", light(a.member_id, 1, a.owned), 0)  # lost response: fine
    assert r.error_code == E.NONE and r.member_epoch == 2
    r = h.send("consumer_group_heartbeat", light(a.member_id, 1, {FOO: set(range(6))}), 0)
    assert r.error_code == E.FENCED_MEMBER_EPOCH
    r = h.send("consumer_group_heartbeat", light(a.member_id, 1, None), 0)
    assert r.error_code == E.FENCED_MEMBER_EPOCH
    r = h.send("consumer_group_heartbeat", light(a.member_id, 9, a.owned), 0)
    assert r.error_code == E.FENCED_MEMBER_EPOCH and r.error_message


def test_known_member_rejoining_with_epoch_zero_gets_its_assignment_back():
    h = harness()
    a = Client(h)
    a.heartbeat()
    r = h.send("consumer_group_heartbeat", hb(a.member_id, 0), 0)
    assert r.error_code == E.NONE and r.member_epoch == 1 and assigned(r) == {FOO: set(range(6))}


def test_heartbeat_errors():
    h = harness()
    cases = [
        (hb(group=""), E.INVALID_REQUEST),
        (hb(instance=""), E.INVALID_REQUEST),
        (hb(rack=""), E.INVALID_REQUEST),
        (hb(rebalance=-1), E.INVALID_REQUEST),
        (hb(owned=None), E.INVALID_REQUEST),
        (hb(owned={FOO: {1}}), E.INVALID_REQUEST),
        (hb(names=None), E.INVALID_REQUEST),
        (hb(epoch=-3), E.INVALID_REQUEST),
        (hb(member_id="", epoch=3), E.INVALID_REQUEST),
        (hb(member_id="m", epoch=-2), E.INVALID_REQUEST),  # static leave without instance id
        (hb(assignor="sticky"), E.UNSUPPORTED_ASSIGNOR),
        (hb(member_id="m", epoch=3), E.GROUP_ID_NOT_FOUND),
        (light("m", -1), E.GROUP_ID_NOT_FOUND),
    ]
    for req, code in cases:
        r = h.send("consumer_group_heartbeat", req, 0)
        assert r.error_code == code, (req, r)
    Client(h).heartbeat()
    assert h.send("consumer_group_heartbeat", light("ghost", 1), 0).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("consumer_group_heartbeat", light("ghost", -1), 0).error_code == E.UNKNOWN_MEMBER_ID


def test_not_coordinator_and_disabled_protocol():
    h = Harness(partitions=[], topics=topics(foo=1))
    assert h.send("consumer_group_heartbeat", hb(), 0).error_code == E.NOT_COORDINATOR
    h = Harness(GroupConfig(rebalance_protocols=("classic",)), topics=topics(foo=1))
    assert h.send("consumer_group_heartbeat", hb(), 0).error_code == E.UNSUPPORTED_VERSION


def test_group_max_size():
    h = Harness(GroupConfig(consumer_max_size=1), topics=topics(foo=2))
    Client(h).heartbeat()
    assert h.send("consumer_group_heartbeat", hb(), 0).error_code == E.GROUP_MAX_SIZE_REACHED


def test_leave_bumps_epoch_and_others_take_over():
    h = harness()
    a, b = Client(h), Client(h)
    converge([a, b])
    epoch = h.group(G).group_epoch
    r = b.leave()
    assert r.member_epoch == -1 and r.member_id == b.member_id
    g = h.group(G)
    assert b.member_id not in g.members and g.group_epoch == epoch + 1
    a.heartbeat()
    assert a.owned == {FOO: set(range(6))} and a.epoch == epoch + 1


def test_last_member_leaving_leaves_an_empty_group():
    h = harness()
    a = Client(h)
    a.heartbeat()
    a.leave()
    g = h.group(G)
    assert g.state is ConsumerGroupState.EMPTY and not g.partition_epochs


def test_session_timeout_fences_member():
    h = harness()
    a, b = Client(h), Client(h)
    converge([a, b])
    for _ in range(10):
        h.advance(5000)
        a.heartbeat()
    assert b.member_id not in h.group(G).members
    a.heartbeat()
    assert a.owned == {FOO: set(range(6))}


def test_rebalance_timeout_fences_member_that_does_not_revoke():
    h = harness()
    a, b = Client(h), Client(h)
    a.heartbeat()
    b.heartbeat()
    h.send("consumer_group_heartbeat", light(a.member_id, 1), 0)  # asked to revoke
    assert h.group(G).members[a.member_id].state is MemberState.UNREVOKED_PARTITIONS
    for _ in range(7):  # a keeps heartbeating but never revokes
        h.advance(5000)
        h.send("consumer_group_heartbeat", light(a.member_id, 1, {FOO: set(range(6))}), 0)
        b.heartbeat()
    assert a.member_id not in h.group(G).members  # the 30 s rebalance timeout passed
    b.heartbeat()
    assert b.owned == {FOO: set(range(6))}


def test_subscription_change_and_new_partitions():
    h = harness(foo=2, bar=2)
    a = Client(h, names=("foo",))
    a.heartbeat()
    a.names = ("foo", "bar")
    a.heartbeat(full=True)
    assert a.owned == {FOO: {0, 1}, BAR: {0, 1}}
    epoch = h.group(G).group_epoch
    h.c.set_topics(topics(foo=4, bar=2), h.now)  # foo grows
    a.heartbeat()
    assert a.owned[FOO] == {0, 1, 2, 3} and h.group(G).group_epoch == epoch + 1


def test_regex_subscription():
    h = harness(foo=1, bar=1)
    a = Client(h, names=(), regex="fo.*", version=1)
    a.heartbeat()
    assert a.owned == {FOO: {0}}
    h.c.set_topics({**topics(foo=1, bar=1, four=2), "__consumer_offsets": (topic_id("co"), 50)}, h.now)
    a.heartbeat()
    assert a.owned == {FOO: {0}, topic_id("four"): {0, 1}}
    r = h.send("consumer_group_heartbeat", hb(regex="(", names=None), 1)
    assert r.error_code == E.INVALID_REGULAR_EXPRESSION


@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_assignor_choice_and_describe(assignor):
    h = harness(foo=4, bar=4)
    clients = [Client(h, names=("foo", "bar"), assignor=assignor) for _ in range(2)]
    for c in clients:
        c.heartbeat()
    converge(clients)
    r = h.send("consumer_group_describe", m.ConsumerGroupDescribeRequest(group_ids=[G, "nope", ""],
                                                                          include_authorized_operations=True), 0)
    d, missing, empty = r.groups
    assert (d.error_code, d.group_state, d.assignor_name) == (E.NONE, "Stable", assignor)
    assert d.group_epoch == d.assignment_epoch == 2 and d.authorized_operations == 3400
    assert {mb.member_id for mb in d.members} == {c.member_id for c in clients}
    for mb in d.members:
        got = {(tp.topic_name, p) for tp in mb.assignment.topic_partitions for p in tp.partitions}
        target = {(tp.topic_name, p) for tp in mb.target_assignment.topic_partitions for p in tp.partitions}
        assert got == target and len(got) == 4 and mb.subscribed_topic_names == ["bar", "foo"]
        if assignor == "range":  # co-partitioned: the same partition numbers of both topics
            assert {p for t, p in got if t == "foo"} == {p for t, p in got if t == "bar"}
    assert missing.error_code == E.GROUP_ID_NOT_FOUND and empty.error_code == E.INVALID_GROUP_ID
    r = h.send("consumer_group_describe", m.ConsumerGroupDescribeRequest(group_ids=[G]), 1)
    assert [mb.member_type for mb in r.groups[0].members] == [1, 1]  # KIP-1099: consumer-protocol members


# -- static members ---------------------------------------------------------------------------------

def test_static_member_restart_keeps_partitions_without_rebalance():
    h = harness()
    a, b = Client(h, instance="ia"), Client(h, instance="ib")
    converge([a, b])
    epoch = h.group(G).group_epoch
    before = dict(b.owned)
    r = b.leave(epoch=-2)  # shutting down for a restart
    assert r.member_epoch == -2
    assert h.group(G).members[b.member_id].member_epoch == -2
    b2 = Client(h, instance="ib")
    b2.heartbeat()
    assert b2.member_id != b.member_id and b2.owned == before
    assert h.group(G).group_epoch == epoch and b.member_id not in h.group(G).members
    a.heartbeat()
    assert owned_everywhere([a, b2])


def test_static_instance_in_use_and_fencing():
    h = harness()
    a = Client(h, instance="ia")
    a.heartbeat()
    r = h.send("consumer_group_heartbeat", hb(instance="ia"), 0)
    assert r.error_code == E.UNRELEASED_INSTANCE_ID
    r = h.send("consumer_group_heartbeat", hb("other", 1, names=None, rebalance=-1, owned=None, instance="ia"), 0)
    assert r.error_code == E.FENCED_INSTANCE_ID
    r = h.send("consumer_group_heartbeat", hb("other", 1, names=None, rebalance=-1, owned=None, instance="iz"), 0)
    assert r.error_code == E.UNKNOWN_MEMBER_ID


def test_temporarily_departed_static_member_expires_after_session_timeout():
    h = harness()
    a, b = Client(h, instance="ia"), Client(h, instance="ib")
    converge([a, b])
    b.leave(epoch=-2)  # its session keeps running from its last heartbeat
    for _ in range(8):
        h.advance(5000)
        a.heartbeat()
    assert b.member_id in h.group(G).members and not a.owned.get(FOO, set()) >= set(range(6))
    h.advance(5000)
    a.heartbeat()
    assert b.member_id not in h.group(G).members
    a.heartbeat()
    assert a.owned == {FOO: set(range(6))}


# -- interplay with classic groups and offsets ------------------------------------------------------

def test_classic_join_to_consumer_group():
    h = harness()
    a = Client(h)
    a.heartbeat()
    r = h.send("join_group", join_req(G), 5)
    assert r.error_code == E.INCONSISTENT_GROUP_PROTOCOL
    a.leave()
    r = h.send("join_group", join_req(G), 5)  # the empty consumer group gives way
    assert r.error_code == E.MEMBER_ID_REQUIRED and isinstance(h.group(G), ClassicGroup)


def test_consumer_heartbeat_to_classic_group():
    h = harness()
    h.send("offset_commit", commit_req(G, {("foo", 0): 3}), 8)  # an empty simple group
    r = h.send("consumer_group_heartbeat", hb(), 0)
    assert r.error_code == E.NONE and isinstance(h.group(G), ConsumerGroup)
    assert h.c.shard_for(G).committed.get(G, "foo", 0).offset == 3  # its offsets stay
    from tests.coordinator.test_classic import stable
    stable(h, 1, gid="classic")
    r = h.send("consumer_group_heartbeat", hb(group="classic"), 0)
    assert r.error_code == E.GROUP_ID_NOT_FOUND


def test_offset_commit_and_fetch_with_member_epochs():
    h = harness()
    a = Client(h)
    a.heartbeat()
    ok = commit_req(G, {("foo", 0): 10}, generation=a.epoch, member_id=a.member_id)
    assert set(commit_errors(h.send("offset_commit", ok, 9)).values()) == {E.NONE}
    stale = commit_req(G, {("foo", 0): 11}, generation=a.epoch + 5, member_id=a.member_id)
    assert set(commit_errors(h.send("offset_commit", stale, 9)).values()) == {E.STALE_MEMBER_EPOCH}
    assert set(commit_errors(h.send("offset_commit", ok, 8)).values()) == {E.UNSUPPORTED_VERSION}
    unknown = commit_req(G, {("foo", 0): 11}, generation=1, member_id="ghost")
    assert set(commit_errors(h.send("offset_commit", unknown, 9)).values()) == {E.UNKNOWN_MEMBER_ID}
    # A group-less commit (-1) only goes to an empty group.
    assert set(commit_errors(h.send("offset_commit", commit_req(G, {("foo", 0): 1}), 9)).values()) == \
        {E.UNKNOWN_MEMBER_ID}
    f = h.send("offset_fetch", fetch_req_v8({G: {"foo": [0]}}, member_id=a.member_id, member_epoch=a.epoch), 9)
    assert f.groups[0].topics[0].partitions[0].committed_offset == 10
    f = h.send("offset_fetch", fetch_req_v8({G: {"foo": [0]}}, member_id=a.member_id, member_epoch=7), 9)
    assert f.groups[0].error_code == E.STALE_MEMBER_EPOCH
    f = h.send("offset_fetch", fetch_req_v8({G: {"foo": [0]}}, member_id="ghost", member_epoch=1), 9)
    assert f.groups[0].error_code == E.UNKNOWN_MEMBER_ID
    f = h.send("offset_fetch", fetch_req_v8({G: {"foo": [0]}}), 9)  # admin: no member
    assert f.groups[0].error_code == E.NONE


def test_delete_consumer_group():
    h = harness()
    a = Client(h)
    a.heartbeat()
    r = h.send("delete_groups", m.DeleteGroupsRequest(groups_names=[G]), 2)
    assert r.results[0].error_code == E.NON_EMPTY_GROUP
    a.leave()
    r = h.send("delete_groups", m.DeleteGroupsRequest(groups_names=[G]), 2)
    assert r.results[0].error_code == E.NONE and h.group(G) is None
    assert h.reload().group(G) is None


def test_list_groups_shows_consumer_groups():
    h = harness()
    Client(h).heartbeat()
    r = h.send("list_groups", m.ListGroupsRequest(types_filter=["consumer"]), 5)
    assert [(g.group_id, g.protocol_type, g.group_state, g.group_type) for g in r.groups] == [
        (G, "consumer", "Stable", "consumer")]
