"""The records of a Fetch response's record bytes, whatever their format, and where the next fetch
starts."""

from __future__ import annotations

from collections.abc import Iterator

from kafka_compat.records import Record, iter_headers, iter_legacy_records, iter_records
from kafka_compat.records.batch import LOG_OVERHEAD, MAGIC_OFFSET


def _entries(data) -> Iterator[memoryview]:
    """Each complete batch or legacy entry; a batch cut off at the end of a Fetch response (the
    broker's size limit) is left out, as consumers leave it."""
    view = memoryview(data or b"")
    pos = 0
    while pos + LOG_OVERHEAD <= len(view):
        size = LOG_OVERHEAD + int.from_bytes(view[pos + 8:pos + 12], "big", signed=True)
        if size <= MAGIC_OFFSET or pos + size > len(view):
            return
        yield view[pos:pos + size]
        pos += size


def iter_fetched(data) -> Iterator[Record]:
    """The data records in a Fetch response's record bytes, in offset order; control batches
    (transaction markers) are skipped. Legacy message sets (magic 0/1) from old brokers are read
    too. Raises RecordsError for a corrupt batch."""
    for entry in _entries(data):
        if entry[MAGIC_OFFSET] < 2:
            yield from (r for _, r in iter_legacy_records(entry, 1 << 30))
            continue
        for _, header in iter_headers(entry):  # checks the header's structure
            if not header.is_control:
                yield from iter_records(entry, 0, header)


def fetched_end(data) -> int | None:
    """The offset after the last complete batch in a Fetch response's record bytes (None if there
    is none): where the next fetch starts even when the batch ended with no data records."""
    last = None
    for entry in _entries(data):
        if entry[MAGIC_OFFSET] < 2:
            last = int.from_bytes(entry[:8], "big", signed=True) + 1  # a wrapper carries its last offset
        else:
            last = next(iter_headers(entry))[1].next_offset
    return last
