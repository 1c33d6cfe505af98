"""Leaders the controller elects when brokers fail, return, shut down or leave: one rule per test."""

from kafka_compat.metadata.image import RECOVERED, RECOVERING
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid

from .world import SESSION, World


def three(unclean=False, **configs):
    """Brokers 1-3 live and a topic t on [1, 2, 3] led by 1."""
    w = World(unclean=unclean)
    w.live(1, 2, 3)
    w.topic("t", [[1, 2, 3]], **configs)
    return w


def test_a_failed_leader_is_replaced_by_the_next_isr_member_in_replica_order_with_a_new_leader_epoch():
    w = three()
    before = w.partition("t")
    w.expire(1)
    p = w.partition("t")
    assert (p.leader, p.isr) == (2, (2, 3))
    assert p.leader_epoch == before.leader_epoch + 1 and p.partition_epoch == before.partition_epoch + 1


def test_a_failed_follower_leaves_the_isr_and_the_leader_epoch_stays():
    w = three()
    before = w.partition("t")
    w.expire(3)
    p = w.partition("t")
    assert (p.leader, p.isr, p.leader_epoch) == (1, (1, 2), before.leader_epoch)
    assert p.partition_epoch == before.partition_epoch + 1


def test_the_last_isr_member_stays_in_the_isr_when_it_fails():
    w = three()
    w.expire(2, 3)
    w.expire(1, now=2 * SESSION)
    p = w.partition("t")
    assert (p.leader, p.isr) == (-1, (1,))
    assert w.image.offline_replicas(p) == (1, 2, 3)


def test_without_unclean_election_a_partition_whose_isr_is_gone_stays_offline():
    w = three()
    w.alter_partition("t", isr=[1])  # 2 and 3 fell behind
    w.expire(1)
    p = w.partition("t")
    assert (p.leader, p.isr) == (-1, (1,))


def test_with_unclean_election_a_live_replica_outside_the_isr_leads_alone_and_recovers():
    w = three(unclean=True)
    w.alter_partition("t", isr=[1])
    w.expire(1)
    p = w.partition("t")
    assert (p.leader, p.isr, p.leader_recovery_state) == (2, (2,), RECOVERING)


def test_a_topic_config_turns_unclean_election_on_or_off_against_the_broker_default():
    w = World(unclean=False)
    w.live(1, 2)
    w.topic("risky", [[1, 2]], unclean_leader_election_enable="true")
    w.topic("safe", [[1, 2]])
    for name in ("risky", "safe"):
        w.alter_partition(name, isr=[1])
    w.expire(1)
    assert (w.partition("risky").leader, w.partition("safe").leader) == (2, -1)
    other = World(unclean=True)
    other.live(1, 2)
    other.topic("safe", [[1, 2]], unclean_leader_election_enable="false")
    other.alter_partition("safe", isr=[1])
    other.expire(1)
    assert other.partition("safe").leader == -1


def test_a_cluster_wide_dynamic_config_sets_the_unclean_default():
    w = World(unclean=False)
    w.live(1, 2)
    w.topic("t", [[1, 2]])
    w.commit([m.ConfigRecord(resource_type=4, resource_name="", name="unclean.leader.election.enable", value="true")])
    w.alter_partition("t", isr=[1])
    w.expire(1)
    assert w.partition("t").leader == 2


def test_an_isr_member_coming_back_brings_its_offline_partition_back_under_a_new_epoch():
    w = three()
    w.expire(2, 3)
    w.expire(1, now=2 * SESSION)
    epoch = w.partition("t").leader_epoch
    w.heartbeat(1, now=2 * SESSION + 1)
    p = w.partition("t")
    assert (p.leader, p.isr, p.leader_epoch) == (1, (1,), epoch + 1)


def test_a_replica_outside_the_isr_coming_back_does_not_lead_without_unclean_election():
    w = three()
    w.expire(2, 3)
    w.expire(1, now=2 * SESSION)
    w.heartbeat(2, now=2 * SESSION + 1)
    assert w.partition("t").leader == -1
    unclean = three(unclean=True)
    unclean.expire(2, 3)
    unclean.expire(1, now=2 * SESSION)
    unclean.heartbeat(2, now=2 * SESSION + 1)
    p = unclean.partition("t")
    assert (p.leader, p.isr, p.leader_recovery_state) == (2, (2,), RECOVERING)


