"""The partition leader's decisions: high watermark, ISR changes, min.insync.replicas, and what a
follower's Fetch gets. Three brokers on real logs; messages encoded and decoded between them."""

import pytest

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.replication.config import RACK_AWARE_SELECTOR, ReplicationConfig
from tests.replication.harness import TOPIC, TOPIC_ID, Cluster

FULL = (1, 2, 3)


@pytest.fixture
def c(tmp_path):
    c = Cluster(tmp_path)
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0))
    return c


def sync(c, *followers):
    for f in followers or (2, 3):
        c.exchange(f)


def test_a_new_leader_records_where_its_epoch_starts(c):
    c.produce(1, b"a", b"b")
    sync(c)
    c.apply(c.image(FULL, FULL, leader=2, leader_epoch=1, partition_epoch=1))
    assert c.p(2).log.epochs.entries()[-1] == (1, 2)
    assert c.p(2).leader_epoch_start_offset == 2


def test_the_high_watermark_is_the_lowest_log_end_offset_in_the_isr(c):
    c.produce(1, b"a", b"b", b"c")
    assert c.p(1).high_watermark == 0
    c.exchange(2)  # fetches from 0: gets the data, leader learns offset 0
    c.exchange(2)  # fetches from 3
    assert c.p(1).high_watermark == 0  # broker 3 has not fetched yet
    c.exchange(3)
    c.exchange(3)
    assert c.p(1).high_watermark == 3
    c.exchange(2)
    assert c.p(2).high_watermark == 3  # the follower takes it from the leader


def test_the_high_watermark_never_moves_back(c):
    c.produce(1, b"a", b"b")
    sync(c), sync(c)
    assert c.p(1).high_watermark == 2
    p = c.p(1)
    # A follower that comes back with a lower offset (it truncated) does not lower it.
    p.fetch_for_follower(2, c.epochs[2], 0, 0, -1, 0, 1 << 20, c.now)
    assert p.high_watermark == 2


def test_the_high_watermark_waits_while_the_isr_is_below_min_insync_replicas(c):
    c.apply(c.image(FULL, (1,), leader=1, leader_epoch=1, partition_epoch=1))
    c.produce(1, b"a", acks=1)
    assert c.p(1).high_watermark == 0
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=2))
    c.exchange(2), c.exchange(2)
    assert c.p(1).high_watermark == 1


def test_acks_all_is_refused_before_the_append_while_the_isr_is_below_min_insync_replicas(c):
    c.apply(c.image(FULL, (1,), leader=1, leader_epoch=1, partition_epoch=1))
    with pytest.raises(KafkaError) as e:
        c.produce(1, b"a")
    assert e.value.code == ErrorCode.NOT_ENOUGH_REPLICAS
    assert "min.isr requirement of 2" in e.value.message
    assert c.p(1).log.log_end_offset == 0


def test_min_insync_replicas_is_capped_at_the_replication_factor(tmp_path):
    c = Cluster(tmp_path, brokers=(1,), min_isr=2)
    c.apply(c.image((1,), (1,), leader=1, leader_epoch=0, partition_epoch=0))
    c.produce(1, b"a")
    assert c.p(1).high_watermark == 1


def test_acks_all_completes_once_the_high_watermark_passes_the_append(c):
    info = c.produce(1, b"a")
    p = c.p(1)
    assert p.check_enough_replicas(info.last_offset + 1, p.leader_epoch) == (False, ErrorCode.NONE)
    sync(c), sync(c)
    assert p.check_enough_replicas(info.last_offset + 1, p.leader_epoch) == (True, ErrorCode.NONE)


def test_acks_all_answers_not_enough_replicas_after_append_when_the_isr_shrank_meanwhile(tmp_path):
    c = Cluster(tmp_path, min_isr=3)
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0))
    info = c.produce(1, b"a")
    sync(c), sync(c)
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=0, partition_epoch=1))
    assert c.p(1).check_enough_replicas(info.last_offset + 1, 0) == (True, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND)


