"""A leader's ISR changes on their way to the controller (Kafka's AlterPartitionManager), sans-I/O.

A partition submits its pending change (`Partition.pending`); a partition with a change already
queued is refused, and falls back to its committed ISR (Kafka's OPERATION_NOT_ATTEMPTED). One
AlterPartition request (v3: topic ids, the new ISR with each member's broker epoch) carries every
queued change, and one is in flight at a time. Each partition's answer goes back to it; a
partition answered definitively leaves the queue, one that asks to retry is queued again, one
the answer leaves out stays queued. A top-level error, a lost request or no answer within
controller.socket.timeout.ms sends the queue again after 50 ms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.partition import Partition, PendingIsr

VERSION = 3
RETRY_BACKOFF_MS = 50
R = m.AlterPartitionRequest


@dataclass
class _InFlight:
    correlation_id: int
    deadline: int
    items: dict = field(default_factory=dict)  # (topic id, partition) -> (Partition, PendingIsr)


class AlterPartitionManager:
    def __init__(self, config: ReplicationConfig):
        self.config = config
        self.queued: dict[tuple, tuple[Partition, PendingIsr]] = {}
        self.in_flight: _InFlight | None = None
        self.retry_at = 0

    def submit(self, partition: Partition) -> bool:
        key = (partition.topic_id, partition.index)
        if key in self.queued:
            return False
        self.queued[key] = (partition, partition.pending)
        return True

    def request(self, now_ms: int, broker_id: int, broker_epoch: int,
                correlation_id: int) -> m.AlterPartitionRequest | None:
        """Everything queued, if nothing is in flight and no retry backoff runs; its answer is
        expected with `correlation_id`."""
        if self.in_flight is not None or not self.queued or now_ms < self.retry_at:
            return None
        topics: dict = {}
        for (topic_id, index), (_, pending) in self.queued.items():
            topics.setdefault(topic_id, []).append(R.PartitionData(
                partition_index=index, leader_epoch=pending.leader_epoch, partition_epoch=pending.partition_epoch,
                leader_recovery_state=0,
                new_isr_with_epochs=[R.BrokerState(broker_id=b, broker_epoch=e)
                                     for b, e in zip(pending.isr, pending.broker_epochs)]))
        self.in_flight = _InFlight(correlation_id, now_ms + self.config.controller_socket_timeout_ms, dict(self.queued))
        return R(broker_id=broker_id, broker_epoch=broker_epoch,
                 topics=[R.TopicData(topic_id=t, partitions=ps) for t, ps in topics.items()])

    def on_response(self, correlation_id: int, response: m.AlterPartitionResponse, now_ms: int) -> None:
        flight = self.in_flight
        if flight is None or flight.correlation_id != correlation_id:
            return  # late (given up on), duplicated or unknown
        self.in_flight = None
        if response.error_code != ErrorCode.NONE:  # STALE_BROKER_EPOCH, NOT_CONTROLLER, ...: all again
            self.retry_at = now_ms + RETRY_BACKOFF_MS
            return
        for t in response.topics:
            for pd in t.partitions:
                key = (t.topic_id, pd.partition_index)
                item = flight.items.get(key)
                if item is None:
                    continue
                if self.queued.get(key) is item:
                    del self.queued[key]
                partition, pending = item
                if partition.on_alter_partition(pending, now_ms, ErrorCode(pd.error_code), pd.leader_epoch,
                                                pd.partition_epoch, tuple(pd.isr)):
                    self.queued.setdefault(key, item)

    def failed(self, correlation_id: int, now_ms: int) -> None:
        """The request in flight will get no answer: send the queue again after the backoff."""
        if self.in_flight is not None and self.in_flight.correlation_id == correlation_id:
            self.in_flight = None
            self.retry_at = now_ms + RETRY_BACKOFF_MS

    def expire(self, now_ms: int) -> int | None:
        """Give up on the request in flight if its answer is overdue; returns its correlation id."""
        if self.in_flight is not None and self.in_flight.deadline <= now_ms:
            correlation_id = self.in_flight.correlation_id
            self.failed(correlation_id, now_ms)
            return correlation_id
        return None

    def next_deadline(self) -> int | None:
        if self.in_flight is not None:
            return self.in_flight.deadline
        return self.retry_at if self.queued and self.retry_at > 0 else None
