"""Snapshots of the replicated state machine (KIP-630): the state at an end offset and epoch.

A snapshot is a sequence of record batches: a control batch with a SnapshotHeaderRecord, the
state machine's records, a control batch with a SnapshotFooterRecord. Its id is the offset just
past the last record it covers and that record's epoch; on disk it is
`<20-digit end offset>-<10-digit epoch>.checkpoint` in the metadata log's directory, written as
`.checkpoint.part`, fsynced and renamed so that a crash never leaves half a snapshot under a
final name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from kafka_compat.protocol import messages as m
from kafka_compat.raft import control
from kafka_compat.raft.log import OffsetAndEpoch, split_batches
from kafka_compat.records.batch import read_header
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record, iter_records
from kafka_compat.storage.checkpoint import fsync_dir

SUFFIX = ".checkpoint"
PARTIAL_SUFFIX = ".checkpoint.part"
_NAME = re.compile(r"^(\d{20})-(\d{10})\.checkpoint$")
RECORDS_PER_BATCH = 1000


def file_name(snapshot_id: OffsetAndEpoch) -> str:
    return f"{snapshot_id.offset:020d}-{snapshot_id.epoch:010d}{SUFFIX}"


def parse_file_name(name: str) -> OffsetAndEpoch | None:
    match = _NAME.match(name)
    return OffsetAndEpoch(int(match[1]), int(match[2])) if match else None


def build(snapshot_id: OffsetAndEpoch, values: Iterable[bytes], last_timestamp: int) -> bytes:
    """A snapshot's bytes: header batch, the values in batches of RECORDS_PER_BATCH, footer batch."""
    epoch = snapshot_id.epoch
    header = m.SnapshotHeaderRecord(version=0, last_contained_log_timestamp=last_timestamp)
    parts = [control.control_batch(header, base_offset=0, epoch=epoch, timestamp=last_timestamp)]
    offset, pending = 1, []
    for value in values:
        pending.append(Record(None, value, last_timestamp))
        if len(pending) == RECORDS_PER_BATCH:
            parts.append(build_batch(pending, base_offset=offset, partition_leader_epoch=epoch))
            offset, pending = offset + len(pending), []
    if pending:
        parts.append(build_batch(pending, base_offset=offset, partition_leader_epoch=epoch))
        offset += len(pending)
    parts.append(control.control_batch(m.SnapshotFooterRecord(version=0), base_offset=offset, epoch=epoch,
                                       timestamp=last_timestamp))
    return b"".join(parts)


def read_values(data: bytes) -> list[bytes]:
    """The state machine's records in a snapshot; ValueError unless the header comes first and
    the footer last."""
    batches = split_batches(data)
    if len(batches) < 2:
        raise ValueError("a snapshot needs at least a header and a footer batch")
    values: list[bytes] = []
    for i, b in enumerate(batches):
        h = read_header(b.data)
        records = list(iter_records(b.data, 0, h))
        if h.is_control:
            kinds = {type(control.parse(r)) for r in records}
            expected = m.SnapshotHeaderRecord if i == 0 else m.SnapshotFooterRecord if i == len(batches) - 1 else None
            if kinds != {expected}:
                raise ValueError(f"unexpected control batch at position {i} of the snapshot")
        elif i == 0 or i == len(batches) - 1:
            raise ValueError("a snapshot must start with its header and end with its footer")
        else:
            values.extend(r.value for r in records)
    return values


class SnapshotStore:
    """Where snapshots live. `write` is durable when it returns; the rest read."""

    def ids(self) -> list[OffsetAndEpoch]:
        raise NotImplementedError

    def latest(self) -> OffsetAndEpoch | None:
        ids = self.ids()
        return ids[-1] if ids else None

    def size(self, snapshot_id: OffsetAndEpoch) -> int:
        raise NotImplementedError

    def read(self, snapshot_id: OffsetAndEpoch, position: int = 0, max_bytes: int = 1 << 62) -> bytes:
        raise NotImplementedError

    def write(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        raise NotImplementedError

    def delete_before(self, snapshot_id: OffsetAndEpoch) -> None:
        """Forget the snapshots older than `snapshot_id` (the log no longer reaches back to them)."""
        raise NotImplementedError


class MemorySnapshotStore(SnapshotStore):
    """Snapshots in a dict; survive a simulated crash, as a renamed file would."""

    def __init__(self):
        self._data: dict[OffsetAndEpoch, bytes] = {}

    def ids(self) -> list[OffsetAndEpoch]:
        return sorted(self._data)

    def size(self, snapshot_id: OffsetAndEpoch) -> int:
        return len(self._data[snapshot_id])

    def read(self, snapshot_id: OffsetAndEpoch, position: int = 0, max_bytes: int = 1 << 62) -> bytes:
        return self._data[snapshot_id][position:position + max_bytes]

    def write(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        self._data[snapshot_id] = bytes(data)

    def delete_before(self, snapshot_id: OffsetAndEpoch) -> None:
        for sid in [s for s in self._data if s < snapshot_id]:
            del self._data[sid]


class FileSnapshotStore(SnapshotStore):
    """`.checkpoint` files in the metadata log's directory. Leftover `.part` files (a crash while
    writing) are deleted on open."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for p in self.dir.glob("*" + PARTIAL_SUFFIX):
            p.unlink()
        self._ids = sorted(sid for p in self.dir.iterdir() if (sid := parse_file_name(p.name)) is not None)

    def ids(self) -> list[OffsetAndEpoch]:
        return list(self._ids)

    def _path(self, snapshot_id: OffsetAndEpoch) -> Path:
        return self.dir / file_name(snapshot_id)

    def size(self, snapshot_id: OffsetAndEpoch) -> int:
        return self._path(snapshot_id).stat().st_size

    def read(self, snapshot_id: OffsetAndEpoch, position: int = 0, max_bytes: int = 1 << 62) -> bytes:
        with open(self._path(snapshot_id), "rb") as f:
            f.seek(position)
            # read(n) allocates n bytes up front: ask for no more than the file holds
            return f.read(min(max_bytes, max(os.fstat(f.fileno()).st_size - position, 0)))

    def write(self, snapshot_id: OffsetAndEpoch, data: bytes) -> None:
        final = self._path(snapshot_id)
        part = final.with_name(final.name[:-len(SUFFIX)] + PARTIAL_SUFFIX)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, final)
        fsync_dir(self.dir)
        if snapshot_id not in self._ids:
            self._ids = sorted(self._ids + [snapshot_id])

    def delete_before(self, snapshot_id: OffsetAndEpoch) -> None:
        for sid in [s for s in self._ids if s < snapshot_id]:
            self._path(sid).unlink(missing_ok=True)
            self._ids.remove(sid)
