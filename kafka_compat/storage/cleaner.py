"""Log compaction (cleanup.policy=compact): keep the latest record per key, never change offsets.

One pass over a log, safe to run in a worker thread while the log takes appends and reads:
1. Range: segments wholly below the first uncleanable offset, which is the lowest of the active
   segment's base, the start of the first segment reaching past the high watermark, the first
   segment younger than min.compaction.lag.ms, and the start of any transaction not yet decided
   in the range (so an open transaction is never compacted, as Kafka bounds by the LSO).
2. Map: for the dirty part (from the cleaner checkpoint on), key -> latest offset, skipping
   aborted transactional data and control batches.
3. Rewrite, segment group by segment group (consecutive segments that fit in segment.bytes), into
   `<base>.log.cleaned` next to the live files; a record survives if it has a key and is the
   latest for it. Tombstones survive until their batch's delete horizon (KIP-534: stamped as now
   + delete.retention.ms the first time the cleaner keeps them). Aborted transactional data is
   dropped; a transaction marker stays while its transaction has data left or its horizon has not
   passed. A batch whose records all survive is copied byte for byte; an emptied batch is dropped,
   except a producer's last batch, kept header-only so its sequence number survives (as Kafka).
4. Swap: the cleaned files are synced and renamed `.swap`, then the log (under its lock) retires
   the originals and renames the swap live. A truncation meanwhile cancels the swap.

Only magic-2 batches are ever in the log (legacy input is converted on append).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from kafka_compat.records.batch import LOG_APPEND_TIME, NO_TIMESTAMP, BatchHeader, read_header
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import ABORT, parse_control_record
from kafka_compat.records.record import batch_payload, decode_records
from kafka_compat.storage.log import Log
from kafka_compat.storage.segment import CLEANED, INT32_MAX, SWAP, LogSegment

log = structlog.get_logger("kafka_compat.storage")

# Decompression bound per batch while cleaning, and a bound on the key -> offset map's memory.
MAX_BATCH_BYTES = 256 * 1024 * 1024
DEFAULT_MAP_BYTES = 128 * 1024 * 1024
_MAP_ENTRY_OVERHEAD = 100  # rough per-key cost of a dict entry and its bytes object
_WRITE_BUFFER = 4 * 1024 * 1024


@dataclass
class CleanResult:
    dir: str
    first_dirty: int
    end_offset: int
    segments_before: int
    segments_after: int
    bytes_before: int
    bytes_after: int
    records_removed: int


@dataclass
class Cleanable:
    segments: list[LogSegment]  # the cleanable segments, oldest first
    first_dirty: int
    end_offset: int  # first uncleanable offset
    dirty_ratio: float
    overdue: bool  # max.compaction.lag.ms passed or a tombstone horizon is due


def cleanable(log_: Log, now_ms: int) -> Cleanable | None:
    """What a cleaning of `log_` would cover now, or None if the log is not compacted or has no
    cleanable segment."""
    cfg = log_.config
    if not cfg.compact:
        return None
    segs = log_.segments
    hw = log_.high_watermark
    end = segs[-1].base_offset
    count = len(segs) - 1
    for i, s in enumerate(segs[:-1]):
        if segs[i + 1].base_offset > hw or (cfg.min_compaction_lag_ms > 0
                                            and s.max_timestamp > now_ms - cfg.min_compaction_lag_ms):
            end, count = s.base_offset, i
            break
    if count == 0:
        return None
    segs = segs[:count]
    first_dirty = max(log_.clean_offset, log_.log_start_offset)
    clean_bytes = dirty_bytes = 0
    overdue = False
    for i, s in enumerate(segs):
        seg_end = segs[i + 1].base_offset if i + 1 < len(segs) else end
        if seg_end <= first_dirty:
            clean_bytes += s.size
            continue
        dirty_bytes += s.size
        if not overdue and cfg.max_compaction_lag_ms < (1 << 63) - 1:
            first_ts = s.first_batch_timestamp
            if first_ts is None:
                first_ts = next((h.max_timestamp for _, h in s.headers(0)), NO_TIMESTAMP)
            overdue = 0 <= first_ts < now_ms - cfg.max_compaction_lag_ms
    horizon = log_.next_delete_horizon_ms
    overdue = overdue or (horizon is not None and now_ms >= horizon)
    total = clean_bytes + dirty_bytes
    return Cleanable(segs, first_dirty, end, dirty_bytes / total if total else 0.0, overdue)


def needs_cleaning(log_: Log, now_ms: int) -> float | None:
    """The dirty ratio if `log_` is due for cleaning (ratio >= min.cleanable.dirty.ratio, or
    overdue), else None."""
    c = cleanable(log_, now_ms)
    return c.dirty_ratio if c is not None and _due(c, log_.config.min_cleanable_dirty_ratio) else None


def _due(c: Cleanable, min_ratio: float) -> bool:
    return c.overdue or (c.first_dirty < c.end_offset and c.dirty_ratio >= min_ratio)


class _Transactions:
    """Aborted transaction ranges, producers' last batches and undecided transactions, from one
    header scan of the cleanable range."""

    def __init__(self):
        self.aborted: dict[int, list[tuple[int, int]]] = {}
        self.open: dict[int, int] = {}  # producer id -> first offset of its undecided transaction
        self.last_batch: dict[int, int] = {}  # producer id -> base offset of its last data batch

    def scan(self, seg: LogSegment) -> None:
        for pos, h in seg.headers(0):
            pid = h.producer_id
            if pid < 0:
                continue
            if not h.is_control:
                self.last_batch[pid] = h.base_offset
                if h.is_transactional:
                    self.open.setdefault(pid, h.base_offset)
                continue
            marker = _marker(seg, pos, h)
            start = self.open.pop(pid, None)
            if marker == ABORT and start is not None:
                self.aborted.setdefault(pid, []).append((start, h.base_offset))

    def is_aborted(self, h: BatchHeader) -> bool:
        return h.is_transactional and any(s <= h.base_offset <= e for s, e in self.aborted.get(h.producer_id, ()))


def _marker(seg: LogSegment, pos: int, h: BatchHeader) -> int | None:
    recs = decode_records(batch_payload(seg.read_batch(pos, h), 0, h, MAX_BATCH_BYTES), h)
    return parse_control_record(recs[0]).type if recs else None


def clean(log_: Log, now_ms: int, *, force: bool = False, max_map_bytes: int = DEFAULT_MAP_BYTES) -> CleanResult | None:
    """Compact `log_` once if it is due (or `force`). Returns what was done, or None if nothing
    was (not due, nothing cleanable, or a truncation raced the swap). Safe to call from a worker
    thread; the log keeps serving appends and reads. I/O errors propagate; the cleaned files of
    an interrupted pass are `.cleaned` files that recovery removes."""
    truncations = log_.truncations
    c = cleanable(log_, now_ms)
    cfg = log_.config
    if c is None or (not force and not _due(c, cfg.min_cleanable_dirty_ratio)):
        return None
    txns = _Transactions()
    segs = list(c.segments)
    for s in segs:
        txns.scan(s)
    end = c.end_offset
    if txns.open:
        # Never clean into a transaction whose marker is not in the range yet.
        cut = min(txns.open.values())
        keep = [s for i, s in enumerate(segs) if (segs[i + 1].base_offset if i + 1 < len(segs) else end) <= cut]
        end = segs[len(keep)].base_offset if len(keep) < len(segs) else end
        segs = keep
    if not segs:
        return None

    # The key -> latest offset map over the dirty range, cut short at a segment boundary if it
    # would outgrow its memory bound.
    offsets: dict[bytes, int] = {}
    map_bytes = 0
    for i, s in enumerate(segs):
        seg_end = segs[i + 1].base_offset if i + 1 < len(segs) else end
        if seg_end <= c.first_dirty:
            continue
        if map_bytes > max_map_bytes:
            end = s.base_offset
            segs = segs[:i]
            break
        for _pos, h, raw in s.batches():
            if h.is_control or h.last_offset < c.first_dirty or txns.is_aborted(h):
                continue
            for r in decode_records(batch_payload(raw, 0, h, MAX_BATCH_BYTES), h):
                if r.key is not None and r.offset >= c.first_dirty:
                    if r.key not in offsets:
                        map_bytes += len(r.key) + _MAP_ENTRY_OVERHEAD
                    offsets[r.key] = r.offset

    bytes_before = sum(s.size for s in segs)
    state = _CleanState(offsets, txns, now_ms, cfg.delete_retention_ms)
    after = []
    for group in _groups(segs, end, cfg.segment_bytes):
        cleaned = LogSegment.create(log_.dir, group[0].base_offset, cfg.index_interval_bytes, cfg.segment_index_bytes,
                                    suffix=CLEANED)
        try:
            pending, entries = bytearray(), []
            for s in group:
                for _, h, raw in s.batches():
                    out = state.clean_batch(h, raw)
                    if out is None:
                        continue
                    # A rebuilt batch's max timestamp may be below the original's: index what is written.
                    entries.append((len(pending), len(out), h.last_offset, read_header(out, 0).max_timestamp))
                    pending += out
                    if len(pending) >= _WRITE_BUFFER:
                        cleaned.append(pending, entries)
                        pending, entries = bytearray(), []
            if entries:
                cleaned.append(pending, entries)
            cleaned.on_roll()
            cleaned.flush()
            cleaned.close()
            cleaned.rename_to(SWAP)
            swapped = log_.replace_segments(group, cleaned, truncations)
        except BaseException:
            _discard(cleaned)
            raise
        if not swapped:
            _discard(cleaned)
            log.info("log_compaction_aborted", dir=log_.dir.name, reason="log changed during cleaning")
            return None
        after.append(cleaned)
    log_.clean_offset = max(log_.clean_offset, end)
    log_.next_delete_horizon_ms = state.next_horizon
    result = CleanResult(log_.dir.name, c.first_dirty, end, len(segs), len(after), bytes_before,
                         sum(s.size for s in after), state.removed)
    log.info("log_compacted", dir=result.dir, first_dirty=result.first_dirty, end_offset=result.end_offset,
             segments_before=result.segments_before, segments_after=result.segments_after,
             bytes_before=result.bytes_before, bytes_after=result.bytes_after, records_removed=result.records_removed)
    return result


def _discard(seg: LogSegment) -> None:
    seg.close()
    for p in seg.paths():
        p.unlink(missing_ok=True)


def _groups(segs: list[LogSegment], end: int, max_bytes: int) -> list[list[LogSegment]]:
    """Consecutive segments whose sizes sum within segment.bytes and whose offsets fit one
    segment's int32 relative range: each group becomes one cleaned segment."""
    groups: list[list[LogSegment]] = []
    for i, s in enumerate(segs):
        seg_end = segs[i + 1].base_offset if i + 1 < len(segs) else end
        if groups:
            g = groups[-1]
            if sum(x.size for x in g) + s.size <= max_bytes and seg_end - 1 - g[0].base_offset <= INT32_MAX:
                g.append(s)
                continue
        groups.append([s])
    return groups


