"""Compaction: latest value per key, offsets unchanged, tombstones, transactions, concurrency."""

import threading

from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import build_marker_batch
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import COORDINATOR, validate_records
from kafka_compat.storage import Log, LogConfig, cleaner

NOW = 1_700_000_000_000
DAY = 86_400_000


def new_log(tmp_path, **props):
    props = {"segment_bytes": 400, "cleanup_policy": "compact", "file_delete_delay_ms": 0, **props}
    config = LogConfig.from_dict({k.replace("_", "."): str(v) for k, v in props.items()})
    return Log(tmp_path / "t-0", config, clock=lambda: NOW)


def put(log, key, value, **kw):
    data = build_batch([Record(key, value, NOW)], **kw)
    # A transaction's first batch is written once the coordinator vouched for it (KIP-890).
    guard = log.verification_guard(kw["producer_id"], 0, 0) if kw.get("transactional") else None
    info = log.append(validate_records(data, log.config, NOW, origin=COORDINATOR), 0, verification_guard=guard)
    log.high_watermark = log.log_end_offset
    return info.first_offset


def marker(log, commit, pid):
    log.append(validate_records(build_marker_batch(commit, pid, 0, 0, NOW), log.config, NOW, origin=COORDINATOR), 0)
    log.high_watermark = log.log_end_offset


def contents(log):
    data = log.read_bytes(log.log_start_offset, 1 << 30)
    return [(r.offset, r.key, r.value) for p, h in iter_headers(data) if not h.is_control
            for r in iter_records(data, p, h)]


def test_keeps_the_latest_value_per_key_at_its_original_offset(tmp_path):
    log = new_log(tmp_path)
    for i in range(30):
        put(log, b"k%d" % (i % 3), b"v%d" % i)
    log.roll()
    before_end = log.log_end_offset
    result = cleaner.clean(log, NOW)
    assert result is not None and result.records_removed == 27
    assert contents(log) == [(27, b"k0", b"v27"), (28, b"k1", b"v28"), (29, b"k2", b"v29")]
    assert log.log_end_offset == before_end and log.clean_offset == 30


def test_active_segment_is_never_cleaned(tmp_path):
    log = new_log(tmp_path, segment_bytes=100000)
    for i in range(10):
        put(log, b"k", b"v%d" % i)
    assert cleaner.clean(log, NOW, force=True) is None
    assert len(contents(log)) == 10


def test_not_cleaned_below_the_dirty_ratio(tmp_path):
    log = new_log(tmp_path, min_cleanable_dirty_ratio=0.9)
    for i in range(20):
        put(log, b"k%d" % i, b"v")
    log.roll()
    cleaner.clean(log, NOW, force=True)
    for i in range(2):
        put(log, b"k%d" % i, b"w")
    log.roll()
    assert cleaner.needs_cleaning(log, NOW) is None and cleaner.clean(log, NOW) is None


def test_tombstones_survive_until_their_delete_horizon(tmp_path):
    log = new_log(tmp_path, delete_retention_ms=DAY)
    put(log, b"a", b"1")
    put(log, b"b", b"1")
    put(log, b"a", None)
    log.roll()
    cleaner.clean(log, NOW)
    assert contents(log) == [(1, b"b", b"1"), (2, b"a", None)]
    horizon = [h.delete_horizon_ms for _, h in iter_headers(log.read_bytes(2, 1 << 20))][0]
    assert horizon == NOW + DAY
    assert cleaner.clean(log, NOW + DAY - 1, force=True).records_removed == 0
    assert contents(log) == [(1, b"b", b"1"), (2, b"a", None)]
    assert cleaner.needs_cleaning(log, NOW + DAY) == 0.0  # due (the horizon passed), though nothing is dirty
    cleaner.clean(log, NOW + DAY)
    assert contents(log) == [(1, b"b", b"1")]


