"""AlterPartition: a leader's ISR change as the controller judges it, at every version: one rule per test."""

import pytest

from kafka_compat.metadata.image import RECOVERED, RECOVERING
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid

from .world import World, wire


def three(**configs):
    w = World()
    w.live(1, 2, 3)
    w.topic("t", [[1, 2, 3]], **configs)
    return w


def answer(resp):
    return resp.topics[0].partitions[0]


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_a_leader_shrinks_the_isr_and_gets_the_partitions_new_state_back(version):
    w = three()
    before = w.partition("t")
    resp = w.alter_partition("t", isr=[1, 2], version=version)
    assert resp.error_code == ErrorCode.NONE
    assert (resp.topics[0].topic_name, resp.topics[0].topic_id) == (
        ("t", Uuid()) if version < 2 else ("", w.image.topics["t"].topic_id))
    p = w.partition("t")
    assert (p.isr, p.leader, p.leader_epoch, p.partition_epoch) == (
        (1, 2), 1, before.leader_epoch, before.partition_epoch + 1)
    a = answer(resp)
    assert (a.error_code, a.leader_id, a.isr, a.leader_epoch, a.partition_epoch) == (
        ErrorCode.NONE, 1, [1, 2], p.leader_epoch, p.partition_epoch)


def test_a_caught_up_follower_joins_the_isr_again():
    w = three()
    w.alter_partition("t", isr=[1])
    w.alter_partition("t", isr=[1, 3])
    assert w.partition("t").isr == (1, 3) and w.partition("t").partition_epoch == 2


def test_an_unchanged_isr_writes_nothing_and_answers_the_current_state():
    w = three()
    log = len(w.log)
    a = answer(w.alter_partition("t", isr=[1, 2, 3]))
    assert len(w.log) == log and (a.error_code, a.isr, a.partition_epoch) == (ErrorCode.NONE, [1, 2, 3], 0)


