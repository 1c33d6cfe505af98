"""A metadata log in memory for controller tests: decisions are taken against the image, their
records go through KRaft's framing and are applied at the next offsets; requests and responses
go through the wire codec at the version a peer would use.
"""

from __future__ import annotations

import random

from kafka_compat.metadata.cluster_control import ClusterControl, registration_request
from kafka_compat.metadata.controller import Controller, ControllerDefaults
from kafka_compat.metadata.image import TOPIC_RESOURCE, MetadataImage, PartitionImage
from kafka_compat.metadata.records import decode_record, encode_record
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid

SESSION = 1000


def wire(message, version: int):
    """`message` as a peer speaking `version` would see it."""
    return type(message).decode(message.encode(version), version)


class World:
    def __init__(self, unclean: bool = False, seed: int = 1):
        self.cc = ClusterControl("c", SESSION, 21, unclean_leader_election_enable=unclean)
        self.ctl = Controller(ControllerDefaults(unclean_leader_election_enable=unclean), random.Random(seed))
        self.image = MetadataImage(cluster_id="c").apply(
            [m.FeatureLevelRecord(name="metadata.version", feature_level=21)], 0)
        self.offset = 1
        self.incarnations: dict[int, Uuid] = {}
        self.log: list = []  # every record committed, in order

    def commit(self, records):
        if records:
            framed = [decode_record(encode_record(r))[0] for r in records]
            self.image = self.image.apply(framed, self.offset + len(framed) - 1)
            self.offset += len(framed)
            self.log += framed
        return records

    def decide(self, decision):
        records, response = decision
        self.commit(records)
        return response

    # -- brokers ----------------------------------------------------------------------------

    def register(self, broker, now=0, incarnation=None, cluster="c", rack=None):
        self.incarnations[broker] = incarnation or self.incarnations.get(broker) or Uuid.random()
        req = registration_request(broker, cluster, self.incarnations[broker],
                                   [("PLAINTEXT", "h", 9000 + broker, "PLAINTEXT")], rack, 21)
        return self.decide(self.cc.register(self.image, wire(req, 2), self.offset, now))

    def heartbeat(self, broker, now=0, offset=None, **flags):
        b = self.image.brokers[broker]
        req = m.BrokerHeartbeatRequest(broker_id=broker, broker_epoch=flags.pop("epoch", b.epoch),
                                       current_metadata_offset=self.offset - 1 if offset is None else offset, **flags)
        return self.decide(self.cc.heartbeat(self.image, wire(req, 1), now, self.offset))

    def live(self, *brokers, now=0, rack=None):
        for b in brokers:
            self.register(b, now, rack=rack)
            self.heartbeat(b, now)

    def expire(self, *brokers, now=SESSION):
        """Every broker but `brokers` heartbeats just in time; `brokers` miss their sessions."""
        for b in self.image.live_brokers():
            if b.node_id not in brokers:
                self.heartbeat(b.node_id, now=now - 1)
        self.commit(self.cc.expire_sessions(self.image, now))

    # -- topics -----------------------------------------------------------------------------

    def topic(self, name, assignment, **configs) -> Uuid:
        self.commit(self.ctl.new_topic(self.image, name, assignment,
                                       {k.replace("_", "."): v for k, v in configs.items()}))
        return self.image.topics[name].topic_id

    def config(self, topic, key, value):
        self.commit([m.ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=topic, name=key, value=value)])

    def partition(self, name, p=0) -> PartitionImage:
        return self.image.topics[name].partitions[p]

    def alter_partition(self, name, p=0, isr=None, *, sender=None, version=3, leader_epoch=None,
                        partition_epoch=None, broker_epochs=None, recovery=0):
        """The partition leader's AlterPartition for `isr` (by default with what it knows now)."""
        state = self.partition(name, p)
        sender = state.leader if sender is None else sender
        A = m.AlterPartitionRequest
        epochs = broker_epochs or {}
        pd = A.PartitionData(partition_index=p, leader_recovery_state=recovery,
                             leader_epoch=state.leader_epoch if leader_epoch is None else leader_epoch,
                             partition_epoch=state.partition_epoch if partition_epoch is None else partition_epoch)
        if version >= 3:
            pd.new_isr_with_epochs = [A.BrokerState(broker_id=b, broker_epoch=epochs.get(b, self._epoch(b)))
                                      for b in isr]
        else:
            pd.new_isr = list(isr)
        td = A.TopicData(topic_name=name, partitions=[pd])
        if version >= 2:
            td.topic_id = self.image.topics[name].topic_id
        req = A(broker_id=sender, broker_epoch=self._epoch(sender), topics=[td])
        response = self.decide(self.ctl.alter_partition(self.image, wire(req, version), version))
        return wire(response, version)

    def _epoch(self, broker):
        b = self.image.brokers.get(broker)
        return b.epoch if b is not None else -1
