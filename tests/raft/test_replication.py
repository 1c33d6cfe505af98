"""Replication by Fetch (KIP-595): high watermark, divergence, check quorum, resignation, observers."""

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.raft import wire
from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.quorum_state import ElectionState

from .cluster import Cluster, log_with, requests, roundtrip


def fetch(replica, epoch, offset, last_epoch, max_wait_ms=500):
    return wire.fetch_request("test-cluster", replica, epoch, OffsetAndEpoch(offset, last_epoch), 0, max_wait_ms,
                              1 << 20)


def answers(c, node_id, corr):
    return [o.message for rd in c.members[node_id].readies for o in rd.messages
            if o.correlation_id == corr and not o.is_request]


def test_high_watermark_advances_once_a_majority_has_the_entry():
    c = Cluster(voters=(1, 2, 3))
    leader = c.elect(1)
    c.run(100)  # both followers caught up, their next fetches parked on the leader
    c.isolate(3)
    offset = c.propose("a=1")
    assert leader.high_watermark <= offset  # only the leader has it
    c.deliver()  # node 2 receives the batch...
    assert leader.high_watermark <= offset
    c.deliver()  # ...and its next fetch says it has it: 2 of 3
    assert leader.high_watermark > offset
    c.run(100)
    assert c[2].high_watermark > offset and c.members[2].sm.data == {"a": "1"}
    assert c[3].high_watermark <= offset


def test_high_watermark_waits_for_an_entry_of_the_leaders_epoch():
    # Three logs with the same two batches of epoch 1, never known committed (Raft §5.4.2).
    logs = {i: log_with(1, 1) for i in (1, 2, 3)}
    c = Cluster(voters=(1, 2, 3), logs=logs, elections={i: ElectionState(1) for i in (1, 2, 3)})
    leader = c.elect(1, only_elections=True)
    assert leader.log.end_offset == 3  # its LeaderChangeMessage sits at offset 2
    # Node 2 fetches at its end offset 2: a majority has offsets 0-1, but they are from epoch 1.
    leader.step(2, roundtrip(fetch(2, leader.epoch, 2, 1)), 900, c.now)
    c.flush(1)
    assert leader.high_watermark == 0
    leader.step(2, roundtrip(fetch(2, leader.epoch, 3, leader.epoch)), 901, c.now)
    c.flush(1)
    assert leader.high_watermark == 3


def test_a_follower_truncates_where_its_log_diverges():
    logs = {1: log_with(1, 1, 2), 2: log_with(1, 1, 2), 3: log_with(1, 1, 1, 1)}
    c = Cluster(voters=(1, 2, 3), logs=logs, elections={i: ElectionState(2) for i in (1, 2, 3)})
    c.elect(1)
    c.run(2000)
    ends = {i: [(b.base_offset, b.epoch, b.data) for b in c.members[i].log.batches(0, 100)] for i in (1, 2, 3)}
    assert ends[1] == ends[2] == ends[3]
    assert [e for _, e, _ in ends[3]] == [1, 1, 2, 3]


def test_the_leader_answers_a_diverging_fetch_with_the_end_of_the_common_epoch():
    logs = {1: log_with(1, 1, 2), 2: log_with(1, 1, 2), 3: log_with(1)}
    c = Cluster(voters=(1, 2, 3), logs=logs, elections={i: ElectionState(2) for i in (1, 2, 3)})
    leader = c.elect(1)
    leader.step(3, roundtrip(fetch(3, leader.epoch, offset=4, last_epoch=1)), 900, c.now)
    c.flush(1)
    (response,) = answers(c, 1, 900)
    p = wire.partition_of(response)
    assert (p.diverging_epoch.epoch, p.diverging_epoch.end_offset) == (1, 2)
    assert not p.records


def test_a_fetch_from_an_older_epoch_is_fenced_and_names_the_leader():
    c = Cluster()
    leader = c.elect(2)
    leader.step(3, roundtrip(fetch(3, leader.epoch - 1, 0, 0)), 900, c.now)
    c.flush(2)
    (response,) = answers(c, 2, 900)
    p = wire.partition_of(response)
    assert p.error_code == ErrorCode.FENCED_LEADER_EPOCH
    assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (2, leader.epoch)


