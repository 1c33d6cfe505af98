"""The metadata log on disk: `__cluster_metadata-0` in the partition log format of `storage`.

Segments, indexes, the leader-epoch checkpoint and crash recovery are `storage.Log`'s; this adds
what Raft needs on top: where the log starts after a snapshot and with which epoch. That start is
not stored separately: it is the earliest snapshot's end offset when the segments reach that far
back (snapshots are only taken of committed, applied state, and the node trims the log to its
snapshot), else the first segment's base offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kafka_compat.raft.log import OffsetAndEpoch, RaftLog, StoredBatch, split_batches
from kafka_compat.raft.snapshots import SnapshotStore
from kafka_compat.storage import Log, LogConfig

DIR_NAME = "__cluster_metadata-0"
# The log is flushed by the Raft driver before anything depending on it is sent; segments deleted
# by truncation or trimming go at once, nobody reads them through older file handles.
CONFIG = {"segment.bytes": str(1 << 30), "file.delete.delay.ms": "0"}


class FileLog(RaftLog):
    def __init__(self, directory: Path, snapshots: SnapshotStore, config: dict[str, str] | None = None):
        self.dir = Path(directory)
        ids = snapshots.ids()
        self._log = Log(self.dir, LogConfig.from_dict({**CONFIG, **(config or {})}))
        base, end = self._log.log_start_offset, self._log.log_end_offset
        covered = [s for s in ids if base <= s.offset <= end]
        if covered:
            start = covered[0]
            self._set_start(start)
        else:
            self.start_offset, self.start_epoch = base, 0
        self._log.high_watermark = end

    def _set_start(self, start: OffsetAndEpoch) -> None:
        if start.offset > self._log.log_start_offset:
            self._log.high_watermark = self._log.log_end_offset
            self._log.advance_log_start_offset(start.offset)
        self.start_offset, self.start_epoch = start

    @property
    def end_offset(self) -> int:
        return self._log.log_end_offset

    @property
    def last_epoch(self) -> int:
        if self.end_offset == self.start_offset:
            return self.start_epoch
        return self._log.epochs.latest_epoch

    def epoch_entries(self) -> list[tuple[int, int]]:
        return self._log.epochs.entries()

    def append(self, batches: list[StoredBatch]) -> None:
        if batches[0].base_offset != self.end_offset:
            raise ValueError(f"append at {batches[0].base_offset} does not continue the log at {self.end_offset}")
        self._log.append_as_follower(b"".join(b.data for b in batches))
        self._log.high_watermark = self._log.log_end_offset

    def read(self, offset: int, max_bytes: int) -> bytes:
        return self._log.read_bytes(offset, max_bytes)

    def batches(self, start: int, end: int) -> Iterator[StoredBatch]:
        if start >= end:
            return
        data = self._log.read_bytes(max(start, self.start_offset), 1 << 62, max_offset=end)
        for b in split_batches(data):
            if b.base_offset >= start and b.last_offset < end:
                yield b

    def truncate_to(self, offset: int) -> None:
        self._log.truncate_to(max(offset, self.start_offset))

    def reset(self, start: OffsetAndEpoch) -> None:
        self._log.truncate_fully_and_start_at(start.offset)
        self.start_offset, self.start_epoch = start

    def trim_before(self, start: OffsetAndEpoch) -> None:
        if start.offset <= self.start_offset:
            return
        if start.offset >= self.end_offset:
            self.reset(start)
        else:
            self._set_start(start)

    def flush(self) -> None:
        self._log.flush()

    def close(self) -> None:
        self._log.close()