class _CleanState:
    def __init__(self, offsets: dict[bytes, int], txns: _Transactions, now_ms: int, delete_retention_ms: int):
        self.offsets = offsets
        self.txns = txns
        self.now = now_ms
        self.new_horizon = now_ms + delete_retention_ms
        self.next_horizon: int | None = None
        self.retained_txn: dict[int, bool] = {}  # producer id -> its current transaction kept data
        self.removed = 0

    def _horizon_seen(self, horizon: int) -> None:
        if self.next_horizon is None or horizon < self.next_horizon:
            self.next_horizon = horizon

    def clean_batch(self, h: BatchHeader, raw) -> bytes | memoryview | None:
        """The batch as it should be in the cleaned segment: `raw` unchanged, rebuilt, a bare
        header, or None (dropped)."""
        horizon = h.delete_horizon_ms
        expired = horizon != NO_TIMESTAMP and self.now >= horizon
        if h.is_control:
            if self.retained_txn.pop(h.producer_id, False) or not expired:
                if horizon == NO_TIMESTAMP:
                    return self._rebuild(h, raw, None, self.new_horizon)
                self._horizon_seen(horizon)
                return raw
            self.removed += h.record_count
            return None
        records = decode_records(batch_payload(raw, 0, h, MAX_BATCH_BYTES), h)
        aborted = self.txns.is_aborted(h)
        kept = []
        tombstones = False
        for r in records:
            if aborted or r.key is None:
                continue
            latest = self.offsets.get(r.key)
            if latest is not None and r.offset < latest:
                continue
            if r.value is None:
                if expired:
                    continue
                tombstones = True
            kept.append(r)
        self.removed += len(records) - len(kept)
        if h.is_transactional and kept:
            self.retained_txn[h.producer_id] = True
        stamp = tombstones and horizon == NO_TIMESTAMP
        if tombstones:
            self._horizon_seen(horizon if horizon != NO_TIMESTAMP else self.new_horizon)
        if len(kept) == len(records) and not stamp:
            return raw
        if not kept:
            if h.producer_id >= 0 and self.txns.last_batch.get(h.producer_id) == h.base_offset:
                return self._rebuild(h, raw, [], None)
            return None
        return self._rebuild(h, raw, kept, self.new_horizon if stamp else (horizon if tombstones else None))

    def _rebuild(self, h: BatchHeader, raw, records, horizon: int | None) -> bytearray:
        if records is None:
            records = decode_records(batch_payload(raw, 0, h, MAX_BATCH_BYTES), h)
        append_time = h.timestamp_type == LOG_APPEND_TIME
        return build_batch(
            records, base_offset=h.base_offset, compression=h.compression if records else 0,
            timestamp_type=h.timestamp_type, max_timestamp=h.max_timestamp if append_time or not records else None,
            producer_id=h.producer_id, producer_epoch=h.producer_epoch, base_sequence=h.base_sequence,
            transactional=h.is_transactional, control=h.is_control, partition_leader_epoch=h.partition_leader_epoch,
            delete_horizon_ms=horizon, last_offset_delta=h.last_offset_delta,
            base_timestamp=h.base_timestamp if not records else None)
