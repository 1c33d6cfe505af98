"""`__consumer_offsets` records: their bytes, and replaying them into a fresh coordinator."""

import struct

import pytest

from kafka_compat.coordinator import records
from kafka_compat.coordinator.classic import ClassicState
from kafka_compat.coordinator.consumer import ConsumerGroup, ConsumerMember, MemberState
from kafka_compat.coordinator.offsets import OffsetAndMetadata
from kafka_compat.protocol import messages as m
from tests.coordinator.helpers import E, Harness, commit_req, fetch_req, fetched, join_req, leave_req, topics
from tests.coordinator.test_classic import stable
from tests.coordinator.test_consumer_protocol import FOO, Client


def s16(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def test_offset_commit_record_bytes_are_kafkas():
    key, value = records.offset_commit("g", "t", 3, OffsetAndMetadata(42, 7, "meta", 1000)).to_bytes()
    assert key == struct.pack(">h", 1) + s16("g") + s16("t") + struct.pack(">i", 3)
    assert value == struct.pack(">h", 3) + struct.pack(">q", 42) + struct.pack(">i", 7) + s16("meta") + \
        struct.pack(">q", 1000)
    key, value = records.offset_commit("g", "t", 3, OffsetAndMetadata(42, -1, "", 1000, 5000)).to_bytes()
    assert value == struct.pack(">h", 1) + struct.pack(">q", 42) + s16("") + struct.pack(">qq", 1000, 5000)
    key, value = records.offset_commit_tombstone("g", "t", 3).to_bytes()
    assert value is None


def test_group_metadata_record_bytes_are_kafkas():
    key, value = records.group_metadata_tombstone("grp").to_bytes()
    assert key == struct.pack(">h", 2) + s16("grp") and value is None
    h = Harness()
    stable(h, 1, gid="grp", instances=["i"])
    rec = [r for r in h.records() if r.group_id == "grp"][-1]
    k, v = rec.to_bytes()
    assert v[:2] == struct.pack(">h", 3)
    assert v[2:].startswith(s16("consumer") + struct.pack(">i", 1) + s16("range"))
    back = records.decode(k, v)
    assert back.value.members[0].group_instance_id == "i" and back.value.members[0].assignment.startswith(b"a-")


def test_consumer_group_record_types():
    member = ConsumerMember("m", member_epoch=3, previous_member_epoch=2, state=MemberState.UNREVOKED_PARTITIONS,
                            subscribed_topic_names=("b", "a"), assigned={FOO: frozenset({1, 0})},
                            pending_revocation={FOO: frozenset({2})})
    recs = [
        records.consumer_group_epoch("g", 5),
        records.consumer_group_subscription_metadata("g", {}),
        records.consumer_group_member_subscription("g", member),
        records.consumer_group_target_assignment_epoch("g", 5),
        records.consumer_group_target_assignment("g", "m", {FOO: frozenset({0, 1})}),
        records.consumer_group_current_assignment("g", member),
    ]
    assert [r.type for r in recs] == [3, 4, 5, 6, 7, 8]
    for rec in recs:
        k, v = rec.to_bytes()
        assert struct.unpack(">h", k[:2])[0] == rec.type and struct.unpack(">h", v[:2])[0] == 0
        assert records.decode(k, v) == rec
    cur = records.decode(*recs[-1].to_bytes()).value
    assert (cur.member_epoch, cur.previous_member_epoch, cur.state) == (3, 2, 1)
    assert cur.assigned_partitions[0].partitions == [0, 1]


def test_decode_old_and_foreign_records():
    # OffsetCommitKey version 0 (old brokers) and OffsetCommitValue version 0.
    k = struct.pack(">h", 0) + s16("g") + s16("t") + struct.pack(">i", 1)
    v = struct.pack(">h", 0) + struct.pack(">q", 9) + s16("") + struct.pack(">q", 77)
    rec = records.decode(k, v)
    assert (rec.type, rec.value.offset, OffsetAndMetadata.from_value(rec.value, 0).leader_epoch) == (0, 9, -1)
    # Share-group records are read past.
    assert records.decode(struct.pack(">h", 11) + b"\x02g\x00", b"\x00\x00\x00\x00\x00\x00\x00") is None
    with pytest.raises(records.RecordError):
        records.decode(struct.pack(">h", 1) + b"\x00", b"")


def test_replay_round_trip_gives_the_same_groups_and_offsets():
    h = Harness(topics=topics(foo=6, bar=3))
    # Classic: a stable static group, an emptied group, a simple group with offsets, a deleted group.
    ids, leader, gen = stable(h, 2, gid="classic", instances=["i1", "i2"])
    (x,), _, xgen = stable(h, 1, gid="emptied")
    h.send("leave_group", leave_req("emptied", (x, None)), 3)
    h.send("offset_commit", commit_req("simple", {("foo", 0): 5, ("bar", 2): 9}, metadata="md"), 8)
    h.send("offset_commit", commit_req("classic", {("foo", 1): 1}, generation=gen, member_id=ids[0]), 8)
    h.send("offset_commit", commit_req("doomed", {("foo", 0): 1}), 8)
    h.send("delete_groups", m.DeleteGroupsRequest(groups_names=["doomed"]), 2)
    # KIP-848: a group mid-reconciliation, with a temporarily departed static member.
    a, b = Client(h), Client(h, instance="ib")
    a.heartbeat()
    b.heartbeat()
    a.heartbeat()  # a: UNREVOKED; b: UNRELEASED
    c = Client(h, names=("bar",), instance="ic")
    c.heartbeat()
    c.leave(epoch=-2)

    fresh = h.reload()
    for gid in ("classic", "emptied", "simple"):
        old, new = h.group(gid), fresh.group(gid)
        assert (new.state, new.generation, new.protocol_type, new.protocol_name, new.leader_id) == \
            (old.state, old.generation, old.protocol_type, old.protocol_name, old.leader_id), gid
        assert {k: (v.group_instance_id, v.assignment, v.protocols, v.session_timeout_ms, v.rebalance_timeout_ms,
                    v.client_host) for k, v in new.members.items()} == \
            {k: (v.group_instance_id, v.assignment, v.protocols, v.session_timeout_ms, v.rebalance_timeout_ms,
                 v.client_host) for k, v in old.members.items()}
        assert new.static_members == old.static_members
        assert new.state_timestamp_ms == old.state_timestamp_ms
    assert fresh.group("doomed") is None
    old, new = h.group("cg"), fresh.group("cg")
    assert isinstance(new, ConsumerGroup)
    assert (new.group_epoch, new.assignment_epoch, new.state) == (old.group_epoch, old.assignment_epoch, old.state)
    assert new.members == old.members and new.target_assignment == old.target_assignment
    assert new.subscription_metadata == old.subscription_metadata and new.static_members == old.static_members
    assert new.partition_epochs == old.partition_epochs
    assert new.members[a.member_id].state is MemberState.UNREVOKED_PARTITIONS
    for p, shard in h.c.shards.items():
        assert {g: dict(fresh.c.shards[p].committed.group(g)) for g in shard.committed.groups()} == \
            {g: dict(shard.committed.group(g)) for g in shard.committed.groups()}
        assert fresh.c.shards[p].offsets.groups() == fresh.c.shards[p].committed.groups()
    assert fetched(fresh.send("offset_fetch", fetch_req("simple", {"foo": [0], "bar": [2]}), 7)) == \
        {("foo", 0): (5, "md", E.NONE), ("bar", 2): (9, "md", E.NONE)}
    # And the reloaded groups keep working.
    a.h = b.h = fresh
    for _ in range(3):
        a.heartbeat()
        b.heartbeat()
    assert not (a.owned.get(FOO, set()) & b.owned.get(FOO, set()))
    assert fresh.send("heartbeat", m.HeartbeatRequest(group_id="classic", generation_id=gen, member_id=ids[0],
                                                      group_instance_id="i1"), 3).error_code == E.NONE


def test_loaded_members_expire_if_they_never_come_back():
    h = Harness()
    stable(h, 2)
    fresh = h.reload()
    assert fresh.group("group").state is ClassicState.STABLE
    fresh.advance(10_000)  # sessions restart at load; nobody heartbeats
    g = fresh.group("group")
    assert g.state is ClassicState.EMPTY and not g.members


def test_loading_answers_load_in_progress_then_serves():
    h = Harness()
    h.send("offset_commit", commit_req("g", {("t", 0): 4}), 8)
    fresh = Harness(partitions=[])
    fresh.log = h.log
    p = fresh.c.partition_for("g")
    fresh.hold_loads = True
    fresh.c.begin_load(p, fresh.now)
    fresh.drain()
    assert fresh.send("offset_fetch", fetch_req("g", {"t": [0]}), 7).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
    (job,) = fresh.held_loads
    assert fresh.c.load_records(p, job.epoch, fresh.log[p])
    assert fresh.c.finish_load(p, job.epoch, fresh.now)
    assert fetched(fresh.send("offset_fetch", fetch_req("g", {"t": [0]}), 7)) == {("t", 0): (4, "", E.NONE)}
    # A stale load (the partition was reloaded since) is refused.
    assert not fresh.c.load_records(p, job.epoch - 1, [])


def test_unloading_answers_parked_requests_not_coordinator():
    h = Harness()
    (a, b), leader, gen = stable(h, 2)
    t, r = h.call("join_group", join_req("group", leader), 5)
    assert r is None
    h.c.unload(h.c.partition_for("group"), h.now)
    h.drain()
    assert h.result(t).error_code == E.NOT_COORDINATOR
    assert h.send("heartbeat", m.HeartbeatRequest(group_id="group", generation_id=gen, member_id=a), 3).error_code \
        == E.NOT_COORDINATOR
    assert h.c.next_deadline() is None or all(k[1] != h.c.partition_for("group")
                                             for k in h.c.timer._entries if isinstance(k, tuple) and len(k) > 1)


def test_append_failure_reloads_partition_from_log():
    h = Harness()
    h.send("offset_commit", commit_req("g", {("t", 0): 1}), 8)
    h.auto_append = False
    t1, _ = h.call("offset_commit", commit_req("g", {("t", 0): 2}), 8)
    t2, _ = h.call("offset_commit", commit_req("g", {("t", 0): 3}), 8)
    assert len(h.held) == 2
    # As the runtime does: one partition's work runs in order, so the reload comes after the
    # appends already queued.
    h.hold_loads = True
    first = h.held.pop(0)
    h.c.append_done(first, E.NOT_ENOUGH_REPLICAS, h.now)
    h.drain()
    assert {p.error_code for t in h.result(t1).topics for p in t.partitions} == {E.COORDINATOR_NOT_AVAILABLE}
    assert {p.error_code for t in h.result(t2).topics for p in t.partitions} == {E.NOT_COORDINATOR}
    assert h.send("offset_fetch", fetch_req("g", {"t": [0]}), 7).error_code == E.COORDINATOR_LOAD_IN_PROGRESS
    h.release()  # the second append still lands; its completion is ignored (its waiter was answered)
    h.hold_loads = False
    (load,) = h.held_loads
    assert h.c.load_records(load.partition, load.epoch, h.log[load.partition])
    assert h.c.finish_load(load.partition, load.epoch, h.now)
    # The log is the truth: 2 was never written, 3 was.
    assert fetched(h.send("offset_fetch", fetch_req("g", {"t": [0]}), 7))[("t", 0)][0] == 3
