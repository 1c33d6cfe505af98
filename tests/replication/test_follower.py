"""The follower's side: what it fetches, what it appends, where it truncates, how it recovers."""

import pytest

from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.fetcher import FETCHING, RESETTING, TRUNCATING
from tests.replication.harness import TOPIC, Cluster

FULL = (1, 2, 3)


@pytest.fixture
def c(tmp_path):
    c = Cluster(tmp_path)
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0))
    return c


def fetch_state(c, broker, leader):
    return c.rm[broker].fetchers[(leader, 0)].states[(TOPIC, 0)]


def test_a_follower_appends_the_leader_s_batches_byte_for_byte(c):
    c.produce(1, b"a", b"b")
    c.produce(1, b"c")
    c.exchange(2)
    assert c.p(2).log.read_bytes(0, 1 << 20) == c.p(1).log.read_bytes(0, 1 << 20)
    assert c.p(2).log.epochs.entries() == [(0, 0)]
    s = fetch_state(c, 2, 1)
    assert (s.fetch_offset, s.last_fetched_epoch) == (3, 0)


def test_a_follower_takes_the_leader_s_high_watermark_bounded_by_its_log_end(tmp_path):
    c = Cluster(tmp_path, config=ReplicationConfig(replica_fetch_max_bytes=1, replica_fetch_wait_max_ms=0))
    c.apply(c.image(FULL, (1, 3), leader=1, leader_epoch=0, partition_epoch=0))
    for _ in range(5):
        c.produce(1, b"x")
    for _ in range(6):
        c.exchange(3)  # one batch per fetch
    assert c.p(1).high_watermark == 5
    c.exchange(2)  # gets the first batch only, with the leader's high watermark of 5
    assert (c.p(2).log.log_end_offset, c.p(2).high_watermark) == (1, 1)
    c.exchange(2)
    assert (c.p(2).log.log_end_offset, c.p(2).high_watermark) == (2, 2)


def test_a_follower_truncates_its_divergent_suffix_to_the_end_of_the_leader_s_epoch(c):
    c.produce(1, b"a")
    c.exchange(2), c.exchange(3)
    c.produce(1, b"lost", b"lost")  # only broker 3 gets these
    c.exchange(3)
    c.apply(c.image(FULL, (2, 3), leader=2, leader_epoch=1, partition_epoch=1))
    c.produce(2, b"b")
    c.exchange(3)  # fetch 3 with last epoch 0: epoch 0 ends at 1 on the leader
    assert c.p(3).log.log_end_offset == 1
    c.exchange(3)
    assert c.p(3).log.read_bytes(0, 1 << 20) == c.p(2).log.read_bytes(0, 1 << 20)
    assert c.p(3).log.epochs.entries() == [(0, 0), (1, 1)]


def test_without_truncation_on_fetch_a_follower_asks_offset_for_leader_epoch_first(tmp_path):
    c = Cluster(tmp_path, config=ReplicationConfig(replica_lag_time_max_ms=1000, replica_fetch_wait_max_ms=0,
                                                   truncate_on_fetch=False))
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0))
    c.produce(1, b"a")
    c.exchange(2), c.exchange(3)  # empty logs have no epoch: straight to fetching
    c.produce(1, b"lost")
    c.exchange(3)
    c.apply(c.image(FULL, (2, 3), leader=2, leader_epoch=1, partition_epoch=1))
    assert fetch_state(c, 3, 2).phase == TRUNCATING
    out = c.exchange(3)
    assert type(out[0].message).__name__ == "OffsetForLeaderEpochRequest"
    assert c.p(3).log.log_end_offset == 1 and fetch_state(c, 3, 2).phase == FETCHING


def test_a_follower_that_does_not_know_the_leader_s_epoch_truncates_one_epoch_back_at_a_time(tmp_path):
    c = Cluster(tmp_path, config=ReplicationConfig(replica_lag_time_max_ms=1000, replica_fetch_wait_max_ms=0,
                                                   truncate_on_fetch=False))
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0))
    c.produce(1, b"a")
    c.exchange(2), c.exchange(3)
    c.apply(c.image(FULL, FULL, leader=3, leader_epoch=2, partition_epoch=1), brokers=[1, 3])
    c.produce(3, b"epoch 2", acks=1)  # broker 1 (and 2) never hear of epoch 2
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=4, partition_epoch=2), brokers=[1, 2])
    c.produce(1, b"epoch 4")
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=4, partition_epoch=2), brokers=[3])
    c.exchange(3)  # asks for the end of epoch 2; the leader's largest epoch <= 2 is 0, ending at 1
    assert c.p(3).log.log_end_offset == 1
    c.exchange(3)
    assert c.p(3).log.read_bytes(0, 1 << 20) == c.p(1).log.read_bytes(0, 1 << 20)


