"""Classic groups: JoinGroup / SyncGroup / Heartbeat / LeaveGroup, states, timeouts, static members."""

import pytest

from kafka_compat.coordinator import GroupConfig
from kafka_compat.coordinator.classic import ClassicGroup, ClassicState
from tests.coordinator.helpers import (
    E,
    Harness,
    hb_req,
    join_req,
    leave_req,
    subscription,
    sync_req,
)

S = ClassicState
G = "group"


def join_dynamic(h: Harness, gid=G, protocols=(("range", b"r"),), version=5, **kw):
    """MEMBER_ID_REQUIRED round trip; returns (token, member id) of the parked second join."""
    r = h.send("join_group", join_req(gid, protocols=protocols, **kw), version)
    assert r.error_code == E.MEMBER_ID_REQUIRED
    token, parked = h.call("join_group", join_req(gid, r.member_id, protocols=protocols, **kw), version)
    return token, r.member_id, parked


def stable(h: Harness, n=2, gid=G, version=5, instances=None, protocols=(("range", b"r"),), session=10000):
    """A Stable group of n members; returns (member ids in join order, leader, generation)."""
    tokens, ids = [], []
    for i in range(n):
        if instances:
            t, r = h.call("join_group", join_req(gid, instance=instances[i], protocols=protocols, session=session),
                          version)
            assert r is None
            tokens.append(t)
        else:
            t, mid, r = join_dynamic(h, gid, protocols=protocols, version=version, session=session)
            assert r is None
            tokens.append(t)
    h.advance(0)
    responses = [h.result(t) for t in tokens]
    assert all(r is not None and r.error_code == E.NONE for r in responses)
    ids = [r.member_id for r in responses]
    leader = responses[0].leader
    gen = responses[0].generation_id
    assert all(r.leader == leader and r.generation_id == gen for r in responses)
    t_sync = {}
    for mid in ids:
        if mid == leader:
            continue
        t, r = h.call("sync_group", sync_req(gid, gen, mid), 3)
        assert r is None
        t_sync[mid] = t
    r = h.send("sync_group", sync_req(gid, gen, leader, {mid: f"a-{mid}".encode() for mid in ids}), 3)
    assert r.error_code == E.NONE and r.assignment == f"a-{leader}".encode()
    for mid, t in t_sync.items():
        assert h.result(t).assignment == f"a-{mid}".encode()
    assert h.group(gid).state is S.STABLE
    return ids, leader, gen


# -- joining ----------------------------------------------------------------------------------------

def test_member_id_required_then_join_and_sync():
    h = Harness()
    token, mid, parked = join_dynamic(h)
    assert parked is None
    assert mid.startswith("client-")
    assert h.group(G).state is S.PREPARING_REBALANCE
    h.advance(0)  # the initial delay (0 here) passes
    r = h.result(token)
    assert (r.error_code, r.generation_id, r.leader, r.member_id) == (E.NONE, 1, mid, mid)
    assert r.protocol_name == "range" and [x.member_id for x in r.members] == [mid]
    assert h.group(G).state is S.COMPLETING_REBALANCE
    r = h.send("sync_group", sync_req(G, 1, mid, {mid: b"x"}), 4)
    assert (r.error_code, r.assignment) == (E.NONE, b"x")
    assert h.group(G).state is S.STABLE
    assert h.send("heartbeat", hb_req(G, 1, mid), 4).error_code == E.NONE


def test_old_versions_join_without_member_id_round_trip():
    h = Harness()
    token, r = h.call("join_group", join_req(G), 3)
    assert r is None
    h.advance(0)
    r = h.result(token)
    assert r.error_code == E.NONE and r.member_id.startswith("client-")
    r.encode(3)


def test_v0_uses_session_timeout_as_rebalance_timeout():
    h = Harness()
    h.call("join_group", join_req(G, session=7000, rebalance=99999), 0)
    assert h.group(G).rebalance_timeout_ms() == 7000


