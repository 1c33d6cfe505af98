"""Reading fetched record bytes the way the CLI's consumer does."""

from __future__ import annotations

from kafka_compat.client import fetched_end, iter_fetched
from kafka_compat.records import Record, build_batch, build_marker_batch, build_message_set
from kafka_compat.records import compression as codecs


def test_fetched_records_skip_markers_and_a_cut_off_batch():
    first = build_batch([Record(value=b"a", timestamp=1), Record(value=b"b", timestamp=1)], base_offset=10,
                        compression=codecs.LZ4)
    marker = build_marker_batch(True, 1, 0, 0, 1, base_offset=12)
    last = build_batch([Record(value=b"c", timestamp=1)], base_offset=13)
    data = bytes(first + marker + last[:-5])  # the broker's size limit cut the last batch
    assert [(r.offset, r.value) for r in iter_fetched(data)] == [(10, b"a"), (11, b"b")]
    assert fetched_end(data) == 13  # past the marker: the next fetch starts at the cut batch
    assert fetched_end(b"") is None and list(iter_fetched(None)) == []


def test_fetched_legacy_message_sets_are_read():
    data = build_message_set([Record(value=b"x", timestamp=5, offset=3), Record(value=b"y", timestamp=6, offset=4)],
                             magic=1, compression=codecs.GZIP)
    assert [(r.offset, r.value) for r in iter_fetched(data)] == [(3, b"x"), (4, b"y")]
    assert fetched_end(data) == 5
