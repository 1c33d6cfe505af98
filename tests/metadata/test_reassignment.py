"""Partition reassignments: recorded, caught up through AlterPartition, completed or cancelled: one rule per test."""

import pytest

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode

from .world import World, wire

A = m.AlterPartitionReassignmentsRequest
L = m.ListPartitionReassignmentsRequest


def cluster(unclean=False):
    """Brokers 1-6 live, t-0 on [1, 2, 3] led by 1."""
    w = World(unclean=unclean)
    w.live(1, 2, 3, 4, 5, 6)
    w.topic("t", [[1, 2, 3]])
    return w


def reassign(w, targets, name="t"):
    """{partition: replicas or None (cancel)} -> {partition: (code, message)}."""
    req = A(topics=[A.ReassignableTopic(name=name, partitions=[A.ReassignablePartition(partition_index=p, replicas=r)
                                                               for p, r in targets.items()])])
    resp = wire(w.decide(w.ctl.alter_partition_reassignments(w.image, wire(req, 0))), 0)
    assert resp.error_code == ErrorCode.NONE and resp.error_message is None
    return {p.partition_index: (p.error_code, p.error_message) for p in resp.responses[0].partitions}


def listed(w, topics=None):
    req = L(topics=topics)
    resp = wire(w.ctl.list_partition_reassignments(w.image, wire(req, 0))[1], 0)
    return {(t.name, p.partition_index): (p.replicas, p.adding_replicas, p.removing_replicas)
            for t in resp.topics for p in t.partitions}


def test_a_reassignment_first_adds_the_target_replicas_beside_the_current_ones():
    w = cluster()
    before = w.partition("t")
    assert reassign(w, {0: [4, 5, 6]}) == {0: (ErrorCode.NONE, None)}
    p = w.partition("t")
    assert (p.replicas, p.adding_replicas, p.removing_replicas) == ((4, 5, 6, 1, 2, 3), (4, 5, 6), (1, 2, 3))
    assert (p.isr, p.leader, p.leader_epoch) == ((1, 2, 3), 1, before.leader_epoch)
    assert listed(w) == {("t", 0): ([4, 5, 6, 1, 2, 3], [4, 5, 6], [1, 2, 3])}


def test_the_reassignment_completes_when_the_leader_brings_the_last_target_replica_into_the_isr():
    w = cluster()
    reassign(w, {0: [4, 5, 6]})
    w.alter_partition("t", isr=[1, 2, 3, 4, 5])
    assert w.partition("t").reassigning
    epoch = w.partition("t").leader_epoch
    resp = w.alter_partition("t", isr=[1, 2, 3, 4, 5, 6])
    assert resp.topics[0].partitions[0].error_code == ErrorCode.NEW_LEADER_ELECTED  # the leader itself was removed
    p = w.partition("t")
    assert (p.replicas, p.isr, p.leader, p.leader_epoch) == ((4, 5, 6), (4, 5, 6), 4, epoch + 1)
    assert not p.reassigning and listed(w) == {}


def test_a_leader_that_stays_gets_a_new_leader_epoch_when_replicas_leave():
    w = cluster()
    reassign(w, {0: [1, 2, 4]})
    epoch = w.partition("t").leader_epoch
    a = w.alter_partition("t", isr=[1, 2, 3, 4]).topics[0].partitions[0]
    p = w.partition("t")
    assert (p.replicas, p.isr, p.leader, p.leader_epoch) == ((1, 2, 4), (1, 2, 4), 1, epoch + 1)
    assert (a.error_code, a.isr, a.leader_epoch) == (ErrorCode.NONE, [1, 2, 4], epoch + 1)


def test_a_reordering_completes_at_once_and_keeps_the_leader():
    w = cluster()
    reassign(w, {0: [3, 2, 1]})
    p = w.partition("t")
    assert (p.replicas, p.leader, p.leader_epoch, p.reassigning) == ((3, 2, 1), 1, 0, False)


def test_a_removal_completes_at_once_and_moves_the_leader_if_it_goes():
    w = cluster()
    reassign(w, {0: [2, 3]})
    p = w.partition("t")
    assert (p.replicas, p.isr, p.leader, p.leader_epoch, p.reassigning) == ((2, 3), (2, 3), 2, 1, False)


def test_cancelling_puts_the_original_replicas_back():
    w = cluster()
    reassign(w, {0: [1, 4, 5]})
    w.alter_partition("t", isr=[1, 2, 3, 4])
    assert reassign(w, {0: None}) == {0: (ErrorCode.NONE, None)}
    p = w.partition("t")
    assert (p.replicas, p.isr, p.adding_replicas, p.removing_replicas, p.leader) == ((1, 2, 3), (1, 2, 3), (), (), 1)


def test_cancelling_without_a_reassignment_in_progress_is_refused():
    w = cluster()
    assert reassign(w, {0: None}) == {0: (ErrorCode.NO_REASSIGNMENT_IN_PROGRESS, None)}


@pytest.mark.parametrize("unclean, result", [
    (False, (ErrorCode.INVALID_REPLICA_ASSIGNMENT,
             "Unable to revert partition assignment for t:0 because it would require an unclean leader election.")),
    (True, (ErrorCode.NONE, None)),
])
def test_cancelling_when_only_new_replicas_are_in_sync_takes_an_unclean_election(unclean, result):
    w = cluster(unclean)
    reassign(w, {0: [4, 5]})
    w.alter_partition("t", isr=[1, 4])  # 2 and 3 fell behind, 5 has not caught up
    w.expire(1)
    assert (w.partition("t").leader, w.partition("t").isr) == (4, (4,))
    assert reassign(w, {0: None}) == {0: result}
    if unclean:
        p = w.partition("t")
        assert (p.replicas, p.isr, p.leader) == ((1, 2, 3), (2,), 2)


@pytest.mark.parametrize("replicas, message", [
    ([], "The manual partition assignment includes an empty replica list."),
    ([1, 9], "The manual partition assignment includes broker 9, but no such broker is registered."),
    ([4, 4], "The manual partition assignment includes the broker 4 more than once."),
])
def test_an_invalid_target_is_invalid_replica_assignment(replicas, message):
    w = cluster()
    assert reassign(w, {0: replicas}) == {0: (ErrorCode.INVALID_REPLICA_ASSIGNMENT, message)}
    assert not w.partition("t").reassigning


def test_unknown_topics_and_partitions_are_named():
    w = cluster()
    assert reassign(w, {3: [1]}) == {3: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "Unable to find partition t:3.")}
    assert reassign(w, {0: [1]}, name="nope") == {
        0: (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "Unable to find a topic named nope.")}


def test_listing_given_topics_shows_only_partitions_in_progress_and_skips_unknown_topics():
    w = cluster()
    w.topic("u", [[1, 2], [2, 3]])
    reassign(w, {1: [4, 5]}, name="u")
    topics = [L.ListPartitionReassignmentsTopics(name=n, partition_indexes=[0, 1]) for n in ("t", "u", "x")]
    assert listed(w, topics) == {("u", 1): ([4, 5, 2, 3], [4, 5], [2, 3])}