def test_pending_member_expires_after_session_timeout():
    h = Harness(GroupConfig(group_initial_rebalance_delay_ms=0))
    ids, leader, gen = stable(h, 1)
    r = h.send("join_group", join_req(G, session=10000), 5)
    assert r.error_code == E.MEMBER_ID_REQUIRED
    assert r.member_id in h.group(G).pending_join_members
    h.advance(10000)
    assert not h.group(G).pending_join_members


def test_join_errors():
    h = Harness(GroupConfig(group_initial_rebalance_delay_ms=0, group_max_size=1))
    assert h.send("join_group", join_req(""), 5).error_code == E.INVALID_GROUP_ID
    assert h.send("join_group", join_req(G, session=10), 5).error_code == E.INVALID_SESSION_TIMEOUT
    assert h.send("join_group", join_req(G, session=10**9), 5).error_code == E.INVALID_SESSION_TIMEOUT
    assert h.send("join_group", join_req(G, "who"), 5).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("join_group", join_req(G, protocols=()), 5).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    assert h.send("join_group", join_req(G, protocol_type=""), 5).error_code == E.INCONSISTENT_GROUP_PROTOCOL
    ids, _, _ = stable(h, 1)
    # No protocol in common / another protocol type.
    assert h.send("join_group", join_req(G, ids[0], protocols=(("other", b""),)), 5).error_code == \
        E.INCONSISTENT_GROUP_PROTOCOL
    assert h.send("join_group", join_req(G, ids[0], protocol_type="connect"), 5).error_code == \
        E.INCONSISTENT_GROUP_PROTOCOL
    # group.max.size = 1
    assert h.send("join_group", join_req(G), 3).error_code == E.GROUP_MAX_SIZE_REACHED


def test_not_coordinator_and_loading():
    h = Harness(partitions=[])
    assert h.send("join_group", join_req(G), 5).error_code == E.NOT_COORDINATOR
    p = h.c.partition_for(G)
    h.hold_loads = True
    h.c.begin_load(p, h.now)  # the load is held: still loading
    assert h.send("join_group", join_req(G), 5).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
    assert h.send("sync_group", sync_req(G, 1, "m"), 5).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
    assert h.send("heartbeat", hb_req(G, 1, "m"), 4).error_code == E.NONE  # Kafka answers blindly


def test_initial_rebalance_delay_extends_while_members_arrive():
    h = Harness(GroupConfig(group_initial_rebalance_delay_ms=3000))
    t1, a, _ = join_dynamic(h, rebalance=10000)
    h.advance(2000)
    t2, b, _ = join_dynamic(h, rebalance=10000)
    h.advance(999)  # t=2999
    assert h.result(t1) is None
    h.advance(1)  # t=3000: a member arrived during the delay: wait another 3000 ms
    assert h.result(t1) is None and h.result(t2) is None
    h.advance(2999)
    assert h.result(t1) is None
    h.advance(1)  # t=6000
    r1, r2 = h.result(t1), h.result(t2)
    assert r1.generation_id == r2.generation_id == 1
    assert {x.member_id for x in r1.members} == {a, b} and r2.members == []


def test_initial_rebalance_delay_is_bounded_by_rebalance_timeout():
    h = Harness(GroupConfig(group_initial_rebalance_delay_ms=3000))
    t1, a, _ = join_dynamic(h, rebalance=4000)
    tokens = [t1]
    for _ in range(5):  # keep joining every second
        h.advance(1000)
        if h.group(G).state is S.PREPARING_REBALANCE:
            tokens.append(join_dynamic(h, rebalance=4000)[0])
    # 3000 (delay) + min(3000, remaining 1000) = 4000 at most.
    assert h.group(G).state is S.COMPLETING_REBALANCE
    assert all(h.result(t) is not None for t in tokens)


