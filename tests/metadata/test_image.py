"""What the metadata image says about a partition's replication: one rule per test."""

from kafka_compat.metadata.image import RECOVERING, MetadataImage
from kafka_compat.protocol import messages as m

from .world import World


def test_offline_replicas_are_those_on_fenced_unregistered_or_listenerless_brokers():
    w = World()
    w.live(1, 2, 3, 4)
    w.topic("t", [[1, 2, 3, 4]])
    w.expire(2)
    w.decide(w.cc.unregister(w.image, m.UnregisterBrokerRequest(broker_id=3)))
    p = w.partition("t")
    assert w.image.offline_replicas(p) == (2, 3)
    assert w.image.offline_replicas(p, "PLAINTEXT") == (2, 3)
    assert w.image.offline_replicas(p, "SSL") == (1, 2, 3, 4)


def test_a_partition_change_record_replaces_only_what_it_names_and_bumps_the_partition_epoch():
    w = World()
    w.live(1, 2, 3)
    tid = w.topic("t", [[1, 2]])
    w.commit([m.PartitionChangeRecord(topic_id=tid, partition_id=0, replicas=[3, 1, 2], adding_replicas=[3],
                                      removing_replicas=[2], leader_recovery_state=RECOVERING)])
    p = w.partition("t")
    assert (p.replicas, p.isr, p.adding_replicas, p.removing_replicas) == ((3, 1, 2), (1, 2), (3,), (2,))
    assert (p.leader, p.leader_epoch, p.partition_epoch, p.leader_recovery_state) == (1, 0, 1, RECOVERING)
    assert (p.preferred_leader, p.reassigning) == (3, True)


def test_naming_the_same_leader_again_starts_a_new_leader_epoch():
    w = World()
    w.live(1)
    tid = w.topic("t", [[1]])
    w.commit([m.PartitionChangeRecord(topic_id=tid, partition_id=0, leader=1)])
    assert (w.partition("t").leader, w.partition("t").leader_epoch) == (1, 1)


def test_a_snapshot_keeps_reassignments_and_recovery_states():
    w = World()
    w.live(1, 2, 3)
    tid = w.topic("t", [[1, 2]])
    w.commit([m.PartitionChangeRecord(topic_id=tid, partition_id=0, replicas=[3, 1, 2], adding_replicas=[3],
                                      removing_replicas=[2], leader_recovery_state=RECOVERING)])
    assert MetadataImage(cluster_id="c").apply(w.image.records(), w.image.offset) == w.image
