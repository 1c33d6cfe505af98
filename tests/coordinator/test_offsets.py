"""OffsetCommit / OffsetFetch / OffsetDelete and the expiry of offsets and groups."""

import pytest

from kafka_compat.coordinator import GroupConfig
from kafka_compat.coordinator.classic import ClassicState
from kafka_compat.protocol import messages as m
from tests.coordinator.helpers import (
    E,
    Harness,
    commit_errors,
    commit_req,
    fetch_req,
    fetch_req_v8,
    fetched,
    join_req,
    subscription,
    topics,
)
from tests.coordinator.test_classic import stable

G = "group"
DAY = 24 * 3600 * 1000


def test_simple_commit_creates_a_simple_group_and_is_fetched():
    h = Harness()
    r = h.send("offset_commit", commit_req(G, {("t", 0): 5, ("t", 1): 7}, metadata="m", leader_epoch=3), 8)
    assert set(commit_errors(r).values()) == {E.NONE}
    g = h.group(G)
    assert g.state is ClassicState.EMPTY and g.protocol_type is None and not g.members
    f = h.send("offset_fetch", fetch_req(G, {"t": [0, 1, 2]}), 7)
    assert fetched(f) == {("t", 0): (5, "m", E.NONE), ("t", 1): (7, "m", E.NONE), ("t", 2): (-1, "", E.NONE)}
    assert f.topics[0].partitions[0].committed_leader_epoch == 3
    rec = h.records()[0]
    assert (rec.type, rec.value_version, rec.value.leader_epoch, rec.value.commit_timestamp) == (1, 3, 3, h.now)


def test_commit_is_answered_once_durable_and_fetch_reads_only_durable_offsets():
    h = Harness(auto_append=False)
    token, r = h.call("offset_commit", commit_req(G, {("t", 0): 5}), 8)
    assert r is None and len(h.held) == 1
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7)) == {("t", 0): (-1, "", E.NONE)}
    h.release()
    assert commit_errors(h.result(token)) == {("t", 0): E.NONE}
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7)) == {("t", 0): (5, "", E.NONE)}


@pytest.mark.parametrize("append_error, answered", [
    (E.NOT_LEADER_OR_FOLLOWER, E.NOT_COORDINATOR),
    (E.REQUEST_TIMED_OUT, E.COORDINATOR_NOT_AVAILABLE),
    (E.MESSAGE_TOO_LARGE, E.UNKNOWN_SERVER_ERROR),
])
def test_commit_append_failure(append_error, answered):
    h = Harness(auto_append=False)
    token, _ = h.call("offset_commit", commit_req(G, {("t", 0): 5}), 8)
    h.auto_append = True
    h.release(append_error)
    assert commit_errors(h.result(token)) == {("t", 0): answered}
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7)) == {("t", 0): (-1, "", E.NONE)}


def test_require_stable_waits_for_pending_appends():
    h = Harness(auto_append=False)
    tc, _ = h.call("offset_commit", commit_req(G, {("t", 0): 9}), 8)
    tf, r = h.call("offset_fetch", fetch_req(G, {"t": [0]}, require_stable=True), 7)
    assert r is None
    h.release()
    assert fetched(h.result(tf)) == {("t", 0): (9, "", E.NONE)}
    assert h.result(tc) is not None
    # Nothing pending: answered at once.
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}, require_stable=True), 7))[("t", 0)][0] == 9


def test_metadata_too_large_counts_utf16_units():
    h = Harness(GroupConfig(offset_metadata_max_bytes=4))
    r = h.send("offset_commit", commit_req(G, {("t", 0): 1}, metadata="abcd"), 8)
    assert commit_errors(r) == {("t", 0): E.NONE}
    r = h.send("offset_commit", commit_req(G, {("t", 0): 1}, metadata="ab😀x"), 8)  # 5 UTF-16 units
    assert commit_errors(r) == {("t", 0): E.OFFSET_METADATA_TOO_LARGE}
    r = h.send("offset_commit", commit_req(G, {("t", 0): 1}, metadata="ééé"), 8)
    assert commit_errors(r) == {("t", 0): E.NONE}