def test_acks_all_answers_not_leader_once_the_append_s_epoch_is_over(c):
    info = c.produce(1, b"a")
    c.apply(c.image(FULL, FULL, leader=2, leader_epoch=1, partition_epoch=1))
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=2, partition_epoch=2))
    c.p(1).log.high_watermark = 5  # whatever the log says now, the append of epoch 0 is not known to be there
    assert c.p(1).check_enough_replicas(info.last_offset + 1, 0) == (True, ErrorCode.NOT_LEADER_OR_FOLLOWER)


def test_a_follower_that_stops_fetching_is_shrunk_out_after_replica_lag_time_max(c):
    c.produce(1, b"a")
    sync(c), sync(c)
    c.now += 600
    c.produce(1, b"b")
    c.exchange(2), c.exchange(2)
    c.exchange(1)
    assert c.alter_requests == []  # broker 3 is behind, but caught up 600 ms ago
    c.now += 600  # now 1200 ms ago, over replica.lag.time.max.ms
    c.exchange(2)
    c.exchange(1)
    assert len(c.alter_requests) == 1
    req = c.answer_alter()
    sent = req.topics[0].partitions[0]
    assert [b.broker_id for b in sent.new_isr_with_epochs] == [1, 2]
    assert [b.broker_epoch for b in sent.new_isr_with_epochs] == [c.epochs[1], c.epochs[2]]
    assert (sent.leader_epoch, sent.partition_epoch) == (0, 0)
    assert c.p(1).isr == (1, 2) and c.p(1).partition_epoch == 1


def test_a_follower_that_keeps_fetching_what_there_was_at_its_last_fetch_stays_in_sync(c):
    c.produce(1, b"a")
    sync(c), sync(c)
    for _ in range(10):  # an append between every two fetches: never at the end, always caught up
        c.now += 300
        c.produce(1, b"x")
        sync(c)
    c.exchange(1)
    assert c.alter_requests == []


def test_a_follower_that_reaches_the_high_watermark_in_this_epoch_joins_the_isr(c):
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=1))
    c.produce(1, b"a")
    c.exchange(2), c.exchange(2)
    assert c.p(1).high_watermark == 1
    c.exchange(3)  # fetches from 0: not yet at the high watermark
    assert c.alter_requests == [] and c.p(1).pending is None
    c.exchange(3)  # fetches from 1
    c.exchange(1)
    assert c.p(1).pending.adding == 3
    assert c.p(1).maximal_isr == (1, 2, 3)  # counted for the high watermark before the controller agrees
    c.answer_alter()
    assert c.p(1).isr == (1, 2, 3) and c.p(1).pending is None


def test_a_follower_at_the_high_watermark_but_before_this_epoch_s_start_does_not_join(c):
    c.produce(1, b"a")
    sync(c), sync(c)
    c.produce(1, b"b")
    c.exchange(2)  # broker 2 gets offset 1; the leader learns it only at its next fetch
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=1))
    p = c.p(1)
    assert (p.high_watermark, p.leader_epoch_start_offset) == (1, 2)
    c.exchange(3)  # broker 3 at offset 1: at the high watermark, but holds nothing of epoch 1
    c.exchange(1)
    assert p.pending is None and c.alter_requests == []


def test_a_fenced_follower_does_not_join_the_isr(tmp_path):
    c = Cluster(tmp_path)
    c.fenced.add(3)
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=0, partition_epoch=0))
    c.exchange(3)
    c.exchange(1)
    assert c.p(1).pending is None and c.alter_requests == []


def test_a_fetch_with_a_stale_broker_epoch_is_refused_and_does_not_join(c):
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=1))
    with pytest.raises(KafkaError) as e:
        c.p(1).fetch_for_follower(3, c.epochs[3] - 1, 0, 0, -1, 1, 1 << 20, c.now)
    assert e.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert c.p(1).pending is None


def test_one_isr_change_is_in_flight_at_a_time(c):
    c.apply(c.image(FULL, (1,), leader=1, leader_epoch=1, partition_epoch=1))
    c.exchange(2)
    c.exchange(3)
    c.exchange(1)
    assert c.p(1).pending.adding == 2
    req = c.answer_alter()
    assert [b.broker_id for b in req.topics[0].partitions[0].new_isr_with_epochs] == [1, 2]
    c.exchange(3)
    c.exchange(1)
    assert c.p(1).pending.adding == 3


