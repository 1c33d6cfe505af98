"""Idempotent producers: each producer's epoch and last batches' sequence numbers, per partition.

Everything needed is in batch headers (producer id, epoch, base sequence, record count), so
checking an append and rebuilding the state from the log cost one header per batch, never a
record. A retried batch (same epoch and sequence range as one of the producer's last five) is a
duplicate: the append is skipped and the producer told the original offsets. Out-of-order
sequences and stale epochs are refused, with Kafka's rules and error codes.
"""

from __future__ import annotations

from collections import deque

from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records.batch import NO_PRODUCER_EPOCH, NO_PRODUCER_ID, BatchHeader

MAX_BATCHES_KEPT = 5  # Kafka keeps (and idempotent producers keep in flight) at most five
INT32_MAX = 0x7FFFFFFF


class _Producer:
    __slots__ = ("epoch", "batches")

    def __init__(self, epoch: int):
        self.epoch = epoch
        # first/last sequence, first/last offset
        self.batches: deque[tuple[int, int, int, int]] = deque(maxlen=MAX_BATCHES_KEPT)

    @property
    def last_seq(self) -> int:
        return self.batches[-1][1] if self.batches else -1


def _in_sequence(last: int, first: int) -> bool:
    return first == last + 1 or (first == 0 and last == INT32_MAX)


class ProducerState:
    def __init__(self) -> None:
        self.producers: dict[int, _Producer] = {}

    def check(self, h: BatchHeader) -> tuple[int, int] | None:
        """Check one batch before it is appended. None to append it; (first, last) offsets of the
        original when it is a duplicate. Raises KafkaError: INVALID_PRODUCER_EPOCH or
        OUT_OF_ORDER_SEQUENCE_NUMBER."""
        if h.producer_id == NO_PRODUCER_ID or h.is_control:
            return None
        p = self.producers.get(h.producer_id)
        if p is None:
            return None  # unknown producer (new, or its data is gone): any sequence is accepted
        if h.producer_epoch < p.epoch:
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"producer {h.producer_id} epoch {h.producer_epoch} is older than {p.epoch}")
        last_seq = h.base_sequence + h.last_offset_delta
        if h.producer_epoch == p.epoch:
            for first_seq, seq_end, first_off, last_off in p.batches:
                if first_seq == h.base_sequence and seq_end == last_seq:
                    return first_off, last_off
            if p.batches and not _in_sequence(p.last_seq, h.base_sequence):
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {h.producer_id}: sequence {h.base_sequence} does not follow {p.last_seq}")
        elif h.base_sequence != 0 and p.epoch != NO_PRODUCER_EPOCH:
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {h.producer_id}: new epoch {h.producer_epoch} must start at sequence 0")
        return None

    def update(self, h: BatchHeader, first_offset: int) -> None:
        """Record an appended batch (its base offset as assigned by the log)."""
        if h.producer_id == NO_PRODUCER_ID or h.is_control:
            return
        p = self.producers.get(h.producer_id)
        if p is None or h.producer_epoch > p.epoch:
            p = self.producers[h.producer_id] = _Producer(h.producer_epoch)
        p.batches.append((h.base_sequence, h.base_sequence + h.last_offset_delta, first_offset,
                          first_offset + h.last_offset_delta))

    @classmethod
    def from_log(cls, log) -> ProducerState:
        """Rebuild from the log's batch headers (one read per batch, no record decoding)."""
        state = cls()
        for seg in log.segments:
            for _, h in seg.headers(0):
                state.update(h, h.base_offset)
        return state
