"""FindCoordinator, ListGroups, DescribeGroups, DeleteGroups."""

import pytest

from kafka_compat.coordinator.classic import ClassicState
from kafka_compat.coordinator.responses import GROUP_AUTHORIZED_OPERATIONS
from kafka_compat.protocol import messages as m
from tests.coordinator.helpers import E, Harness, commit_req, fetch_req, fetched, leave_req
from tests.coordinator.test_classic import join_dynamic, stable
from tests.coordinator.test_consumer_protocol import harness, hb

G = "group"


# -- FindCoordinator --------------------------------------------------------------------------------

def locate_all(partition):
    return (1, "broker1", 9092)


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_find_coordinator_single_key(version):
    h = Harness()
    r = h.c.find_coordinator(m.FindCoordinatorRequest(key="g", key_type=0), version, locate_all)
    assert (r.error_code, r.node_id, r.host, r.port) == (E.NONE, 1, "broker1", 9092)
    r.encode(version)
    r = h.c.find_coordinator(m.FindCoordinatorRequest(key="g", key_type=0), version, lambda p: None)
    assert (r.error_code, r.node_id, r.host, r.port) == (E.COORDINATOR_NOT_AVAILABLE, -1, "", -1)
    r.encode(version)


@pytest.mark.parametrize("version", [4, 5, 6])
def test_find_coordinator_batched(version):
    h = Harness()
    seen = []

    def locate(p):
        seen.append(p)
        return None if p == h.c.partition_for("b") else (1, "h", 9)

    r = h.c.find_coordinator(m.FindCoordinatorRequest(key_type=0, coordinator_keys=["a", "b"]), version, locate)
    assert [(c.key, c.error_code, c.node_id) for c in r.coordinators] == [
        ("a", E.NONE, 1), ("b", E.COORDINATOR_NOT_AVAILABLE, -1)]
    assert seen == [h.c.partition_for("a"), h.c.partition_for("b")]
    r.encode(version)


def test_find_coordinator_transaction_keys_go_to_the_transaction_coordinator():
    h = Harness()
    asked = []

    def locate_transaction(txn_id):
        asked.append(txn_id)
        return (2, "broker2", 9093) if txn_id == "t1" else None

    r = h.c.find_coordinator(m.FindCoordinatorRequest(key_type=1, coordinator_keys=["t1", "t2"]), 4, locate_all,
                             locate_transaction)
    assert [(c.key, c.error_code, c.node_id) for c in r.coordinators] == [
        ("t1", E.NONE, 2), ("t2", E.COORDINATOR_NOT_AVAILABLE, -1)]
    assert asked == ["t1", "t2"]


def test_find_coordinator_transaction_and_bad_key_types():
    h = Harness()
    r = h.c.find_coordinator(m.FindCoordinatorRequest(key="txn", key_type=1), 3, locate_all)
    assert r.error_code == E.COORDINATOR_NOT_AVAILABLE  # no transaction coordinator to ask
    r = h.c.find_coordinator(m.FindCoordinatorRequest(key_type=1, coordinator_keys=["t1"]), 4, locate_all)
    assert r.coordinators[0].error_code == E.COORDINATOR_NOT_AVAILABLE
    r = h.c.find_coordinator(m.FindCoordinatorRequest(key="x", key_type=7), 2, locate_all)
    assert r.error_code == E.INVALID_REQUEST
    r = h.c.find_coordinator(m.FindCoordinatorRequest(key_type=7, coordinator_keys=["x"]), 4, locate_all)
    assert r.coordinators[0].error_code == E.INVALID_REQUEST


# -- ListGroups -------------------------------------------------------------------------------------

def listed(r):
    return {(g.group_id, g.protocol_type, g.group_state, g.group_type) for g in r.groups}


def test_list_groups_with_filters():
    h = Harness()
    stable(h, 1, gid="stable")
    join_dynamic(h, gid="rebalancing")
    h.send("offset_commit", commit_req("simple", {("t", 0): 1}), 8)
    everything = {("stable", "consumer", "Stable", "classic"),
                  ("rebalancing", "consumer", "PreparingRebalance", "classic"),
                  ("simple", "", "Empty", "classic")}
    assert listed(h.send("list_groups", m.ListGroupsRequest(), 5)) == everything
    r = h.send("list_groups", m.ListGroupsRequest(states_filter=["stable", "EMPTY"]), 4)
    assert {g.group_id for g in r.groups} == {"stable", "simple"}
    r = h.send("list_groups", m.ListGroupsRequest(types_filter=["Consumer"]), 5)
    assert r.groups == []
    r = h.send("list_groups", m.ListGroupsRequest(types_filter=["classic"], states_filter=["empty"]), 5)
    assert {g.group_id for g in r.groups} == {"simple"}
    # Filters a version does not carry are ignored.
    assert len(h.send("list_groups", m.ListGroupsRequest(states_filter=["stable"]), 3).groups) == 3
    for v in range(6):
        h.send("list_groups", m.ListGroupsRequest(), v)


def test_list_groups_while_loading():
    h = Harness()
    h.hold_loads = True
    h.c.begin_load(3, h.now)
    assert h.send("list_groups", m.ListGroupsRequest(), 2).error_code == E.COORDINATOR_LOAD_IN_PROGRESS


# -- DescribeGroups ---------------------------------------------------------------------------------

