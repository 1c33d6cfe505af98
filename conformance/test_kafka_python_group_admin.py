"""kafka-python KafkaAdminClient on consumer groups: list (with state and type filters), describe
(members, client ids and hosts, decoded subscriptions and assignments), list/alter/reset/delete
committed offsets, remove a member, delete groups; and consumer lag (latest offset minus committed
offset, per partition) from ListOffsets and OffsetFetch. One group is active (two member
processes), one stopped (its consumer committed and closed)."""


import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.admin import KafkaAdminClient, MemberToRemove, OffsetSpec
from kafka.errors import GroupSubscribedToTopicError, NoError, UnknownMemberIdError

from conformance.groups import produce, python_member, wait_consumed_once, wait_split
from conformance.support import TIMEOUT, collect, create_topic, wait_until

pytestmark = pytest.mark.timeout(90)
STOPPED_AT = {0: 3, 1: 10, 2: 0, 3: 7}  # what the stopped group committed, of 10 records a partition


def _stop_after_committing(bootstrap: str, topic: str, group: str) -> None:
    c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    try:
        got = collect(lambda: [m for msgs in c.poll(timeout_ms=200).values() for m in msgs], 40, "records", TIMEOUT)
        assert len(got) == 40
        c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, f"at-{o}", -1) for p, o in STOPPED_AT.items()})
    finally:
        c.close()


def test_group_admin(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kp-gadmin"), partitions=4)
    tps = [TopicPartition(topic, p) for p in range(4)]
    active, stopped = unique("kp-active"), unique("kp-stopped")
    members = [python_member("kafka-python", broker.bootstrap, topic, active, n, client_id=f"kp-{n}") for n in "ab"]
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        owners = wait_split(members, 4)
        sent = produce(broker.bootstrap, topic, 4, 10, "x")
        wait_consumed_once(members, sent, "x", owners)
        _stop_after_committing(broker.bootstrap, topic, stopped)

        # ListGroups: both, with their state and type; filtered by state and type
        listed = {g["group_id"]: (g["protocol_type"], g["group_state"], g["group_type"]) for g in admin.list_groups()}
        assert listed[active] == ("consumer", "Stable", "classic")
        assert listed[stopped] == ("consumer", "Empty", "classic")
        ours = (active, stopped)
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Empty"]) if g["group_id"] in ours] == [stopped]
        assert [g["group_id"] for g in admin.list_groups(states_filter=["Stable"], types_filter=["classic"])
                if g["group_id"] in ours] == [active]

        # DescribeGroups: the members as they see themselves; the stopped group has none
        d = admin.describe_groups([active, stopped])
        assert (d[active]["group_state"], d[active]["protocol_type"], d[active]["protocol_data"]) == \
            ("Stable", "consumer", "range")
        described = {mb["member_id"]: (mb["client_id"], mb["client_host"], mb["member_metadata"]["topics"],
                                       [p for a in mb["member_assignment"]["assigned_partitions"]
                                        for p in a["partitions"]])
                     for mb in d[active]["members"]}
        assert described == {mb.member_id: (f"kp-{mb.name}", "/127.0.0.1", [topic], mb.assigned) for mb in members}
        assert (d[stopped]["group_state"], d[stopped]["members"]) == ("Empty", [])

        # lag = latest offset - committed offset, per partition
        def lag(group: str) -> dict:
            ends = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
            committed = admin.list_group_offsets({group: None})[group]
            return {tp.partition: ends[tp].offset - committed[tp].offset for tp in tps if tp in committed}

        assert lag(active) == {0: 0, 1: 0, 2: 0, 3: 0}
        assert lag(stopped) == {p: 10 - o for p, o in STOPPED_AT.items()}
        committed = admin.list_group_offsets({stopped: None})[stopped]
        assert {tp.partition: (om.offset, om.metadata) for tp, om in committed.items()} == \
            {p: (o, f"at-{o}") for p, o in STOPPED_AT.items()}
        more = produce(broker.bootstrap, topic, 4, 2, "y")
        wait_consumed_once(members, more, "y", owners)
        assert lag(active) == {0: 0, 1: 0, 2: 0, 3: 0}
        assert lag(stopped) == {p: 12 - o for p, o in STOPPED_AT.items()}

        # alter and reset offsets: only while the group has no members
        assert admin.alter_group_offsets(stopped, {tps[0]: OffsetAndMetadata(5, "moved", -1)}) == {tps[0]: NoError}
        assert admin.alter_group_offsets(active, {tps[0]: OffsetAndMetadata(5, "", -1)}) == \
            {tps[0]: UnknownMemberIdError}
        assert admin.reset_group_offsets(stopped, {tps[1]: OffsetSpec.EARLIEST})[tps[1]] == \
            {"error": NoError, "offset": 0}
        assert lag(stopped) == {0: 7, 1: 12, 2: 12, 3: 5}

        # delete offsets: not of a topic the group subscribes to
        assert admin.delete_group_offsets(stopped, [tps[3]]) == {tps[3]: NoError}
        assert admin.delete_group_offsets(active, [tps[3]]) == {tps[3]: GroupSubscribedToTopicError}
        assert sorted(tp.partition for tp in admin.list_group_offsets({stopped: None})[stopped]) == [0, 1, 2]

        # remove a member (LeaveGroup by member id): the group rebalances without it
        gone = members[0].member_id
        assert admin.remove_group_members(active, [MemberToRemove(member_id=gone)]) == {gone: NoError}
        wait_until(lambda: gone not in {mb["member_id"] for mb in admin.describe_groups([active])[active]["members"]},
                   "the removed member to be gone")

        # delete groups: not while it has members; a deleted group is not found and gone from the list
        never = unique("kp-never")
        assert admin.delete_groups([active, stopped, never]) == {
            active: "NonEmptyGroupError", stopped: "OK", never: "GroupIdNotFoundError"}
        assert stopped not in {g["group_id"] for g in admin.list_groups()}
        d = admin.describe_groups([stopped])[stopped]  # DescribeGroups v6 (KIP-1043): not found
        assert (d["error"], d["group_state"], d["members"]) == (
            f"[Error 69] GroupIdNotFoundError: Group {stopped} not found.", "Dead", [])
        assert admin.list_group_offsets({stopped: None})[stopped] == {}
        for mb in members:
            mb.close()
        assert admin.describe_groups([active])[active]["group_state"] == "Empty"
        assert admin.delete_groups([active]) == {active: "OK"}
    finally:
        for mb in members:
            mb.kill()
        admin.close()
