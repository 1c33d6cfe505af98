"""Magic 0/1 message sets: reading, nesting, offsets, CRCs, down-conversion."""

import pytest

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression as c
from kafka_compat.records.batch import LOG_APPEND_TIME, read_header
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import build_marker_batch
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.legacy import (
    _encode_message,
    build_message_set,
    down_convert,
    iter_legacy_records,
    iter_messages,
)
from kafka_compat.records.record import Record


def recs(n, first=0):
    return [Record(b"k%d" % i, b"v%d" % i, 1000 + i, offset=first + i) for i in range(n)]


def flat(data):
    return [(r.offset, r.key, r.value, r.timestamp) for _, r in iter_legacy_records(data, 1 << 20)]


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [c.NONE, c.GZIP, c.SNAPPY, c.LZ4])
def test_message_sets_round_trip(magic, codec):
    data = build_message_set(recs(3, first=40), magic, compression=codec)
    ts = [1000, 1001, 1002] if magic == 1 else [-1, -1, -1]
    assert flat(data) == [(40 + i, b"k%d" % i, b"v%d" % i, ts[i]) for i in range(3)]


def test_magic_1_wrapper_carries_last_offset_and_inner_relative_offsets():
    data = build_message_set(recs(3, first=40), 1, compression=c.GZIP)
    [wrapper] = list(iter_messages(data))
    assert wrapper.offset == 42 and wrapper.compression == c.GZIP
    inner = list(iter_messages(c.decompress(c.GZIP, wrapper.value, 1 << 20)))
    assert [m.offset for m in inner] == [0, 1, 2]


def test_magic_1_log_append_time_wrapper_timestamp_applies_to_inner_messages():
    data = build_message_set(recs(2), 1, compression=c.GZIP, timestamp_type=LOG_APPEND_TIME, log_append_time=5000)
    assert [t for *_, t in flat(data)] == [5000, 5000]


def test_legacy_crc_mismatch_is_corrupt_message():
    data = bytearray(build_message_set(recs(1), 1))
    data[-1] ^= 0xFF
    with pytest.raises(RecordsError, match="CRC") as e:
        flat(data)
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_truncated_legacy_message_is_corrupt_message():
    data = build_message_set(recs(2), 0)
    with pytest.raises(RecordsError) as e:
        flat(data[:-3])
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_nested_compression_is_corrupt_message():
    inner = build_message_set(recs(2), 1, compression=c.GZIP)  # itself a compressed wrapper
    outer = bytearray()
    _encode_message(outer, 1, 1, c.GZIP, 1, None, c.compress(c.GZIP, inner))
    with pytest.raises(RecordsError, match="nested"):
        flat(outer)


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [c.NONE, c.GZIP, c.SNAPPY, c.LZ4])
def test_down_conversion_keeps_records_and_drops_control_batches(magic, codec):
    data = build_batch(recs(3, first=10), base_offset=10, compression=codec) + \
        build_marker_batch(True, 1, 0, 0, 5, base_offset=13) + build_batch(recs(1, first=14), base_offset=14)
    out = down_convert(data, magic)
    assert [o for o, *_ in flat(out)] == [10, 11, 12, 14]
    assert {m.magic for m in iter_messages(out)} == {magic}


def test_down_conversion_skips_records_below_the_fetch_offset_and_a_cut_tail():
    data = build_batch(recs(3, first=10), base_offset=10) + build_batch(recs(2, first=13), base_offset=13)[:30]
    assert [o for o, *_ in flat(down_convert(data, 1, first_offset=11))] == [11, 12]


def test_zstd_cannot_be_down_converted():
    with pytest.raises(RecordsError) as e:
        down_convert(build_batch(recs(1), compression=c.ZSTD), 1)
    assert e.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


def test_down_conversion_preserves_log_append_time():
    b = build_batch(recs(2), timestamp_type=LOG_APPEND_TIME, max_timestamp=4242)
    assert read_header(b).timestamp_type == LOG_APPEND_TIME
    assert [t for *_, t in flat(down_convert(b, 1))] == [4242, 4242]
