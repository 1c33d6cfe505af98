"""Produce-side validation: what passes untouched, what is patched, and each refusal's error name."""

import pytest

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression as c
from kafka_compat.records.batch import LOG_APPEND_TIME, read_header
from kafka_compat.records.builder import build_batch, build_plain_batch
from kafka_compat.records.control import build_marker_batch
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.legacy import build_message_set
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import COORDINATOR, own_plain_batch, validate_records
from kafka_compat.storage.config import LogConfig

NOW = 1_700_000_000_000


def batch(*values, keys=True, **kw):
    return build_batch([Record(b"k%d" % i if keys else None, v, NOW) for i, v in enumerate(values)], **kw)


def cfg(**props):
    return LogConfig.from_dict({k.replace("_", "."): str(v) for k, v in props.items()})


def refused(data, config=None, **kw) -> ErrorCode:
    with pytest.raises(RecordsError) as e:
        validate_records(data, config or cfg(), NOW, **kw)
    return e.value.code


def test_plain_batch_passes_untouched_and_writable_input_is_not_copied():
    data = batch(b"a", b"b")
    original = bytes(data)
    v = validate_records(data, cfg(), NOW)
    assert bytes(v.buffer) == original and v.offset_count == 2 and v.record_count == 2
    assert v.log_append_time == -1 and not v.size_changed
    v.buffer[0] = 1
    assert data[0] == 1  # the request's own buffer


def test_read_only_input_is_copied_once_to_be_patchable():
    v = validate_records(bytes(batch(b"a")), cfg(), NOW)
    assert not v.buffer.readonly


def test_several_batches_are_walked_by_header():
    v = validate_records(batch(b"a") + batch(b"b", b"c"), cfg(), NOW)
    assert [h.record_count for _, h in v.batches] == [1, 2] and v.offset_count == 3


def test_empty_input_gives_nothing_to_append():
    v = validate_records(b"", cfg(), NOW)
    assert v.batches == [] and v.offset_count == 0


def test_bad_crc_is_corrupt_message():
    data = batch(b"a")
    data[-1] ^= 1
    assert refused(data) == ErrorCode.CORRUPT_MESSAGE


def test_truncated_batch_is_corrupt_message():
    assert refused(batch(b"abc")[:-1]) == ErrorCode.CORRUPT_MESSAGE


def test_trailing_partial_header_is_corrupt_message():
    assert refused(batch(b"abc") + b"\x00" * 20) == ErrorCode.CORRUPT_MESSAGE


def test_wrong_magic_is_corrupt_message():
    data = batch(b"a")
    data[16] = 7
    assert refused(data) == ErrorCode.CORRUPT_MESSAGE


def test_lying_record_count_is_refused():
    data = batch(b"a")
    data[57:61] = (5000).to_bytes(4, "big")
    assert refused(data) == ErrorCode.CORRUPT_MESSAGE


def test_count_disagreeing_with_offset_range_is_invalid_record():
    data = build_batch([Record(b"k", b"v")], last_offset_delta=3)
    assert refused(data) == ErrorCode.INVALID_RECORD


def test_nonzero_base_offset_from_a_client_is_invalid_record():
    assert refused(batch(b"a", base_offset=5)) == ErrorCode.INVALID_RECORD


def test_control_batch_from_a_client_is_invalid_record():
    marker = build_marker_batch(True, 1, 0, 0, NOW)
    assert refused(marker) == ErrorCode.INVALID_RECORD
    assert validate_records(marker, cfg(), NOW, origin=COORDINATOR).batches


def test_transactional_batch_without_producer_id_is_invalid_record():
    assert refused(batch(b"a", transactional=True)) == ErrorCode.INVALID_RECORD


def test_client_batch_with_a_producer_but_no_sequence_is_invalid_record():
    data = batch(b"a", producer_id=7, producer_epoch=0, base_sequence=-1, transactional=True)
    assert refused(data) == ErrorCode.INVALID_RECORD
    # The group coordinator's transactional offset commits carry no sequence, as in Kafka.
    assert validate_records(data, cfg(), NOW, origin=COORDINATOR).batches


