"""A segment's indexes, kept in memory and appended to their files.

`.index`: entries of (offset - segment base offset) int32, file position int32, big-endian; one
entry per index.interval.bytes of log, for the last offset of the batch starting at that
position. `.timeindex`: entries of timestamp int64, relative offset int32; an entry whenever a new
largest timestamp is seen at an indexing point. `.txnindex`: one 34-byte entry per aborted
transaction whose ABORT marker is in the segment (version int16 0, producer id int64, first
offset int64, last offset int64 = the marker's, last stable offset int64 once it completed); the
file exists only once there is an entry.

Both are derived data: never checksummed, rebuilt from the log when missing or inconsistent (the
caller, the segment, decides). Files are written append-only with no preallocation, so a file's
length is its entry count and there is nothing to trim on roll or close. Lookups are C-level
bisects over `array`s, loaded lazily from the file on first use.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import NamedTuple

OFFSET_ENTRY = struct.Struct(">ii")  # relative offset, position
TIME_ENTRY = struct.Struct(">qi")  # timestamp, relative offset
ABORTED_TXN_ENTRY = struct.Struct(">hqqqq")  # version, producer id, first, last, last stable offset
ABORTED_TXN_VERSION = 0
_LITTLE = sys.byteorder == "little"


def _big_endian_array(typecode: str, data: bytes) -> array:
    a = array(typecode)
    a.frombytes(data)
    if _LITTLE:
        a.byteswap()
    return a


def _strictly_increasing(a) -> bool:
    return all(x < y for x, y in zip(a, a[1:]))


class _IndexFile:
    """The append-only file behind an index. Entries are buffered and written in blocks (on
    flush, close, truncation, rename, or every 4 KiB): an index is rebuilt from its log after a
    crash anyway, so an entry per append need not cost a system call."""

    _BLOCK = 4096

    def __init__(self, path: Path):
        self.path = path
        self._fd = -1
        self._pending = bytearray()

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd

    def _write_pending(self) -> None:
        if self._pending:
            os.write(self._open(), self._pending)
            self._pending = bytearray()

    def read(self) -> bytes | None:
        self._write_pending()
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def write(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= self._BLOCK:
            self._write_pending()

    def truncate(self, size: int) -> None:
        self._write_pending()
        os.ftruncate(self._open(), size)

    def flush(self) -> None:
        self._write_pending()
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        self._write_pending()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self, _close=os.close):
        # Dropped without close (the log was abandoned, as in a crash): the descriptor goes, the
        # entries not yet written with it; a sparser index only costs lookups a longer scan.
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            _close(fd)

    def rename(self, path: Path) -> None:
        self._write_pending()
        if self.path.exists():
            os.replace(self.path, path)
        self.path = path


class OffsetIndex:
    """offset -> file position of the batch to start scanning from."""

    entry_size = OFFSET_ENTRY.size

    def __init__(self, path: Path, base_offset: int, max_bytes: int):
        self.file = _IndexFile(path)
        self.base_offset = base_offset
        self.max_entries = max(1, max_bytes // self.entry_size)
        self.loaded = False
        self._offsets = array("i")  # relative
        self._positions = array("i")

    def load(self, log_size: int) -> bool:
        """Read the file. False (and empty) if it is missing, torn or inconsistent with a log of
        `log_size` bytes: the caller rebuilds it."""
        self.loaded = True
        data = self.file.read()
        self._offsets, self._positions = array("i"), array("i")
        if data is None or len(data) % self.entry_size:
            return False
        a = _big_endian_array("i", data)
        offsets, positions = a[0::2], a[1::2]
        if offsets and (offsets[0] < 0 or positions[-1] >= log_size or positions[0] < 0
                        or not _strictly_increasing(offsets) or not _strictly_increasing(positions)):
            return False
        self._offsets, self._positions = offsets, positions
        return True

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    def append(self, offset: int, position: int) -> None:
        rel = offset - self.base_offset
        self._offsets.append(rel)
        self._positions.append(position)
        self.file.write(OFFSET_ENTRY.pack(rel, position))

    def replace_all(self, entries: list[tuple[int, int]]) -> None:
        """Rewrite the index from (offset, position) pairs (a rebuild)."""
        self.loaded = True
        self._offsets = array("i", [o - self.base_offset for o, _ in entries])
        self._positions = array("i", [p for _, p in entries])
        self.file.truncate(0)
        self.file.write(b"".join(OFFSET_ENTRY.pack(o - self.base_offset, p) for o, p in entries))

    def lookup(self, offset: int) -> tuple[int, int]:
        """The largest entry with offset <= `offset`, as (offset, position); (base, 0) if none."""
        i = bisect_right(self._offsets, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._offsets[i], self._positions[i]

    def floor_position(self, position: int) -> int:
        """The largest indexed batch position <= `position` (0 if none): a batch boundary."""
        i = bisect_right(self._positions, position) - 1
        return self._positions[i] if i >= 0 else 0

    def truncate_to(self, offset: int) -> None:
        """Drop entries for offsets >= `offset`."""
        i = bisect_left(self._offsets, offset - self.base_offset)
        if i < len(self._offsets):
            del self._offsets[i:], self._positions[i:]
            self.file.truncate(i * self.entry_size)


class TimeIndex:
    """timestamp -> offset to start scanning from, for ListOffsets by timestamp."""

    entry_size = TIME_ENTRY.size

    def __init__(self, path: Path, base_offset: int, max_bytes: int):
        self.file = _IndexFile(path)
        self.base_offset = base_offset
        self.max_entries = max(1, max_bytes // self.entry_size)
        self.loaded = False
        self._timestamps = array("q")
        self._offsets = array("i")

    def load(self) -> bool:
        """Read the file; False (and empty) if missing, torn or not increasing."""
        self.loaded = True
        data = self.file.read()
        self._timestamps, self._offsets = array("q"), array("i")
        if data is None or len(data) % self.entry_size:
            return False
        entries = list(TIME_ENTRY.iter_unpack(data))
        ts = array("q", [t for t, _ in entries])
        offs = array("i", [o for _, o in entries])
        if entries and (offs[0] < 0 or not _strictly_increasing(ts) or any(x > y for x, y in zip(offs, offs[1:]))):
            return False
        self._timestamps, self._offsets = ts, offs
        return True

    def __len__(self) -> int:
        return len(self._timestamps)

    @property
    def is_full(self) -> bool:
        return len(self._timestamps) >= self.max_entries

    @property
    def last_entry(self) -> tuple[int, int] | None:
        """(timestamp, offset) of the newest entry: the segment's max timestamp once it is rolled."""
        if not self._timestamps:
            return None
        return self._timestamps[-1], self.base_offset + self._offsets[-1]

    def maybe_append(self, timestamp: int, offset: int, skip_full_check: bool = False) -> None:
        if self._timestamps and timestamp <= self._timestamps[-1]:
            return
        if not skip_full_check and self.is_full:
            return
        rel = offset - self.base_offset
        self._timestamps.append(timestamp)
        self._offsets.append(rel)
        self.file.write(TIME_ENTRY.pack(timestamp, rel))

    def replace_all(self, entries: list[tuple[int, int]]) -> None:
        self.loaded = True
        self._timestamps = array("q", [t for t, _ in entries])
        self._offsets = array("i", [o - self.base_offset for _, o in entries])
        self.file.truncate(0)
        self.file.write(b"".join(TIME_ENTRY.pack(t, o - self.base_offset) for t, o in entries))

    def offset_before(self, timestamp: int) -> int | None:
        """Offset of the newest entry with a timestamp < `timestamp`: every record up to that entry's
        batch is older than `timestamp`, so a scan may start there. None: scan from the start."""
        i = bisect_left(self._timestamps, timestamp) - 1
        return self.base_offset + self._offsets[i] if i >= 0 else None

    def truncate_to(self, offset: int) -> None:
        """Drop entries for offsets >= `offset`."""
        rel = offset - self.base_offset
        i = len(self._offsets)
        while i > 0 and self._offsets[i - 1] >= rel:
            i -= 1
        if i < len(self._offsets):
            del self._timestamps[i:], self._offsets[i:]
            self.file.truncate(i * self.entry_size)


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int  # the ABORT marker's offset
    last_stable_offset: int  # the partition's LSO once this transaction completed


