"""Elections: Raft §5.2 and §5.4.1, KRaft's Vote / BeginQuorumEpoch (KIP-595), pre-vote (KIP-996)."""

import random

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.raft import control, wire
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.log import MemoryLog, OffsetAndEpoch
from kafka_compat.raft.node import RaftNode
from kafka_compat.raft.quorum_state import ElectionState, MemoryQuorumStateStore
from kafka_compat.raft.snapshots import MemorySnapshotStore
from kafka_compat.records.batch import read_header
from kafka_compat.records.record import iter_records

from .cluster import Cluster, log_with, requests, take, vote, vote_partition


def voter(node_id=1, voters=(1, 2, 3), election=None, log=None, now=0):
    config = QuorumConfig(voters=frozenset(voters), cluster_id="test-cluster")
    return RaftNode(node_id, config, log or MemoryLog(), MemorySnapshotStore(), election, now, random.Random(0))


def answer(node, request, source, corr=7):
    node.step(source, request, corr, node.now)
    rd = take(node)
    (out,) = [o for o in rd.messages if o.correlation_id == corr and not o.is_request]
    return rd, out


def test_a_lone_voter_elects_itself_at_once():
    node = voter(voters=(1,))
    take(node)
    assert node.is_leader and node.epoch == 1


def test_a_candidate_needs_a_majority_of_votes():
    c = Cluster(voters=(1, 2, 3, 4, 5))
    c.isolate(4)
    c.isolate(5)
    c.isolate(3)
    c[1].state.election_deadline = 0
    c.run(5000)
    assert not c[1].is_leader  # one vote besides its own: 2 of 5
    c.heal()
    c.isolate(4)
    c.isolate(5)
    c.run_until(lambda: c.leader() is not None)  # now 3 of 5
    assert c.leader().id in (1, 2, 3)


def test_a_vote_is_granted_once_per_epoch():
    node = voter()
    _, first = answer(node, vote(candidate=2, epoch=1), source=2)
    _, second = answer(node, vote(candidate=3, epoch=1), source=3)
    _, again = answer(node, vote(candidate=2, epoch=1), source=2)
    assert vote_partition(first).vote_granted
    assert not vote_partition(second).vote_granted
    assert vote_partition(again).vote_granted  # the same candidate asking twice gets the same answer


def test_a_vote_is_persisted_in_the_ready_that_sends_it():
    node = voter()
    rd, out = answer(node, vote(candidate=2, epoch=4), source=2)
    assert vote_partition(out).vote_granted
    assert rd.quorum_state == ElectionState(epoch=4, leader_id=-1, voted_id=2)


def test_a_vote_survives_a_restart():
    store = MemoryQuorumStateStore()
    node = voter()
    node.step(2, vote(candidate=2, epoch=1), 1, 0)
    take(node, store)
    restarted = voter(election=store.read())
    _, out = answer(restarted, vote(candidate=3, epoch=1), source=3)
    assert not vote_partition(out).vote_granted


def test_a_voter_refuses_a_candidate_whose_last_epoch_is_older():
    node = voter(log=log_with(1, 1, 2))
    _, out = answer(node, vote(candidate=2, epoch=3, last_offset=10, last_epoch=1), source=2)
    assert not vote_partition(out).vote_granted


def test_a_voter_refuses_a_candidate_with_a_shorter_log_in_the_same_epoch():
    node = voter(log=log_with(1, 1, 2))
    _, short = answer(node, vote(candidate=2, epoch=3, last_offset=2, last_epoch=2), source=2)
    _, equal = answer(node, vote(candidate=3, epoch=3, last_offset=3, last_epoch=2), source=3)
    assert not vote_partition(short).vote_granted
    assert vote_partition(equal).vote_granted


def test_a_vote_for_an_older_epoch_is_fenced():
    node = voter(election=ElectionState(5))
    _, out = answer(node, vote(candidate=2, epoch=4), source=2)
    p = vote_partition(out)
    assert not p.vote_granted and p.error_code == ErrorCode.FENCED_LEADER_EPOCH and p.leader_epoch == 5


def test_pre_vote_does_not_bump_epochs():
    node = voter(election=ElectionState(3))
    rd, out = answer(node, vote(candidate=2, epoch=4, pre_vote=True), source=2)
    assert vote_partition(out).vote_granted
    assert node.epoch == 3 and rd.quorum_state is None
    # ...and the node asking for pre-votes does not bump its own either.
    asking = voter(election=ElectionState(3), now=0)
    asking.tick(asking.state.election_deadline)
    rd = take(asking)
    assert asking.role == "prospective" and asking.epoch == 3 and rd.quorum_state is None
    (pre, *_) = requests(rd, m.VoteRequest)
    p = wire.partition_of(pre.message)
    assert wire.is_pre_vote(p) and p.replica_epoch == 4


