"""Brokers' replication cores on real logs in a temp dir, and a hand-driven wire between them.

Tests build the metadata image they want (`Cluster.image`), hand it to every broker, and move
messages when they say so (`exchange`); every message is encoded and decoded at the version the
fetcher sends it with, and time moves only when the test moves it.
"""

from __future__ import annotations

from pathlib import Path

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.replication.alter_partition import VERSION as ALTER_PARTITION_VERSION
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.fetcher import VERSIONS
from kafka_compat.replication.replica_manager import CONTROLLER, ReplicaManager
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager

TOPIC = "t"
TOPIC_ID = Uuid(bytes(range(1, 17)))
VERSIONS = {**VERSIONS, m.ApiKey.ALTER_PARTITION: ALTER_PARTITION_VERSION}


def roundtrip(message, version):
    return type(message).decode(message.encode(version), version)


class Waiters:
    """Remembers which partitions were notified, as a purgatory would wake their waiters."""

    def __init__(self):
        self.notified: list = []

    def notify(self, key) -> None:
        self.notified.append(key)


class Cluster:
    def __init__(self, tmp: Path, brokers=(1, 2, 3), config: ReplicationConfig | None = None, min_isr: int = 2,
                 racks: dict | None = None):
        self.ids = list(brokers)
        self.config = config or ReplicationConfig(replica_lag_time_max_ms=1000, replica_fetch_wait_max_ms=0)
        self.min_isr = min_isr
        self.racks = racks or {}
        self.epochs = {b: 100 + b for b in self.ids}  # registered broker epochs
        self.fenced: set[int] = set()
        self.now = 1000
        self.image_now = MetadataImage(cluster_id="c")
        self.waiters = {b: Waiters() for b in self.ids}
        self.rm = {}
        for b in self.ids:
            logs = LogManager([tmp / f"b{b}"], LogConfig())
            rm = ReplicaManager(b, logs, lambda image: LogConfig(), config=self.config, waiters=self.waiters[b],
                                clock=lambda: self.now)
            rm.broker_epoch = self.epochs[b]
            self.rm[b] = rm
        self.alter_requests: list = []

    def image(self, replicas, isr, leader, leader_epoch, partition_epoch, partitions=(0,)) -> MetadataImage:
        R = m.RegisterBrokerRecord
        records = [m.FeatureLevelRecord(name="metadata.version", feature_level=21)]
        for b in self.ids:
            records.append(R(broker_id=b, incarnation_id=Uuid(bytes(15) + bytes([b])), broker_epoch=self.epochs[b],
                             rack=self.racks.get(b), fenced=b in self.fenced, end_points=[]))
        records.append(m.TopicRecord(name=TOPIC, topic_id=TOPIC_ID))
        records.append(m.ConfigRecord(resource_type=2, resource_name=TOPIC, name="min.insync.replicas",
                                      value=str(self.min_isr)))
        for p in partitions:
            records.append(m.PartitionRecord(partition_id=p, topic_id=TOPIC_ID, replicas=list(replicas), isr=list(isr),
                                             leader=leader, leader_epoch=leader_epoch, partition_epoch=partition_epoch))
        return MetadataImage(cluster_id="c").apply(records, len(records))

    def apply(self, image: MetadataImage, brokers=None) -> None:
        for b in brokers or self.ids:
            rm = self.rm[b]
            rm.apply_image(rm.image, image, self.now)
        self.image_now = image

    def p(self, broker: int, index: int = 0):
        return self.rm[broker].partitions[(TOPIC, index)]

    def produce(self, leader: int, *values: bytes, acks: int = -1, index: int = 0):
        batch = build_batch([Record(None, v, self.now) for v in values])
        return self.p(leader, index).append(batch, acks, self.now)

    def exchange(self, broker: int, *, drop_alter: bool = False) -> list:
        """Send what `broker` has to send now, answer it at its destination, deliver the answers.
        AlterPartition requests are kept in `alter_requests` for the test to answer (unless the
        test answers them itself); returns the outbound list."""
        rm = self.rm[broker]
        out = rm.poll(self.now)
        for o in out:
            version = VERSIONS[o.message.API_KEY]
            request = roundtrip(o.message, version)
            if o.dest == CONTROLLER:
                if not drop_alter:
                    self.alter_requests.append((broker, o.correlation_id, request))
                continue
            leader = self.rm[o.dest]
            if isinstance(request, m.FetchRequest):
                response, _ = leader.fetch_for_follower(request, version, self.now)
                response = self.bytes_records(response)
            elif isinstance(request, m.OffsetForLeaderEpochRequest):
                response = leader.offsets_for_leader_epoch(request)
            else:
                response = leader.list_offsets_for_replica(request)
            rm.on_response(o.correlation_id, roundtrip(response, version), self.now)
        return out

    @staticmethod
    def bytes_records(response):
        for t in response.responses:
            for pd in t.partitions:
                if hasattr(pd.records, "read"):
                    pd.records = pd.records.read()
        return response

    def answer_alter(self, error=0, *, partition_error=0, isr=None, partition_epoch=None) -> m.AlterPartitionRequest:
        """Answer the oldest AlterPartition as a controller that accepts it (or with an error)."""
        broker, corr, req = self.alter_requests.pop(0)
        R = m.AlterPartitionResponse
        topics = []
        for t in req.topics:
            parts = []
            for pd in t.partitions:
                new_isr = [b.broker_id for b in pd.new_isr_with_epochs] if isr is None else isr
                parts.append(R.PartitionData(partition_index=pd.partition_index, error_code=partition_error,
                                             leader_id=broker, leader_epoch=pd.leader_epoch, isr=new_isr,
                                             partition_epoch=pd.partition_epoch + 1 if partition_epoch is None
                                             else partition_epoch))
            topics.append(R.TopicData(topic_id=t.topic_id, partitions=parts))
        response = R(error_code=error, topics=topics)
        self.rm[broker].on_response(corr, roundtrip(response, ALTER_PARTITION_VERSION), self.now)
        return req
