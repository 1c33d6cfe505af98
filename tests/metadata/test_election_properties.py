"""The election rules hold whatever happens: brokers failing, returning, restarting, shutting down;
leaders shrinking and growing ISRs (and sending stale or nonsense requests); operators electing,
reassigning, cancelling and switching unclean election on and off.

After every step, in the image: an ISR is never empty and lies within the replicas, a leader is
in its ISR and is an active broker, reassignment sets lie within the replicas. Across steps:
leader and partition epochs only grow, one leader epoch has one leader. In the log: no record
empties an ISR.
"""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kafka_compat.metadata.elections import PREFERRED, UNCLEAN
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid

from .world import SESSION, World

BROKERS = (1, 2, 3, 4)
broker = st.sampled_from(BROKERS)
topic = st.sampled_from(("a", "b", "c"))
index = st.integers(0, 2)
subset = st.lists(broker, min_size=0, max_size=4, unique=True)


class Elections(RuleBasedStateMachine):
    @initialize(unclean=st.booleans(), seed=st.integers(0, 1000))
    def start(self, unclean, seed):
        self.w = World(unclean=unclean, seed=seed)
        self.now = 0
        self.w.live(*BROKERS)
        C = m.CreateTopicsRequest
        topics = [C.CreatableTopic(name=n, num_partitions=3, replication_factor=rf)
                  for n, rf in (("a", 3), ("b", 2), ("c", 1))]
        self.w.decide(self.w.ctl.create_topics(self.w.image, C(topics=topics)))
        self.epochs = {}  # (topic id, partition) -> (leader epoch, partition epoch)
        self.leaders = {}  # (topic id, partition, leader epoch) -> leader
        self.checked = 0  # records of the log already checked

    def tick(self, ms=1):
        self.now += ms
        return self.now

    def partition(self, name, i):
        t = self.w.image.topics[name]
        return t.partitions[i % len(t.partitions)]

    # -- brokers ----------------------------------------------------------------------------

    @rule(b=broker)
    def fail(self, b):
        if b in self.w.image.brokers and not self.w.image.brokers[b].fenced:
            self.w.expire(b, now=self.tick(2 * SESSION))

    @rule(b=broker)
    def come_back(self, b):
        if b in self.w.image.brokers:
            self.w.heartbeat(b, now=self.tick())

    @rule(b=broker)
    def restart(self, b):
        self.w.register(b, now=self.tick(), incarnation=Uuid.random())
        self.w.heartbeat(b, now=self.tick())

    @rule(b=broker)
    def shut_down(self, b):
        if b in self.w.image.brokers:
            self.w.heartbeat(b, now=self.tick(), want_shut_down=True)

    @rule(b=broker)
    def unregister(self, b):
        self.w.decide(self.w.cc.unregister(self.w.image, m.UnregisterBrokerRequest(broker_id=b)))

    # -- leaders and operators --------------------------------------------------------------

    @rule(name=topic, i=index, isr=subset, sender=broker, stale=st.booleans(), version=st.integers(0, 3))
    def alter_isr(self, name, i, isr, sender, stale, version):
        p = self.partition(name, i)
        if p.leader >= 0 and not stale:
            sender = p.leader
        if sender in self.w.image.brokers:
            epochs = {"leader_epoch": p.leader_epoch - 1} if stale else {}
            self.w.alter_partition(name, p.partition, isr, sender=sender, version=version, **epochs)

    @rule(name=topic, i=index, unclean=st.booleans())
    def elect(self, name, i, unclean):
        E = m.ElectLeadersRequest
        req = E(election_type=UNCLEAN if unclean else PREFERRED,
                topic_partitions=[E.TopicPartitions(topic=name, partitions=[self.partition(name, i).partition])])
        self.w.decide(self.w.ctl.elect_leaders(self.w.image, req, 2))

    @rule(name=topic, i=index, replicas=subset, cancel=st.booleans())
    def reassign(self, name, i, replicas, cancel):
        A = m.AlterPartitionReassignmentsRequest
        req = A(topics=[A.ReassignableTopic(name=name, partitions=[A.ReassignablePartition(
            partition_index=self.partition(name, i).partition, replicas=None if cancel else replicas)])])
        self.w.decide(self.w.ctl.alter_partition_reassignments(self.w.image, req))

    @rule(name=topic, on=st.booleans())
    def switch_unclean(self, name, on):
        self.w.config(name, "unclean.leader.election.enable", "true" if on else "false")
        self.w.commit(self.w.ctl.elect_unclean_leaders(self.w.image))

    @rule(percentage=st.sampled_from((0, 10, 50)))
    def rebalance(self, percentage):
        self.w.commit(self.w.ctl.rebalance_leaders(self.w.image, percentage))

    # -- the rules --------------------------------------------------------------------------

    @invariant()
    def partitions_are_consistent(self):
        image = self.w.image
        for t in image.topics.values():
            for p in t.partitions.values():
                assert p.isr and set(p.isr) <= set(p.replicas), p
                assert len(set(p.replicas)) == len(p.replicas), p
                assert set(p.adding_replicas) | set(p.removing_replicas) <= set(p.replicas), p
                if p.leader >= 0:
                    assert p.leader in p.isr and image.is_active(p.leader), p

    @invariant()
    def epochs_only_grow_and_name_one_leader(self):
        for t in self.w.image.topics.values():
            for p in t.partitions.values():
                key = (t.topic_id, p.partition)
                leader_epoch, partition_epoch = self.epochs.get(key, (-1, -1))
                assert p.leader_epoch >= leader_epoch and p.partition_epoch >= partition_epoch, p
                self.epochs[key] = (p.leader_epoch, p.partition_epoch)
                assert self.leaders.setdefault((*key, p.leader_epoch), p.leader) == p.leader, p

    @invariant()
    def no_record_empties_an_isr(self):
        for r in self.w.log[self.checked:]:
            if isinstance(r, (m.PartitionRecord, m.PartitionChangeRecord)):
                assert r.isr is None or r.isr, r
        self.checked = len(self.w.log)


Elections.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_elections = Elections.TestCase
