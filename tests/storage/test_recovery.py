"""Crash recovery: torn tails, garbage, lost or corrupt indexes, interrupted swaps, clean restarts."""

import os

import pytest

from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import Log, LogConfig

NOW = 1_700_000_000_000
CONFIG = LogConfig.from_dict({"segment.bytes": "400", "index.interval.bytes": "50"})


def filled_log(path, n=12, config=CONFIG):
    log = Log(path, config)
    for i in range(n):
        log.append(validate_records(build_batch([Record(b"k%d" % i, b"v%d" % i * 10, NOW + i)]), config, NOW), 0)
    return log


def offsets(log):
    data = log.read_bytes(log.log_start_offset, 1 << 30)
    return [r.offset for p, h in iter_headers(data) for r in iter_records(data, p, h)]


def reopen(path, clean=False, recovery_point=0, config=CONFIG):
    return Log(path, config, recovery_point=recovery_point, clean_shutdown=clean)


def last_segment(path):
    return sorted(path.glob("*.log"))[-1]


def test_recover_torn_last_batch_cut_at_every_byte(tmp_path):
    path = tmp_path / "t-0"
    log = filled_log(path, n=3, config=LogConfig())
    seg = last_segment(path)
    data = seg.read_bytes()
    last_start = [p for p, _ in iter_headers(data)][-1]
    del log
    for cut in range(last_start, len(data)):
        seg.write_bytes(data[:cut])
        for p in path.glob("*index"):
            p.unlink()
        recovered = reopen(path, config=LogConfig())
        assert recovered.log_end_offset == 2, cut
        assert offsets(recovered) == [0, 1]
        assert seg.stat().st_size == last_start
        del recovered


def test_recover_truncates_garbage_appended_after_the_last_batch(tmp_path):
    path = tmp_path / "t-0"
    filled_log(path)
    seg = last_segment(path)
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(os.urandom(333))
    log = reopen(path)
    assert offsets(log) == list(range(12)) and seg.stat().st_size == size


def test_recover_zero_filled_tail(tmp_path):
    path = tmp_path / "t-0"
    filled_log(path)
    with open(last_segment(path), "ab") as f:
        f.write(bytes(4096))
    assert offsets(reopen(path)) == list(range(12))


def test_recover_stops_at_a_corrupt_batch_and_drops_later_segments(tmp_path):
    path = tmp_path / "t-0"
    filled_log(path)
    segs = sorted(path.glob("*.log"))
    assert len(segs) >= 3
    data = bytearray(segs[1].read_bytes())
    second = [p for p, _ in iter_headers(data)][1]
    data[second + 70] ^= 0xFF  # inside the second batch's records: CRC mismatch
    segs[1].write_bytes(data)
    log = reopen(path)
    first_bad = [h.base_offset for _, h in iter_headers(data)][1]
    assert offsets(log) == list(range(first_bad))
    assert len(list(path.glob("*.log"))) == 2 and log.log_end_offset == first_bad