def test_a_pre_vote_from_a_newer_epoch_brings_the_receiver_to_that_epoch_only():
    # The asker is in epoch 4 (a candidacy there failed); it asks about 5. A leader of epoch 3
    # can never be followed by it again, so it moves to 4 (Raft's newer-term rule), never to 5.
    c = Cluster()
    leader = c.elect(1)
    assert leader.epoch == 1
    rd, out = answer(leader, vote(candidate=3, epoch=3, last_offset=0, last_epoch=0, pre_vote=True), source=3)
    assert not vote_partition(out).vote_granted  # its log is behind
    assert leader.role == "unattached" and leader.epoch == 2 and rd.quorum_state == ElectionState(2)


def test_a_pre_vote_survives_the_codec():
    request = vote(candidate=2, epoch=4, pre_vote=True)
    decoded = m.VoteRequest.decode(request.encode(1), 1)
    assert wire.is_pre_vote(wire.partition_of(decoded))
    assert not wire.is_pre_vote(wire.partition_of(m.VoteRequest.decode(vote(2, 4).encode(1), 1)))


def test_a_follower_with_a_live_leader_refuses_pre_votes():
    c = Cluster()
    c.elect(1)
    c.run(500)
    _, out = answer(c[2], vote(candidate=3, epoch=2, last_offset=100, last_epoch=1, pre_vote=True), source=3)
    assert not vote_partition(out).vote_granted
    assert vote_partition(out).leader_id == 1  # and tells the asker who leads


def test_a_partitioned_voter_does_not_disrupt_the_quorum_when_it_rejoins():
    c = Cluster()
    leader = c.elect(1)
    epoch = leader.epoch
    c.isolate(3)
    c.run(10_000)
    assert c[3].epoch == epoch and c[3].role in ("prospective", "follower")  # it never bumped its epoch
    c.heal()
    c.run(5000)
    assert leader.is_leader and leader.epoch == epoch
    assert c[3].role == "follower" and c[3].leader_id == 1


def test_a_higher_epoch_in_a_vote_makes_the_leader_step_down():
    c = Cluster()
    leader = c.elect(1)
    leader.step(2, vote(candidate=2, epoch=leader.epoch + 1, last_offset=100, last_epoch=leader.epoch), 1, c.now)
    assert not leader.is_leader and leader.epoch == 2 and leader.role == "unattached"


def test_election_safety_one_leader_per_epoch_under_split_votes():
    for seed in range(20):
        c = Cluster(voters=(1, 2, 3, 4, 5), seed=seed)
        for i in (1, 2, 3):  # three candidates at the same instant
            c[i].state.election_deadline = 0
        leaders = {}
        for _ in range(300):
            c.tick(10)
            c.deliver(lambda e, c=c: c.rng.random() < 0.7)  # the rest wait: reordering
            for mb in c.members.values():
                if mb.node.is_leader:
                    assert leaders.setdefault(mb.node.epoch, mb.id) == mb.id
        assert leaders


def test_observers_never_vote_nor_stand():
    c = Cluster(voters=(1, 2, 3), observers=(10,))
    _, out = answer(c[10], vote(candidate=2, epoch=1), source=2)
    assert not vote_partition(out).vote_granted
    c.isolate(1)
    c.isolate(2)
    c.isolate(3)
    c.run(20_000)
    assert c[10].role == "unattached" and c[10].epoch == 0
    assert not requests(sum((r.messages for r in c.members[10].readies), []), m.VoteRequest)


def test_a_new_leader_appends_a_leader_change_message():
    c = Cluster()
    leader = c.elect(2)
    (batch,) = list(leader.log.batches(0, leader.log.end_offset))
    header = read_header(batch.data)
    (record,) = iter_records(batch.data, 0, header)
    message = control.parse(record)
    assert header.is_control and batch.epoch == leader.epoch
    assert isinstance(message, m.LeaderChangeMessage) and message.leader_id == 2
    assert [v.voter_id for v in message.voters] == [1, 2, 3]
    assert 2 in [v.voter_id for v in message.granting_voters]


def test_followers_learn_the_leader_from_begin_quorum_epoch():
    c = Cluster()
    c.elect(3)
    begins = [rd for mb in (c.members[1], c.members[2]) for rd in mb.readies if rd.leader == (3, 1)]
    assert begins and c[1].leader_id == 3 and c[2].leader_id == 3


def test_a_leader_restarts_resigned():
    store = MemoryQuorumStateStore()
    store.write(ElectionState(epoch=4, leader_id=1, voted_id=1))
    node = voter(election=store.read())
    rd = take(node)
    assert node.role == "resigned" and node.epoch == 4
    assert {o.dest for o in requests(rd, m.EndQuorumEpochRequest)} == {2, 3}


def test_a_voter_that_lost_touch_becomes_prospective_then_candidate():
    c = Cluster()
    c.elect(1)
    c.stop(1)
    c.run_until(lambda: c.leader() is not None and c.leader().id != 1)
    assert c.leader().epoch >= 2


def test_last_offset_and_epoch_compare_epoch_first():
    assert OffsetAndEpoch(1, 3).up_to_date_with(OffsetAndEpoch(100, 2))
    assert not OffsetAndEpoch(99, 2).up_to_date_with(OffsetAndEpoch(100, 2))