def test_protocol_selected_by_vote():
    h = Harness()
    a = (("range", b"ra"), ("roundrobin", b"rra"))
    b = (("roundrobin", b"rrb"), ("range", b"rb"))
    c = (("roundrobin", b"rrc"), ("range", b"rc"), ("sticky", b"sc"))
    tokens = [join_dynamic(h, protocols=p)[0] for p in (a, b, c)]
    h.advance(0)
    responses = [h.result(t) for t in tokens]
    assert {r.protocol_name for r in responses} == {"roundrobin"}
    leader = next(r for r in responses if r.members)
    assert sorted(x.metadata for x in leader.members) == [b"rra", b"rrb", b"rrc"]


def test_followers_wait_for_leader_sync_and_get_their_assignment():
    h = Harness()
    ids, leader, gen = stable(h, 3)
    assert len(ids) == 3 and h.group(G).generation == gen == 1


def test_follower_sync_parks_until_leader_assignment_is_durable():
    h = Harness(auto_append=True)
    tokens = [join_dynamic(h)[0] for _ in range(2)]
    h.advance(0)
    r = [h.result(t) for t in tokens]
    leader = r[0].leader
    follower = next(x.member_id for x in r if x.member_id != leader)
    tf, resp = h.call("sync_group", sync_req(G, 1, follower), 5)
    assert resp is None
    h.auto_append = False
    tl, resp = h.call("sync_group", sync_req(G, 1, leader, {leader: b"L", follower: b"F"}), 5)
    assert resp is None and len(h.held) == 1
    assert h.group(G).state is S.COMPLETING_REBALANCE
    h.release()
    assert h.result(tl).assignment == b"L" and h.result(tf).assignment == b"F"
    assert h.group(G).state is S.STABLE
    # A missing assignment is an empty one.
    assert h.send("sync_group", sync_req(G, 1, follower), 5).assignment == b"F"


def test_sync_errors():
    h = Harness()
    ids, leader, gen = stable(h, 2)
    assert h.send("sync_group", sync_req("", gen, leader), 3).error_code == E.INVALID_GROUP_ID
    assert h.send("sync_group", sync_req("nope", gen, leader), 3).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("sync_group", sync_req(G, gen, "nobody"), 3).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("sync_group", sync_req(G, gen + 1, leader), 3).error_code == E.ILLEGAL_GENERATION
    assert h.send("sync_group", sync_req(G, gen, leader, protocol_type="connect"), 5).error_code == \
        E.INCONSISTENT_GROUP_PROTOCOL
    assert h.send("sync_group", sync_req(G, gen, leader, protocol_name="sticky"), 5).error_code == \
        E.INCONSISTENT_GROUP_PROTOCOL
    r = h.send("sync_group", sync_req(G, gen, leader, protocol_type="consumer", protocol_name="range"), 5)
    assert (r.error_code, r.protocol_type, r.protocol_name) == (E.NONE, "consumer", "range")
    # v4 does not check (and has no) protocol fields.
    assert h.send("sync_group", sync_req(G, gen, leader), 4).error_code == E.NONE
    # A new member joins: the group rebalances and SyncGroup says so.
    join_dynamic(h)
    assert h.group(G).state is S.PREPARING_REBALANCE
    assert h.send("sync_group", sync_req(G, gen, leader), 3).error_code == E.REBALANCE_IN_PROGRESS


# -- rebalances -------------------------------------------------------------------------------------

def test_member_joining_stable_group_triggers_rebalance_everyone_rejoins():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    tc, c, _ = join_dynamic(h)
    assert h.group(G).state is S.PREPARING_REBALANCE
    assert h.send("heartbeat", hb_req(G, gen, a), 3).error_code == E.REBALANCE_IN_PROGRESS
    ta, r = h.call("join_group", join_req(G, a), 5)
    assert r is None and h.group(G).state is S.PREPARING_REBALANCE
    tb, rb = h.call("join_group", join_req(G, b), 5)
    # Everyone is in: the next generation starts at once.
    assert h.group(G).state is S.COMPLETING_REBALANCE
    rs = [h.result(ta), rb, h.result(tc)]
    assert {r.generation_id for r in rs} == {gen + 1}
    assert sum(1 for r in rs if r.members) == 1


