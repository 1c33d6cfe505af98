"""One partition replica on this broker: its log, its role, its high watermark.

The leader appends produce data and reads for consumers up to the high watermark, which is the
lowest log end offset among the in-sync replicas (this broker's own, when it is alone).
"""

from __future__ import annotations

from collections.abc import Callable

from kafka_compat.metadata.image import PartitionImage
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import validate_records
from kafka_compat.records.validator import CLIENT
from kafka_compat.storage.log import AppendInfo, Log
from kafka_compat.storage.producer_state import ProducerState


class Partition:
    """`on_change` is called when the high watermark moves; `sync`, with log.fsync.on.append,
    asks for the log to be synced after an append (`synced` follows)."""

    def __init__(self, topic: str, index: int, topic_id: Uuid, log: Log, node_id: int,
                 on_change: Callable[[Partition], None], sync: Callable[[Partition], None] | None = None):
        self.topic, self.index, self.topic_id = topic, index, topic_id
        self.log = log
        self.node_id = node_id
        self.leader = -1
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self._on_change = on_change  # wakes waiters (long-poll fetches, acks=all produces)
        self._sync = sync
        self._producers: ProducerState | None = None

    @property
    def producers(self) -> ProducerState:
        """Idempotent producers' state, rebuilt from batch headers on first use."""
        if self._producers is None:
            self._producers = ProducerState.from_log(self.log)
        return self._producers

    @property
    def key(self) -> tuple[str, int]:
        return self.topic, self.index

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node_id

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def appended_end(self) -> int:
        """How far this replica's own log counts for acknowledgements: its end, or with
        log.fsync.on.append what is synced of it."""
        return self.log.recovery_point if self._sync is not None else self.log.log_end_offset

    def acknowledged_end(self, acks: int) -> int:
        """The offset an append must lie below to be acknowledged with `acks` (-1 or 1)."""
        return self.high_watermark if acks == -1 else self.appended_end

    @property
    def last_stable_offset(self) -> int:
        return self.log.high_watermark  # no open transactions yet: stable up to the high watermark

    def update(self, state: PartitionImage) -> None:
        """Take the partition's state from the metadata image (leadership, ISR, epochs)."""
        became_leader = state.leader == self.node_id and (self.leader != self.node_id
                                                          or state.leader_epoch != self.leader_epoch)
        self.leader, self.leader_epoch, self.partition_epoch = state.leader, state.leader_epoch, state.partition_epoch
        self.replicas, self.isr = state.replicas, state.isr
        if became_leader and self.log.epochs.latest_epoch < self.leader_epoch:
            self.log.epochs.assign(self.leader_epoch, self.log.log_end_offset)
        if became_leader and self._sync is not None and self.appended_end < self.log.log_end_offset:
            self._sync(self)  # recovered after a crash, never known synced
        self._advance_high_watermark()

    def check_leader(self, current_leader_epoch: int = -1) -> None:
        """Raise the error Kafka answers when this broker cannot serve as the partition's leader."""
        if current_leader_epoch >= 0:
            if current_leader_epoch < self.leader_epoch:
                raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
            if current_leader_epoch > self.leader_epoch:
                raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)
        if not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)

    def append(self, records, acks: int, now_ms: int, produce_version: int | None, min_insync: int, *,
               origin: str = CLIENT) -> AppendInfo:
        """Validate and append produce data (or, with `origin` COORDINATOR, a coordinator's own
        batch) as the leader. Raises KafkaError."""
        self.check_leader()
        if acks == -1 and len(self.isr) < min_insync:
            raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                             f"The size of the current ISR {len(self.isr)} is insufficient to satisfy "
                             f"the min.isr requirement of {min_insync}")
        validated = validate_records(records, self.log.config, now_ms, origin=origin, produce_version=produce_version)
        producers = self.producers
        for _, h in validated.batches:
            duplicate = producers.check(h)
            if duplicate is not None:  # a retry of an appended batch: answer with its offsets
                return AppendInfo(duplicate[0], duplicate[1], -1, self.log.log_start_offset)
        info = self.log.append(validated, self.leader_epoch)
        offset = info.first_offset
        for _, h in validated.batches:
            producers.update(h, offset)
            offset += h.last_offset_delta + 1
        if self._sync is not None:
            self._sync(self)
        self._advance_high_watermark()
        return info

    def synced(self) -> None:
        """The log was synced: appends up to its recovery point may be acknowledged."""
        self._advance_high_watermark()
        self._on_change(self)  # acks=1 waits for the sync, not for the high watermark

    def _advance_high_watermark(self) -> None:
        # The lowest log end offset among in-sync replicas; followers arrive with replication.
        if self.is_leader and self.isr == (self.node_id,):
            new = self.appended_end
            if new > self.log.high_watermark:
                self.log.high_watermark = new
                self._on_change(self)