def test_batch_over_max_message_bytes_is_message_too_large():
    assert refused(batch(b"x" * 2000), cfg(max_message_bytes=1000)) == ErrorCode.MESSAGE_TOO_LARGE


def test_records_over_segment_bytes_are_record_list_too_large():
    assert refused(batch(b"x" * 2000) + batch(b"y" * 2000), cfg(segment_bytes=3000)) == ErrorCode.RECORD_LIST_TOO_LARGE


def test_unknown_codec_is_unsupported_compression_type():
    data = batch(b"a")
    data[22] |= 0x07
    from kafka_compat.records.batch import crc_of
    data[17:21] = crc_of(data, 0, len(data)).to_bytes(4, "big")
    assert refused(data) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE


def test_zstd_before_produce_v7_is_unsupported_compression_type():
    data = batch(b"a", compression=c.ZSTD)
    assert refused(data, produce_version=6) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    assert validate_records(data, cfg(), NOW, produce_version=7).batches


def test_produce_v3_needs_exactly_one_batch():
    assert refused(batch(b"a") + batch(b"b"), produce_version=3) == ErrorCode.INVALID_RECORD


def test_produce_v3_refuses_legacy_messages():
    assert refused(build_message_set([Record(b"k", b"v", offset=0)], 1), produce_version=3) == ErrorCode.INVALID_RECORD


def test_keyless_record_on_compacted_topic_is_invalid_record():
    assert refused(batch(b"a", keys=False), cfg(cleanup_policy="compact")) == ErrorCode.INVALID_RECORD
    assert validate_records(batch(b"a"), cfg(cleanup_policy="compact"), NOW).batches


def test_a_coordinators_own_batch_on_a_compacted_topic_is_not_decoded_for_the_key_check():
    v = validate_records(batch(b"a", keys=False), cfg(cleanup_policy="compact"), NOW, origin=COORDINATOR)
    assert [h.record_count for _, h in v.batches] == [1]


def test_keyless_record_in_compressed_batch_on_compacted_topic_is_invalid_record():
    data = batch(b"a", keys=False, compression=c.LZ4)
    assert refused(data, cfg(cleanup_policy="compact")) == ErrorCode.INVALID_RECORD


def test_timestamp_too_far_ahead_is_invalid_timestamp():
    data = build_batch([Record(b"k", b"v", NOW + 10_000)])
    assert refused(data, cfg(message_timestamp_after_max_ms=1000)) == ErrorCode.INVALID_TIMESTAMP


def test_timestamp_too_old_is_invalid_timestamp():
    data = build_batch([Record(b"k", b"v", NOW - 10_000), Record(b"k", b"v", NOW)])
    assert refused(data, cfg(message_timestamp_before_max_ms=1000)) == ErrorCode.INVALID_TIMESTAMP


def test_log_append_time_topic_stamps_the_batch_and_keeps_it_valid():
    v = validate_records(batch(b"a", b"b"), cfg(message_timestamp_type="LogAppendTime"), NOW + 5)
    h = read_header(v.buffer)
    assert v.log_append_time == NOW + 5 and h.timestamp_type == LOG_APPEND_TIME and h.max_timestamp == NOW + 5
    assert [r.timestamp for r in iter_records(v.buffer, 0, h)] == [NOW + 5, NOW + 5]


def test_topic_compression_type_recompresses_and_keeps_producer_fields():
    data = batch(b"a" * 100, b"b" * 100, producer_id=4, producer_epoch=1, base_sequence=10)
    v = validate_records(data, cfg(compression_type="zstd"), NOW)
    h = read_header(v.buffer)
    assert h.compression == c.ZSTD and (h.producer_id, h.base_sequence, h.record_count) == (4, 10, 2)
    assert [r.value for r in iter_records(v.buffer, 0, h)] == [b"a" * 100, b"b" * 100]
    assert v.size_changed