def test_an_isr_change_the_controller_calls_ineligible_falls_back_to_the_committed_isr(c):
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=1))
    c.exchange(3)
    c.exchange(1)
    c.answer_alter(partition_error=ErrorCode.INELIGIBLE_REPLICA)
    assert c.p(1).pending is None and c.p(1).isr == (1, 2)


def test_an_isr_change_is_sent_again_after_a_top_level_error(c):
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=1))
    c.exchange(3)
    c.exchange(1)
    c.answer_alter(error=ErrorCode.NOT_CONTROLLER)
    c.exchange(1)
    assert c.alter_requests == []  # 50 ms backoff
    c.now += 50
    c.exchange(1)
    assert len(c.alter_requests) == 1


def test_a_stale_isr_answer_is_ignored_once_the_image_moved_on(c):
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=1, partition_epoch=1))
    c.exchange(3)
    c.exchange(1)
    c.apply(c.image(FULL, (1, 2), leader=1, leader_epoch=2, partition_epoch=3))
    c.answer_alter()
    assert c.p(1).isr == (1, 2) and c.p(1).partition_epoch == 3


def test_a_follower_whose_last_epoch_ends_before_its_fetch_offset_gets_the_diverging_epoch(c):
    c.produce(1, b"a", b"b")
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=1, partition_epoch=1))
    c.produce(1, b"c")
    # A follower that holds epoch 0 up to offset 4 (it had an uncommitted suffix): epoch 0 ends at 2 here.
    got = c.p(1).fetch_for_follower(2, c.epochs[2], 4, 0, 0, 1, 1 << 20, c.now)
    assert got.diverging_epoch == (0, 2) and got.records == b""
    # One that knows an epoch this leader never had (higher than its own): the end of the last one below it.
    got = c.p(1).fetch_for_follower(2, c.epochs[2], 3, 0, 1, 1, 1 << 20, c.now)
    assert got.diverging_epoch is None


@pytest.mark.parametrize("epoch, code", [(0, ErrorCode.FENCED_LEADER_EPOCH), (5, ErrorCode.UNKNOWN_LEADER_EPOCH)])
def test_a_fetch_in_another_leader_epoch_is_refused(c, epoch, code):
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=1, partition_epoch=1))
    with pytest.raises(KafkaError) as e:
        c.p(1).fetch_for_follower(2, c.epochs[2], 0, 0, -1, epoch, 1 << 20, c.now)
    assert e.value.code == code


@pytest.mark.parametrize("epoch, code", [(0, ErrorCode.UNKNOWN_LEADER_EPOCH), (-1, ErrorCode.NOT_LEADER_OR_FOLLOWER)])
def test_a_fetch_from_a_replica_of_no_assignment_is_refused(c, epoch, code):
    with pytest.raises(KafkaError) as e:
        c.p(1).fetch_for_follower(7, 1, 0, 0, -1, epoch, 1 << 20, c.now)
    assert e.value.code == code


def test_a_follower_fetching_past_the_leader_s_end_gets_offset_out_of_range(c):
    c.produce(1, b"a")
    with pytest.raises(KafkaError) as e:
        c.p(1).fetch_for_follower(2, c.epochs[2], 5, 0, -1, 0, 1 << 20, c.now)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert c.p(1).log.log_end_offset == 1  # nothing lost