def test_a_restarted_leader_is_replaced_at_once_by_an_isr_member():
    w = three()
    w.register(1, incarnation=Uuid.random())
    p = w.partition("t")
    assert (p.leader, p.isr) == (2, (2, 3)) and w.image.brokers[1].fenced


def test_controlled_shutdown_moves_leadership_to_another_isr_member_first():
    w = three()
    w.topic("follower", [[2, 1]])
    resp = w.heartbeat(1, want_shut_down=True)
    assert not resp.should_shut_down and not resp.is_fenced
    b = w.image.brokers[1]
    assert b.in_controlled_shutdown and not b.fenced
    assert (w.partition("t").leader, w.partition("t").isr) == (2, (2, 3))
    assert (w.partition("follower").leader, w.partition("follower").isr) == (2, (2,))


def test_a_shutting_down_broker_goes_once_the_other_brokers_have_seen_its_leaderships_move():
    w = three()
    w.heartbeat(2)
    w.heartbeat(3)  # both report offsets from before the move
    w.heartbeat(1, want_shut_down=True)
    assert not w.heartbeat(1, want_shut_down=True).should_shut_down
    w.heartbeat(2)
    assert not w.heartbeat(1, want_shut_down=True).should_shut_down
    w.heartbeat(3)
    resp = w.heartbeat(1, want_shut_down=True)
    assert resp.should_shut_down and resp.is_fenced and w.image.brokers[1].fenced


def test_a_broker_that_leads_nothing_is_told_to_shut_down_at_once():
    w = three()
    resp = w.heartbeat(3, want_shut_down=True)
    assert resp.should_shut_down and resp.is_fenced
    assert w.partition("t").isr == (1, 2) and w.image.brokers[3].fenced


def test_a_partition_whose_only_isr_member_shuts_down_goes_offline_and_the_broker_then_goes():
    w = World()
    w.live(1)
    w.topic("t", [[1]])
    assert not w.heartbeat(1, want_shut_down=True).should_shut_down
    assert (w.partition("t").leader, w.partition("t").isr) == (-1, (1,))
    assert w.heartbeat(1, want_shut_down=True).should_shut_down  # no other active broker to wait for


def test_a_broker_in_controlled_shutdown_is_never_elected_even_uncleanly():
    w = three(unclean=True)
    w.topic("u", [[2, 1]])
    w.heartbeat(1, want_shut_down=True)
    w.heartbeat(3, now=SESSION - 1)
    assert not w.heartbeat(1, now=SESSION - 1, want_shut_down=True).should_shut_down  # 2 has not caught up
    w.commit(w.cc.expire_sessions(w.image, SESSION))
    assert w.image.brokers[2].fenced and not w.image.brokers[1].fenced
    assert (w.partition("u").leader, w.partition("u").isr) == (-1, (2,))
    assert w.partition("t").leader == 3


def test_a_controller_that_takes_over_a_controlled_shutdown_finishes_it():
    w = three()
    w.heartbeat(1, want_shut_down=True)
    successor = w.cc.__class__("c", SESSION, 21)
    successor.activate(w.image, 0)
    w.cc = successor
    assert w.heartbeat(1, want_shut_down=True).should_shut_down


def test_an_unregistered_broker_leaves_every_isr_and_leadership():
    w = three()
    U = m.UnregisterBrokerRequest
    resp = w.decide(w.cc.unregister(w.image, U(broker_id=1)))
    assert resp.error_code == ErrorCode.NONE and 1 not in w.image.brokers
    p = w.partition("t")
    assert (p.leader, p.isr, p.replicas) == (2, (2, 3), (1, 2, 3)) and w.image.offline_replicas(p) == (1,)
    unknown = w.decide(w.cc.unregister(w.image, U(broker_id=1)))
    assert (unknown.error_code, unknown.error_message) == (ErrorCode.BROKER_ID_NOT_REGISTERED,
                                                           "Broker ID 1 is not currently registered")


def test_a_recovering_leader_reports_recovered_through_alter_partition():
    w = three(unclean=True)
    w.alter_partition("t", isr=[1])
    w.expire(1)
    resp = w.alter_partition("t", isr=[2], recovery=RECOVERED)
    assert resp.topics[0].partitions[0].error_code == ErrorCode.NONE
    assert w.partition("t").leader_recovery_state == RECOVERED
