"""A log segment: `<base offset>.log` (raw magic-2 batches) with its `.index`, `.timeindex` and
(once it holds an aborted transaction's marker) `.txnindex`.

Appends are one positional write of the already validated bytes plus, at most once per batch, an
index entry; no record is looked at. Reads find a batch boundary through the sparse index and a
short scan of batch headers, and hand back file ranges. All I/O is positional (pread/pwrite) on
one descriptor, so reads need no lock against appends.

A segment is not thread-safe by itself: the Log serialises appends, truncations and swaps; reads
and the cleaner only pread bytes that appends never rewrite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from crc32c import crc32c

from kafka_compat.records.batch import (
    ATTRIBUTES_OFFSET,
    HEADER_SIZE,
    MIN_BATCH_LENGTH,
    MIN_RECORD_SIZE,
    NO_TIMESTAMP,
    BatchHeader,
    read_header,
)
from kafka_compat.records.errors import corrupt
from kafka_compat.records.record import iter_records
from kafka_compat.storage.file_slice import FileSlice, SegmentFile
from kafka_compat.storage.index import OffsetIndex, TimeIndex, TransactionIndex

LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX = ".log", ".index", ".timeindex", ".txnindex"
CLEANED, SWAP, DELETED = ".cleaned", ".swap", ".deleted"
_SCAN_CHUNK = 8192
_RECOVERY_CHUNK = 8 * 1024 * 1024
INT32_MAX = (1 << 31) - 1


def file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """One segment. `size` is the log file's length in bytes as far as this process knows it.

    Create with `LogSegment.create(...)` (new, empty files) or `LogSegment.open(...)` (existing);
    indexes of opened segments are read lazily and rebuilt from the log if inconsistent.
    """

    def __init__(self, directory: Path, base_offset: int, index_interval_bytes: int, index_max_bytes: int,
                 file: SegmentFile, suffix: str = ""):
        self.dir = directory
        self.base_offset = base_offset
        self.suffix = suffix
        self.file = file
        self.size = file.size()
        self.index_interval_bytes = index_interval_bytes
        self.offset_index = OffsetIndex(directory / file_name(base_offset, INDEX_SUFFIX + suffix), base_offset,
                                        index_max_bytes)
        self.time_index = TimeIndex(directory / file_name(base_offset, TIME_INDEX_SUFFIX + suffix), base_offset,
                                    index_max_bytes)
        self.txn_index = TransactionIndex(directory / file_name(base_offset, TXN_INDEX_SUFFIX + suffix))
        self._max_timestamp = NO_TIMESTAMP
        self._offset_of_max_timestamp = base_offset
        self._max_known = False
        self._bytes_since_index = 0
        self.created_ms = int(time.time() * 1000)
        # The first batch's max timestamp: segment.ms counts from it (Kafka's rolling-based timestamp).
        self.first_batch_timestamp: int | None = None
        self.needs_flush = False
        # The append fast path's roll check, armed by the Log's slow path (Log._maybe_roll): below
        # these size, max timestamp and last offset limits an append needs no roll. -1 = unarmed.
        self.fast_size_limit = self.fast_timestamp_limit = self.fast_offset_limit = -1

    @classmethod
    def create(cls, directory: Path, base_offset: int, index_interval_bytes: int, index_max_bytes: int,
               suffix: str = "") -> LogSegment:
        path = directory / file_name(base_offset, LOG_SUFFIX + suffix)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.close(fd)
        seg = cls(directory, base_offset, index_interval_bytes, index_max_bytes, SegmentFile(path), suffix)
        seg.offset_index.replace_all([])
        seg.time_index.replace_all([])
        seg._max_known = True
        seg.first_batch_timestamp = None
        return seg

    @classmethod
    def open(cls, directory: Path, base_offset: int, index_interval_bytes: int, index_max_bytes: int,
             suffix: str = "") -> LogSegment:
        path = directory / file_name(base_offset, LOG_SUFFIX + suffix)
        return cls(directory, base_offset, index_interval_bytes, index_max_bytes, SegmentFile(path), suffix)

    @property
    def log_path(self) -> Path:
        return self.file.path

    def __repr__(self) -> str:
        return f"LogSegment({self.base_offset}, size={self.size})"

    # --- appends -------------------------------------------------------------------------------

    def append(self, buf, entries: list[tuple[int, int, int, int]]) -> None:
        """Write `buf` at the end with one pwrite; `entries` are (position in buf, size, last offset,
        max timestamp) per batch, used for the indexes and the segment's max timestamp."""
        start = self.size
        view = memoryview(buf)
        written = os.pwrite(self.file.fd, view, start)
        while written < len(view):
            written += os.pwrite(self.file.fd, view[written:], start + written)
        self.size = start + len(view)
        if not self.offset_index.loaded:
            self.ensure_indexes()
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = entries[0][3] if start == 0 else next(self.headers(0))[1].max_timestamp
        interval = self.index_interval_bytes
        for pos, size, last_offset, max_ts in entries:
            if max_ts > self._max_timestamp:
                self._max_timestamp, self._offset_of_max_timestamp = max_ts, last_offset
            if self._bytes_since_index > interval:
                self.offset_index.append(last_offset, start + pos)
                self.time_index.maybe_append(self._max_timestamp, self._offset_of_max_timestamp)
                self._bytes_since_index = 0
                if self.offset_index.is_full or self.time_index.is_full:
                    self.fast_size_limit = -1  # the next append takes the slow path, which rolls
            self._bytes_since_index += size
        self.needs_flush = True

    def on_roll(self) -> None:
        """The segment stops being active: its newest max timestamp goes into the time index (so a
        reopened segment knows it without a scan), as Kafka does when it rolls."""
        self.ensure_indexes()
        if self._max_timestamp != NO_TIMESTAMP:
            self.time_index.maybe_append(self._max_timestamp, self._offset_of_max_timestamp, skip_full_check=True)

    def index_full(self) -> bool:
        self.ensure_indexes()
        return self.offset_index.is_full or self.time_index.is_full

    # --- indexes and recovery --------------------------------------------------------------------

    def ensure_indexes(self) -> None:
        """Load both indexes; rebuild them from the log if either is missing or inconsistent."""
        if self.offset_index.loaded and self.time_index.loaded:
            return
        ok = self.offset_index.load(self.size) & self.time_index.load()
        if not ok:
            self.rebuild(verify=False)
            return
        last = self.time_index.last_entry
        if last is not None and not self._max_known:
            self._max_timestamp, self._offset_of_max_timestamp = last
        self._max_known = True
        self._bytes_since_index = self._bytes_after_last_index_entry()

    def _bytes_after_last_index_entry(self) -> int:
        if not len(self.offset_index):
            return self.size
        _, pos = self.offset_index.lookup(1 << 62)
        return self.size - pos

    @property
    def max_timestamp(self) -> int:
        """Largest record timestamp in the segment (NO_TIMESTAMP if none); loads the indexes."""
        if not self._max_known:
            self.ensure_indexes()
        return self._max_timestamp

    def rebuild(self, verify: bool) -> tuple[int, int]:
        """Scan the log file and rebuild both indexes and the max timestamp.

        With `verify`, batches are CRC-checked and the file is truncated after the last valid one
        (recovery); returns (valid batch count, bytes truncated). Without it the scan trusts the
        file (an index that went missing after a clean stop) and stops at the first broken header.
        """
        entries, time_entries = [], []
        max_ts, max_off = NO_TIMESTAMP, self.base_offset
        since = 0
        count = 0
        interval = self.index_interval_bytes
        first_ts = None
        valid_end = 0
        for pos, h, _ in self.batches(verify):
            last = h.last_offset
            if h.max_timestamp > max_ts:
                max_ts, max_off = h.max_timestamp, last
            if since > interval:
                entries.append((last, pos))
                if not time_entries or max_ts > time_entries[-1][0]:
                    time_entries.append((max_ts, max_off))
                since = 0
            since += h.size
            count += 1
            if first_ts is None:
                first_ts = h.max_timestamp
            valid_end = pos + h.size
        if max_ts != NO_TIMESTAMP and (not time_entries or max_ts > time_entries[-1][0]):
            time_entries.append((max_ts, max_off))
        truncated = 0
        if verify and valid_end < self.size:
            truncated = self.size - valid_end
            os.ftruncate(self.file.fd, valid_end)
            self.size = valid_end
        self.offset_index.replace_all(entries)
        self.time_index.replace_all(time_entries)
        self._max_timestamp, self._offset_of_max_timestamp, self._max_known = max_ts, max_off, True
        self._bytes_since_index = since
        self.first_batch_timestamp = first_ts
        return count, truncated

    def batches(self, verify: bool = False, start: int = 0) -> Iterator[tuple[int, BatchHeader, memoryview]]:
        """(position, header, bytes) of the batches from file position `start` (a batch boundary)
        up to the first invalid one, read in large chunks (recovery, index rebuilds, the cleaner).

        Valid: a sane header (length, magic 2, counts), the whole batch present, offsets above the
        previous batch's and within this segment's int32 range, and (with `verify`) the CRC.
        """
        fd, size = self.file.fd, self.size
        pos, next_offset = start, self.base_offset
        while pos < size:
            data = memoryview(os.pread(fd, min(_RECOVERY_CHUNK, size - pos), pos))
            off = 0
            while len(data) - off >= HEADER_SIZE:
                h = read_header(data, off)
                if h.batch_length < MIN_BATCH_LENGTH or h.magic != 2 or h.record_count < 0 or h.last_offset_delta < 0 \
                        or h.base_offset < next_offset or h.last_offset - self.base_offset > INT32_MAX \
                        or pos + off + h.size > size \
                        or (h.compression == 0 and h.record_count * MIN_RECORD_SIZE > h.size - HEADER_SIZE):
                    return
                if off + h.size > len(data):
                    break  # the batch continues past this chunk: read again from its start
                if verify and crc32c(data[off + ATTRIBUTES_OFFSET:off + h.size]) != h.crc:
                    return
                yield pos + off, h, data[off:off + h.size]
                next_offset = h.next_offset
                off += h.size
            if off == 0:
                if len(data) < HEADER_SIZE:
                    return  # a torn header at the end of the file
                h = read_header(data, 0)
                data = memoryview(os.pread(fd, h.size, pos))
                if len(data) < h.size or verify and crc32c(data[ATTRIBUTES_OFFSET:h.size]) != h.crc:
                    return
                yield pos, h, data
                next_offset = h.next_offset
                off = h.size
            pos += off

    def tail_is_sound(self) -> bool:
        """Whether the batches after the last index entry (the newest few, the last among them)
        are whole, sane and match their CRCs, ending exactly at the end of the file: the check a
        clean-shutdown marker does not skip."""
        self.ensure_indexes()
        _, end = self.offset_index.lookup(1 << 62)
        for pos, h, _ in self.batches(verify=True, start=end):
            end = pos + h.size
        return end == self.size

    def next_offset(self) -> int:
        """The offset after the segment's last batch (its base offset if it has none)."""
        self.ensure_indexes()
        _, pos = self.offset_index.lookup(1 << 62)
        nxt = self.base_offset
        for _, h in self.headers(pos):
            nxt = h.next_offset
        return nxt

    # --- reads ---------------------------------------------------------------------------------

    def headers(self, start: int, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """Batch headers from file position `start` (a batch boundary) to `end`, read in small
        chunks; a batch larger than a chunk costs one pread for its header."""
        end = self.size if end is None else end
        fd = self.file.fd
        pos = start
        while pos < end:
            data = os.pread(fd, min(_SCAN_CHUNK, end - pos), pos)
            if len(data) < HEADER_SIZE:
                raise corrupt(f"{self.log_path.name}: truncated batch header at byte {pos}")
            off = 0
            while len(data) - off >= HEADER_SIZE:
                h = read_header(data, off)
                if h.batch_length < MIN_BATCH_LENGTH or h.magic != 2:
                    raise corrupt(f"{self.log_path.name}: bad batch header at byte {pos + off}")
                yield pos + off, h
                off += h.size
            pos += off

    def translate_offset(self, offset: int) -> tuple[int, BatchHeader] | None:
        """The first batch whose last offset is >= `offset`, as (position, header); None if the
        segment has no such batch."""
        self.ensure_indexes()
        _, start = self.offset_index.lookup(offset)
        for pos, h in self.headers(start):
            if h.last_offset >= offset:
                return pos, h
        return None

    def read(self, offset: int, max_bytes: int, max_offset: int | None, min_one_batch: bool) -> FileSlice | None:
        """Whole batches from the one holding `offset`, up to `max_bytes`; with `max_offset`, only
        batches whose last offset is below it. The first batch comes even if larger than
        `max_bytes` when `min_one_batch`. None if there is nothing to return from this segment."""
        found = self.translate_offset(offset)
        if found is None:
            return None
        start, first = found
        limit = self.size
        if max_offset is not None:
            if first.last_offset >= max_offset:
                return None
            bound = self.translate_offset(max_offset)
            if bound is not None:
                limit = bound[0]
        end = min(limit, start + max_bytes)
        if end < start + first.size:
            return FileSlice(self.file, start, first.size) if min_one_batch else None
        # Index entries sit on batch boundaries: start the alignment scan from the last one before `end`.
        aligned = max(start, self.offset_index.floor_position(end))
        for pos, h in self.headers(aligned, limit):
            if pos + h.size > end:
                break
            aligned = pos + h.size
        return FileSlice(self.file, start, aligned - start)

    def read_batch(self, position: int, header: BatchHeader) -> bytes:
        return os.pread(self.file.fd, header.size, position)

    def find_offset_by_timestamp(self, timestamp: int, start_offset: int) -> tuple[int, int, int] | None:
        """First record at or after `start_offset` with a timestamp >= `timestamp`, as (offset,
        timestamp, partition leader epoch of its batch); None if the segment has none."""
        self.ensure_indexes()
        begin = self.time_index.offset_before(timestamp)
        _, pos = self.offset_index.lookup(max(begin if begin is not None else self.base_offset, start_offset))
        for p, h in self.headers(pos):
            if h.max_timestamp < timestamp or h.last_offset < start_offset:
                continue
            for r in iter_records(self.read_batch(p, h), 0, h):
                if r.offset >= start_offset and r.timestamp >= timestamp:
                    return r.offset, r.timestamp, h.partition_leader_epoch
        return None

    # --- truncation, flush, files --------------------------------------------------------------

    def truncate_to(self, offset: int) -> tuple[int, int]:
        """Remove batches whose last offset is >= `offset` (a batch holding `offset` goes whole).
        Returns (bytes removed, the offset the segment now ends at: `offset`, or the base offset of
        a batch that held it)."""
        found = self.translate_offset(offset)
        if found is None:
            return 0, offset
        position, first_removed = found
        removed = self.size - position
        os.ftruncate(self.file.fd, position)
        self.size = position
        self.offset_index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self.txn_index.truncate_to(offset)
        # The max timestamp and index spacing are recomputed from what remains after the last entry.
        last = self.time_index.last_entry
        self._max_timestamp, self._offset_of_max_timestamp = last if last else (NO_TIMESTAMP, self.base_offset)
        _, start = self.offset_index.lookup(1 << 62)
        for _, h in self.headers(start):
            if h.max_timestamp > self._max_timestamp:
                self._max_timestamp, self._offset_of_max_timestamp = h.max_timestamp, h.last_offset
        self._bytes_since_index = self._bytes_after_last_index_entry()
        if position == 0:
            self.first_batch_timestamp = None
        self.fast_size_limit = -1
        self.needs_flush = True
        return removed, min(offset, first_removed.base_offset)

    def flush(self) -> None:
        """fsync the log and index files."""
        os.fsync(self.file.fd)
        self.flush_indexes()
        self.needs_flush = False

    def last_modified_ms(self) -> int:
        return int(os.fstat(self.file.fd).st_mtime * 1000)

    def close(self) -> None:
        """Record the max timestamp in the time index (as a roll does) and close the index files.
        The log descriptor closes when the last FileSlice lets go."""
        if self.offset_index.loaded and self._max_known:
            self.on_roll()
        self.offset_index.file.close()
        self.time_index.file.close()
        self.txn_index.file.close()

    def flush_indexes(self) -> None:
        self.offset_index.file.flush()
        self.time_index.file.flush()
        self.txn_index.file.flush()

    def paths(self) -> list[Path]:
        return [self.log_path, self.offset_index.file.path, self.time_index.file.path, self.txn_index.file.path]

    def rename_to(self, suffix: str) -> None:
        """Rename the segment's files to carry `suffix` instead of the current one ('' = live)."""
        base = file_name(self.base_offset, "")
        for f, ext in ((self.offset_index.file, INDEX_SUFFIX), (self.time_index.file, TIME_INDEX_SUFFIX),
                       (self.txn_index.file, TXN_INDEX_SUFFIX)):
            f.close()
            f.rename(self.dir / (base + ext + suffix))
        new_log = self.dir / (base + LOG_SUFFIX + suffix)
        os.replace(self.file.path, new_log)
        self.file.path = new_log
        self.suffix = suffix