def test_unknown_topic_or_partition():
    h = Harness(topics=topics(t=2))
    r = h.send("offset_commit", commit_req(G, {("t", 0): 1, ("t", 2): 1, ("nope", 0): 1}), 8)
    assert commit_errors(r) == {("t", 0): E.NONE, ("t", 2): E.UNKNOWN_TOPIC_OR_PARTITION,
                                ("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION}


def test_classic_member_commit_checks():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    ok = commit_req(G, {("t", 0): 1}, generation=gen, member_id=a, instance="i1")
    assert set(commit_errors(h.send("offset_commit", ok, 8)).values()) == {E.NONE}
    cases = [
        (commit_req(G, {("t", 0): 1}, generation=gen + 1, member_id=a), E.ILLEGAL_GENERATION),
        (commit_req(G, {("t", 0): 1}, generation=gen, member_id="zz"), E.UNKNOWN_MEMBER_ID),
        (commit_req(G, {("t", 0): 1}, generation=gen, member_id=a, instance="i2"), E.FENCED_INSTANCE_ID),
        (commit_req(G, {("t", 0): 1}), E.UNKNOWN_MEMBER_ID),  # no member, non-empty group
        (commit_req("nogroup", {("t", 0): 1}, generation=3, member_id="x"), E.ILLEGAL_GENERATION),
    ]
    for req, code in cases:
        assert set(commit_errors(h.send("offset_commit", req, 8)).values()) == {code}
    r = h.send("offset_commit", commit_req("nogroup", {("t", 0): 1}, generation=3, member_id="x"), 9)
    assert set(commit_errors(r).values()) == {E.GROUP_ID_NOT_FOUND}
    # v0 carries no member: it only commits to empty groups, and it works there.
    r = h.send("offset_commit", commit_req("empty", {("t", 0): 1}), 0)
    assert set(commit_errors(r).values()) == {E.NONE}


def test_commit_during_completing_rebalance_is_rebalance_in_progress():
    h = Harness()
    t, r = h.call("join_group", join_req(G), 3)
    h.advance(0)
    r = h.result(t)
    assert h.group(G).state is ClassicState.COMPLETING_REBALANCE
    req = commit_req(G, {("t", 0): 1}, generation=r.generation_id, member_id=r.member_id)
    assert set(commit_errors(h.send("offset_commit", req, 8)).values()) == {E.REBALANCE_IN_PROGRESS}


def test_commit_keeps_classic_member_alive():
    h = Harness()
    (a,), leader, gen = stable(h, 1)
    for _ in range(5):
        h.advance(6000)
        h.send("offset_commit", commit_req(G, {("t", 0): 1}, generation=gen, member_id=a), 8)
    assert a in h.group(G).members


def test_fetch_all_partitions_and_versions():
    h = Harness()
    h.send("offset_commit", commit_req(G, {("b", 1): 11, ("a", 0): 10, ("b", 0): 12}), 8)
    f = h.send("offset_fetch", fetch_req(G, None), 2)
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in f.topics] == [("a", [0]), ("b", [0, 1])]
    # v8: several groups, each with its own answer
    f = h.send("offset_fetch", fetch_req_v8({G: {"a": [0]}, "other": None}), 8)
    assert [(g.group_id, g.error_code) for g in f.groups] == [(G, E.NONE), ("other", E.NONE)]
    assert f.groups[0].topics[0].partitions[0].committed_offset == 10 and f.groups[1].topics == []
    for v in range(0, 10):
        req = fetch_req_v8({G: {"a": [0]}}) if v >= 8 else fetch_req(G, {"a": [0]})
        h.send("offset_fetch", req, v)


def test_fetch_errors_per_version():
    h = Harness(partitions=[])
    f = h.send("offset_fetch", fetch_req(G, {"t": [0, 1]}), 1)
    assert {p.error_code for t in f.topics for p in t.partitions} == {E.NOT_COORDINATOR}
    f = h.send("offset_fetch", fetch_req(G, {"t": [0]}), 5)
    assert f.error_code == E.NOT_COORDINATOR and f.topics == []
    f = h.send("offset_fetch", fetch_req_v8({G: None}), 8)
    assert f.groups[0].error_code == E.NOT_COORDINATOR


def test_offset_delete():
    h = Harness()
    assert h.send("offset_delete", _delete_req("nope", {"t": [0]}), 0).error_code == E.GROUP_ID_NOT_FOUND
    assert h.send("offset_delete", _delete_req("", {"t": [0]}), 0).error_code == E.INVALID_GROUP_ID
    # A consumer-protocol group subscribed to "sub" (classic, its subscriptions parsed).
    (a,), leader, gen = stable(h, 1, protocols=(("range", subscription("sub")),))
    h.send("offset_commit", commit_req(G, {("sub", 0): 1, ("old", 0): 2}, generation=gen, member_id=a), 8)
    r = h.send("offset_delete", _delete_req(G, {"sub": [0], "old": [0, 5]}), 0)
    assert {(t.name, p.partition_index): p.error_code for t in r.topics for p in t.partitions} == {
        ("sub", 0): E.GROUP_SUBSCRIBED_TO_TOPIC, ("old", 0): E.NONE, ("old", 5): E.NONE}
    assert fetched(h.send("offset_fetch", fetch_req(G, {"old": [0], "sub": [0]}), 7)) == {
        ("old", 0): (-1, "", E.NONE), ("sub", 0): (1, "", E.NONE)}
    tomb = h.records()[-1]
    assert tomb.type == 1 and tomb.value is None and tomb.key.topic == "old"
    # A non-consumer group with members refuses.
    stable(h, 1, gid="connect-g", protocols=(("default", b""),))
    h.group("connect-g").protocol_type = "connect"
    assert h.send("offset_delete", _delete_req("connect-g", {"t": [0]}), 0).error_code == E.NON_EMPTY_GROUP


def _delete_req(group, parts):
    T = m.OffsetDeleteRequest.OffsetDeleteRequestTopic
    P = m.OffsetDeleteRequest.OffsetDeleteRequestPartition
    return m.OffsetDeleteRequest(group_id=group, topics=[
        T(name=t, partitions=[P(partition_index=p) for p in ps]) for t, ps in parts.items()])


# -- expiry -----------------------------------------------------------------------------------------

def expiring(retention_ms=DAY, interval_ms=60_000):
    return Harness(GroupConfig(group_initial_rebalance_delay_ms=0, offsets_retention_ms=retention_ms,
                               offsets_retention_check_interval_ms=interval_ms))


def test_simple_group_offsets_expire_by_commit_time_then_group_is_deleted():
    h = expiring()
    h.send("offset_commit", commit_req(G, {("t", 0): 1}), 8)
    h.advance(DAY - 60_000)
    assert h.group(G) is not None
    h.advance(60_000)
    assert h.group(G) is None
    tail = h.records()[-2:]
    assert (tail[0].type, tail[0].value) == (1, None) and (tail[1].type, tail[1].value) == (2, None)
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7)) == {("t", 0): (-1, "", E.NONE)}


