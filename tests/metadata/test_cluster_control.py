"""Brokers joining, heartbeating, fenced and back, as the active controller decides it: one rule per test."""

from kafka_compat.metadata.cluster_control import ClusterControl, registration_request
from kafka_compat.metadata.controller import Controller
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.records import encode_record
from kafka_compat.metadata.state_machine import MetadataStateMachine
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.raft.ready import Batch

from .world import SESSION, World


def test_a_broker_registers_fenced_with_the_offset_of_its_record_as_epoch():
    w = World()
    resp = w.register(1)
    assert resp.error_code == ErrorCode.NONE and resp.broker_epoch == 1
    b = w.image.brokers[1]
    assert b.fenced and b.epoch == 1 and b.endpoints[0].port == 9001


def test_a_registration_retried_with_the_same_incarnation_gets_the_same_epoch_and_writes_nothing():
    w = World()
    first = w.register(1)
    records, resp = w.cc.register(w.image, registration_request(1, "c", w.incarnations[1], [], None, 21), w.offset, 0)
    assert records == [] and resp.broker_epoch == first.broker_epoch


def test_a_broker_of_another_cluster_is_refused():
    w = World()
    assert w.register(1, cluster="other").error_code == ErrorCode.INCONSISTENT_CLUSTER_ID
    assert 1 not in w.image.brokers


def test_a_broker_is_unfenced_once_its_heartbeat_reaches_its_registration_record():
    w = World()
    w.register(1)
    behind = w.heartbeat(1, offset=0)
    assert behind.is_fenced and not behind.is_caught_up and w.image.brokers[1].fenced
    caught_up = w.heartbeat(1, offset=1)
    assert not caught_up.is_fenced and caught_up.is_caught_up and not w.image.brokers[1].fenced


def test_a_heartbeat_with_an_old_epoch_or_from_an_unknown_broker_is_refused():
    w = World()
    w.live(1)
    assert w.heartbeat(1, epoch=0).error_code == ErrorCode.STALE_BROKER_EPOCH
    req = m.BrokerHeartbeatRequest(broker_id=7, broker_epoch=1, current_metadata_offset=5)
    assert w.cc.heartbeat(w.image, req, 0)[1].error_code == ErrorCode.STALE_BROKER_EPOCH


def test_a_broker_whose_heartbeats_stop_is_fenced_after_the_session_timeout():
    w = World()
    w.live(1, 2)
    assert w.cc.expire_sessions(w.image, SESSION - 1) == []
    w.heartbeat(2, now=SESSION - 1)
    w.commit(w.cc.expire_sessions(w.image, SESSION))
    assert w.image.brokers[1].fenced and not w.image.brokers[2].fenced
    assert [b.node_id for b in w.image.live_brokers()] == [2]


def test_fencing_leaves_a_single_replica_partition_leaderless_with_its_isr_kept():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1], [2]])
    epoch = w.partition("t", 0).leader_epoch
    w.commit(w.cc.expire_sessions(w.image, SESSION))  # both expire
    p = w.partition("t", 0)
    assert p.leader == -1 and p.isr == (1,) and p.leader_epoch == epoch + 1


def test_fencing_moves_leadership_to_the_next_live_isr_member_and_shrinks_the_isr():
    w = World()
    w.live(1, 2, 3)
    w.topic("t", [[1, 2, 3]])
    w.heartbeat(2, now=SESSION - 1)
    w.heartbeat(3, now=SESSION - 1)
    w.commit(w.cc.expire_sessions(w.image, SESSION))
    p = w.partition("t", 0)
    assert p.leader == 2 and p.isr == (2, 3) and p.replicas == (1, 2, 3)


def test_unfencing_elects_the_broker_leader_of_leaderless_partitions_in_its_isr():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1], [2]])
    w.heartbeat(2, now=SESSION - 1)
    w.commit(w.cc.expire_sessions(w.image, SESSION))
    assert w.partition("t", 0).leader == -1
    assert not w.heartbeat(1, now=SESSION + 1).is_fenced
    assert w.partition("t", 0).leader == 1 and w.partition("t", 1).leader == 2