def test_rebalance_timeout_drops_dynamic_members_that_did_not_rejoin():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    tc, c, _ = join_dynamic(h, rebalance=20000)
    ta, _ = h.call("join_group", join_req(G, a, rebalance=20000), 5)
    # b stays alive (heartbeats) but never rejoins; the rebalance timeout is the largest: b's 30 s.
    for _ in range(9):
        h.advance(3000)
        assert h.send("heartbeat", hb_req(G, gen, b), 3).error_code == E.REBALANCE_IN_PROGRESS
    h.advance(2999)
    assert h.group(G).state is S.PREPARING_REBALANCE
    h.advance(1)
    assert h.group(G).state is S.COMPLETING_REBALANCE
    assert set(h.group(G).members) == {a, c}
    assert h.result(ta).generation_id == gen + 1
    assert h.send("heartbeat", hb_req(G, gen + 1, b), 3).error_code == E.UNKNOWN_MEMBER_ID


def test_member_dying_during_rebalance_completes_it():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    ta, _ = h.call("join_group", join_req(G, a), 5)  # a forces a rebalance; b is silent
    h.advance(9999)
    assert h.group(G).state is S.PREPARING_REBALANCE
    h.advance(1)  # b's session (10 s since its last sign of life) expires: everyone left has joined
    assert h.group(G).state is S.COMPLETING_REBALANCE and set(h.group(G).members) == {a}
    assert h.result(ta).generation_id == gen + 1


def test_session_expiry_removes_member_and_rebalances():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    for _ in range(2):
        h.advance(4000)
        assert h.send("heartbeat", hb_req(G, gen, a), 3).error_code == E.NONE
    h.advance(1999)
    assert b in h.group(G).members
    h.advance(1)  # b never heartbeats: its 10 s session expires
    assert b not in h.group(G).members
    assert h.group(G).state is S.PREPARING_REBALANCE
    assert h.send("heartbeat", hb_req(G, gen, a), 3).error_code == E.REBALANCE_IN_PROGRESS
    ta, r = h.call("join_group", join_req(G, a), 5)
    assert r is not None and r.generation_id == gen + 1  # the only member rejoined: done at once


def test_last_member_session_expiry_empties_group():
    h = Harness()
    (a,), leader, gen = stable(h, 1)
    h.advance(10000)
    g = h.group(G)
    assert g.state is S.EMPTY and g.generation == gen + 1 and not g.members
    last = h.records()[-1]
    assert last.value.generation == gen + 1 and last.value.members == [] and last.value.protocol is None


def test_leader_leaving_mid_sync():
    h = Harness()
    tokens = [join_dynamic(h)[0] for _ in range(2)]
    h.advance(0)
    rs = [h.result(t) for t in tokens]
    leader = rs[0].leader
    follower = next(r.member_id for r in rs if r.member_id != leader)
    tf, r = h.call("sync_group", sync_req(G, 1, follower), 3)
    assert r is None
    r = h.send("leave_group", leave_req(G, (leader, None)), 3)
    assert r.error_code == E.NONE and r.members[0].error_code == E.NONE
    assert h.result(tf).error_code == E.REBALANCE_IN_PROGRESS
    g = h.group(G)
    assert g.state is S.PREPARING_REBALANCE and g.leader_id == follower
    tj, r = h.call("join_group", join_req(G, follower), 5)
    r = r or h.result(tj)
    assert (r.error_code, r.generation_id, r.leader) == (E.NONE, 2, follower)


def test_pending_sync_expiry_removes_members_that_never_sync():
    h = Harness()
    tokens = [join_dynamic(h, rebalance=15000)[0] for _ in range(2)]
    h.advance(0)
    rs = [h.result(t) for t in tokens]
    leader = rs[0].leader
    follower = next(r.member_id for r in rs if r.member_id != leader)
    h.send("sync_group", sync_req(G, 1, leader, {leader: b"L"}), 3)
    assert h.group(G).state is S.STABLE
    for _ in range(3):
        h.advance(5000)
        h.send("heartbeat", hb_req(G, 1, leader), 3)
        h.send("heartbeat", hb_req(G, 1, follower), 3)
    assert follower not in h.group(G).members
    assert h.group(G).state is S.PREPARING_REBALANCE


