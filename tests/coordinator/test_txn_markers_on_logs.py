"""The transaction coordinator's markers written into real partition logs: what a read_committed
reader of those logs sees after commits, aborts, fencing and a coordinator failover."""

import pytest

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode as E
from kafka_compat.protocol.errors import KafkaError
from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import Log, LogConfig
from tests.coordinator.txn_harness import TxnHarness

NOW = 1_700_000_000_000


def logs(tmp_path):
    return {("t", p): Log(tmp_path / f"t-{p}", LogConfig(), clock=lambda: NOW) for p in range(3)}


def produce(h, txn_id, pid, epoch, seq, tp, *values):
    """A transactional produce as a partition leader takes it: verified with the coordinator
    (AddPartitionsToTxn verify_only) before its first batch, then appended."""
    log = h.logs[tp]
    guard = log.verification_guard(pid, seq, epoch)
    if guard is not None:
        R = m.AddPartitionsToTxnRequest
        response = h.send("add_partitions_to_txn", R(transactions=[R.AddPartitionsToTxnTransaction(
            transactional_id=txn_id, producer_id=pid, producer_epoch=epoch, verify_only=True,
            topics=[R.AddPartitionsToTxnTopic(name=tp[0], partitions=[tp[1]])])]), 4)
        code = response.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
        if code != E.NONE:
            return code
    data = build_batch([Record(b"k", v, NOW) for v in values], producer_id=pid, producer_epoch=epoch,
                       base_sequence=seq, transactional=True)
    log.append(validate_records(data, log.config, NOW), 0, verification_guard=guard)
    log.high_watermark = log.log_end_offset
    return E.NONE


def committed_values(log):
    slices, aborted = log.read_committed(0, 1 << 20)
    data = b"".join(s.read() for s in slices)
    skipped = {(a.producer_id, a.first_offset) for a in aborted}
    out = []
    for pos, h in iter_headers(data):
        if h.is_control or any(pid == h.producer_id and first <= h.base_offset for pid, first in skipped):
            continue
        out += [r.value for r in iter_records(data, pos, h)]
    return out


def test_committed_transaction_becomes_visible_to_read_committed(tmp_path):
    h = TxnHarness(logs=logs(tmp_path))
    pid, epoch = h.begin("tx", ("t", 0), ("t", 1))
    produce(h, "tx", pid, epoch, 0, ("t", 0), b"a", b"b")
    produce(h, "tx", pid, epoch, 0, ("t", 1), b"c")
    assert committed_values(h.logs[("t", 0)]) == []
    h.end("tx", pid, epoch)
    assert committed_values(h.logs[("t", 0)]) == [b"a", b"b"] and committed_values(h.logs[("t", 1)]) == [b"c"]


def test_aborted_transaction_stays_hidden_from_read_committed(tmp_path):
    h = TxnHarness(logs=logs(tmp_path))
    pid, epoch = h.begin("tx", ("t", 0))
    produce(h, "tx", pid, epoch, 0, ("t", 0), b"gone")
    h.end("tx", pid, epoch, commit=False)
    log = h.logs[("t", 0)]
    assert committed_values(log) == [] and log.last_stable_offset == log.log_end_offset


def test_produce_to_a_partition_not_in_the_transaction_is_refused(tmp_path):
    h = TxnHarness(logs=logs(tmp_path))
    pid, epoch = h.begin("tx", ("t", 0))
    assert produce(h, "tx", pid, epoch, 0, ("t", 2), b"x") == E.TRANSACTION_ABORTABLE
    assert h.logs[("t", 2)].log_end_offset == 0


def test_fenced_producer_cannot_write_after_the_new_instance_aborted_its_transaction(tmp_path):
    h = TxnHarness(logs=logs(tmp_path))
    pid, epoch = h.begin("tx", ("t", 0))
    produce(h, "tx", pid, epoch, 0, ("t", 0), b"zombie")
    assert h.init("tx").error_code == E.CONCURRENT_TRANSACTIONS  # the old transaction is aborted
    assert produce(h, "tx", pid, epoch, 1, ("t", 0), b"late") == E.PRODUCER_FENCED
    assert committed_values(h.logs[("t", 0)]) == []


def test_successor_coordinator_completes_a_commit_its_predecessor_prepared(tmp_path):
    h = TxnHarness(logs=logs(tmp_path), auto_markers=False)
    pid, epoch = h.begin("tx", ("t", 0))
    produce(h, "tx", pid, epoch, 0, ("t", 0), b"a")
    h.end("tx", pid, epoch)
    h.answer()  # the marker is written, but the coordinator dies before CompleteCommit
    h.log[h.c.partition_for("tx")].pop()
    successor = h.reload()  # writes the marker again (the leader takes the duplicate) and completes
    assert successor.states("tx")[-1] == "CompleteCommit"
    assert committed_values(h.logs[("t", 0)]) == [b"a"]
    controls = [hd for _, hd in iter_headers(h.logs[("t", 0)].read_bytes(0, 1 << 20)) if hd.is_control]
    assert len(controls) == 2


def test_marker_from_a_deposed_coordinator_is_fenced_by_the_leader(tmp_path):
    h = TxnHarness(logs=logs(tmp_path))
    log = h.logs[("t", 0)]
    log.append_marker(9, 0, 5, True, 0, NOW)  # a coordinator at epoch 5 already wrote for producer 9
    with pytest.raises(KafkaError) as e:
        log.append_marker(9, 0, 4, True, 0, NOW)
    assert e.value.code == E.TRANSACTION_COORDINATOR_FENCED