def test_a_fetch_to_a_follower_is_refused_with_not_leader():
    c = Cluster()
    c.elect(2)
    c[1].step(3, roundtrip(fetch(3, c[1].epoch, 0, 0)), 900, c.now)
    c.flush(1)
    (response,) = answers(c, 1, 900)
    assert wire.partition_of(response).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_the_leader_parks_a_fetch_with_nothing_new_until_data_arrives():
    c = Cluster()
    leader = c.elect(1)
    c.run(100)
    end = leader.log.end_offset
    leader.step(2, roundtrip(fetch(2, leader.epoch, end, leader.epoch)), 900, c.now)
    c.flush(1)
    assert answers(c, 1, 900) == []
    c.propose("k=v")
    (response,) = answers(c, 1, 900)
    assert wire.partition_of(response).records


def test_a_parked_fetch_is_answered_when_its_max_wait_passes():
    c = Cluster()
    leader = c.elect(1)
    c.run(100)
    leader.step(2, roundtrip(fetch(2, leader.epoch, leader.log.end_offset, leader.epoch, max_wait_ms=200)), 900, c.now)
    c.flush(1)
    c.tick(199)
    assert answers(c, 1, 900) == []
    c.tick(1)
    assert len(answers(c, 1, 900)) == 1


def test_check_quorum_a_leader_that_hears_from_no_majority_resigns():
    c = Cluster()
    leader = c.elect(1)
    c.run(100)
    c.isolate(1)
    c.run(2800)
    assert leader.is_leader
    c.run(400)  # 1.5 x controller.quorum.fetch.timeout.ms after the last fetches
    assert leader.role == "resigned"


def test_end_quorum_epoch_hands_leadership_to_the_preferred_successor():
    c = Cluster(voters=(1, 2, 3))
    leader = c.elect(1)
    c.isolate(3)
    c.propose("x=1")
    c.run(200)  # node 2 is now more up to date than node 3
    c.heal()
    epoch = leader.epoch
    leader.resign(c.now)
    c.flush(1)
    (end, _) = requests(c.members[1].readies[-1], m.EndQuorumEpochRequest)
    assert wire.partition_of(end.message).preferred_candidates[0].candidate_id == 2
    c.run(300)  # well within any timeout: the successor stands at once
    assert c[2].is_leader and c[2].epoch == epoch + 1


def test_committed_batches_are_applied_once_in_order_everywhere():
    c = Cluster(voters=(1, 2, 3), observers=(10,))
    c.elect(1)
    for i in range(20):
        c.propose(f"k{i % 3}={i}")
        c.run(20)
    c.run(1000)
    for mb in c.members.values():
        applied = [b.base_offset for rd in mb.readies for b in rd.committed]
        assert applied == sorted(set(applied))
        assert mb.sm.data == {"k0": "18", "k1": "19", "k2": "17"}


def test_an_observer_finds_the_leader_and_follows_without_voting():
    c = Cluster(voters=(1, 2, 3), observers=(10,))
    c.elect(3)
    c.propose("o=1")
    c.run(2000)
    observer = c[10]
    assert observer.role == "follower" and observer.leader_id == 3
    assert c.members[10].sm.data == {"o": "1"}
    assert 10 not in c[3].state.voters and 10 in c[3].state.observers


def test_describe_quorum_reports_the_leader_view():
    c = Cluster(voters=(1, 2, 3), observers=(10,))
    leader = c.elect(1)
    c.propose("a=1")
    c.run(1000)
    response = roundtrip(leader.describe_quorum())
    p = wire.partition_of(response)
    assert (p.leader_id, p.leader_epoch, p.high_watermark) == (1, leader.epoch, leader.high_watermark)
    assert [v.replica_id for v in p.current_voters] == [1, 2, 3]
    assert all(v.log_end_offset == leader.log.end_offset for v in p.current_voters)
    assert [o.replica_id for o in p.observers] == [10]
    assert all(v.last_caught_up_timestamp >= 0 for v in p.current_voters)
    follower_view = wire.partition_of(c[2].describe_quorum())
    assert follower_view.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_a_restarted_follower_catches_up():
    c = Cluster()
    c.elect(1)
    c.propose("a=1")
    c.run(500)
    c.stop(3)
    for i in range(5):
        c.propose(f"b{i}=x")
    c.run(500)
    c.start(3)
    c.run(3000)
    assert c.members[3].sm.data == c.members[1].sm.data
    assert c[3].leader_id == 1