@pytest.mark.parametrize("version, code", [
    (0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (1, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    (2, ErrorCode.UNKNOWN_TOPIC_ID), (3, ErrorCode.UNKNOWN_TOPIC_ID)])
def test_an_unknown_topic_is_answered_by_how_the_version_names_it(version, code):
    w = three()
    A = m.AlterPartitionRequest
    pd = A.PartitionData(partition_index=0, leader_epoch=0, partition_epoch=0)
    if version >= 3:
        pd.new_isr_with_epochs = [A.BrokerState(broker_id=1, broker_epoch=w.image.brokers[1].epoch)]
    else:
        pd.new_isr = [1]
    td = A.TopicData(topic_id=Uuid.random(), partitions=[pd]) if version >= 2 else A.TopicData(topic_name="nope",
                                                                                              partitions=[pd])
    req = A(broker_id=1, broker_epoch=w.image.brokers[1].epoch, topics=[td])
    records, resp = w.ctl.alter_partition(w.image, wire(req, version), version)
    assert records == [] and answer(wire(resp, version)).error_code == code


def test_an_unknown_partition_is_unknown_topic_or_partition():
    w = three()
    w.topic("u", [[1]])
    A = m.AlterPartitionRequest
    req = A(broker_id=1, broker_epoch=w.image.brokers[1].epoch, topics=[A.TopicData(topic_name="u", partitions=[
        A.PartitionData(partition_index=5, leader_epoch=0, partition_epoch=0, new_isr=[1])])])
    assert answer(w.ctl.alter_partition(w.image, req, 1)[1]).error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_a_stale_broker_epoch_refuses_the_whole_request():
    w = three()
    A = m.AlterPartitionRequest
    req = A(broker_id=1, broker_epoch=w.image.brokers[1].epoch - 1, topics=[A.TopicData(
        topic_id=w.image.topics["t"].topic_id, partitions=[A.PartitionData(partition_index=0, new_isr=[1])])])
    records, resp = w.ctl.alter_partition(w.image, req, 2)
    assert records == [] and resp.error_code == ErrorCode.STALE_BROKER_EPOCH and resp.topics == []


@pytest.mark.parametrize("change, code", [
    ({"leader_epoch": -1}, ErrorCode.FENCED_LEADER_EPOCH),
    ({"leader_epoch": 1}, ErrorCode.NOT_CONTROLLER),  # the sender knows more than this controller
    ({"partition_epoch": 1}, ErrorCode.NOT_CONTROLLER),
    ({"partition_epoch": -1}, ErrorCode.INVALID_UPDATE_VERSION),
    ({"sender": 2}, ErrorCode.INVALID_REQUEST),  # not the leader
    ({"isr": [2, 3]}, ErrorCode.INVALID_REQUEST),  # without the leader
    ({"isr": [1, 4]}, ErrorCode.INVALID_REQUEST),  # not a replica
    ({"isr": [1, 1]}, ErrorCode.INVALID_REQUEST),
])
def test_a_request_out_of_step_with_the_partition_is_refused_and_writes_nothing(change, code):
    w = three()
    w.live(4)
    log = len(w.log)
    args = {"isr": [1, 2], **change}
    assert answer(w.alter_partition("t", **args)).error_code == code
    assert len(w.log) == log


def test_a_leader_that_missed_an_isr_change_must_learn_it_first():
    w = three()
    stale = w.partition("t").partition_epoch
    w.alter_partition("t", isr=[1, 2])
    assert answer(w.alter_partition("t", isr=[1], partition_epoch=stale)).error_code == ErrorCode.INVALID_UPDATE_VERSION


@pytest.mark.parametrize("version, code", [
    (0, ErrorCode.OPERATION_NOT_ATTEMPTED), (1, ErrorCode.OPERATION_NOT_ATTEMPTED),
    (2, ErrorCode.INELIGIBLE_REPLICA), (3, ErrorCode.INELIGIBLE_REPLICA)])
def test_a_fenced_or_shutting_down_or_unknown_replica_cannot_join_the_isr(version, code):
    w = three()
    w.live(4)
    w.topic("u", [[1, 2, 3, 4]])
    w.alter_partition("u", isr=[1])
    w.topic("follower", [[4, 3]])
    w.heartbeat(4, want_shut_down=True)  # leads "follower": shuts down in a controlled way
    assert w.image.brokers[4].in_controlled_shutdown
    w.expire(3)
    assert answer(w.alter_partition("u", isr=[1, 3], version=version)).error_code == code  # fenced
    assert answer(w.alter_partition("u", isr=[1, 4], version=version)).error_code == code  # shutting down
    w.decide(w.cc.unregister(w.image, m.UnregisterBrokerRequest(broker_id=2)))
    assert answer(w.alter_partition("u", isr=[1, 2], version=version)).error_code == code  # unregistered
    assert w.partition("u").isr == (1,)


def test_a_member_that_restarted_since_its_fetches_cannot_join_with_its_old_broker_epoch():
    w = three()
    w.alter_partition("t", isr=[1])
    old = w.image.brokers[3].epoch
    w.register(3, incarnation=Uuid.random())
    w.heartbeat(3)
    assert answer(w.alter_partition("t", isr=[1, 3], broker_epochs={3: old})).error_code == ErrorCode.INELIGIBLE_REPLICA
    assert answer(w.alter_partition("t", isr=[1, 3], broker_epochs={3: -1})).error_code == ErrorCode.NONE  # unchecked


def test_a_recovering_leader_may_not_grow_the_isr_nor_may_a_recovered_one_go_back_to_recovering():
    w = World(unclean=True)
    w.live(1, 2, 3)
    w.topic("t", [[1, 2, 3]])
    assert answer(w.alter_partition("t", isr=[1], recovery=RECOVERING)).error_code == ErrorCode.INVALID_REQUEST
    w.alter_partition("t", isr=[1])
    w.expire(1)
    assert w.partition("t").leader_recovery_state == RECOVERING
    assert answer(w.alter_partition("t", isr=[2, 3], recovery=RECOVERING)).error_code == ErrorCode.INVALID_REQUEST
    a = answer(w.alter_partition("t", isr=[2, 3], recovery=RECOVERED))
    assert (a.error_code, a.isr, a.leader_recovery_state) == (ErrorCode.NONE, [2, 3], RECOVERED)


def test_many_partitions_in_one_request_are_judged_each_on_its_own():
    w = three()
    w.topic("u", [[2, 1]])
    tid = w.image.topics["t"].topic_id
    A = m.AlterPartitionRequest
    epoch = w.image.brokers[1].epoch
    req = A(broker_id=1, broker_epoch=epoch, topics=[
        A.TopicData(topic_id=tid, partitions=[A.PartitionData(partition_index=0, leader_epoch=0, partition_epoch=0,
                                                              new_isr_with_epochs=[A.BrokerState(broker_id=1)])]),
        A.TopicData(topic_id=w.image.topics["u"].topic_id, partitions=[A.PartitionData(
            partition_index=0, leader_epoch=0, partition_epoch=0, new_isr_with_epochs=[A.BrokerState(broker_id=1)])])])
    resp = wire(w.decide(w.ctl.alter_partition(w.image, wire(req, 3), 3)), 3)
    assert [t.partitions[0].error_code for t in resp.topics] == [ErrorCode.NONE, ErrorCode.INVALID_REQUEST]
    assert w.partition("t").isr == (1,) and w.partition("u").isr == (2, 1)