def test_describe_groups():
    h = Harness()
    ids, leader, gen = stable(h, 2, instances=["i1", "i2"])
    join_dynamic(h, gid="rebalancing")
    req = m.DescribeGroupsRequest(groups=[G, "rebalancing", "unknown"], include_authorized_operations=True)
    r = h.send("describe_groups", req, 5)
    stable_g, rebalancing, unknown = r.groups
    assert (stable_g.error_code, stable_g.group_state, stable_g.protocol_type, stable_g.protocol_data) == \
        (E.NONE, "Stable", "consumer", "range")
    assert [(x.member_id, x.group_instance_id, x.member_metadata, x.member_assignment) for x in stable_g.members] == [
        (mid, iid, b"r", f"a-{mid}".encode()) for mid, iid in zip(ids, ["i1", "i2"])]
    assert stable_g.members[0].client_host == "/127.0.0.1" and stable_g.members[0].client_id == "client"
    assert stable_g.authorized_operations == GROUP_AUTHORIZED_OPERATIONS == 3400
    assert rebalancing.group_state == "PreparingRebalance" and rebalancing.protocol_data == ""
    assert all(x.member_metadata == b"" and x.member_assignment == b"" for x in rebalancing.members)
    assert (unknown.error_code, unknown.group_state, unknown.members) == (E.NONE, "Dead", [])
    r = h.send("describe_groups", m.DescribeGroupsRequest(groups=[G]), 5)
    assert r.groups[0].authorized_operations == -(1 << 31)
    for v in range(7):
        h.send("describe_groups", m.DescribeGroupsRequest(groups=[G, "unknown"], include_authorized_operations=True), v)


def test_describe_groups_v6_says_a_group_that_is_not_classic_is_not_found():
    h = harness()
    assert h.send("consumer_group_heartbeat", hb(group="modern"), 0).error_code == E.NONE
    r = h.send("describe_groups", m.DescribeGroupsRequest(groups=["unknown", "modern"]), 6)
    assert [(g.error_code, g.group_state, g.error_message) for g in r.groups] == [
        (E.GROUP_ID_NOT_FOUND, "Dead", "Group unknown not found."),
        (E.GROUP_ID_NOT_FOUND, "Dead", "Group modern is not a classic group.")]
    r = h.send("describe_groups", m.DescribeGroupsRequest(groups=["unknown", "modern"]), 5)
    assert [(g.error_code, g.group_state) for g in r.groups] == [(E.NONE, "Dead"), (E.NONE, "Dead")]


def test_describe_groups_not_coordinator():
    h = Harness(partitions=[])
    r = h.send("describe_groups", m.DescribeGroupsRequest(groups=[G]), 5)
    assert r.groups[0].error_code == E.NOT_COORDINATOR


# -- DeleteGroups -----------------------------------------------------------------------------------

def deleted(r):
    return {x.group_id: x.error_code for x in r.results}


def test_delete_groups():
    h = Harness()
    stable(h, 1, gid="busy")
    h.send("offset_commit", commit_req("idle", {("t", 0): 1, ("u", 3): 2}), 8)
    r = h.send("delete_groups", m.DeleteGroupsRequest(groups_names=["busy", "idle", "nope", "idle"]), 2)
    assert deleted(r) == {"busy": E.NON_EMPTY_GROUP, "idle": E.NONE, "nope": E.GROUP_ID_NOT_FOUND}
    assert h.group("idle") is None and h.group("busy") is not None
    assert fetched(h.send("offset_fetch", fetch_req("idle", {"t": [0]}), 7)) == {("t", 0): (-1, "", E.NONE)}
    tail = [x for x in h.records() if x.group_id == "idle"][-3:]
    assert [(x.type, x.value) for x in tail] == [(1, None), (1, None), (2, None)]
    for v in range(3):
        h.send("delete_groups", m.DeleteGroupsRequest(groups_names=["x"]), v)


def test_delete_groups_waits_for_the_tombstones():
    h = Harness()
    h.send("offset_commit", commit_req("idle", {("t", 0): 1}), 8)
    h.auto_append = False
    token, r = h.call("delete_groups", m.DeleteGroupsRequest(groups_names=["idle", "nope"]), 2)
    assert r is None
    h.release()
    assert deleted(h.result(token)) == {"idle": E.NONE, "nope": E.GROUP_ID_NOT_FOUND}


def test_delete_groups_append_failure_and_not_coordinator():
    h = Harness(partitions=[p for p in range(50) if p != 24])  # partition_for("remote") == 24 != "idle"'s 4
    h.send("offset_commit", commit_req("idle", {("t", 0): 1}), 8)
    h.auto_append = False
    token, _ = h.call("delete_groups", m.DeleteGroupsRequest(groups_names=["idle", "remote"]), 2)
    h.auto_append = True
    h.release(E.KAFKA_STORAGE_ERROR)
    assert deleted(h.result(token)) == {"idle": E.NOT_COORDINATOR, "remote": E.NOT_COORDINATOR}
    assert h.group("idle") is not None  # reloaded from the log: not deleted


def test_emptied_group_can_be_deleted():
    h = Harness()
    (a,), leader, gen = stable(h, 1)
    h.send("leave_group", leave_req(G, (a, None)), 3)
    assert h.group(G).state is ClassicState.EMPTY
    assert deleted(h.send("delete_groups", m.DeleteGroupsRequest(groups_names=[G]), 2)) == {G: E.NONE}
    assert h.group(G) is None
    # And the id is free for a new group.
    t, mid, r = join_dynamic(h)
    assert h.group(G).state is ClassicState.PREPARING_REBALANCE
