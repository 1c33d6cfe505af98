"""ElectLeaders, the preferred-leader rebalance and unclean elections of offline partitions: one rule per test."""

import pytest

from kafka_compat.metadata.elections import PREFERRED, UNCLEAN, imbalanced_partitions
from kafka_compat.metadata.image import RECOVERING
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode

from .world import SESSION, World, wire

E = m.ElectLeadersRequest


def elect(w, kind, partitions, version=2):
    """ElectLeaders for {topic: [partitions]} (None: every partition); {(topic, p): (code, message)}."""
    topics = None if partitions is None else [E.TopicPartitions(topic=t, partitions=ps) for t, ps in partitions.items()]
    req = E(election_type=kind, topic_partitions=topics) if version >= 1 else E(topic_partitions=topics)
    resp = wire(w.decide(w.ctl.elect_leaders(w.image, wire(req, version), version)), version)
    return {(t.topic, p.partition_id): (p.error_code, p.error_message)
            for t in resp.replica_election_results for p in t.partition_result}


def failed_over():
    """t-0 on [1, 2, 3], now led by 2 after 1 failed and came back into the ISR."""
    w = World()
    w.live(1, 2, 3)
    w.topic("t", [[1, 2, 3]])
    w.expire(1)
    w.heartbeat(1, now=SESSION + 1)
    w.alter_partition("t", isr=[2, 3, 1])
    assert w.partition("t").leader == 2
    return w


@pytest.mark.parametrize("version", [0, 1, 2])
def test_a_preferred_election_gives_the_leadership_back_to_the_first_replica(version):
    w = failed_over()
    epoch = w.partition("t").leader_epoch
    assert elect(w, PREFERRED, {"t": [0]}, version) == {("t", 0): (ErrorCode.NONE, None)}
    p = w.partition("t")
    assert (p.leader, p.leader_epoch, p.isr) == (1, epoch + 1, (2, 3, 1))


def test_a_preferred_leader_that_already_leads_needs_no_election():
    w = failed_over()
    elect(w, PREFERRED, {"t": [0]})
    assert elect(w, PREFERRED, {"t": [0]}) == {
        ("t", 0): (ErrorCode.ELECTION_NOT_NEEDED, "Leader election not needed for topic partition.")}


def test_a_preferred_leader_outside_the_isr_or_fenced_is_not_available():
    w = World()
    w.live(1, 2, 3)
    w.topic("t", [[1, 2, 3]])
    w.expire(1)
    assert elect(w, PREFERRED, {"t": [0]}) == {
        ("t", 0): (ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE, "The preferred leader was not available.")}
    w.heartbeat(1, now=SESSION + 1)  # back, but not in the ISR yet
    assert elect(w, PREFERRED, {"t": [0]})[("t", 0)][0] == ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
    assert w.partition("t").leader == 2


def test_unknown_topics_and_partitions_are_named_in_the_answer():
    w = failed_over()
    assert elect(w, PREFERRED, {"t": [7], "nope": [0]}) == {
        ("t", 7): (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "No such partition as t-7"),
        ("nope", 0): (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "No such topic as nope")}


def test_an_election_for_every_partition_answers_only_for_those_that_needed_one():
    w = failed_over()
    w.topic("fine", [[2, 1], [3, 1]])
    assert elect(w, PREFERRED, None) == {("t", 0): (ErrorCode.NONE, None)}
    assert w.partition("t").leader == 1


def test_an_unclean_election_leads_an_offline_partition_from_outside_its_isr():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1, 2]])
    w.alter_partition("t", isr=[1])
    w.expire(1)
    assert w.partition("t").leader == -1
    assert elect(w, UNCLEAN, {"t": [0]}) == {("t", 0): (ErrorCode.NONE, None)}
    p = w.partition("t")
    assert (p.leader, p.isr, p.leader_recovery_state) == (2, (2,), RECOVERING)
    assert elect(w, UNCLEAN, {"t": [0]})[("t", 0)][0] == ErrorCode.ELECTION_NOT_NEEDED


