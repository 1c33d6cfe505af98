"""The replicated log as the Raft node sees it: whole batches with offsets and epochs.

`RaftLog` is the interface (an in-memory implementation here for the simulator and tests, a
file-backed one in `file_log`). Its contents are magic-2 record batches whose base offset and
partition leader epoch are already set; the node never appends anything else. Besides the
batches, a log knows where it starts: after a snapshot the log begins at the snapshot's end
offset, and the snapshot's epoch stands in for the epoch of the (absent) record before it.

Writes are not durable until `flush()`: the node asks its driver to flush before any message
that depends on them leaves the process (a follower's next Fetch, a leader's HW), which is what
lets the simulator drop an unflushed tail on a crash.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import NamedTuple

from kafka_compat.records.batch import iter_headers


class OffsetAndEpoch(NamedTuple):
    """An offset and the epoch of the record before it: a log position, a snapshot id, a
    diverging-epoch answer. Ordered by epoch first, which is how Raft compares logs."""

    offset: int
    epoch: int

    def up_to_date_with(self, other: OffsetAndEpoch) -> bool:
        """Raft's rule: a later last epoch wins; within one epoch, the longer log."""
        return (self.epoch, self.offset) >= (other.epoch, other.offset)


class StoredBatch(NamedTuple):
    base_offset: int
    last_offset: int
    epoch: int
    data: bytes

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1


def split_batches(data) -> list[StoredBatch]:
    """The batches in `data` (whole, structurally checked); raises RecordsError if malformed."""
    mv = memoryview(data)
    return [StoredBatch(h.base_offset, h.last_offset, h.partition_leader_epoch, bytes(mv[pos:pos + h.size]))
            for pos, h in iter_headers(mv)]


class RaftLog:
    """What the node needs from a log. Offsets are batch boundaries everywhere the node passes one."""

    start_offset: int
    # The epoch of the record just before start_offset (0 for an empty log with no snapshot).
    start_epoch: int

    @property
    def end_offset(self) -> int:
        raise NotImplementedError

    @property
    def last_epoch(self) -> int:
        """The epoch of the last record, or start_epoch when the log holds none."""
        raise NotImplementedError

    def epoch_entries(self) -> list[tuple[int, int]]:
        """(epoch, start offset) for each epoch present, ascending: the leader epoch cache."""
        raise NotImplementedError

    def append(self, batches: list[StoredBatch]) -> None:
        """Append batches that continue the log exactly at end_offset."""
        raise NotImplementedError

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one that contains `offset`: at least one if any, then as many
        as fit in max_bytes."""
        raise NotImplementedError

    def batches(self, start: int, end: int) -> Iterator[StoredBatch]:
        """The batches that lie wholly in [start, end)."""
        raise NotImplementedError

    def truncate_to(self, offset: int) -> None:
        """Drop everything at or after `offset` (never below start_offset)."""
        raise NotImplementedError

    def reset(self, start: OffsetAndEpoch) -> None:
        """Drop every batch and start again at a snapshot's end (a follower that loaded one)."""
        raise NotImplementedError

    def trim_before(self, start: OffsetAndEpoch) -> None:
        """Drop the batches below a snapshot's end offset, which becomes the log start."""
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    # Algorithms over the interface: KRaft's divergence rules (KIP-595).

    @property
    def end(self) -> OffsetAndEpoch:
        return OffsetAndEpoch(self.end_offset, self.last_epoch)

    def end_offset_for_epoch(self, epoch: int) -> OffsetAndEpoch:
        """The largest epoch <= `epoch` this log has, with the offset where it ends here.

        (-1, -1) when `epoch` predates everything the log knows (the caller sends a snapshot)."""
        entries = self.epoch_entries()
        i = bisect.bisect_right(entries, (epoch, float("inf"))) - 1
        if i < 0:
            if epoch < self.start_epoch:
                return OffsetAndEpoch(-1, -1)
            return OffsetAndEpoch(entries[0][1] if entries else self.end_offset, self.start_epoch)
        found_epoch = entries[i][0]
        end = entries[i + 1][1] if i + 1 < len(entries) else self.end_offset
        return OffsetAndEpoch(end, found_epoch)

    def epoch_of(self, offset: int) -> int:
        """The epoch of the record at `offset` (start_epoch for offset start_offset - 1)."""
        entries = self.epoch_entries()
        i = bisect.bisect_right(entries, offset, key=lambda e: e[1]) - 1
        return entries[i][0] if i >= 0 else self.start_epoch

    def truncate_to_end_offset(self, diverging: OffsetAndEpoch) -> int:
        """A follower's truncation after the leader reported where their logs stop agreeing:
        to the end of the leader's epoch if we have that epoch too, else to the end of our own
        largest epoch below it (the next fetch narrows it further). Returns the new end offset."""
        if diverging.epoch <= 0:
            target = min(diverging.offset, self.end_offset)
        else:
            local = self.end_offset_for_epoch(diverging.epoch)
            target = min(local.offset, diverging.offset) if local.epoch == diverging.epoch else local.offset
        target = max(target, self.start_offset)
        self.truncate_to(target)
        return self.end_offset


