"""One partition's log: segments in a directory, offsets, reads, truncation, retention, flushing.

Thread model: one lock guards the segment list and the offsets. Appends, truncations, retention
and the cleaner's segment swap take it; reads take it only to snapshot the segment list, then
pread without it. fsyncs of log files run outside it. Synchronous: the broker calls these from
its trio thread (appends, reads, cheap maintenance) or through `trio.to_thread` (compaction,
flushes and syncs); nothing here imports trio.

The high watermark belongs to the replication layer: it sets `high_watermark` (a single node sets
it to the log end offset after each append). Retention and DeleteRecords never remove data above
it, as in Kafka.

Producers (`producers`, storage.producer_state) are the log's too: every append, as leader or
follower, updates them from the batch headers; a transaction marker that ends an aborted
transaction adds it to its segment's `.txnindex`. The last stable offset follows from them and the
high watermark, and read_committed fetches read up to it with the aborted transactions of the
range (`read_committed`). Producer state is snapshotted at every roll and at close, so opening a
log replays only the batches after the newest snapshot.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import structlog

from kafka_compat.records.batch import (
    HEADER_SIZE,
    NO_TIMESTAMP,
    OFFSET_LENGTH_EPOCH,
    check_crc,
    iter_headers,
    read_header,
)
from kafka_compat.records.control import build_marker_batch, read_marker
from kafka_compat.records.validator import CLIENT, COORDINATOR, ValidatedRecords, validate_records
from kafka_compat.storage import checkpoint, producer_snapshots
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.errors import OffsetOutOfRangeError, OffsetsOutOfOrderError
from kafka_compat.storage.file_slice import FileSlice, SegmentFile
from kafka_compat.storage.index import AbortedTxn
from kafka_compat.storage.leader_epoch import LeaderEpochCache
from kafka_compat.storage.producer_state import ProducerState, ProducerStateConfig
from kafka_compat.storage.recovery import load_segments
from kafka_compat.storage.segment import DELETED, INT32_MAX, LogSegment

log = structlog.get_logger("kafka_compat.storage")

EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP = -2, -1, -3, -4


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class AppendInfo(NamedTuple):
    """What an append did: offsets assigned (-1, -1 for empty input), the LogAppendTime stamped
    (-1 for CreateTime) and the log start offset, as a ProduceResponse reports them."""

    first_offset: int
    last_offset: int
    log_append_time: int
    log_start_offset: int


class TimestampAndOffset(NamedTuple):
    timestamp: int
    offset: int
    leader_epoch: int  # -1 when unknown


def parse_dir_name(name: str) -> tuple[str, int]:
    """'<topic>-<partition>' -> (topic, partition); ValueError if it is not one."""
    topic, _, partition = name.rpartition("-")
    if not topic or not partition.isdigit():
        raise ValueError(f"not a partition directory: {name}")
    return topic, int(partition)


class Log:
    """The log of one partition, stored in `directory` (named `<topic>-<partition>`).

    Opening runs recovery (see storage.recovery); `clean_shutdown` skips re-validation.
    `fsync_on_append` (log.fsync.on.append): appends are left for `sync`, which the caller runs
    before acknowledging them. `clock` returns milliseconds and drives segment.ms rolls and file deletion delays; tests
    pass a fake one. `producer_config` carries the broker's producer settings (expiration, KIP-890
    verification). Raises OSError if the directory cannot be read (the caller fails the log dir).
    """

    def __init__(self, directory: Path, config: LogConfig, *, recovery_point: int = 0, log_start_offset: int = 0,
                 high_watermark: int = 0, clean_shutdown: bool = False, fsync_on_append: bool = False,
                 clock: Callable[[], int] = wall_clock_ms, producer_config: ProducerStateConfig | None = None):
        self.dir = Path(directory)
        self.topic, self.partition = parse_dir_name(self.dir.name)
        self.config = config
        self.fsync_on_append = fsync_on_append
        self.clock = clock
        self._lock = threading.RLock()
        self.dir.mkdir(parents=True, exist_ok=True)
        loaded = load_segments(self.dir, index_interval_bytes=config.index_interval_bytes,
                               index_max_bytes=config.segment_index_bytes, recovery_point=recovery_point,
                               log_start_offset=log_start_offset, clean_shutdown=clean_shutdown, name=self.dir.name)
        self._segments: list[LogSegment] = loaded.segments
        self._bases = [s.base_offset for s in self._segments]
        self._next_offset = loaded.next_offset
        self._recovery_point = min(loaded.recovery_point, self._next_offset)
        self._log_start_offset = min(max(log_start_offset, self._segments[0].base_offset), self._next_offset)
        self._high_watermark = min(max(high_watermark, self._log_start_offset), self._next_offset)
        self.epochs = LeaderEpochCache(self.dir / checkpoint.LEADER_EPOCH)
        self.epochs.truncate_from_end(self._next_offset)
        self.epochs.truncate_from_start(self._log_start_offset)
        self.producer_config = producer_config or ProducerStateConfig()
        self.producers = self._load_producers(loaded.rebuilt_from)
        self._unflushed_messages = 0
        self._last_flush_ms = clock()
        self._pending_deletes: list[tuple[int, list[Path]]] = []
        # With fsync_on_append: the segment files appended to, and whether a roll created one,
        # since the last `sync`.
        self._unsynced: list[SegmentFile] = []
        self._unsynced_dir = False
        # Bumped by every truncation: a compaction started before one must not swap its result in.
        self.truncations = 0
        # First offset the cleaner has not cleaned (cleaner-offset-checkpoint); kept by LogManager.
        self.clean_offset = 0
        # When the cleaner stamped tombstones with a delete horizon, the earliest such horizon.
        self.next_delete_horizon_ms: int | None = None
        self.closed = False

    # --- properties --------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._next_offset

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        """Set by the replication layer; clamped to [log start offset, log end offset]."""
        with self._lock:
            self._high_watermark = min(max(offset, self._log_start_offset), self._next_offset)
            self.producers.on_high_watermark(self._high_watermark)

    @property
    def last_stable_offset(self) -> int:
        """The first offset not yet decided (an open transaction's first offset, or one whose marker
        the high watermark does not cover yet), at most the high watermark."""
        with self._lock:
            first, hw = self.producers.first_unstable_offset(), self._high_watermark
            return hw if first is None or first >= hw else max(first, self._log_start_offset)

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self._segments)

    @property
    def segments(self) -> list[LogSegment]:
        """A snapshot of the live segments, oldest first."""
        with self._lock:
            return list(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._segments[-1]

    def update_config(self, config: LogConfig) -> None:
        with self._lock:
            self.config = config
            for s in self._segments:
                s.index_interval_bytes = config.index_interval_bytes
                s.fast_size_limit = -1  # re-armed by the next append's slow path

    # --- appends -----------------------------------------------------------------------------

    def append(self, validated: ValidatedRecords, leader_epoch: int, *, origin: str = CLIENT,
               verification_guard: object | None = None) -> AppendInfo:
        """Append validated produce data as the leader: assign offsets from the log end offset by
        patching each batch's base offset (and partition leader epoch) in `validated.buffer`, write
        all of it with one pwrite, index it. Rolls first if the active segment is full or old.

        Batches of idempotent and transactional producers are checked first (storage.producer_state;
        `origin` CLIENT checks sequences, COORDINATOR only epochs, `verification_guard` is the
        request's KIP-890 guard); a client's retry of a written batch is answered with the original
        offsets and nothing is written. Raises KafkaError for a refused batch (nothing written), or
        OSError if the disk fails; the log is then unchanged as far as offsets go (a torn write is
        cut away by recovery).
        """
        batches = validated.batches
        if not batches:
            return AppendInfo(-1, -1, validated.log_append_time, self._log_start_offset)
        buf = validated.buffer
        pack = OFFSET_LENGTH_EPOCH.pack_into
        with self._lock:
            producers = self.producers
            markers = None
            for pos, h in batches:
                if h.producer_id < 0:
                    continue
                if h.is_control:
                    marker = read_marker(buf, pos, h)
                    if marker is not None:
                        producers.check_marker(h, marker)
                    markers = markers or {}
                    markers[pos] = marker
                elif (original := producers.check(h, client=origin == CLIENT, guard=verification_guard)) is not None:
                    return AppendInfo(original[0], original[1], -1, self._log_start_offset)
            first = self._next_offset
            last = first + validated.offset_count - 1
            seg = self._segments[-1]
            if (seg.size + len(buf) > seg.fast_size_limit or validated.max_timestamp > seg.fast_timestamp_limit
                    or last > seg.fast_offset_limit):
                seg = self._maybe_roll(len(buf), validated.max_timestamp, first, last)
            entries = []
            written = []  # producers' batches and their offsets, applied once written
            offset = first
            for pos, h in batches:
                pack(buf, pos, offset, h.batch_length, leader_epoch)
                if h.producer_id >= 0:
                    written.append((h, offset, markers.get(pos) if markers else None))
                offset += h.last_offset_delta + 1
                entries.append((pos, h.size, offset - 1, h.max_timestamp))
            seg.append(buf, entries)
            for h, offset, marker in written:
                self._update_producer(seg, h, offset, marker)
            if leader_epoch > self.epochs.latest_epoch:
                self.epochs.assign(leader_epoch, first)
            self._next_offset = last + 1
            self._after_append(seg, validated.offset_count)
            return AppendInfo(first, last, validated.log_append_time, self._log_start_offset)

    def append_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int, commit: bool,
                      leader_epoch: int, now_ms: int) -> AppendInfo:
        """WriteTxnMarkers on the leader: write the COMMIT or ABORT marker that ends
        `producer_id`'s transaction. A marker for a producer this partition does not know is written
        anyway. Raises KafkaError INVALID_PRODUCER_EPOCH (an older producer epoch) or
        TRANSACTION_COORDINATOR_FENCED (an older coordinator epoch)."""
        batch = build_marker_batch(commit, producer_id, producer_epoch, coordinator_epoch, now_ms)
        return self.append(validate_records(batch, self.config, now_ms, origin=COORDINATOR), leader_epoch,
                           origin=COORDINATOR)

    def verification_guard(self, producer_id: int, sequence: int, epoch: int) -> object | None:
        """KIP-890: the guard a transactional produce carries while the leader verifies with the
        coordinator that this partition is in the transaction; None when nothing needs verifying
        (the producer's transaction is ongoing here)."""
        with self._lock:
            return self.producers.verification_guard(producer_id, sequence, epoch, self.clock())

    def _update_producer(self, seg: LogSegment, h, offset: int, marker) -> None:
        """A batch of a producer is written at `offset` in `seg`: a marker that ends an aborted
        transaction goes into the segment's transaction index, with the LSO after it."""
        producers = self.producers
        done = producers.update(h, offset, marker)
        if done is not None:
            if done.aborted:
                seg.txn_index.append(done, producers.completed_lso(done))
            producers.complete(done)

    def append_as_follower(self, records) -> AppendInfo:
        """Append batches fetched from the leader, keeping their offsets and leader epochs.

        Batches are CRC-checked (RecordsError CORRUPT_MESSAGE); offsets must start at or after the
        log end offset and increase (OffsetsOutOfOrderError otherwise: the caller truncates and
        refetches). Gaps, as left by the leader's compaction, are kept. Producer state follows
        without checks: the leader made them.
        """
        view = memoryview(records).cast("B") if not isinstance(records, memoryview) else records
        batches = []
        for pos, h in iter_headers(view):
            check_crc(view, pos, h)
            batches.append((pos, h))
        if not batches:
            return AppendInfo(-1, -1, NO_TIMESTAMP, self._log_start_offset)
        with self._lock:
            expected = self._next_offset
            for _, h in batches:
                if h.base_offset < expected:
                    raise OffsetsOutOfOrderError(
                        f"{self.dir.name}: batch at offset {h.base_offset} is below the expected {expected}")
                expected = h.next_offset
            first, last = batches[0][1].base_offset, batches[-1][1].last_offset
            seg = self._maybe_roll(len(view), max(h.max_timestamp for _, h in batches), first, last)
            seg.append(view, [(pos, h.size, h.last_offset, h.max_timestamp) for pos, h in batches])
            for pos, h in batches:
                if h.partition_leader_epoch > self.epochs.latest_epoch:
                    self.epochs.assign(h.partition_leader_epoch, h.base_offset)
                if h.producer_id >= 0:
                    self._update_producer(seg, h, h.base_offset, read_marker(view, pos, h) if h.is_control else None)
            self._next_offset = last + 1
            self._after_append(seg, sum(h.last_offset_delta + 1 for _, h in batches))
            return AppendInfo(first, last, NO_TIMESTAMP, self._log_start_offset)

    def _after_append(self, seg: LogSegment, messages: int) -> None:
        if self.fsync_on_append:
            # Synced by `sync`, off the caller's thread; acknowledged only once synced.
            if not self._unsynced or self._unsynced[-1] is not seg.file:
                self._unsynced.append(seg.file)
            return
        self._unflushed_messages += messages
        if self._unflushed_messages >= self.config.flush_messages:
            self.flush()

    def _maybe_roll(self, size: int, max_timestamp: int, first: int, last: int) -> LogSegment:
        seg = self._segments[-1]
        cfg = self.config
        if seg.size == 0:
            if first != seg.base_offset and first > self._next_offset:
                return self._roll(first)  # a follower append after a gap starts where the leader's data does
            return seg
        if seg.first_batch_timestamp is not None and seg.first_batch_timestamp >= 0:
            waited = max_timestamp - seg.first_batch_timestamp
        else:
            waited = self.clock() - seg.created_ms
        if (seg.size + size > cfg.segment_bytes or waited > cfg.segment_ms - cfg.segment_jitter_ms
                or seg.index_full() or last - seg.base_offset > INT32_MAX):
            seg = self._roll(max(first, self._next_offset))
        # Arm the fast check in `append` once the segment's first batch timestamp is known.
        first_ts = seg.first_batch_timestamp
        if seg.size > 0 and first_ts is not None and first_ts >= 0 and not seg.index_full():
            seg.fast_size_limit = cfg.segment_bytes
            seg.fast_timestamp_limit = first_ts + cfg.segment_ms - cfg.segment_jitter_ms
            seg.fast_offset_limit = seg.base_offset + INT32_MAX
        return seg

    def roll(self) -> LogSegment:
        """Start a new active segment at the log end offset (no-op if the active one is empty)."""
        with self._lock:
            return self._roll(self._next_offset)

    def _roll(self, base_offset: int) -> LogSegment:
        old = self._segments[-1]
        if old.size == 0:
            if old.base_offset == base_offset:
                return old
            # An empty active segment is replaced, not kept as an empty segment in the middle.
            self._segments.pop()
            self._bases.pop()
            old.close()
            for p in old.paths():
                p.unlink(missing_ok=True)
        else:
            old.on_roll()
            old.close()
        new = LogSegment.create(self.dir, base_offset, self.config.index_interval_bytes,
                                self.config.segment_index_bytes)
        if self.fsync_on_append:
            self._unsynced_dir = True  # the new file's name must survive a crash too
        self._segments.append(new)
        self._bases.append(base_offset)
        if old.size:  # recovery of the new segment can start from here
            producer_snapshots.write(self.dir, base_offset, self.producers)
        log.info("segment_rolled", dir=self.dir.name, base_offset=base_offset, previous_size=old.size)
        return new

    # --- reads -------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, max_offset: int | None = None,
             min_one_batch: bool = True) -> list[FileSlice]:
        """File ranges holding whole batches from the one containing `offset`, at most `max_bytes`
        in total (but one whole batch regardless when `min_one_batch`), only batches whose last
        offset is below `max_offset` (exclusive; e.g. the high watermark) when given.

        `[]` when `offset` is at the end (or at/after `max_offset`). Raises OffsetOutOfRangeError
        (OFFSET_OUT_OF_RANGE) outside [log start offset, log end offset]. The batch holding
        `offset` comes whole: the client skips records below its fetch offset, as with Kafka.
        """
        with self._lock:
            leo, start = self._next_offset, self._log_start_offset
            i = max(bisect_right(self._bases, offset) - 1, 0)
            segs = self._segments[i:]
        if offset < start or offset > leo:
            raise OffsetOutOfRangeError(f"{self.dir.name}: offset {offset} is outside [{start}, {leo}]")
        upper = leo if max_offset is None else min(max_offset, leo)
        result: list[FileSlice] = []
        remaining = max_bytes
        for k, seg in enumerate(segs):
            if offset >= upper:
                break
            seg_end = segs[k + 1].base_offset if k + 1 < len(segs) else leo
            bound = upper if upper < seg_end else None
            piece = seg.read(offset, remaining, bound, min_one_batch and not result)
            if piece is not None:
                if not len(piece):
                    break
                result.append(piece)
                remaining -= len(piece)
                if remaining <= 0 or bound is not None or piece.position + len(piece) < seg.size:
                    break
            offset = seg_end
        return result

    def read_bytes(self, offset: int, max_bytes: int, max_offset: int | None = None,
                   min_one_batch: bool = True) -> bytes:
        """`read` joined into bytes: for paths that cannot sendfile, and for tests."""
        return b"".join(s.read() for s in self.read(offset, max_bytes, max_offset, min_one_batch))

    def read_committed(self, offset: int, max_bytes: int,
                       min_one_batch: bool = True) -> tuple[list[FileSlice], list[AbortedTxn]]:
        """A read_committed fetch: `read` below the last stable offset, with the aborted
        transactions that overlap what it returns (the consumer skips their batches; a fetch
        response carries them as producer id and first offset)."""
        slices = self.read(offset, max_bytes, self.last_stable_offset, min_one_batch)
        if not slices:
            return slices, []
        return slices, self.aborted_transactions(offset, self._offset_after(slices[-1]))

    def aborted_transactions(self, start: int, upper: int) -> list[AbortedTxn]:
        """The aborted transactions overlapping [start, upper), from the transaction indexes of the
        segment holding `start` onwards (Kafka's collectAbortedTransactions)."""
        with self._lock:
            segs = self._segments[max(bisect_right(self._bases, start) - 1, 0):]
        found: list[AbortedTxn] = []
        for seg in segs:
            txns, complete = seg.txn_index.collect(start, upper)
            found += txns
            if complete:
                break
        return found

    def _offset_after(self, piece: FileSlice) -> int:
        """The first offset after `piece` (it ends on a batch boundary of its segment)."""
        with self._lock:
            segs, leo = list(self._segments), self._next_offset
        for i in range(len(segs) - 1, -1, -1):
            seg = segs[i]
            if seg.file is piece.file:
                end = piece.position + piece.length
                if end + HEADER_SIZE <= seg.size:
                    return read_header(os.pread(seg.file.fd, HEADER_SIZE, end)).base_offset
                return segs[i + 1].base_offset if i + 1 < len(segs) else leo
        return leo  # the segment went meanwhile (retention, compaction): an upper bound still

    def offset_for_timestamp(self, timestamp: int, max_offset: int | None = None) -> TimestampAndOffset | None:
        """ListOffsets: -2 (earliest) and -4 (earliest local) -> log start offset; -1 (latest) ->
        log end offset (or `max_offset` if lower); -3 (max timestamp) -> the first record carrying
        the largest timestamp; t >= 0 -> the first record with timestamp >= t.

        None when no record qualifies or the answer is at/after `max_offset` (Kafka answers
        those with offset -1). Leader epochs come from the batch found or the epoch cache.
        """
        with self._lock:
            start, leo = self._log_start_offset, self._next_offset
            segs = list(self._segments)
        upper = leo if max_offset is None else min(max_offset, leo)
        if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
            return TimestampAndOffset(NO_TIMESTAMP, start, self.epochs.epoch_for_offset(start))
        if timestamp == LATEST_TIMESTAMP:
            epoch = self.epochs.latest_epoch if upper == leo else self.epochs.epoch_for_offset(upper)
            return TimestampAndOffset(NO_TIMESTAMP, upper, epoch)
        if timestamp == MAX_TIMESTAMP:
            best = max(segs, key=lambda s: s.max_timestamp)
            ts = best.max_timestamp
            if ts < 0:
                return None
            # The first segment holding the largest timestamp (max() keeps the first of equals).
            found = best.find_offset_by_timestamp(ts, start)
        elif timestamp < 0:
            return None
        else:
            found = None
            for s in segs:
                if s.max_timestamp >= timestamp and (found := s.find_offset_by_timestamp(timestamp, start)):
                    break
        if found is None or found[0] >= upper:
            return None
        offset, ts, epoch = found
        return TimestampAndOffset(ts, offset, epoch if epoch >= 0 else self.epochs.epoch_for_offset(offset))

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (epoch, end offset) as LeaderEpochCache.end_offset_for_epoch."""
        with self._lock:
            return self.epochs.end_offset_for_epoch(epoch, self._next_offset)

    # --- truncation and deletion ---------------------------------------------------------------

    def truncate_to(self, offset: int) -> bool:
        """Replication: drop every batch whose last offset is >= `offset` and make `offset` the log
        end offset. If `offset` falls inside a batch, the batch goes whole and the log ends at its
        base offset instead (what the files say, so a restart agrees; Kafka keeps `offset` in
        memory). Below the log start offset this is `truncate_fully_and_start_at`. Returns False
        if there was nothing at or above `offset`; the leader-epoch cache is cut at the log end
        even then (an epoch this replica started as leader but wrote nothing in would otherwise
        stay, and conflict with what the new leader says)."""
        with self._lock:
            if offset >= self._next_offset:
                self.epochs.truncate_from_end(self._next_offset)
                return False
            if offset < self._log_start_offset:
                self.truncate_fully_and_start_at(offset)
                return True
            self.truncations += 1
            doomed = [s for s in self._segments if s.base_offset > offset]
            if doomed and len(doomed) == len(self._segments):
                doomed = doomed[1:]
            keep = len(self._segments) - len(doomed)
            del self._segments[keep:], self._bases[keep:]
            for s in doomed:
                self._retire(s, "truncation")
            active = self._segments[-1]
            removed, offset = active.truncate_to(offset)
            offset = max(offset, self._log_start_offset)
            self._next_offset = offset
            self._recovery_point = min(self._recovery_point, offset)
            self._high_watermark = min(self._high_watermark, offset)
            self.clean_offset = min(self.clean_offset, offset)
            self.epochs.truncate_from_end(offset)
            self.producers = self._load_producers(None)
            self.producers.on_high_watermark(self._high_watermark)
            log.info("log_truncated", dir=self.dir.name, offset=offset, segments_deleted=len(doomed),
                     bytes_removed=removed)
            return True

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Replication: delete everything and start an empty log at `offset`."""
        with self._lock:
            self.truncations += 1
            old = self._segments
            new = None
            if all(s.base_offset != offset for s in old):
                new = LogSegment.create(self.dir, offset, self.config.index_interval_bytes,
                                        self.config.segment_index_bytes)
            for s in old:
                if new is None and s.base_offset == offset:
                    s.close()
                    for p in s.paths():
                        p.unlink(missing_ok=True)
                else:
                    self._retire(s, "truncation")
            if new is None:
                new = LogSegment.create(self.dir, offset, self.config.index_interval_bytes,
                                        self.config.segment_index_bytes)
            self._segments, self._bases = [new], [offset]
            self._next_offset = self._log_start_offset = self._high_watermark = self._recovery_point = offset
            self.clean_offset = offset
            self.epochs.clear()
            producer_snapshots.delete(self.dir, producer_snapshots.offsets(self.dir))
            self.producers = ProducerState(self.producer_config)
            log.info("log_truncated", dir=self.dir.name, offset=offset, segments_deleted=len(old), fully=True)

    def advance_log_start_offset(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` (never down) and delete the
        segments wholly below it. Raises OffsetOutOfRangeError above the high watermark. Returns
        the new log start offset (the low watermark)."""
        with self._lock:
            if offset > self._high_watermark:
                raise OffsetOutOfRangeError(
                    f"{self.dir.name}: cannot move the log start offset to {offset}, above the high watermark "
                    f"{self._high_watermark}")
            if offset > self._log_start_offset:
                self._log_start_offset = offset
                self.epochs.truncate_from_start(offset)
                self._delete_while(lambda seg, nxt: nxt is not None and nxt.base_offset <= self._log_start_offset,
                                   "log_start_offset")
            return self._log_start_offset

    def delete_old_segments(self, now_ms: int) -> int:
        """Retention: with cleanup.policy=delete, drop the oldest segments whose newest record is
        older than retention.ms, then while the log exceeds retention.bytes by a whole segment;
        always drop segments wholly below the log start offset. Only segments wholly below the high
        watermark go. If every segment qualifies, a new empty segment is rolled first (Kafka does
        the same), so the log end offset is kept. Returns how many segments were deleted."""
        with self._lock:
            cfg = self.config
            deleted = 0
            if cfg.delete and cfg.retention_ms >= 0:
                def expired(seg: LogSegment, nxt) -> bool:
                    ts = seg.max_timestamp
                    return now_ms - (ts if ts != NO_TIMESTAMP else seg.last_modified_ms()) > cfg.retention_ms
                deleted += self._delete_while(expired, "retention_ms")
            if cfg.delete and cfg.retention_bytes >= 0:
                excess = [self.size_in_bytes - cfg.retention_bytes]

                def too_big(seg: LogSegment, nxt) -> bool:
                    if excess[0] - seg.size < 0:
                        return False
                    excess[0] -= seg.size
                    return True
                deleted += self._delete_while(too_big, "retention_bytes")
            deleted += self._delete_while(
                lambda seg, nxt: nxt is not None and nxt.base_offset <= self._log_start_offset, "log_start_offset")
            return deleted

    def _delete_while(self, predicate, reason: str) -> int:
        doomed = []
        segs = self._segments
        for i, seg in enumerate(segs):
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            upper = nxt.base_offset if nxt is not None else self._next_offset
            if self._high_watermark < upper or not predicate(seg, nxt) or (nxt is None and seg.size == 0):
                break
            doomed.append(seg)
        if not doomed:
            return 0
        if len(doomed) == len(segs):
            self._roll(self._next_offset)
        del self._segments[:len(doomed)], self._bases[:len(doomed)]
        for seg in doomed:
            self._retire(seg, reason)
        self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        self.epochs.truncate_from_start(self._log_start_offset)
        first_base = self._segments[0].base_offset
        producer_snapshots.delete(self.dir, [o for o in producer_snapshots.offsets(self.dir) if o < first_base])
        return len(doomed)

    def _retire(self, seg: LogSegment, reason: str) -> None:
        """Take a segment out of service: rename its files `.deleted` and remove them after
        file.delete.delay.ms. Open FileSlices keep reading the old descriptor meanwhile."""
        seg.close()
        seg.rename_to(DELETED)
        delay = self.config.file_delete_delay_ms
        if delay <= 0:
            for p in seg.paths():
                p.unlink(missing_ok=True)
        else:
            self._pending_deletes.append((self.clock() + delay, seg.paths()))
        log.info("segment_deleted", dir=self.dir.name, base_offset=seg.base_offset, size=seg.size, reason=reason)

    def delete_expired_files(self, now_ms: int) -> int:
        """Remove `.deleted` files whose delay has passed; returns how many segments went."""
        with self._lock:
            due = [p for t, p in self._pending_deletes if t <= now_ms]
            self._pending_deletes = [(t, p) for t, p in self._pending_deletes if t > now_ms]
        for paths in due:
            for p in paths:
                p.unlink(missing_ok=True)
        return len(due)

    def replace_segments(self, old: list[LogSegment], new: LogSegment, truncations: int) -> bool:
        """The cleaner's swap: put `new` (files named `.swap`, fully written and synced) in place of
        the consecutive live segments `old`. Refused (False, nothing changed) if the log was
        truncated since the cleaning started or `old` is no longer live and consecutive."""
        with self._lock:
            if self.truncations != truncations or not old:
                return False
            try:
                i = next(k for k, s in enumerate(self._segments) if s is old[0])
            except StopIteration:
                return False
            if self._segments[i:i + len(old)] != old or i + len(old) == len(self._segments):
                return False
            # The markers stay in the cleaned segment (until their horizon), so do their index entries.
            for s in old:
                for txn in s.txn_index.entries:
                    new.txn_index.append(txn, txn.last_stable_offset)
            new.txn_index.file.flush()
            for s in old:
                self._retire(s, "compaction")
            new.rename_to("")
            self._segments[i:i + len(old)] = [new]
            self._bases[i:i + len(old)] = [new.base_offset]
            return True

    # --- producers ---------------------------------------------------------------------------

    def _load_producers(self, rebuild_index_from: int | None) -> ProducerState:
        state = producer_snapshots.load(self.dir, self._segments, log_start_offset=self._log_start_offset,
                                        end_offset=self._next_offset, rebuild_index_from=rebuild_index_from,
                                        config=self.producer_config, now_ms=self.clock())
        state.on_high_watermark(self._high_watermark)
        return state

    def remove_expired_producers(self, now_ms: int) -> int:
        """Forget producers idle for producer.id.expiration.ms (Kafka's periodic check)."""
        with self._lock:
            return self.producers.remove_expired(now_ms)

    # --- flushing and closing ------------------------------------------------------------------

    def flush(self, up_to: int | None = None) -> None:
        """fsync every segment holding offsets below `up_to` (default: all) and advance the
        recovery point to it. The log file fsyncs run outside the lock. A log closed meanwhile
        (deleted, its directory renamed) is left alone: its close flushed it."""
        with self._lock:
            if self.closed:
                return
            up_to = self._next_offset if up_to is None else min(up_to, self._next_offset)
            if up_to <= self._recovery_point and not any(s.needs_flush for s in self._segments):
                return
            segs = [s for s in self._segments if s.needs_flush and s.base_offset < up_to]
            for s in segs:
                s.needs_flush = False
        for s in segs:
            os.fsync(s.file.fd)
        with self._lock:
            if self.closed:
                return
            for s in segs:
                s.flush_indexes()
            checkpoint.fsync_dir(self.dir)
            self._recovery_point = max(self._recovery_point, up_to)
            if up_to >= self._next_offset:
                self._unflushed_messages = 0
            self._last_flush_ms = self.clock()

    def sync(self) -> int:
        """`log.fsync.on.append`: fdatasync what was appended since the last sync (and the
        directory after a roll) and move the recovery point over it; returns the recovery point.
        Blocking: the broker runs it in a worker thread while appends go on (the next sync takes
        those). OSError leaves the appends to the next sync. A closed log was flushed by its close."""
        with self._lock:
            if self.closed:
                return self._recovery_point
            end, truncations = self._next_offset, self.truncations
            files, new_dir = self._unsynced, self._unsynced_dir
            self._unsynced, self._unsynced_dir = [], False
        try:
            for f in files:
                os.fdatasync(f.fd)
            if new_dir:
                checkpoint.fsync_dir(self.dir)
        except OSError:
            with self._lock:
                self._unsynced[:0] = files
                self._unsynced_dir = self._unsynced_dir or new_dir
            raise
        with self._lock:
            if self.truncations == truncations:  # else the synced bytes may not be the log's any more
                self._recovery_point = max(self._recovery_point, end)
            return self._recovery_point

    def flush_due(self, now_ms: int) -> bool:
        """Periodic durability: fsync segments that were rolled (advancing the recovery point to
        the active segment, as Kafka's post-roll flush does) and, if flush.ms has passed since the
        last flush, everything. Returns True if anything was flushed."""
        with self._lock:
            active_base = self._segments[-1].base_offset
            rolled = any(s.needs_flush for s in self._segments[:-1]) or self._recovery_point < active_base
            timed = self._unflushed_messages > 0 and now_ms - self._last_flush_ms >= self.config.flush_ms
        if timed:
            self.flush()
        elif rolled:
            self.flush(active_base)
        return timed or rolled

    def close(self) -> None:
        """Flush everything, record each segment's max timestamp in its time index, close the
        index files. Log descriptors stay open while FileSlices hold them."""
        with self._lock:
            if self.closed:
                return
            self._segments[-1].on_roll()
            self._segments[-1].needs_flush = True
            # Opening the log again starts from here instead of replaying the active segment.
            producer_snapshots.write(self.dir, self._next_offset, self.producers, sync=True)
        self.flush()
        with self._lock:
            for s in self._segments:
                s.close()
            self.closed = True
