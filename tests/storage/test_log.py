"""Log: offsets, reads as whole-batch file ranges, rolls, ListOffsets, epochs, truncation, flushing."""

import os

import pytest

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    Log,
    LogConfig,
    OffsetOutOfRangeError,
    OffsetsOutOfOrderError,
)

NOW = 1_700_000_000_000


class Clock:
    def __init__(self, t=NOW):
        self.t = t

    def __call__(self):
        return self.t


def new_log(tmp_path, clock=None, **props):
    config = LogConfig.from_dict({k.replace("_", "."): str(v) for k, v in props.items()})
    return Log(tmp_path / "t-0", config, clock=clock or Clock())


def produce(log, *values, ts=NOW, epoch=0, key=b"k"):
    data = build_batch([Record(key, v, ts + i) for i, v in enumerate(values)])
    return log.append(validate_records(data, log.config, NOW), epoch)


def batches(data):
    return [(h.base_offset, h.last_offset) for _, h in iter_headers(data)]


def values(data):
    return [(r.offset, r.value) for p, h in iter_headers(data) for r in iter_records(data, p, h)]


def test_append_assigns_consecutive_offsets(tmp_path):
    log = new_log(tmp_path)
    assert produce(log, b"a", b"b")[:2] == (0, 1)
    assert produce(log, b"c")[:2] == (2, 2)
    assert log.log_end_offset == 3


