"""Producer state snapshots: `<offset>.snapshot` files in a partition directory, and loading the
producer state from the newest usable one (Kafka's ProducerStateManager snapshots and
rebuildProducerState).

A snapshot at offset N holds the producer state of everything below N (format in
`producer_state`). The log writes one when it rolls a segment (at the new segment's base offset)
and when it closes (at its end), so opening a log reads a snapshot and replays at most the batches
after it; without a usable snapshot the whole log is replayed, headers only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import structlog

from kafka_compat.storage.producer_state import CorruptSnapshotError, ProducerState, ProducerStateConfig, replay

log = structlog.get_logger("kafka_compat.storage")

SUFFIX = ".snapshot"
_NAME = re.compile(r"^(\d{20})\.snapshot$")


def path_for(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SUFFIX}"


def offsets(directory: Path) -> list[int]:
    """The offsets of the snapshot files in `directory`, oldest first."""
    return sorted(int(m.group(1)) for name in os.listdir(directory) if (m := _NAME.match(name)))


def write(directory: Path, offset: int, state: ProducerState, *, sync: bool = False) -> None:
    """Write the snapshot at `offset` (replacing one there). Unsynced, a crash may leave it torn:
    its CRC then fails and loading falls back to an older one."""
    path = path_for(directory, offset)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, state.to_snapshot())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def delete(directory: Path, doomed: Iterable[int]) -> None:
    for offset in doomed:
        path_for(directory, offset).unlink(missing_ok=True)


def load(directory: Path, segments: Sequence, *, log_start_offset: int, end_offset: int, rebuild_index_from: int | None,
         config: ProducerStateConfig, now_ms: int) -> ProducerState:
    """The producer state at `end_offset`: from the newest snapshot at or below both `end_offset`
    and `rebuild_index_from`, then the batches after it. Segments from `rebuild_index_from` (those
    recovery re-read) get their transaction indexes rebuilt on the way. Snapshots above the end or
    below the first segment are deleted (they describe data that is gone); so is one that does not
    read. When batches were replayed, a snapshot at the end saves the next opening from it."""
    first_base = segments[0].base_offset
    found = offsets(directory)
    delete(directory, [o for o in found if o > end_offset or o < first_base])
    limit = end_offset if rebuild_index_from is None else min(end_offset, rebuild_index_from)
    state, start = None, log_start_offset
    for offset in reversed([o for o in found if first_base <= o <= limit]):
        try:
            state = ProducerState.from_snapshot(path_for(directory, offset).read_bytes(), config, now_ms)
            start = offset
            break
        except (CorruptSnapshotError, OSError) as e:
            log.warning("producer_snapshot_skipped", dir=directory.name, offset=offset, error=str(e))
            delete(directory, [offset])
    if state is None:
        state = ProducerState(config)
    for i, seg in enumerate(segments):
        seg_end = segments[i + 1].base_offset if i + 1 < len(segments) else end_offset
        rebuilt = rebuild_index_from is not None and seg.base_offset >= rebuild_index_from
        if rebuilt:
            seg.txn_index.reset()
        if seg_end > start:
            replay(state, seg, max(start, seg.base_offset), seg.txn_index if rebuilt else None)
        if rebuilt:
            seg.txn_index.file.flush()  # the recovery point moves past this segment: it is not re-read again
    if start < end_offset:
        write(directory, end_offset, state)
    return state
