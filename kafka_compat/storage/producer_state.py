"""Idempotent and transactional producers of one partition (Kafka's ProducerStateManager).

Per producer id: its epoch, its last five batches' sequence ranges and offsets, the epoch of the
transaction coordinator that last wrote it a marker, and the first offset of its ongoing
transaction. Everything needed is in batch headers (plus the one record of a marker), so checking
an append and rebuilding the state from the log never decode a data record.

- `check` / `check_marker` decide an append on the leader before it is written: a retried batch
  (same epoch and sequence range as one of the last five) is a duplicate, answered with the
  original offsets; stale epochs, out-of-order sequences and transactional writes the coordinator
  did not vouch for are refused with Kafka's codes.
- `update` applies a written batch (leader, follower or recovery). A marker ends the producer's
  transaction and returns it as a `CompletedTxn`; the log indexes it if aborted (its last stable
  offset from `completed_lso`) and then calls `complete`.
- The first unstable offset is the first offset of the oldest transaction that is ongoing, or
  completed with its marker not yet under the high watermark (`on_high_watermark` drops those);
  the last stable offset is that, bounded by the high watermark.
- KIP-890 verification: a transactional batch that starts a transaction is accepted only with the
  guard `verification_guard` handed out before the partition leader asked the coordinator whether
  the partition is in the transaction (`transaction.partition.verification.enable`).
- Snapshots (`to_snapshot` / `from_snapshot`) are Kafka's `.snapshot` file format, version 1:
  version int16, crc uint32 (CRC-32C of everything after it), then an int32 count of entries of
  producer id int64, epoch int16, last sequence int32, last offset int64, offset delta int32,
  timestamp int64, coordinator epoch int32, current transaction first offset int64 (-1: none).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

from crc32c import crc32c

from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records.batch import NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, BatchHeader
from kafka_compat.records.control import ControlRecord, read_marker

MAX_BATCHES_KEPT = 5  # Kafka keeps (and idempotent producers keep in flight) at most five
INT32_MAX = 0x7FFFFFFF
SNAPSHOT_VERSION = 1
_SNAPSHOT_HEAD = struct.Struct(">hIi")  # version, crc, entry count
_SNAPSHOT_CRC_FROM = 6  # the CRC covers the bytes after version and crc
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")


@dataclass
class ProducerStateConfig:
    """The broker settings producer state follows (Kafka's keys and defaults): one object that every
    partition of a broker shares, changed in place when a dynamic setting changes."""

    producer_id_expiration_ms: int = 86_400_000  # producer.id.expiration.ms
    transaction_verification_enabled: bool = True  # transaction.partition.verification.enable


class BatchMetadata(NamedTuple):
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


class CompletedTxn(NamedTuple):
    """A transaction a marker ended: its first offset, the marker's offset, and how it ended."""

    producer_id: int
    first_offset: int
    last_offset: int
    aborted: bool


class ProducerEntry:
    """What the partition knows of one producer."""

    __slots__ = ("epoch", "batches", "coordinator_epoch", "last_timestamp", "txn_first_offset")

    def __init__(self, epoch: int = NO_PRODUCER_EPOCH, coordinator_epoch: int = -1, last_timestamp: int = NO_TIMESTAMP,
                 txn_first_offset: int = -1):
        self.epoch = epoch
        self.batches: deque[BatchMetadata] = deque(maxlen=MAX_BATCHES_KEPT)
        self.coordinator_epoch = coordinator_epoch
        self.last_timestamp = last_timestamp
        self.txn_first_offset = txn_first_offset  # -1: no ongoing transaction

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    def bump_to(self, epoch: int) -> None:
        if epoch != self.epoch:  # a new epoch starts its sequences over
            self.batches.clear()
            self.epoch = epoch


class _Verification:
    __slots__ = ("guard", "lowest_seq", "epoch", "timestamp")

    def __init__(self, sequence: int, epoch: int, timestamp: int):
        self.guard = object()
        self.lowest_seq, self.epoch, self.timestamp = sequence, epoch, timestamp


def _in_sequence(last: int, first: int) -> bool:
    return first == last + 1 or (first == 0 and last == INT32_MAX)


class CorruptSnapshotError(ValueError):
    """A `.snapshot` file that is not Kafka's format or fails its CRC."""


class ProducerState:
    """The producers of one partition; see the module docstring. Not thread-safe: the log's lock."""

    def __init__(self, config: ProducerStateConfig | None = None):
        self.config = config or ProducerStateConfig()
        self.producers: dict[int, ProducerEntry] = {}
        # first offset -> producer id; transactions start in offset order, so insertion order is
        # offset order and the first key is the oldest.
        self._ongoing: dict[int, int] = {}
        self._unreplicated: dict[int, int] = {}  # first offset -> marker offset, marker not yet under the HW
        self._verifying: dict[int, _Verification] = {}

    # == deciding an append (leader) ==============================================================

    def check(self, h: BatchHeader, *, client: bool = True, guard: object | None = None) -> tuple[int, int] | None:
        """Check a data batch before the leader writes it: None to append it, the (first, last)
        offsets of the original when it is a client's retry. `client` False is a coordinator's own
        batch: no sequences (as a batch without a sequence, which only coordinators write). `guard`
        is the verification guard of the request, if any.

        Raises KafkaError: INVALID_PRODUCER_EPOCH, OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_TXN_STATE."""
        pid = h.producer_id
        if pid == NO_PRODUCER_ID or h.is_control:
            return None
        client = client and h.base_sequence != NO_SEQUENCE
        p = self.producers.get(pid)
        if p is not None and client and h.producer_epoch == p.epoch:
            first, last = h.base_sequence, h.last_sequence
            for b in p.batches:
                if b.first_seq == first and b.last_seq == last:
                    return b.first_offset, b.last_offset
        ongoing = p is not None and p.txn_first_offset >= 0
        # A batch of a newer epoch belongs to a new transaction (version 2 bumps the epoch per
        # transaction): it is verified even while the previous one waits for its marker here.
        if (h.is_transactional and not (ongoing and h.producer_epoch == p.epoch)
                and self.config.transaction_verification_enabled):
            verifying = self._verifying.get(pid)
            if guard is None or verifying is None or verifying.guard is not guard:
                raise KafkaError(ErrorCode.INVALID_TXN_STATE, "Record was not part of an ongoing transaction")
        if p is None:
            return None  # a new producer, or one whose data is gone: any epoch and sequence
        if h.producer_epoch < p.epoch:
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"producer {pid} epoch {h.producer_epoch} is older than {p.epoch}")
        if client:
            self._check_sequence(pid, p, h)
        if ongoing and not h.is_transactional:
            raise KafkaError(ErrorCode.INVALID_TXN_STATE,
                             f"producer {pid} has an ongoing transaction: expected a transactional write")
        return None

    def _check_sequence(self, pid: int, p: ProducerEntry, h: BatchHeader) -> None:
        first = h.base_sequence
        verifying = self._verifying.get(pid)
        if verifying is not None and first > verifying.lowest_seq:
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {pid}: sequence {first} is above {verifying.lowest_seq}, still being verified")
        if h.producer_epoch != p.epoch:
            if first != 0 and p.epoch != NO_PRODUCER_EPOCH:
                raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                                 f"producer {pid}: new epoch {h.producer_epoch} must start at sequence 0, not {first}")
        elif p.epoch != NO_PRODUCER_EPOCH and not _in_sequence(p.last_seq, first):
            raise KafkaError(ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                             f"producer {pid}: sequence {first} does not follow {p.last_seq}")

    def check_marker(self, h: BatchHeader, marker: ControlRecord) -> None:
        """Check a transaction marker before the leader writes it. A marker for a producer the
        partition does not know is written anyway (its data may be gone), as Kafka does.

        Raises KafkaError: INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED."""
        p = self.producers.get(h.producer_id)
        if p is None:
            return
        if h.producer_epoch < p.epoch:
            raise KafkaError(ErrorCode.INVALID_PRODUCER_EPOCH,
                             f"marker for producer {h.producer_id} has epoch {h.producer_epoch}, older than {p.epoch}")
        if marker.coordinator_epoch < p.coordinator_epoch:
            raise KafkaError(ErrorCode.TRANSACTION_COORDINATOR_FENCED,
                             f"marker for producer {h.producer_id} from coordinator epoch {marker.coordinator_epoch}, "
                             f"older than {p.coordinator_epoch}")

    def verification_guard(self, producer_id: int, sequence: int, epoch: int, now_ms: int) -> object | None:
        """KIP-890: the guard a produce request carries while the leader asks the transaction
        coordinator whether this partition is in the producer's transaction; None when the
        producer's transaction is already ongoing here, or verification is off (nothing to verify)."""
        if not self.config.transaction_verification_enabled:
            return None
        p = self.producers.get(producer_id)
        if p is not None and p.txn_first_offset >= 0 and p.epoch == epoch:
            return None
        v = self._verifying.get(producer_id)
        if v is None:
            v = self._verifying[producer_id] = _Verification(sequence, epoch, now_ms)
        elif epoch == v.epoch and sequence < v.lowest_seq:
            v.lowest_seq = sequence  # a lower sequence failed and came back: block what is above it
        elif epoch > v.epoch:
            v.epoch, v.lowest_seq = epoch, sequence
        return v.guard

    # == applying what was written ================================================================

    def update(self, h: BatchHeader, first_offset: int, marker: ControlRecord | None = None) -> CompletedTxn | None:
        """Apply a written batch at `first_offset`; for a control batch `marker` is its record
        (None for one the cleaner emptied: it ends the transaction, indexed as not aborted).
        Returns the transaction a marker ended, if the producer had one ongoing."""
        pid = h.producer_id
        if pid == NO_PRODUCER_ID:
            return None
        p = self.producers.get(pid)
        if p is None:
            p = self.producers[pid] = ProducerEntry()
        if h.is_transactional:
            self._verifying.pop(pid, None)  # the transaction started or ended: nothing left to verify
        p.bump_to(h.producer_epoch)
        p.last_timestamp = h.max_timestamp
        if h.is_control:
            if marker is not None:
                p.coordinator_epoch = marker.coordinator_epoch
            start, p.txn_first_offset = p.txn_first_offset, -1
            if start < 0:
                return None  # a marker for a transaction without data here changes nothing
            return CompletedTxn(pid, start, first_offset, marker is not None and marker.is_abort)
        last = first_offset + h.last_offset_delta
        p.batches.append(BatchMetadata(h.base_sequence, h.last_sequence, first_offset, last))
        if h.is_transactional and p.txn_first_offset < 0:
            p.txn_first_offset = first_offset
            self._ongoing[first_offset] = pid
        return None

    def completed_lso(self, txn: CompletedTxn) -> int:
        """The last stable offset once `txn` is complete (what the transaction index records): the
        first offset of the oldest other ongoing transaction, else the offset after the marker."""
        for first, pid in self._ongoing.items():
            if pid != txn.producer_id:
                return first
        return txn.last_offset + 1

    def complete(self, txn: CompletedTxn) -> None:
        """`txn`'s marker is written (and indexed): it stays unstable until the high watermark
        passes the marker."""
        self._ongoing.pop(txn.first_offset, None)
        self._unreplicated[txn.first_offset] = txn.last_offset

    def on_high_watermark(self, high_watermark: int) -> None:
        if self._unreplicated:
            self._unreplicated = {f: m for f, m in self._unreplicated.items() if m >= high_watermark}

    # == reading ==================================================================================

    def first_unstable_offset(self) -> int | None:
        first = next(iter(self._ongoing), None)
        if self._unreplicated:
            oldest = min(self._unreplicated)
            if first is None or oldest < first:
                return oldest
        return first

    def ongoing_transactions(self) -> dict[int, int]:
        """{first offset: producer id} of the transactions without a marker, oldest first."""
        return dict(self._ongoing)

    def has_ongoing_transaction(self, producer_id: int) -> bool:
        p = self.producers.get(producer_id)
        return p is not None and p.txn_first_offset >= 0

    # == lifetime =================================================================================

    def remove_expired(self, now_ms: int) -> int:
        """Forget producers idle for producer.id.expiration.ms without an ongoing transaction, and
        verifications as old; returns how many producers went."""
        limit = self.config.producer_id_expiration_ms
        expired = [pid for pid, p in self.producers.items()
                   if p.txn_first_offset < 0 and now_ms - p.last_timestamp >= limit]
        for pid in expired:
            del self.producers[pid]
        self._verifying = {pid: v for pid, v in self._verifying.items() if now_ms - v.timestamp < limit}
        return len(expired)

    def to_snapshot(self) -> bytes:
        """Kafka's `.snapshot` file content (see the module docstring)."""
        out = bytearray(_SNAPSHOT_HEAD.pack(SNAPSHOT_VERSION, 0, len(self.producers)))
        pack = _SNAPSHOT_ENTRY.pack
        for pid, p in self.producers.items():
            b = p.batches[-1] if p.batches else None
            out += pack(pid, p.epoch, b.last_seq if b else NO_SEQUENCE, b.last_offset if b else -1,
                        b.last_offset - b.first_offset if b else 0, p.last_timestamp, p.coordinator_epoch,
                        p.txn_first_offset)
        struct.pack_into(">I", out, 2, crc32c(memoryview(out)[_SNAPSHOT_CRC_FROM:]))
        return bytes(out)

    @classmethod
    def from_snapshot(cls, data: bytes, config: ProducerStateConfig | None = None,
                      now_ms: int | None = None) -> ProducerState:
        """Read a `.snapshot`; producers already expired at `now_ms` are left out, as Kafka does.
        Raises CorruptSnapshotError."""
        if len(data) < _SNAPSHOT_HEAD.size:
            raise CorruptSnapshotError(f"snapshot of {len(data)} bytes is too short")
        version, crc, count = _SNAPSHOT_HEAD.unpack_from(data)
        if version != SNAPSHOT_VERSION:
            raise CorruptSnapshotError(f"snapshot version {version} is not {SNAPSHOT_VERSION}")
        if count < 0 or len(data) != _SNAPSHOT_HEAD.size + count * _SNAPSHOT_ENTRY.size:
            raise CorruptSnapshotError(f"snapshot of {len(data)} bytes does not hold {count} entries")
        if crc32c(memoryview(data)[_SNAPSHOT_CRC_FROM:]) != crc:
            raise CorruptSnapshotError("snapshot fails its CRC")
        state = cls(config)
        ongoing = []
        for pid, epoch, last_seq, last_offset, delta, ts, coordinator_epoch, txn_first in \
                _SNAPSHOT_ENTRY.iter_unpack(memoryview(data)[_SNAPSHOT_HEAD.size:]):
            if txn_first < 0 and now_ms is not None and now_ms - ts >= state.config.producer_id_expiration_ms:
                continue
            p = state.producers[pid] = ProducerEntry(epoch, coordinator_epoch, ts, txn_first)
            if last_offset >= 0:
                p.batches.append(BatchMetadata((last_seq - delta) % (INT32_MAX + 1), last_seq, last_offset - delta,
                                               last_offset))
            if txn_first >= 0:
                ongoing.append((txn_first, pid))
        state._ongoing = dict(sorted(ongoing))
        return state

    @classmethod
    def from_log(cls, log) -> ProducerState:
        """Rebuild from every batch of `log` (headers, and the record of each marker)."""
        state = cls()
        for seg in log.segments:
            replay(state, seg, seg.base_offset)
        return state


def replay(state: ProducerState, segment, from_offset: int, index=None) -> None:
    """Apply `segment`'s batches from `from_offset` (a batch boundary) to `state`, as recovery
    does: headers only, and the record of each marker. With `index` (the segment's transaction
    index, emptied by the caller) the aborted transactions whose markers are here are indexed."""
    found = segment.translate_offset(from_offset)
    if found is None:
        return
    for pos, h in segment.headers(found[0]):
        if h.producer_id == NO_PRODUCER_ID:
            continue
        marker = read_marker(segment.read_batch(pos, h), 0, h) if h.is_control else None
        done = state.update(h, h.base_offset, marker)
        if done is not None:
            if index is not None and done.aborted:
                index.append(done, state.completed_lso(done))
            state.complete(done)
