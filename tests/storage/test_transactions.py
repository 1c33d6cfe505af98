"""Transactions in a partition's log: markers, the last stable offset, `.txnindex`, read_committed
reads, producer snapshots across restarts, truncation and retention."""

import struct

import pytest

from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import read_marker
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import Log, LogConfig, cleaner, producer_snapshots
from kafka_compat.storage.index import AbortedTxn
from kafka_compat.storage.producer_state import ProducerState

NOW = 1_700_000_000_000


def open_log(path, **props):
    config = LogConfig.from_dict({k.replace("_", "."): str(v) for k, v in props.items()})
    return Log(path / "t-0", config, clock=lambda: NOW)


class Producer:
    """A transactional producer writing straight to a log (verified, as a leader would)."""

    def __init__(self, log, pid, epoch=0):
        self.log, self.pid, self.epoch, self.seq = log, pid, epoch, 0

    def send(self, *values, key=b"k"):
        guard = self.log.verification_guard(self.pid, self.seq, self.epoch)
        data = build_batch([Record(key, v, NOW) for v in values], producer_id=self.pid, producer_epoch=self.epoch,
                           base_sequence=self.seq, transactional=True)
        self.seq += len(values)
        info = self.log.append(validate_records(data, self.log.config, NOW), 0, verification_guard=guard)
        return info.first_offset

    def end(self, commit, coordinator_epoch=0):
        return self.log.append_marker(self.pid, self.epoch, coordinator_epoch, commit, 0, NOW).first_offset


def plain(log, *values):
    return log.append(validate_records(build_batch([Record(b"k", v, NOW) for v in values]), log.config, NOW), 0)


def replicated(log):
    log.high_watermark = log.log_end_offset


def txnindex_entries(path):
    data = path.read_bytes() if path.exists() else b""
    return [struct.unpack_from(">hqqqq", data, i) for i in range(0, len(data), 34)]


def values(data):
    return [r.value for p, h in iter_headers(data) if not h.is_control for r in iter_records(data, p, h)]


def test_marker_is_a_control_batch_with_the_end_txn_record(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 7, epoch=3)
    p.send(b"a")
    offset = p.end(commit=False, coordinator_epoch=9)
    data = log.read_bytes(offset, 1 << 20)
    (pos, h), = iter_headers(data)
    assert h.is_control and h.is_transactional and (h.producer_id, h.producer_epoch) == (7, 3)
    m = read_marker(data, pos, h)
    assert m.is_abort and m.coordinator_epoch == 9


def test_abort_marker_adds_a_txnindex_entry_in_kafkas_layout(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 7)
    p.send(b"a")
    p.send(b"b")
    p.end(commit=False)
    log.flush()
    assert txnindex_entries(tmp_path / "t-0" / "00000000000000000000.txnindex") == [(0, 7, 0, 2, 3)]


def test_commit_marker_adds_no_txnindex_entry(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 7)
    p.send(b"a")
    p.end(commit=True)
    log.flush()
    assert not (tmp_path / "t-0" / "00000000000000000000.txnindex").exists()


def test_last_stable_offset_stops_at_an_open_transaction_until_its_marker_is_replicated(tmp_path):
    log = open_log(tmp_path)
    plain(log, b"x")
    p = Producer(log, 7)
    p.send(b"a")
    plain(log, b"y")
    replicated(log)
    assert (log.high_watermark, log.last_stable_offset) == (3, 1)
    p.end(commit=True)
    assert log.last_stable_offset == 1  # the marker is above the high watermark
    replicated(log)
    assert log.last_stable_offset == log.high_watermark == 4


def test_read_committed_reads_below_the_lso_with_the_aborted_transactions(tmp_path):
    log = open_log(tmp_path)
    aborted, committed, open_ = Producer(log, 1), Producer(log, 2), Producer(log, 3)
    aborted.send(b"a1")
    committed.send(b"c1")
    aborted.end(commit=False)
    committed.end(commit=True)
    open_.send(b"o1")
    plain(log, b"after")
    replicated(log)
    slices, txns = log.read_committed(0, 1 << 20)
    assert values(b"".join(s.read() for s in slices)) == [b"a1", b"c1"]
    assert [(t.producer_id, t.first_offset) for t in txns] == [(1, 0)]


def test_read_committed_lists_only_aborted_transactions_in_the_range_read(tmp_path):
    log = open_log(tmp_path)
    first = Producer(log, 1)
    first.send(b"a")
    first.end(commit=False)
    plain(log, b"x" * 200)
    second = Producer(log, 2)
    second.send(b"b")
    second.end(commit=False)
    replicated(log)
    _, txns = log.read_committed(2, 10)  # one batch: the plain one
    assert txns == []
    _, txns = log.read_committed(0, 1 << 20)
    assert [t.producer_id for t in txns] == [1, 2]


def test_aborted_transactions_are_found_across_segments(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 1)
    p.send(b"a")
    log.roll()
    p.send(b"b")
    log.roll()
    p.end(commit=False)
    replicated(log)
    assert log.aborted_transactions(0, log.log_end_offset) == [AbortedTxn(1, 0, 2, 3)]


def test_txnindex_is_rebuilt_after_an_unclean_stop(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 1)
    p.send(b"a")
    p.end(commit=False)
    index = tmp_path / "t-0" / "00000000000000000000.txnindex"
    log.close()
    index.unlink()
    for snapshot in (tmp_path / "t-0").glob("*.snapshot"):
        snapshot.unlink()
    reopened = open_log(tmp_path)  # recovery point 0, no clean shutdown: the segment is re-read
    assert txnindex_entries(index) == [(0, 1, 0, 1, 2)]
    assert reopened.aborted_transactions(0, 2) == [AbortedTxn(1, 0, 1, 2)]