class TransactionIndex:
    """The aborted transactions whose markers are in one segment (Kafka's TransactionIndex),
    read for read_committed fetches. Loaded on first use; entries are few."""

    def __init__(self, path: Path):
        self.file = _IndexFile(path)
        self._entries: list[AbortedTxn] | None = None

    @property
    def entries(self) -> list[AbortedTxn]:
        if self._entries is None:
            data = self.file.read() or b""
            whole = len(data) - len(data) % ABORTED_TXN_ENTRY.size
            self._entries = [AbortedTxn(*e[1:]) for e in ABORTED_TXN_ENTRY.iter_unpack(data[:whole])
                             if e[0] == ABORTED_TXN_VERSION]
        return self._entries

    def append(self, txn, last_stable_offset: int) -> None:
        """Index the aborted `txn` (a CompletedTxn); markers come in offset order."""
        entries = self.entries
        if entries and txn.last_offset <= entries[-1].last_offset:
            raise ValueError(f"{self.file.path.name}: marker at {txn.last_offset} is not after "
                             f"{entries[-1].last_offset}")
        entry = AbortedTxn(txn.producer_id, txn.first_offset, txn.last_offset, last_stable_offset)
        self._entries = [*entries, entry]  # a new list: readers iterate the one they took
        self.file.write(ABORTED_TXN_ENTRY.pack(ABORTED_TXN_VERSION, *entry))

    def collect(self, fetch_offset: int, upper_bound: int) -> tuple[list[AbortedTxn], bool]:
        """The aborted transactions overlapping [fetch_offset, upper_bound), and whether the search
        is complete (an entry whose last stable offset reaches `upper_bound`: later segments'
        markers cannot concern the range)."""
        found = []
        for e in self.entries:
            if e.last_offset >= fetch_offset and e.first_offset < upper_bound:
                found.append(e)
            if e.last_stable_offset >= upper_bound:
                return found, True
        return found, False

    def truncate_to(self, offset: int) -> None:
        """Drop the entries of markers at or after `offset`."""
        entries = self.entries
        keep = sum(1 for e in entries if e.last_offset < offset)
        if keep < len(entries):
            self._entries = entries[:keep]
            self.file.truncate(keep * ABORTED_TXN_ENTRY.size)

    def reset(self) -> None:
        """Empty the index and remove its file (recovery rebuilds it)."""
        self._entries = []
        self.file.close()
        self.file.path.unlink(missing_ok=True)