def test_a_follower_behind_the_leader_s_log_start_starts_over_there(c):
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=0, partition_epoch=1))
    c.produce(1, *[b"x"] * 5)
    c.exchange(2), c.exchange(2)
    c.p(1).log.advance_log_start_offset(4)  # DeleteRecords
    c.exchange(3)  # fetch 0: OFFSET_OUT_OF_RANGE
    assert fetch_state(c, 3, 1).phase == RESETTING
    c.exchange(3)  # ListOffsets latest: 5, not below our end
    c.exchange(3)  # ListOffsets earliest: 4, past our end: start over at 4
    assert (c.p(3).log.log_start_offset, c.p(3).log.log_end_offset) == (4, 4)
    c.exchange(3)
    assert c.p(3).log.log_end_offset == 5


def test_a_follower_longer_than_a_leader_without_epochs_truncates_to_the_leader_s_end(c):
    c.produce(1, b"a")
    c.exchange(2)
    # Batches without a leader epoch (an old message format): nothing to compare but offsets.
    for i in range(1, 4):
        c.p(2).log.append_as_follower(build_batch([Record(None, b"old", 0)], base_offset=i, partition_leader_epoch=-1))
    c.p(2).log.epochs.clear()
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=1, partition_epoch=1))
    c.exchange(2)  # fetch 4: OFFSET_OUT_OF_RANGE
    c.exchange(2)  # ListOffsets latest: 1
    assert c.p(2).log.log_end_offset == 1
    assert fetch_state(c, 2, 1).phase == FETCHING


def test_a_follower_fenced_by_a_newer_leader_epoch_waits_for_the_image(c):
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=1, partition_epoch=1), brokers=[1])
    c.exchange(2)  # asks in epoch 0: FENCED_LEADER_EPOCH
    assert (TOPIC, 0) not in c.rm[2].fetchers[(1, 0)].states
    assert c.exchange(2) == []
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=1, partition_epoch=1), brokers=[2])
    assert fetch_state(c, 2, 1).current_leader_epoch == 1


def test_a_lost_fetch_is_sent_again_after_the_backoff(c):
    out = c.rm[2].poll(c.now)
    assert len(out) == 1
    c.rm[2].request_failed(out[0].correlation_id, c.now)
    assert c.rm[2].poll(c.now) == []
    assert c.rm[2].next_deadline() == c.now + c.config.replica_fetch_backoff_ms
    c.now += c.config.replica_fetch_backoff_ms
    assert len(c.rm[2].poll(c.now)) == 1


def test_an_unanswered_fetch_is_given_up_after_replica_socket_timeout(c):
    out = c.rm[2].poll(c.now)
    deadline = c.rm[2].next_deadline()
    assert deadline == c.now + c.config.replica_fetch_wait_max_ms + c.config.replica_socket_timeout_ms
    c.now = deadline
    assert c.rm[2].poll(c.now) == []  # given up, backing off
    c.rm[2].on_response(out[0].correlation_id, None, c.now)  # a late answer is ignored


def test_a_follower_of_a_new_leader_moves_to_its_fetcher(c):
    c.apply(c.image(FULL, FULL, leader=3, leader_epoch=1, partition_epoch=1))
    assert (TOPIC, 0) in c.rm[2].fetchers[(3, 0)].states
    assert not c.rm[2].fetchers[(1, 0)]
    assert c.rm[3].fetchers[(1, 0)].states == {}  # the new leader fetches no more


def test_a_former_leader_that_wrote_nothing_in_its_epoch_forgets_that_epoch_and_follows(c):
    c.produce(1, b"a")
    c.exchange(2), c.exchange(3), c.exchange(2), c.exchange(3)
    c.apply(c.image(FULL, (2, 3), leader=2, leader_epoch=1, partition_epoch=1), brokers=[2])  # leads, writes nothing
    assert c.p(2).log.epochs.entries() == [(0, 0), (1, 1)]
    c.apply(c.image(FULL, (1, 2, 3), leader=3, leader_epoch=2, partition_epoch=2))
    c.produce(3, b"b")
    c.exchange(2)  # last fetched epoch 1: the leader's epoch 0 ends at 1, where this log ends
    assert c.p(2).log.epochs.entries() == [(0, 0)]
    c.exchange(2)
    assert c.p(2).log.read_bytes(0, 1 << 20) == c.p(3).log.read_bytes(0, 1 << 20)


def test_partitions_take_turns_at_the_head_of_the_fetch(tmp_path):
    c = Cluster(tmp_path, config=ReplicationConfig(replica_fetch_max_bytes=1, replica_fetch_wait_max_ms=0))
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0, partitions=(0, 1)))
    for _ in range(3):
        c.produce(1, b"x", index=0)
        c.produce(1, b"y", index=1)
    c.exchange(2), c.exchange(2)  # only the first partition of a fetch is sure of a batch under this limit
    assert (c.p(2, 0).log.log_end_offset, c.p(2, 1).log.log_end_offset) == (1, 1)