def test_rejoin_during_completing_with_same_metadata_gets_current_generation():
    h = Harness()
    tokens = [join_dynamic(h)[0] for _ in range(2)]
    h.advance(0)
    rs = [h.result(t) for t in tokens]
    for r in rs:
        again = h.send("join_group", join_req(G, r.member_id), 5)
        assert again.generation_id == 1 and again.leader == r.leader
        assert bool(again.members) == (r.member_id == r.leader)
    assert h.group(G).state is S.COMPLETING_REBALANCE


def test_stable_follower_rejoin_without_change_is_answered_leader_rejoin_rebalances():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    follower = b if leader == a else a
    r = h.send("join_group", join_req(G, follower), 5)
    assert r.generation_id == gen and r.members == []
    assert h.group(G).state is S.STABLE
    tl, r = h.call("join_group", join_req(G, leader), 5)
    assert r is None and h.group(G).state is S.PREPARING_REBALANCE


def test_cooperative_rounds_are_just_rebalances():
    """Cooperative clients rejoin with their owned partitions in the metadata: new metadata means
    a new round; the broker runs it like any other."""
    h = Harness()
    p1 = (("cooperative-sticky", subscription("t", version=1)),)
    (a, b), leader, gen = stable(h, 2, protocols=p1)
    p2 = (("cooperative-sticky", subscription("t", version=3)),)
    ta, r = h.call("join_group", join_req(G, a, protocols=p2), 5)
    assert r is None
    tb, r = h.call("join_group", join_req(G, b, protocols=p2), 5)
    assert h.group(G).generation == gen + 1
    assert h.group(G).subscribed_topics == {"t"}


def test_heartbeat_errors():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    assert h.send("heartbeat", hb_req("", gen, a), 3).error_code == E.INVALID_GROUP_ID
    assert h.send("heartbeat", hb_req("x", gen, a), 3).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("heartbeat", hb_req(G, gen, "zz"), 3).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("heartbeat", hb_req(G, gen + 7, a), 3).error_code == E.ILLEGAL_GENERATION
    assert h.send("heartbeat", hb_req(G, gen, a, instance="i2"), 3).error_code == E.FENCED_INSTANCE_ID
    assert h.send("heartbeat", hb_req(G, gen, a, instance="i9"), 3).error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("heartbeat", hb_req(G, gen, a, instance="i1"), 3).error_code == E.NONE


def test_heartbeat_during_completing_rebalance_is_fine():
    h = Harness()
    tokens = [join_dynamic(h)[0] for _ in range(2)]
    h.advance(0)
    r = h.result(tokens[0])
    assert h.send("heartbeat", hb_req(G, 1, r.member_id), 3).error_code == E.NONE


# -- leaving ----------------------------------------------------------------------------------------

def test_leave_v0_single_member_and_errors():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    r = h.send("leave_group", leave_req(G, ("nobody", None)), 0)
    assert r.error_code == E.UNKNOWN_MEMBER_ID
    r = h.send("leave_group", leave_req("nogroup", (a, None)), 2)
    assert r.error_code == E.UNKNOWN_MEMBER_ID
    assert h.send("leave_group", leave_req(G, (a, None)), 0).error_code == E.NONE
    assert h.group(G).state is S.PREPARING_REBALANCE
    assert h.send("leave_group", leave_req("", (a, None)), 0).error_code == E.INVALID_GROUP_ID