def test_a_broker_that_restarts_registers_again_and_its_leaderships_wait_for_it():
    w = World()
    w.live(1)
    w.topic("t", [[1]])
    resp = w.register(1, incarnation=Uuid.random())  # the same id, a new process
    assert resp.broker_epoch > 1 and w.image.brokers[1].fenced and w.partition("t", 0).leader == -1
    w.heartbeat(1)
    assert w.partition("t", 0).leader == 1 and not w.image.brokers[1].fenced


def test_a_new_active_controller_gives_every_unfenced_broker_a_full_session():
    w = World()
    w.live(1)
    successor = ClusterControl("c", SESSION, 21)
    successor.activate(w.image, 5000)
    assert successor.expire_sessions(w.image, 5000 + SESSION - 1) == []
    assert successor.next_expiry(w.image) == 5000 + SESSION


def test_producer_id_blocks_never_overlap():
    w = World()
    w.live(1, 2)
    ctl = Controller()
    A = m.AllocateProducerIdsRequest
    a = ctl.allocate_producer_ids(w.image, A(broker_id=1, broker_epoch=w.image.brokers[1].epoch))
    w.commit(a[0])
    b = ctl.allocate_producer_ids(w.image, A(broker_id=2, broker_epoch=w.image.brokers[2].epoch))
    assert (a[1].producer_id_start, b[1].producer_id_start) == (0, a[1].producer_id_len)
    stale = ctl.allocate_producer_ids(w.image, m.AllocateProducerIdsRequest(broker_id=1, broker_epoch=0))
    assert stale == ([], stale[1]) and stale[1].error_code == ErrorCode.STALE_BROKER_EPOCH


def test_an_image_rebuilt_from_its_snapshot_records_is_the_same_image():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1], [2]])
    w.commit([m.ConfigRecord(resource_type=2, resource_name="t", name="retention.ms", value="5"),
              m.ConfigRecord(resource_type=4, resource_name="", name="num.partitions", value="3"),
              m.ProducerIdsRecord(broker_id=1, broker_epoch=1, next_producer_id=2000)])
    w.heartbeat(2, now=SESSION - 1)
    w.commit(w.cc.expire_sessions(w.image, SESSION))
    assert MetadataImage(cluster_id="c").apply(w.image.records(), w.image.offset) == w.image


def test_a_snapshot_keeps_what_each_broker_registered_with():
    w = World()
    w.live(1)
    dirs = [Uuid.random()]
    w.commit([m.BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=w.image.brokers[1].epoch, log_dirs=dirs)])
    [registered] = [r for r in w.image.records() if isinstance(r, m.RegisterBrokerRecord)]
    assert [(f.name, f.min_supported_version, f.max_supported_version) for f in registered.features] == [
        ("metadata.version", 7, 21)]
    assert registered.log_dirs == dirs


def test_the_state_machine_applies_committed_batches_and_restores_from_its_snapshot():
    w = World()
    w.live(1)
    w.topic("t", [[1]])
    sm = MetadataStateMachine("c")
    seen = []
    sm.add_listener(lambda old, new: seen.append((old.offset, new.offset)))
    values = [encode_record(r) for r in w.image.records()]
    sm.apply(Batch(0, len(values) - 1, 1, values, False))
    sm.apply(Batch(len(values), len(values), 1, [], True))  # a control batch moves the offset only
    assert sm.image.topics.keys() == {"t"} and sm.end_offset == len(values) + 1 and len(seen) == 1
    end, snapshot = sm.snapshot()
    other = MetadataStateMachine("c")
    other.restore(end, snapshot)
    assert other.image.records() == sm.image.records() and other.end_offset == end


def test_a_broker_that_asks_to_be_fenced_is_fenced_and_stays_so_while_it_asks():
    w = World()
    w.live(1, 2)
    w.topic("t", [[1, 2]])
    resp = w.heartbeat(1, want_fence=True)
    assert resp.is_fenced and not resp.should_shut_down and w.image.brokers[1].fenced
    assert (w.partition("t").leader, w.partition("t").isr) == (2, (2,))
    assert w.heartbeat(1, want_fence=True).is_fenced
    assert not w.heartbeat(1).is_fenced
