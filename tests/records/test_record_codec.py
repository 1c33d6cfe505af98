"""Records inside batches: varints, fields, timestamps, builder options, control markers."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression
from kafka_compat.records.batch import LOG_APPEND_TIME, NO_TIMESTAMP, read_header
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import build_marker_batch, parse_control_record
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.record import Record, iter_records, read_varint, write_varint


def records_of(b):
    return list(iter_records(b, 0, read_header(b)))


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1))
def test_varint_round_trip(n):
    out = bytearray()
    write_varint(n, out)
    assert read_varint(out, 0) == (n, len(out))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.none() | st.binary(max_size=40), st.none() | st.binary(max_size=200),
                          st.integers(0, 1 << 42),
                          st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=10)), max_size=3)),
                min_size=1, max_size=20),
       st.sampled_from([compression.NONE, compression.GZIP, compression.SNAPPY, compression.LZ4, compression.ZSTD]))
def test_records_round_trip_through_every_codec(rows, codec):
    recs = [Record(k, v, ts, h) for k, v, ts, h in rows]
    got = records_of(build_batch(recs, base_offset=100, compression=codec))
    assert [(r.offset, r.key, r.value, r.timestamp, list(r.headers)) for r in got] == \
        [(100 + i, k, v, ts, h) for i, (k, v, ts, h) in enumerate(rows)]


def test_explicit_offsets_keep_gaps():
    b = build_batch([Record(b"a", b"1", 5, offset=10), Record(b"b", b"2", 6, offset=13)], base_offset=10)
    assert [r.offset for r in records_of(b)] == [10, 13]
    assert read_header(b).last_offset == 13


def test_delete_horizon_moves_base_timestamp_but_keeps_record_timestamps():
    b = build_batch([Record(b"a", None, 1000), Record(b"b", None, 2000)], delete_horizon_ms=99999)
    h = read_header(b)
    assert h.delete_horizon_ms == 99999 and h.max_timestamp == 2000
    assert [r.timestamp for r in records_of(b)] == [1000, 2000]


def test_log_append_time_batches_give_every_record_the_append_time():
    b = build_batch([Record(b"a", b"1", 5), Record(b"b", b"2", 6)], timestamp_type=LOG_APPEND_TIME, max_timestamp=777)
    assert [r.timestamp for r in records_of(b)] == [777, 777]


def test_empty_batch_keeps_offset_range_and_producer_state():
    b = build_batch([], base_offset=50, last_offset_delta=4, producer_id=7, producer_epoch=1, base_sequence=20,
                    base_timestamp=10, max_timestamp=20)
    h = read_header(b)
    assert (h.record_count, h.base_offset, h.last_offset, h.producer_id, h.base_sequence) == (0, 50, 54, 7, 20)
    assert records_of(b) == []


def test_record_count_disagreeing_with_records_is_corrupt_message():
    b = build_batch([Record(b"a", b"1"), Record(b"b", b"2")])
    b[57:61] = (1).to_bytes(4, "big")
    from kafka_compat.records.batch import crc_of
    b[17:21] = crc_of(b, 0, len(b)).to_bytes(4, "big")
    with pytest.raises(RecordsError, match="after its 1 records") as e:
        records_of(b)
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_null_key_and_value_round_trip():
    assert [(r.key, r.value, r.timestamp) for r in records_of(build_batch([Record()]))] == [(None, None, NO_TIMESTAMP)]


@pytest.mark.parametrize("commit", [True, False])
def test_transaction_marker_layout(commit):
    b = build_marker_batch(commit, producer_id=5, producer_epoch=3, coordinator_epoch=11, timestamp=1234, base_offset=9)
    h = read_header(b)
    assert h.is_control and h.is_transactional and (h.producer_id, h.producer_epoch) == (5, 3)
    [r] = records_of(b)
    assert r.key == (b"\x00\x00\x00\x01" if commit else b"\x00\x00\x00\x00")
    marker = parse_control_record(r)
    assert (marker.is_commit, marker.is_abort, marker.coordinator_epoch) == (commit, not commit, 11)