def test_batch_leave_by_member_identity():
    h = Harness()
    ids, leader, gen = stable(h, 3, instances=["i1", "i2", "i3"])
    r = h.send("leave_group", leave_req(G, (ids[0], "i1"), ("", "i2"), ("bogus", "i3"), ("", "i9"), ("x", None)), 5)
    assert [(x.member_id, x.group_instance_id, x.error_code) for x in r.members] == [
        (ids[0], "i1", E.NONE), ("", "i2", E.NONE), ("bogus", "i3", E.FENCED_INSTANCE_ID),
        ("", "i9", E.UNKNOWN_MEMBER_ID), ("x", None, E.UNKNOWN_MEMBER_ID)]
    assert set(h.group(G).members) == {ids[2]}
    assert h.group(G).state is S.PREPARING_REBALANCE


def test_last_member_leaving_empties_group_and_persists_it():
    h = Harness()
    (a,), leader, gen = stable(h, 1)
    h.send("leave_group", leave_req(G, (a, None)), 3)
    g = h.group(G)
    assert g.state is S.EMPTY and g.generation == gen + 1
    assert h.records()[-1].value.members == []


def test_pending_member_can_leave():
    h = Harness()
    (a,), leader, gen = stable(h, 1)
    r = h.send("join_group", join_req(G), 5)
    assert r.error_code == E.MEMBER_ID_REQUIRED
    r = h.send("leave_group", leave_req(G, (r.member_id, None)), 3)
    assert r.members[0].error_code == E.NONE and not h.group(G).pending_join_members


# -- static membership (KIP-345) --------------------------------------------------------------------

def test_static_follower_restart_takes_its_place_without_rebalance():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    old = b if leader == a else a
    inst = "i2" if old == b else "i1"
    r = h.send("join_group", join_req(G, instance=inst), 5)  # a restart: no member id
    assert r.error_code == E.NONE and r.member_id != old and r.generation_id == gen
    assert r.leader == leader and r.members == []
    g = h.group(G)
    assert g.state is S.STABLE and g.generation == gen and g.static_members[inst] == r.member_id
    assert h.send("heartbeat", hb_req(G, gen, old, instance=inst), 3).error_code == E.FENCED_INSTANCE_ID
    r2 = h.send("sync_group", sync_req(G, gen, r.member_id, instance=inst), 3)
    assert r2.assignment == f"a-{old}".encode()  # it keeps the assignment of its previous incarnation
    assert h.records()[-1].value.members[1 if old == b else 0].member_id == r.member_id


def test_static_leader_restart_v9_skips_assignment():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    assert leader == a
    r = h.send("join_group", join_req(G, instance="i1"), 9)
    assert r.error_code == E.NONE and r.skip_assignment and r.leader == r.member_id
    assert {x.member_id for x in r.members} == {r.member_id, b}
    assert h.group(G).state is S.STABLE and h.group(G).generation == gen


def test_static_leader_restart_before_v9_is_told_the_old_leader():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    r = h.send("join_group", join_req(G, instance="i1"), 7)
    assert r.error_code == E.NONE and r.leader == a and r.member_id != a and r.members == []
    assert h.group(G).leader_id == r.member_id


def test_static_replacement_waits_for_its_record():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    h.auto_append = False
    t, r = h.call("join_group", join_req(G, instance="i2"), 5)
    assert r is None
    h.release()
    assert h.result(t).error_code == E.NONE


def test_static_replacement_append_failure():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    h.auto_append = False
    t, r = h.call("join_group", join_req(G, instance="i2"), 5)
    h.auto_append = True
    h.release(E.NOT_LEADER_OR_FOLLOWER)
    assert h.result(t).error_code == E.NOT_COORDINATOR
    # The partition was reloaded from the log: the old member id is back.
    assert h.group(G).static_members["i2"] == b


