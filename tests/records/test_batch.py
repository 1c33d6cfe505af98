"""The magic-2 batch header: fields, checks, in-place patches."""

import pytest
from crc32c import crc32c

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records.batch import (
    CRC_OFFSET,
    HEADER_SIZE,
    LOG_APPEND_TIME,
    LOG_OVERHEAD,
    OFFSET_LENGTH_EPOCH,
    check_crc,
    check_header,
    crc_of,
    iter_headers,
    read_header,
    set_log_append_time,
)
from kafka_compat.records.builder import build_batch, build_plain_batch
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.record import Record, iter_records


def batch(*values, **kw) -> bytearray:
    return build_batch([Record(b"k", v, 1000 + i) for i, v in enumerate(values)], **kw)


def test_header_fields_come_back_as_built():
    b = batch(b"a", b"bb", base_offset=7, producer_id=3, producer_epoch=2, base_sequence=9, transactional=True,
              partition_leader_epoch=4)
    h = read_header(b)
    assert (h.base_offset, h.last_offset, h.record_count, h.magic) == (7, 8, 2, 2)
    assert (h.producer_id, h.producer_epoch, h.base_sequence, h.last_sequence) == (3, 2, 9, 10)
    assert h.is_transactional and not h.is_control
    assert (h.base_timestamp, h.max_timestamp, h.partition_leader_epoch) == (1000, 1001, 4)
    assert h.size == len(b) and h.crc == crc32c(bytes(b[21:]))


def test_crc_mismatch_is_corrupt_message():
    b = batch(b"value")
    b[-1] ^= 1
    with pytest.raises(RecordsError) as e:
        check_crc(b, 0, read_header(b))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_unknown_magic_is_corrupt_message():
    b = batch(b"value")
    b[16] = 3
    with pytest.raises(RecordsError, match="magic") as e:
        check_header(read_header(b), len(b))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_length_beyond_buffer_is_corrupt_message():
    b = batch(b"value")
    with pytest.raises(RecordsError, match="remain"):
        check_header(read_header(b), len(b) - 1)


def test_length_below_header_is_corrupt_message():
    b = batch(b"value")
    b[8:12] = (10).to_bytes(4, "big")
    with pytest.raises(RecordsError, match="below"):
        check_header(read_header(b), len(b))


def test_record_count_larger_than_bytes_can_hold_is_corrupt_message():
    b = batch(b"v")
    b[57:61] = (1000).to_bytes(4, "big")
    with pytest.raises(RecordsError, match="claims 1000 records") as e:
        check_header(read_header(b), len(b))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_negative_record_count_is_corrupt_message():
    b = batch(b"v")
    b[57:61] = (-1).to_bytes(4, "big", signed=True)
    with pytest.raises(RecordsError, match="negative"):
        check_header(read_header(b), len(b))


def test_base_offset_and_leader_epoch_patches_keep_the_crc_valid():
    b = batch(b"a", b"b")
    OFFSET_LENGTH_EPOCH.pack_into(b, 0, 1234, len(b) - LOG_OVERHEAD, 9)  # as a leader's append patches them
    h = read_header(b)
    assert (h.base_offset, h.partition_leader_epoch) == (1234, 9)
    check_crc(b, 0, h)
    assert [r.offset for r in iter_records(b, 0, h)] == [1234, 1235]


def test_log_append_time_patch_sets_type_max_timestamp_and_a_new_crc():
    b = batch(b"a", b"b")
    old_crc = read_header(b).crc
    set_log_append_time(b, 0, len(b), 5555)
    h = read_header(b)
    assert h.timestamp_type == LOG_APPEND_TIME and h.max_timestamp == 5555 and h.crc != old_crc
    check_crc(b, 0, h)
    assert [r.timestamp for r in iter_records(b, 0, h)] == [5555, 5555]


def test_iter_headers_walks_consecutive_batches():
    data = batch(b"a", base_offset=0) + batch(b"b", b"c", base_offset=1)
    assert [(p, h.base_offset, h.record_count) for p, h in iter_headers(data)] == [(0, 0, 1), (len(batch(b"a")), 1, 2)]


def test_iter_headers_rejects_a_truncated_tail():
    data = batch(b"a") + batch(b"b")[:HEADER_SIZE - 1]
    with pytest.raises(RecordsError, match="truncated"):
        list(iter_headers(data))


def test_crc_field_covers_attributes_to_end_only():
    b = batch(b"x")
    assert crc_of(b, 0, len(b)) == int.from_bytes(b[CRC_OFFSET:CRC_OFFSET + 4], "big")


def test_a_plain_batch_is_the_batch_build_batch_makes_of_the_same_records():
    # a value past 63 bytes takes a two-byte length varint, a tombstone a null value
    pairs = [(b"\x00\x01k%d" % i, b"\x00\x03" + b"v" * (i * 50)) for i in range(4)] + [(b"\x00\x01gone", None)]
    plain = build_plain_batch(pairs, 1_700_000_000_123)
    assert plain == build_batch([Record(k, v, 1_700_000_000_123) for k, v in pairs])
    records = iter_records(plain, 0, read_header(plain))
    assert [(r.key, r.value, r.offset) for r in records] == [(k, v, i) for i, (k, v) in enumerate(pairs)]