def test_the_fetch_response_names_the_diverging_epoch_and_the_current_leader(c):
    c.produce(1, b"a", b"b")
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=1, partition_epoch=1))
    F = m.FetchRequest
    request = F(replica_state=F.ReplicaState(replica_id=2, replica_epoch=c.epochs[2]), max_wait_ms=500, min_bytes=1,
                topics=[F.FetchTopic(topic_id=TOPIC_ID, partitions=[
                    F.FetchPartition(partition=0, current_leader_epoch=1, fetch_offset=5, last_fetched_epoch=0)])])
    response, done = c.rm[1].fetch_for_follower(request, 17, c.now)
    pd = response.responses[0].partitions[0]
    assert done and (pd.diverging_epoch.epoch, pd.diverging_epoch.end_offset) == (0, 2)
    request.topics[0].partitions[0].current_leader_epoch = 0
    response, done = c.rm[2].fetch_for_follower(request, 17, c.now)
    pd = response.responses[0].partitions[0]
    assert pd.error_code == ErrorCode.FENCED_LEADER_EPOCH
    assert (pd.current_leader.leader_id, pd.current_leader.leader_epoch) == (1, 1)


def test_a_follower_fetch_with_nothing_new_waits(c):
    F = m.FetchRequest
    request = F(replica_state=F.ReplicaState(replica_id=2, replica_epoch=c.epochs[2]), max_wait_ms=500, min_bytes=1,
                topics=[F.FetchTopic(topic_id=TOPIC_ID, partitions=[
                    F.FetchPartition(partition=0, current_leader_epoch=0, fetch_offset=0)])])
    _, done = c.rm[1].fetch_for_follower(request, 17, c.now)
    assert not done
    c.produce(1, b"a")
    assert (TOPIC, 0) in c.waiters[1].notified  # the parked fetch is woken
    _, done = c.rm[1].fetch_for_follower(request, 17, c.now, update_state=False)
    assert done


def test_a_parked_follower_fetch_is_answered_when_the_high_watermark_is_news_to_it(c):
    F = m.FetchRequest
    c.produce(1, b"a")
    sync(c, 2)  # broker 2 has the record; the high watermark waits for broker 3

    def caught_up_fetch(broker):
        return F(replica_state=F.ReplicaState(replica_id=broker, replica_epoch=c.epochs[broker]), max_wait_ms=500,
                 min_bytes=1, topics=[F.FetchTopic(topic_id=TOPIC_ID, partitions=[
                     F.FetchPartition(partition=0, current_leader_epoch=0, fetch_offset=1, last_fetched_epoch=0)])])
    parked = caught_up_fetch(2)
    response, done = c.rm[1].fetch_for_follower(parked, 17, c.now)
    assert not done and response.responses[0].partitions[0].high_watermark == 0
    # Broker 3's fetch moves the high watermark, and carries it to broker 3 itself.
    response, done = c.rm[1].fetch_for_follower(caught_up_fetch(3), 17, c.now)
    assert done and response.responses[0].partitions[0].high_watermark == 1
    # The parked fetch wakes with it, though it has no records: its broker's readers wait for it.
    response, done = c.rm[1].fetch_for_follower(parked, 17, c.now, update_state=False)
    assert done and response.responses[0].partitions[0].high_watermark == 1
    # Told once: the next fetch with nothing new waits again.
    _, done = c.rm[1].fetch_for_follower(caught_up_fetch(2), 17, c.now)
    assert not done


def test_the_rack_aware_selector_points_a_consumer_to_an_in_sync_follower_in_its_rack(tmp_path):
    c = Cluster(tmp_path, config=ReplicationConfig(replica_selector_class=RACK_AWARE_SELECTOR),
                racks={1: "a", 2: "b", 3: "c"})
    c.apply(c.image(FULL, FULL, leader=1, leader_epoch=0, partition_epoch=0))
    c.produce(1, b"a")
    sync(c), sync(c)
    p = c.p(1)
    assert p.preferred_read_replica("b", 0, c.now) == 2
    assert p.preferred_read_replica("a", 0, c.now) == -1  # the leader is in the client's rack
    assert p.preferred_read_replica("z", 0, c.now) == -1
    assert p.preferred_read_replica("c", 5, c.now) == -1  # broker 3 does not have offset 5


def test_a_follower_serves_consumers_only_when_asked_with_a_rack_aware_version(c):
    with pytest.raises(KafkaError) as e:
        c.rm[2].readable(TOPIC, 0, -1, allow_follower=False)
    assert e.value.code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert c.rm[2].readable(TOPIC, 0, -1, allow_follower=True) is c.p(2)