def test_static_member_rejoin_fences_old_parked_join():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    assert leader == a
    t_old, r = h.call("join_group", join_req(G, a, instance="i1"), 5)  # the leader rejoins: rebalance
    assert r is None and h.group(G).state is S.PREPARING_REBALANCE
    t_new, r = h.call("join_group", join_req(G, instance="i1"), 5)  # its restarted incarnation
    assert r is None
    old = h.result(t_old)
    assert old.error_code == E.FENCED_INSTANCE_ID and old.member_id == a
    tb, rb = h.call("join_group", join_req(G, b, instance="i2"), 5)
    new = h.result(t_new)
    assert new.error_code == E.NONE and new.generation_id == gen + 1 and new.leader == new.member_id != a
    assert rb.generation_id == gen + 1


def test_static_member_joining_during_completing_rebalance_rebalances():
    h = Harness()
    for i in ("i1", "i2"):
        h.call("join_group", join_req(G, instance=i), 5)
    h.advance(0)
    assert h.group(G).state is S.COMPLETING_REBALANCE
    t, r = h.call("join_group", join_req(G, instance="i2"), 5)
    assert r is None and h.group(G).state is S.PREPARING_REBALANCE


def test_static_member_changing_protocol_rebalances():
    h = Harness()
    ids, leader, gen = stable(h, 1, instances=["i1"])
    t, r = h.call("join_group", join_req(G, instance="i1", protocols=(("roundrobin", b"x"), ("range", b"r"))), 5)
    assert h.group(G).generation == gen + 1
    r = r or h.result(t)
    assert r.protocol_name == "roundrobin"


def test_static_members_are_not_dropped_by_the_rebalance_timeout():
    h = Harness()
    (a, b), leader, gen = stable(h, 2, instances=["i1", "i2"])
    tj, _ = h.call("join_group", join_req(G, a, instance="i1"), 5)  # a (leader) forces a rebalance
    for _ in range(6):  # b stays alive but never rejoins; the rebalance timeout (30 s) passes
        h.advance(5000)
        h.send("heartbeat", hb_req(G, gen, b, instance="i2"), 3)
    r = h.result(tj)
    assert r.generation_id == gen + 1 and {x.member_id for x in r.members} == {a, b}


# -- states -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("frm, to, ok", [
    (S.EMPTY, S.PREPARING_REBALANCE, True),
    (S.EMPTY, S.STABLE, False),
    (S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, True),
    (S.PREPARING_REBALANCE, S.EMPTY, True),
    (S.COMPLETING_REBALANCE, S.STABLE, True),
    (S.COMPLETING_REBALANCE, S.EMPTY, False),
    (S.STABLE, S.PREPARING_REBALANCE, True),
    (S.STABLE, S.COMPLETING_REBALANCE, False),
    (S.STABLE, S.DEAD, True),
    (S.DEAD, S.DEAD, True),
    (S.DEAD, S.EMPTY, False),
])
def test_transition_table(frm, to, ok):
    g = ClassicGroup("g", 0, state=frm)
    if ok:
        g.transition_to(to, 5)
        assert (g.state, g.previous_state, g.state_timestamp_ms) == (to, frm, 5)
    else:
        with pytest.raises(RuntimeError):
            g.transition_to(to, 5)


def test_responses_encode_at_every_version():
    h = Harness()
    for v in range(0, 10):
        gid = f"g{v}"
        t, r = h.call("join_group", join_req(gid, instance="i" if v >= 5 else None), v)
        if r is None:
            h.advance(0)
            r = h.result(t)
        if r.error_code == E.MEMBER_ID_REQUIRED:
            r.encode(v)
            t, r = h.call("join_group", join_req(gid, r.member_id), v)
            h.advance(0)
            r = r or h.result(t)
        r.encode(v)
        assert r.error_code == E.NONE
        if v <= 5:
            s = h.send("sync_group", sync_req(gid, r.generation_id, r.member_id, {r.member_id: b"a"},
                                              instance="i" if v >= 5 and v >= 3 else None), v)
            assert s.error_code == E.NONE
        if v <= 4:
            h.send("heartbeat", hb_req(gid, r.generation_id, r.member_id, instance="i" if v >= 5 else None), v)
        if v <= 5:
            h.send("leave_group", leave_req(gid, (r.member_id, "i" if v >= 5 else None)), v)