def test_uncompressed_topic_decompresses_producer_batches():
    v = validate_records(batch(b"a", compression=c.GZIP), cfg(compression_type="uncompressed"), NOW)
    assert read_header(v.buffer).compression == c.NONE


def test_matching_topic_compression_is_not_rewritten():
    data = batch(b"a", compression=c.LZ4)
    v = validate_records(data, cfg(compression_type="lz4"), NOW)
    assert bytes(v.buffer) == bytes(data)


def test_decompression_bomb_in_produce_is_refused():
    data = build_batch([Record(b"k", bytes(8 * 1024 * 1024))], compression=c.ZSTD)
    with pytest.raises(RecordsError) as e:
        validate_records(data, cfg(compression_type="gzip"), NOW, max_uncompressed_bytes=1024 * 1024)
    assert e.value.code == ErrorCode.MESSAGE_TOO_LARGE


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [c.NONE, c.GZIP, c.SNAPPY, c.LZ4])
def test_legacy_messages_become_one_magic_2_batch(magic, codec):
    data = build_message_set([Record(b"k%d" % i, b"v%d" % i, NOW + i, offset=i) for i in range(3)], magic,
                             compression=codec)
    v = validate_records(data, cfg(), NOW)
    [(pos, h)] = v.batches
    assert h.magic == 2 and h.compression == codec and v.size_changed and h.base_offset == 0
    got = [(r.offset, r.key, r.value, r.timestamp) for r in iter_records(v.buffer, pos, h)]
    assert got == [(i, b"k%d" % i, b"v%d" % i, NOW + i if magic else -1) for i in range(3)]


def test_legacy_keyless_message_on_compacted_topic_is_invalid_record():
    data = build_message_set([Record(None, b"v", NOW, offset=0)], 1)
    assert refused(data, cfg(cleanup_policy="compact")) == ErrorCode.INVALID_RECORD


def test_legacy_corrupt_crc_is_corrupt_message():
    data = bytearray(build_message_set([Record(b"k", b"v", NOW, offset=0)], 1))
    data[-1] ^= 1
    assert refused(data) == ErrorCode.CORRUPT_MESSAGE


PAIRS = [(b"\x00\x01group-key", b"\x00\x03value"), (b"\x00\x01other-key", None)]


def test_a_coordinators_own_batch_is_what_validation_would_have_kept_without_reading_it_back():
    own = own_plain_batch(PAIRS, NOW, cfg(cleanup_policy="compact"))
    checked = validate_records(build_plain_batch(PAIRS, NOW), cfg(cleanup_policy="compact"), NOW, origin=COORDINATOR)
    assert bytes(own.buffer) == bytes(checked.buffer)
    assert own.batches == checked.batches and own.offset_count == checked.offset_count == 2
    assert own.max_timestamp == checked.max_timestamp == NOW and own.log_append_time == checked.log_append_time == -1


@pytest.mark.parametrize("limit, code", [("max_message_bytes", "MESSAGE_TOO_LARGE"),
                                         ("segment_bytes", "RECORD_LIST_TOO_LARGE")])
def test_a_coordinators_own_batch_over_the_topics_limits_is_refused_as_validation_refuses_it(limit, code):
    with pytest.raises(RecordsError) as own:
        own_plain_batch(PAIRS, NOW, cfg(**{limit: 80}))
    assert own.value.code == refused(build_plain_batch(PAIRS, NOW), cfg(**{limit: 80}), origin=COORDINATOR) \
        == ErrorCode[code]


def test_a_coordinators_own_batch_on_a_log_append_time_topic_is_stamped_as_any_batch():
    v = own_plain_batch(PAIRS, NOW - 5, cfg(message_timestamp_type="LogAppendTime"))
    h = read_header(v.buffer)
    assert h.timestamp_type == LOG_APPEND_TIME and h.max_timestamp == v.log_append_time == NOW - 5
