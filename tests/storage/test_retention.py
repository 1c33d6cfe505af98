"""Retention by time and size, bounded by the high watermark, with delayed file deletion."""

from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import Log, LogConfig

NOW = 1_700_000_000_000


def new_log(tmp_path, clock=lambda: NOW, **props):
    config = LogConfig.from_dict({k.replace("_", "."): str(v) for k, v in props.items()})
    return Log(tmp_path / "t-0", config, clock=clock)


def produce(log, value=b"x" * 100, ts=NOW):
    info = log.append(validate_records(build_batch([Record(b"k", value, ts)]), log.config, NOW), 0)
    log.high_watermark = log.log_end_offset
    return info


def test_segments_older_than_retention_ms_are_deleted(tmp_path):
    log = new_log(tmp_path, segment_bytes=300, retention_ms=1000)
    for i in range(6):
        produce(log, ts=NOW - 5000 if i < 4 else NOW)
    assert log.delete_old_segments(NOW) >= 1
    assert all(s.max_timestamp >= NOW - 1000 for s in log.segments)
    assert log.log_start_offset == log.segments[0].base_offset


def test_retention_bytes_deletes_oldest_while_a_whole_segment_can_go(tmp_path):
    log = new_log(tmp_path, segment_bytes=300, retention_bytes=400)
    for _ in range(10):
        produce(log)
    before = log.size_in_bytes
    log.delete_old_segments(NOW)
    assert log.size_in_bytes >= 400 - 300 and log.size_in_bytes < before
    assert log.size_in_bytes - log.segments[0].size < 400


def test_fully_expired_log_rolls_and_keeps_its_end_offset(tmp_path):
    log = new_log(tmp_path, retention_ms=1000, file_delete_delay_ms=0)
    produce(log, ts=NOW - 10_000)
    produce(log, ts=NOW - 10_000)
    assert log.delete_old_segments(NOW) == 1
    assert (log.log_start_offset, log.log_end_offset, len(log.segments)) == (2, 2, 1)
    assert log.read(2, 100) == []
    assert produce(log)[:2] == (2, 2)


def test_retention_never_deletes_above_the_high_watermark(tmp_path):
    log = new_log(tmp_path, segment_bytes=300, retention_ms=1000)
    for _ in range(6):
        produce(log, ts=NOW - 5000)
    log.high_watermark = 2  # segments [0] and [1] lie wholly below it, the rest do not
    assert log.delete_old_segments(NOW) == 2
    assert log.log_start_offset == 2


def test_compact_only_topics_keep_expired_segments(tmp_path):
    log = new_log(tmp_path, segment_bytes=300, retention_ms=1000, cleanup_policy="compact")
    for _ in range(6):
        produce(log, ts=NOW - 5000)
    assert log.delete_old_segments(NOW) == 0


def test_deleted_segment_files_linger_until_the_delete_delay(tmp_path):
    t = [NOW]
    log = new_log(tmp_path, lambda: t[0], segment_bytes=300, retention_ms=1000, file_delete_delay_ms=60000)
    for i in range(4):
        produce(log, ts=NOW - 5000 if i < 3 else NOW)
    assert log.delete_old_segments(NOW) >= 1
    lingering = sorted(p.name for p in (tmp_path / "t-0").iterdir() if p.name.endswith(".deleted"))
    assert lingering and log.delete_expired_files(NOW + 1000) == 0
    assert log.delete_expired_files(NOW + 60_000) >= 1
    assert not any(p.name.endswith(".deleted") for p in (tmp_path / "t-0").iterdir())
