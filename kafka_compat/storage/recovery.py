"""Opening a partition directory (Kafka's LogLoader): finish or discard interrupted file
operations, open the segments, re-validate what may not have reached the disk, rebuild indexes.

Rules, in order:
- `*.cleaned` (a compaction that did not finish) and `*.deleted` (segments already replaced or
  expired) are removed; so are stray temp files and indexes whose log file is gone.
- `*.log.swap` is a cleaned segment that was fully written before the swap began: the swap is
  completed (live segments inside its offset range removed, the swap files renamed live).
- After an unclean stop, every segment from the one holding the recovery point onwards is read
  batch by batch (header sanity, increasing offsets, CRC-32C). At the first invalid batch the
  file is truncated and any later segments are deleted (they follow a hole); indexes of the
  re-read segments are rebuilt. Everything before the first invalid batch is kept.
- After a clean stop only the newest batches of the last segment (from its last index entry) are
  re-read: a tail that does not check out (cut short, a bad CRC, garbage after it) sends that
  segment through the recovery above. An index found missing or inconsistent when it is first
  used is rebuilt from its log file.
- A log that loses data in recovery says so in one warning line: what was kept, what was dropped.
- The segments re-read are reported (`rebuilt_from`): their transaction indexes are rebuilt too,
  by the log, which has the producer state they need.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import NamedTuple

import structlog

from kafka_compat.storage.segment import (
    CLEANED,
    DELETED,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SWAP,
    TIME_INDEX_SUFFIX,
    TXN_INDEX_SUFFIX,
    LogSegment,
)

log = structlog.get_logger("kafka_compat.storage")

_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex|\.txnindex|\.snapshot)(\.swap|\.cleaned|\.deleted)?$")


INDEX_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)


class Loaded(NamedTuple):
    segments: list[LogSegment]
    next_offset: int
    recovery_point: int
    rebuilt_from: int | None = None  # base offset of the first segment recovery re-read


def load_segments(directory: Path, *, index_interval_bytes: int, index_max_bytes: int, recovery_point: int,
                  log_start_offset: int, clean_shutdown: bool, name: str) -> Loaded:
    """Open (and if needed repair) the segments of one partition directory.

    Returns the live segments in offset order (at least one: an empty log gets a segment at
    `log_start_offset`), the log end offset and the new recovery point. Files that cannot be
    opened raise OSError: the caller treats the directory as failed.
    """
    leftovers, swaps, logs = [], [], []
    for entry in os.listdir(directory):
        m = _SEGMENT_FILE.match(entry)
        if entry.endswith(".tmp") and not entry.startswith("leader-epoch"):
            leftovers.append(entry)
        if not m:
            continue
        base, kind, state = int(m.group(1)), m.group(2), m.group(3)
        if state in (CLEANED, DELETED):
            leftovers.append(entry)
        elif state == SWAP:
            if kind == LOG_SUFFIX:
                swaps.append(base)
        elif kind == LOG_SUFFIX:
            logs.append(base)
    for entry in leftovers:
        (directory / entry).unlink(missing_ok=True)

    live = set(logs)
    for base in sorted(swaps):
        swap = LogSegment.open(directory, base, index_interval_bytes, index_max_bytes, suffix=SWAP)
        end = swap.next_offset()
        for other in sorted(live):
            if base <= other < max(end, base + 1):
                for suffix in (LOG_SUFFIX, *INDEX_SUFFIXES):
                    (directory / f"{other:020d}{suffix}").unlink(missing_ok=True)
                live.discard(other)
        swap.close()
        swap.rename_to("")
        live.add(base)
        log.info("segment_swap_completed", dir=name, base_offset=base, end_offset=end)
    # Indexes (live or swap) whose log file is gone are rebuilt-or-dropped debris.
    for entry in os.listdir(directory):
        m = _SEGMENT_FILE.match(entry)
        if (m and m.group(2) in INDEX_SUFFIXES
                and (m.group(3) == SWAP or int(m.group(1)) not in live)):
            (directory / entry).unlink(missing_ok=True)

    segments = [LogSegment.open(directory, b, index_interval_bytes, index_max_bytes) for b in sorted(live)]
    if not segments:
        segments = [LogSegment.create(directory, log_start_offset, index_interval_bytes, index_max_bytes)]
        return Loaded(segments, log_start_offset, log_start_offset)

    if clean_shutdown:
        # The marker vouches for what was flushed before it was written, not for what happened to
        # the files since: a last batch that does not check out sends its segment through recovery.
        tail = next((i for i in range(len(segments) - 1, -1, -1) if segments[i].size), None)
        if tail is None or segments[tail].tail_is_sound():
            segments[-1].ensure_indexes()
            return Loaded(segments, segments[-1].next_offset(), recovery_point)
        first, reason = tail, "damaged last batch after a clean shutdown"
    else:
        first = max((i for i, seg in enumerate(segments) if seg.base_offset <= recovery_point), default=0)
        reason = "unclean shutdown"
    recovered = batches = dropped_bytes = 0
    deleted: list[int] = []
    for i in range(first, len(segments)):
        seg = segments[i]
        count, truncated = seg.rebuild(verify=True)
        recovered += 1
        batches += count
        if truncated:
            dropped_bytes += truncated
            for later in segments[i + 1:]:
                dropped_bytes += later.size
                later.close()
                for p in later.paths():
                    p.unlink(missing_ok=True)
                deleted.append(later.base_offset)
            del segments[i + 1:]
            break
    next_offset = segments[-1].next_offset()
    if dropped_bytes:
        start = max(log_start_offset, segments[0].base_offset)
        log.warning("log_truncated", dir=name, reason=reason,
                    kept=f"offsets {start}-{next_offset - 1}" if next_offset > start else "nothing",
                    dropped=f"{dropped_bytes} bytes from offset {next_offset} on"
                    + (f" ({len(deleted)} later segments)" if deleted else ""))
    else:
        log.debug("log_recovered", dir=name, segments_recovered=recovered, batches=batches,
                  log_end_offset=next_offset)
    return Loaded(segments, next_offset, next_offset, segments[first].base_offset)