def test_empty_classic_group_offsets_expire_after_the_group_empties():
    h = expiring()
    (a,), leader, gen = stable(h, 1, session=1_800_000)
    h.send("offset_commit", commit_req(G, {("t", 0): 1}, generation=gen, member_id=a), 8)
    # Alive for two days (the commit ages, but the group has a member).
    for _ in range(2 * 24 * 6):
        h.advance(600_000)
        h.send("heartbeat", m.HeartbeatRequest(group_id=G, generation_id=gen, member_id=a), 3)
    assert h.group(G).state is ClassicState.STABLE
    h.send("leave_group", m.LeaveGroupRequest(group_id=G, member_id=a), 0)
    h.advance(DAY - 120_000)
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7))[("t", 0)][0] == 1
    h.advance(120_000)
    assert h.group(G) is None


def test_stable_consumer_group_keeps_subscribed_offsets_expires_others():
    h = expiring(retention_ms=DAY, interval_ms=600_000)
    (a,), leader, gen = stable(h, 1, protocols=(("range", subscription("sub")),), session=1_800_000)
    h.send("offset_commit", commit_req(G, {("sub", 0): 1, ("gone", 0): 2}, generation=gen, member_id=a), 8)
    for _ in range(int(1.5 * 24 * 6)):
        h.advance(600_000)
        h.send("heartbeat", m.HeartbeatRequest(group_id=G, generation_id=gen, member_id=a), 3)
    f = fetched(h.send("offset_fetch", fetch_req(G, {"sub": [0], "gone": [0]}), 7))
    assert f == {("sub", 0): (1, "", E.NONE), ("gone", 0): (-1, "", E.NONE)}
    assert h.group(G) is not None


def test_non_consumer_protocol_group_offsets_do_not_expire_while_active():
    h = expiring(retention_ms=DAY, interval_ms=600_000)
    (a,), leader, gen = stable(h, 1, protocols=(("default", b"\x00"),), session=1_800_000)
    h.group(G).protocol_type = "connect"
    h.group(G).subscribed_topics = None
    h.send("offset_commit", commit_req(G, {("t", 0): 1}, generation=gen, member_id=a), 8)
    for _ in range(2 * 24 * 6):
        h.advance(600_000)
        h.send("heartbeat", m.HeartbeatRequest(group_id=G, generation_id=gen, member_id=a), 3)
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7))[("t", 0)][0] == 1


def test_explicit_retention_time_v2_to_v4():
    h = expiring(retention_ms=10 * DAY)
    r = h.send("offset_commit", commit_req(G, {("t", 0): 1}, retention=3_600_000), 2)
    assert set(commit_errors(r).values()) == {E.NONE}
    rec = h.records()[-1]
    assert rec.value_version == 1 and rec.value.expire_timestamp == h.now + 3_600_000
    h.advance(3_600_000)
    assert fetched(h.send("offset_fetch", fetch_req(G, {"t": [0]}), 7))[("t", 0)][0] == -1


def test_expire_runs_per_partition_and_can_be_called():
    h = expiring()
    h.send("offset_commit", commit_req(G, {("t", 0): 1}), 8)
    h.now += DAY
    assert h.c.offsets.expire(h.c.partition_for(G), h.now) == 2  # offset tombstone + group tombstone
    h.drain()
    assert h.group(G) is None