class MemoryLog(RaftLog):
    """The log in a list. Models durability for the simulator: `flush()` makes the current
    contents durable and `crash()` goes back to what was flushed (optionally keeping some of
    the unflushed appends, as a disk may)."""

    def __init__(self, start: OffsetAndEpoch = OffsetAndEpoch(0, 0)):
        self._batches: list[StoredBatch] = []
        self._bases: list[int] = []
        self._epochs: list[tuple[int, int]] = []
        self.start_offset, self.start_epoch = start
        # Durable image: the first `_flushed` batches and the current start, unless a truncation
        # or trim rewrote them since the flush, in which case `_durable` holds a copy.
        self._flushed = 0
        self._durable: tuple[OffsetAndEpoch, list[StoredBatch]] | None = None
        self.on_truncate = None  # simulator hook: called with the new end offset before truncating

    @property
    def end_offset(self) -> int:
        return self._batches[-1].next_offset if self._batches else self.start_offset

    @property
    def last_epoch(self) -> int:
        return self._batches[-1].epoch if self._batches else self.start_epoch

    def epoch_entries(self) -> list[tuple[int, int]]:
        return self._epochs

    def append(self, batches: list[StoredBatch]) -> None:
        for b in batches:
            if b.base_offset != self.end_offset:
                raise ValueError(f"append at {b.base_offset} does not continue the log at {self.end_offset}")
            if b.epoch < self.last_epoch:
                raise ValueError(f"batch epoch {b.epoch} below the log's last epoch {self.last_epoch}")
            if not self._epochs or b.epoch > self._epochs[-1][0]:
                self._epochs.append((b.epoch, b.base_offset))
            self._batches.append(b)
            self._bases.append(b.base_offset)

    def _index(self, offset: int) -> int:
        return max(bisect.bisect_right(self._bases, offset) - 1, 0)

    def read(self, offset: int, max_bytes: int) -> bytes:
        out, size = [], 0
        for b in self._batches[self._index(offset):]:
            if b.last_offset < offset:
                continue
            if out and size + len(b.data) > max_bytes:
                break
            out.append(b.data)
            size += len(b.data)
        return b"".join(out)

    def batches(self, start: int, end: int) -> Iterator[StoredBatch]:
        for b in self._batches[self._index(start):]:
            if b.base_offset >= end:
                break
            if b.base_offset >= start and b.last_offset < end:
                yield b

    def _keep_durable_image(self, first_kept: int) -> None:
        if self._durable is None and first_kept < self._flushed:
            self._durable = (OffsetAndEpoch(self.start_offset, self.start_epoch), self._batches[:self._flushed])

    def truncate_to(self, offset: int) -> None:
        if offset >= self.end_offset:
            return
        if self.on_truncate is not None:
            self.on_truncate(offset)
        i = bisect.bisect_left(self._bases, offset)
        if i < len(self._batches) and i > 0 and self._batches[i - 1].last_offset >= offset:
            i -= 1
        self._keep_durable_image(i)
        del self._batches[i:], self._bases[i:]
        self._flushed = min(self._flushed, i)
        self._rebuild_epochs()

    def reset(self, start: OffsetAndEpoch) -> None:
        self._keep_durable_image(0)
        self._batches, self._bases, self._epochs = [], [], []
        self._flushed = 0
        self.start_offset, self.start_epoch = start

    def trim_before(self, start: OffsetAndEpoch) -> None:
        if start.offset <= self.start_offset:
            return
        if start.offset >= self.end_offset:
            self.reset(start)
            return
        i = bisect.bisect_left(self._bases, start.offset)
        self._keep_durable_image(0)
        del self._batches[:i], self._bases[:i]
        self._flushed = max(self._flushed - i, 0)
        self.start_offset, self.start_epoch = start
        self._rebuild_epochs()

    def _rebuild_epochs(self) -> None:
        self._epochs = []
        for b in self._batches:
            if not self._epochs or b.epoch > self._epochs[-1][0]:
                self._epochs.append((b.epoch, b.base_offset))

    def flush(self) -> None:
        self._durable = None
        self._flushed = len(self._batches)

    def crash(self, keep_unflushed: int = 0) -> MemoryLog:
        """The log a restarted process finds: the flushed image plus, when nothing was rewritten
        since the flush, up to `keep_unflushed` of the batches appended after it."""
        if self._durable is not None:
            start, batches = self._durable
        else:
            start = OffsetAndEpoch(self.start_offset, self.start_epoch)
            batches = self._batches[:self._flushed + max(keep_unflushed, 0)]
        log = MemoryLog(start)
        log.append(batches)
        log.flush()
        return log