def test_recover_only_revalidates_from_the_recovery_point(tmp_path):
    path = tmp_path / "t-0"
    log = filled_log(path)
    rp = log.segments[-1].base_offset
    first = sorted(path.glob("*.log"))[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF  # below the recovery point: trusted, not re-read
    first.write_bytes(data)
    assert reopen(path, recovery_point=rp).log_end_offset == 12


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage", "shuffle"])
def test_recover_rebuilds_a_lost_or_corrupt_index(tmp_path, damage):
    path = tmp_path / "t-0"
    log = filled_log(path, n=30, config=LogConfig.from_dict({"index.interval.bytes": "50"}))
    expected = [log.read_bytes(o, 1) for o in range(30)]
    log.close()
    index = sorted(path.glob("*.index"))[0]
    raw = index.read_bytes()
    assert len(raw) >= 16
    if damage == "delete":
        index.unlink()
    elif damage == "truncate":
        index.write_bytes(raw[:-3])
    elif damage == "garbage":
        index.write_bytes(os.urandom(len(raw)))
    else:
        index.write_bytes(raw[8:16] + raw[:8] + raw[16:])
    for clean in (True, False):
        log = reopen(path, clean=clean, config=LogConfig.from_dict({"index.interval.bytes": "50"}))
        assert [log.read_bytes(o, 1) for o in range(30)] == expected
        log.close()


def test_clean_restart_rereads_only_the_last_batch(tmp_path):
    path = tmp_path / "t-0"
    filled_log(path).close()
    first = sorted(path.glob("*.log"))[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF  # an older segment: trusted after a clean stop, as Kafka trusts it
    first.write_bytes(data)
    assert reopen(path, clean=True, recovery_point=12).log_end_offset == 12


def _last_batch_size() -> int:
    return len(build_batch([Record(b"k2", b"v2" * 10, NOW + 2)]))


@pytest.mark.parametrize("clean", [True, False], ids=["clean-marker", "no-marker"])
@pytest.mark.parametrize("cut", range(_last_batch_size() + 1))
def test_a_last_batch_cut_short_is_dropped_and_the_rest_kept(tmp_path, clean, cut):
    """Bytes cut off the end of the active segment (a disk that lost its tail, a copy cut short):
    with or without the clean-shutdown marker the log opens, keeping every whole batch."""
    path = tmp_path / "t-0"
    filled_log(path, n=3, config=LogConfig()).close()  # checkpoints as a clean stop leaves them: recovery point 3
    seg = last_segment(path)
    data = seg.read_bytes()
    last_start = [p for p, _ in iter_headers(data)][-1]
    assert len(data) - last_start == _last_batch_size()
    seg.write_bytes(data[:len(data) - cut])
    log = reopen(path, clean=clean, recovery_point=3, config=LogConfig())
    kept = 3 if cut == 0 else 2
    assert log.log_end_offset == kept and offsets(log) == list(range(kept))
    assert seg.stat().st_size == (len(data) if cut == 0 else last_start)
    log.append(validate_records(build_batch([Record(b"k", b"after", NOW)]), LogConfig(), NOW), 0)
    assert offsets(log) == list(range(kept + 1))  # appends go on from the last whole batch


@pytest.mark.parametrize("damage", ["crc", "zeros", "garbage"])
def test_a_damaged_last_batch_after_a_clean_stop_is_dropped(tmp_path, damage):
    path = tmp_path / "t-0"
    filled_log(path).close()
    seg = last_segment(path)
    data = bytearray(seg.read_bytes())
    if damage == "crc":
        data[-1] ^= 0xFF
        expected = 11
    else:
        data += bytes(100) if damage == "zeros" else os.urandom(100)
        expected = 12
    seg.write_bytes(data)
    assert reopen(path, clean=True, recovery_point=12).log_end_offset == expected


def test_recover_after_crash_mid_compaction_discards_cleaned_files(tmp_path):
    path = tmp_path / "t-0"
    filled_log(path)
    (path / "00000000000000000000.log.cleaned").write_bytes(b"partial")
    (path / "00000000000000000000.index.cleaned").write_bytes(b"")
    log = reopen(path)
    assert offsets(log) == list(range(12))
    assert not list(path.glob("*.cleaned"))


def test_recover_after_crash_mid_swap_completes_the_swap(tmp_path):
    path = tmp_path / "t-0"
    log = filled_log(path)
    segs = log.segments
    second = segs[1]
    end = segs[2].base_offset
    # A cleaned segment covering the first two, keeping only the last record of the second.
    kept = log.read_bytes(end - 1, 1, max_offset=end)
    (path / "00000000000000000000.log.swap").write_bytes(kept)
    os.rename(second.log_path, str(second.log_path) + ".deleted")  # the crash came mid-rename
    del log
    log = reopen(path, clean=True)
    assert offsets(log) == [end - 1] + list(range(end, 12))
    assert not list(path.glob("*.swap")) and not list(path.glob("*.deleted"))
    assert [s.base_offset for s in log.segments][:2] == [0, end]


def test_crash_after_append_without_flush_keeps_every_complete_batch(tmp_path):
    path = tmp_path / "t-0"
    log = filled_log(path, n=50)
    end = log.log_end_offset
    del log  # no close, no checkpoint: an unclean stop
    assert offsets(reopen(path)) == list(range(end))