def test_an_unclean_election_without_any_live_replica_has_no_eligible_leader():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1]])
    w.expire(1)
    assert elect(w, UNCLEAN, {"t": [0]}) == {
        ("t", 0): (ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE, "Eligible topic partition leaders are not available.")}


def test_an_unknown_election_type_is_invalid_request():
    w = failed_over()
    records, resp = w.ctl.elect_leaders(w.image, E(election_type=7, topic_partitions=[
        E.TopicPartitions(topic="t", partitions=[0])]), 2)
    assert records == [] and resp.error_code == ErrorCode.INVALID_REQUEST
    result = resp.replica_election_results[0].partition_result[0]
    assert (result.error_code, result.error_message) == (ErrorCode.INVALID_REQUEST, "Unknown election type 7")


def test_a_partition_named_twice_is_elected_once():
    w = failed_over()
    records, resp = w.ctl.elect_leaders(w.image, E(election_type=PREFERRED, topic_partitions=[
        E.TopicPartitions(topic="t", partitions=[0, 0])]), 2)
    assert len(records) == 1
    assert [r.error_code for r in resp.replica_election_results[0].partition_result] == [
        ErrorCode.NONE, ErrorCode.ELECTION_NOT_NEEDED]


def rebalance_world():
    """t-0..3 prefer broker 1, t-4..7 broker 2, and each is led by its preferred replica."""
    w = World()
    w.live(1, 2)
    w.topic("t", [[1, 2]] * 4 + [[2, 1]] * 4)
    return w


def lose_leadership(w, *partitions):
    for p in partitions:
        w.commit([m.PartitionChangeRecord(topic_id=w.image.topics["t"].topic_id, partition_id=p, leader=2)])


def test_no_leader_moves_back_while_a_brokers_imbalance_is_within_the_percentage():
    w = rebalance_world()
    lose_leadership(w, 0)  # 1 of 4: 25%
    assert imbalanced_partitions(w.image, 25) == [] and w.ctl.rebalance_leaders(w.image, 25) == []


def test_leaders_move_back_once_a_brokers_imbalance_exceeds_the_percentage():
    w = rebalance_world()
    lose_leadership(w, 0, 1)  # 2 of 4: 50%
    w.commit(w.ctl.rebalance_leaders(w.image, 25))
    assert [w.partition("t", i).leader for i in range(8)] == [1] * 4 + [2] * 4


def test_a_preferred_leader_that_cannot_lead_is_not_moved_back_to():
    w = rebalance_world()
    lose_leadership(w, 0, 1)
    w.alter_partition("t", 0, isr=[2])
    assert [p.partition for _, p in imbalanced_partitions(w.image, 10)] == [1]
    w.expire(1)
    assert imbalanced_partitions(w.image, 10) == []


def test_a_partition_being_reassigned_is_left_to_its_reassignment():
    w = rebalance_world()
    w.live(3)
    lose_leadership(w, 0)
    R = m.AlterPartitionReassignmentsRequest
    w.decide(w.ctl.alter_partition_reassignments(w.image, R(topics=[R.ReassignableTopic(name="t", partitions=[
        R.ReassignablePartition(partition_index=0, replicas=[1, 2, 3])])])))
    assert w.partition("t", 0).reassigning and imbalanced_partitions(w.image, 0) == []


def test_offline_partitions_get_an_unclean_leader_once_their_topic_allows_it():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1, 2]])
    w.alter_partition("t", isr=[1])
    w.expire(1)
    assert w.ctl.elect_unclean_leaders(w.image) == []
    w.config("t", "unclean.leader.election.enable", "true")
    w.commit(w.ctl.elect_unclean_leaders(w.image))
    assert (w.partition("t").leader, w.partition("t").isr) == (2, (2,))