def test_append_stamps_partition_leader_epoch_and_records_the_epoch_start(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", epoch=2)
    produce(log, b"b", epoch=5)
    assert [h.partition_leader_epoch for _, h in iter_headers(log.read_bytes(0, 1 << 20))] == [2, 5]
    assert log.epochs.entries() == [(2, 0), (5, 1)]


def test_read_returns_whole_batch_holding_the_offset(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", b"b", b"c")
    produce(log, b"d")
    assert batches(log.read_bytes(1, 1 << 20)) == [(0, 2), (3, 3)]


def test_read_stops_at_a_batch_boundary_within_max_bytes(tmp_path):
    log = new_log(tmp_path)
    for _i in range(5):
        produce(log, b"x" * 100)
    one = len(log.read_bytes(0, 1))
    assert batches(log.read_bytes(0, one * 2 + one // 2)) == [(0, 0), (1, 1)]


def test_read_returns_one_oversized_batch_only_when_asked(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"x" * 1000)
    assert batches(log.read_bytes(0, 10)) == [(0, 0)]
    assert log.read(0, 10, min_one_batch=False) == []


def test_read_excludes_batches_at_or_above_max_offset(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a")
    produce(log, b"b", b"c")
    produce(log, b"d")
    assert batches(log.read_bytes(0, 1 << 20, max_offset=3)) == [(0, 0), (1, 2)]
    assert batches(log.read_bytes(0, 1 << 20, max_offset=2)) == [(0, 0)]
    assert log.read(3, 1 << 20, max_offset=3) == []


def test_read_at_log_end_is_empty_and_beyond_is_out_of_range(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a")
    assert log.read(1, 100) == []
    with pytest.raises(OffsetOutOfRangeError) as e:
        log.read(2, 100)
    assert e.value.code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_read_spans_segments(tmp_path):
    log = new_log(tmp_path, segment_bytes=300)
    for i in range(10):
        produce(log, b"v%d" % i)
    assert len(log.segments) > 2
    assert [o for o, _ in values(log.read_bytes(0, 1 << 20))] == list(range(10))


def test_file_slice_supports_sendfile(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", b"b")
    [s] = log.read(0, 1 << 20)
    out = tmp_path / "out"
    with open(out, "wb") as f:
        assert os.sendfile(f.fileno(), s.fileno(), s.position, len(s)) == len(s)
    assert out.read_bytes() == s.read()


def test_rolls_when_segment_bytes_would_be_exceeded(tmp_path):
    log = new_log(tmp_path, segment_bytes=500)
    for _ in range(6):
        produce(log, b"x" * 100)
    assert all(s.size <= 500 for s in log.segments) and len(log.segments) >= 2
    assert [s.base_offset for s in log.segments][1] > 0


def test_rolls_when_segment_ms_passed_since_first_batch_timestamp(tmp_path):
    log = new_log(tmp_path, segment_ms=1000)
    produce(log, b"a", ts=NOW)
    produce(log, b"b", ts=NOW + 500)
    assert len(log.segments) == 1
    produce(log, b"c", ts=NOW + 1500)
    assert [s.base_offset for s in log.segments] == [0, 2]


def test_rolls_when_offset_index_is_full(tmp_path):
    log = new_log(tmp_path, index_interval_bytes=1, segment_index_bytes=16)
    for i in range(6):
        produce(log, b"v%d" % i)
    assert len(log.segments) >= 2
    assert [o for o, _ in values(log.read_bytes(0, 1 << 20))] == list(range(6))


def test_list_offsets_special_timestamps(tmp_path):
    log = new_log(tmp_path, segment_bytes=300)
    produce(log, b"a", b"b", ts=NOW, epoch=1)
    produce(log, b"c", ts=NOW + 100, epoch=2)
    produce(log, b"d", ts=NOW + 50, epoch=2)
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP)[1:] == (0, 1)
    assert log.offset_for_timestamp(LATEST_TIMESTAMP)[1:] == (4, 2)
    assert log.offset_for_timestamp(MAX_TIMESTAMP) == (NOW + 100, 2, 2)


def test_list_offsets_by_timestamp_finds_first_record_at_or_after(tmp_path):
    log = new_log(tmp_path, segment_bytes=400, index_interval_bytes=1)
    for i in range(20):
        produce(log, b"v", ts=NOW + i * 10)
    assert log.offset_for_timestamp(NOW + 55)[:2] == (NOW + 60, 6)
    assert log.offset_for_timestamp(NOW + 60)[:2] == (NOW + 60, 6)
    assert log.offset_for_timestamp(NOW)[:2] == (NOW, 0)
    assert log.offset_for_timestamp(NOW + 10_000) is None
    assert log.offset_for_timestamp(NOW + 55, max_offset=6) is None


def test_list_offsets_by_timestamp_inside_a_batch(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", b"b", b"c", ts=NOW)  # timestamps NOW, NOW+1, NOW+2
    assert log.offset_for_timestamp(NOW + 1)[:2] == (NOW + 1, 1)


def test_end_offset_for_epoch_follows_kafka(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", epoch=1)
    produce(log, b"b", epoch=3)
    produce(log, b"c", epoch=3)
    assert log.end_offset_for_epoch(3) == (3, 3)
    assert log.end_offset_for_epoch(2) == (1, 1)
    assert log.end_offset_for_epoch(1) == (1, 1)
    assert log.end_offset_for_epoch(0) == (0, 0)
    assert log.end_offset_for_epoch(7) == (-1, -1)


def test_truncate_to_removes_whole_batches_and_epochs_above(tmp_path):
    log = new_log(tmp_path, segment_bytes=300)
    for i in range(8):
        produce(log, b"v%d" % i, epoch=i // 4)
    log.high_watermark = 8
    assert log.truncate_to(3)
    assert log.log_end_offset == 3 and log.high_watermark == 3
    assert [o for o, _ in values(log.read_bytes(0, 1 << 20))] == [0, 1, 2]
    assert log.epochs.entries() == [(0, 0)]
    assert produce(log, b"new")[:2] == (3, 3)


def test_truncate_at_the_end_still_drops_an_epoch_with_no_data(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", epoch=0)
    log.epochs.assign(3, log.log_end_offset)  # led epoch 3, wrote nothing in it
    assert not log.truncate_to(log.log_end_offset)
    assert log.epochs.entries() == [(0, 0)]


def test_truncate_fully_and_start_at(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", b"b", epoch=1)
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset, log.epochs.entries()) == (100, 100, [])
    assert produce(log, b"c")[:2] == (100, 100)


def test_advance_log_start_offset_deletes_whole_segments_below_it(tmp_path):
    log = new_log(tmp_path, segment_bytes=300, file_delete_delay_ms=0)
    for i in range(10):
        produce(log, b"v%d" % i)
    log.high_watermark = log.log_end_offset
    assert log.advance_log_start_offset(6) == 6
    assert log.segments[0].base_offset <= 6 < (log.segments[1].base_offset if len(log.segments) > 1 else 10)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(5, 100)
    assert values(log.read_bytes(6, 1 << 20))[0][0] <= 6


def test_advance_log_start_offset_above_high_watermark_is_out_of_range(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", b"b")
    log.high_watermark = 1
    with pytest.raises(OffsetOutOfRangeError):
        log.advance_log_start_offset(2)


def test_follower_append_keeps_offsets_epochs_and_gaps(tmp_path):
    log = new_log(tmp_path)
    data = build_batch([Record(b"k", b"a", NOW)], base_offset=0, partition_leader_epoch=4) + \
        build_batch([Record(b"k", b"b", NOW, offset=7)], base_offset=5, partition_leader_epoch=6)
    info = log.append_as_follower(data)
    assert info[:2] == (0, 7) and log.log_end_offset == 8
    assert log.read_bytes(0, 1 << 20) == bytes(data)
    assert log.epochs.entries() == [(4, 0), (6, 5)]


def test_follower_append_below_log_end_is_refused(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a", b"b")
    with pytest.raises(OffsetsOutOfOrderError):
        log.append_as_follower(build_batch([Record(b"k", b"x")], base_offset=1))


def test_follower_append_with_bad_crc_is_corrupt_message(tmp_path):
    log = new_log(tmp_path)
    data = build_batch([Record(b"k", b"x")])
    data[-1] ^= 1
    with pytest.raises(RecordsError):
        log.append_as_follower(data)
    assert log.log_end_offset == 0


def test_slice_of_a_deleted_segment_stays_readable(tmp_path):
    log = new_log(tmp_path, segment_bytes=200, file_delete_delay_ms=0, retention_ms=1)
    produce(log, b"old" * 20, ts=NOW - 10_000)
    produce(log, b"new" * 20, ts=NOW)
    log.high_watermark = log.log_end_offset
    [s] = log.read(0, 1 << 20, max_offset=1)
    expected = s.read()
    assert log.delete_old_segments(NOW) == 1
    assert not any(p.name.startswith("00000000000000000000.log") for p in (tmp_path / "t-0").iterdir())
    assert s.read() == expected


def test_fsync_on_append_leaves_appends_to_sync_which_moves_the_recovery_point_over_them(tmp_path):
    log = Log(tmp_path / "t-0", LogConfig(), fsync_on_append=True)
    produce(log, b"a")
    produce(log, b"b")
    assert log.recovery_point == 0
    assert log.sync() == 2 and log.recovery_point == 2
    produce(log, b"c")
    assert log.recovery_point == 2 and log.sync() == 3


def test_flush_messages_flushes_inline_and_advances_recovery_point(tmp_path):
    log = new_log(tmp_path, flush_messages=2)
    produce(log, b"a")
    assert log.recovery_point == 0
    produce(log, b"b")
    assert log.recovery_point == 2


def test_flush_due_syncs_rolled_segments_then_honours_flush_ms(tmp_path):
    clock = Clock()
    log = new_log(tmp_path, clock, segment_bytes=200, flush_ms=1000)
    for _ in range(3):
        produce(log, b"x" * 80)
    assert log.flush_due(NOW) and log.recovery_point == log.active_segment.base_offset
    assert not log.flush_due(NOW + 10)
    assert log.flush_due(NOW + 2000) and log.recovery_point == log.log_end_offset


def test_high_watermark_is_clamped_to_the_log(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a")
    log.high_watermark = 99
    assert log.high_watermark == 1


def test_truncate_inside_a_batch_removes_it_whole_and_ends_the_log_at_its_base(tmp_path):
    log = new_log(tmp_path)
    produce(log, b"a")
    produce(log, b"b", b"c", b"d")
    assert log.truncate_to(2) and log.log_end_offset == 1
    log.close()
    assert Log(tmp_path / "t-0", log.config).log_end_offset == 1


def test_segment_ms_counts_from_the_first_batch_across_a_restart(tmp_path):
    log = new_log(tmp_path, segment_ms=1000)
    produce(log, b"a", ts=NOW)
    log.close()
    log = Log(tmp_path / "t-0", log.config, clean_shutdown=True)
    produce(log, b"b", ts=NOW + 600)
    produce(log, b"c", ts=NOW + 1200)
    assert [s.base_offset for s in log.segments] == [0, 2]