def test_aborted_transactions_are_removed_and_markers_outlive_them_until_the_horizon(tmp_path):
    log = new_log(tmp_path, delete_retention_ms=DAY)
    put(log, b"a", b"committed", producer_id=1, producer_epoch=0, base_sequence=0, transactional=True)
    marker(log, True, 1)
    put(log, b"a", b"aborted", producer_id=2, producer_epoch=0, base_sequence=0, transactional=True)
    marker(log, False, 2)
    put(log, b"z", b"plain")
    log.roll()
    cleaner.clean(log, NOW)
    assert contents(log) == [(0, b"a", b"committed"), (4, b"z", b"plain")]
    controls = [h.base_offset for _, h in iter_headers(log.read_bytes(0, 1 << 20)) if h.is_control]
    assert controls == [1, 3]
    cleaner.clean(log, NOW + DAY, force=True)
    controls = [h.base_offset for _, h in iter_headers(log.read_bytes(0, 1 << 20)) if h.is_control]
    assert controls == [1]  # the commit marker still has its transaction's data


def test_undecided_transaction_is_not_cleaned(tmp_path):
    log = new_log(tmp_path)
    put(log, b"a", b"old")
    put(log, b"a", b"in-txn", producer_id=1, producer_epoch=0, base_sequence=0, transactional=True)
    log.roll()
    cleaner.clean(log, NOW, force=True)
    assert contents(log) == [(0, b"a", b"old"), (1, b"a", b"in-txn")]


def test_emptied_last_batch_of_a_producer_is_kept_as_a_bare_header(tmp_path):
    log = new_log(tmp_path)
    put(log, b"a", b"1", producer_id=7, producer_epoch=0, base_sequence=5)
    put(log, b"a", b"2")
    log.roll()
    cleaner.clean(log, NOW)
    headers = [h for _, h in iter_headers(log.read_bytes(0, 1 << 20))]
    assert [(h.base_offset, h.record_count, h.producer_id, h.base_sequence) for h in headers] == \
        [(0, 0, 7, 5), (1, 1, -1, -1)]


def test_compaction_keeps_compressed_batches_compressed(tmp_path):
    log = new_log(tmp_path)
    data = build_batch([Record(b"a", b"1", NOW), Record(b"b", b"2", NOW)], compression=3)
    log.append(validate_records(data, log.config, NOW), 0)
    put(log, b"a", b"3")
    log.roll()
    log.high_watermark = log.log_end_offset
    cleaner.clean(log, NOW)
    headers = [h for _, h in iter_headers(log.read_bytes(0, 1 << 20))]
    assert headers[0].compression == 3 and headers[0].last_offset == 1
    assert contents(log) == [(1, b"b", b"2"), (2, b"a", b"3")]


def test_truncation_during_cleaning_cancels_the_swap(tmp_path):
    log = new_log(tmp_path)
    for i in range(20):
        put(log, b"k", b"v%d" % i)
    log.roll()
    original = log.replace_segments

    def truncate_first(old, new, truncations):
        log.truncate_to(15)
        return original(old, new, truncations)

    log.replace_segments = truncate_first
    assert cleaner.clean(log, NOW) is None
    assert [o for o, *_ in contents(log)] == list(range(15))
    assert not list((tmp_path / "t-0").glob("*.cleaned")) and not list((tmp_path / "t-0").glob("*.swap"))


def test_cleaning_in_a_thread_while_appending(tmp_path):
    log = new_log(tmp_path)
    for i in range(60):
        put(log, b"k%d" % (i % 4), b"v%d" % i)
    log.roll()
    done = threading.Event()
    results = []

    def clean():
        results.append(cleaner.clean(log, NOW))
        done.set()

    t = threading.Thread(target=clean)
    t.start()
    appended = []
    while not done.is_set() or len(appended) < 20:
        appended.append(put(log, b"new%d" % len(appended), b"x"))
        log.read_bytes(log.log_start_offset, 1 << 20)
    t.join()
    assert results[0].records_removed == 56  # 60 values of 4 keys
    offs = [o for o, *_ in contents(log)]
    assert offs == sorted(offs) and all(o in offs for o in appended)
    assert [o for o in offs if o < 60] == [56, 57, 58, 59]