def test_close_snapshots_producers_so_reopening_reads_no_batch(tmp_path):
    log = open_log(tmp_path)
    Producer(log, 1).send(b"a")
    log.close()
    d = tmp_path / "t-0"
    assert producer_snapshots.offsets(d) == [1]
    # A producer only the snapshot knows shows that the snapshot, not the log, was read.
    state = ProducerState.from_snapshot(producer_snapshots.path_for(d, 1).read_bytes())
    state.update(build_header(99, 0, 0), 0)
    producer_snapshots.write(d, 1, state)
    reopened = Log(d, LogConfig(), clean_shutdown=True, recovery_point=1, high_watermark=1)
    assert set(reopened.producers.producers) == {1, 99}
    assert reopened.last_stable_offset == 0  # producer 1's transaction is still open


def test_roll_snapshots_producers_at_the_new_segment_base(tmp_path):
    log = open_log(tmp_path)
    Producer(log, 1).send(b"a", b"b")
    log.roll()
    assert producer_snapshots.offsets(tmp_path / "t-0") == [2]


def test_open_transaction_survives_an_unclean_restart(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 1)
    p.send(b"a")
    log.roll()
    plain(log, b"x")
    log.flush()
    reopened = open_log(tmp_path)  # from the roll's snapshot, then the last segment
    replicated(reopened)
    assert reopened.last_stable_offset == 0
    assert reopened.producers.check(build_header(1, 0, 1)) is None  # the sequence goes on


def build_header(pid, epoch, seq):
    data = build_batch([Record(b"k", b"v")], producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                       transactional=True)
    return next(h for _, h in iter_headers(data))


def test_corrupt_snapshot_falls_back_to_reading_the_log(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 1)
    p.send(b"a")
    p.end(commit=False)
    log.close()
    snapshot = producer_snapshots.path_for(tmp_path / "t-0", 2)
    snapshot.write_bytes(b"\x00\x01garbage")
    reopened = open_log(tmp_path)
    assert reopened.producers.producers[1].epoch == 0
    assert ProducerState.from_snapshot(snapshot.read_bytes()).producers.keys() == {1}  # written again


def test_truncation_below_a_marker_reopens_its_transaction(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 1)
    p.send(b"a")
    marker_offset = p.end(commit=False)
    replicated(log)
    assert log.last_stable_offset == 2
    log.truncate_to(marker_offset)
    assert log.aborted_transactions(0, 2) == []
    assert log.producers.has_ongoing_transaction(1)
    assert log.last_stable_offset == 0


def test_retention_deletes_txnindex_files_and_older_snapshots(tmp_path):
    log = open_log(tmp_path, retention_ms=1000, file_delete_delay_ms=0)
    p = Producer(log, 1)
    p.send(b"a")
    p.end(commit=False)
    log.roll()
    plain(log, b"x")
    log.roll()
    replicated(log)
    d = tmp_path / "t-0"
    assert (d / "00000000000000000000.txnindex").exists()
    assert producer_snapshots.offsets(d) == [2, 3]
    log.delete_old_segments(NOW + 10_000)
    assert not (d / "00000000000000000000.txnindex").exists()
    assert producer_snapshots.offsets(d) == [3]


def test_follower_append_tracks_transactions_and_indexes_aborts(tmp_path):
    leader = open_log(tmp_path)
    p = Producer(leader, 5)
    p.send(b"a")
    p.end(commit=False)
    follower = Log(tmp_path / "f-0", LogConfig(), clock=lambda: NOW)
    follower.append_as_follower(leader.read_bytes(0, 1 << 20))
    follower.high_watermark = 2
    assert follower.aborted_transactions(0, 2) == [AbortedTxn(5, 0, 1, 2)]
    assert follower.last_stable_offset == 2


def test_marker_with_a_stale_producer_epoch_is_refused_and_not_written(tmp_path):
    log = open_log(tmp_path)
    Producer(log, 1, epoch=4).send(b"a")
    with pytest.raises(KafkaError) as e:
        log.append_marker(1, 3, 0, True, 0, NOW)
    assert e.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    assert log.log_end_offset == 1


def test_marker_for_an_unknown_producer_is_written(tmp_path):
    log = open_log(tmp_path)
    assert log.append_marker(42, 0, 0, False, 0, NOW).first_offset == 0
    assert log.log_end_offset == 1


def test_compaction_keeps_the_txnindex_entries_of_the_cleaned_segments(tmp_path):
    log = open_log(tmp_path, cleanup_policy="compact", segment_bytes=300, file_delete_delay_ms=0)
    p = Producer(log, 1)
    p.send(b"a")
    p.end(commit=False)
    plain(log, b"x")
    log.roll()
    plain(log, b"y")
    replicated(log)
    cleaner.clean(log, NOW, force=True)
    assert b"a" not in values(log.read_bytes(0, 1 << 20))  # the cleaned segment replaced the old one
    assert log.aborted_transactions(0, log.log_end_offset) == [AbortedTxn(1, 0, 1, 2)]


def test_recovery_rebuilds_txnindex_from_the_snapshot_below_the_recovered_segments(tmp_path):
    log = open_log(tmp_path)
    p = Producer(log, 1)
    p.send(b"a")
    log.roll()  # snapshot at 1: producer 1's transaction is open there
    p.send(b"b")
    p.end(commit=False)
    log.close()  # snapshot at 3 too
    d = tmp_path / "t-0"
    index = d / "00000000000000000001.txnindex"
    index.unlink()
    reopened = Log(d, LogConfig(), recovery_point=1, clock=lambda: NOW)  # unclean: segment 1 is re-read
    reopened.flush()
    assert txnindex_entries(index) == [(0, 1, 0, 2, 3)]
    assert producer_snapshots.offsets(d) == [1, 3]
