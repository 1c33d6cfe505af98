"""Producer state: idempotence, transactions, KIP-890 verification, markers, snapshots."""

import struct

import pytest
from crc32c import crc32c

from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records.batch import read_header
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import ABORT, COMMIT, ControlRecord, build_marker_batch
from kafka_compat.records.record import Record
from kafka_compat.storage.producer_state import (
    CompletedTxn,
    CorruptSnapshotError,
    ProducerState,
    ProducerStateConfig,
)

NOW = 1_700_000_000_000


def header(pid=1, epoch=0, seq=0, count=1, transactional=False, ts=NOW):
    return read_header(build_batch([Record(b"k", b"v", ts + i) for i in range(count)], producer_id=pid,
                                   producer_epoch=epoch, base_sequence=seq, transactional=transactional))


def marker(pid=1, epoch=0, commit=True, coordinator_epoch=0):
    h = read_header(build_marker_batch(commit, pid, epoch, coordinator_epoch, NOW))
    return h, ControlRecord(COMMIT if commit else ABORT, 0, coordinator_epoch)


def code(fn, *args, **kw) -> ErrorCode:
    with pytest.raises(KafkaError) as e:
        fn(*args, **kw)
    return e.value.code


def begin(state, pid, offset, epoch=0, seq=0):
    """A verified transactional batch written at `offset`."""
    guard = state.verification_guard(pid, seq, epoch, NOW)
    h = header(pid, epoch, seq, transactional=True)
    assert state.check(h, guard=guard) is None
    state.update(h, offset)


def end(state, pid, offset, commit=True, epoch=0, coordinator_epoch=0):
    h, m = marker(pid, epoch, commit, coordinator_epoch)
    state.check_marker(h, m)
    done = state.update(h, offset, m)
    if done is not None:
        state.complete(done)
    return done


def test_retry_of_a_written_batch_is_answered_with_its_offsets():
    state = ProducerState()
    state.update(header(seq=0, count=3), 10)
    assert state.check(header(seq=0, count=3)) == (10, 12)


def test_older_epoch_is_refused_with_invalid_producer_epoch():
    state = ProducerState()
    state.update(header(epoch=3), 0)
    assert code(state.check, header(epoch=2, seq=1)) == ErrorCode.INVALID_PRODUCER_EPOCH


def test_new_epoch_must_start_at_sequence_zero():
    state = ProducerState()
    state.update(header(epoch=0), 0)
    assert code(state.check, header(epoch=1, seq=5)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check(header(epoch=1, seq=0)) is None


def test_gap_in_sequence_is_out_of_order():
    state = ProducerState()
    state.update(header(seq=0, count=2), 0)
    assert code(state.check, header(seq=3)) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert state.check(header(seq=2)) is None


def test_unknown_producer_may_start_at_any_sequence():
    assert ProducerState().check(header(pid=9, seq=4711)) is None


def test_coordinator_batches_are_not_held_to_sequences():
    state = ProducerState()
    state.update(header(seq=0), 0)
    assert state.check(header(seq=42), client=False) is None
    state.update(header(seq=-1), 1)  # TxnOffsetCommit batches carry no sequence
    assert state.check(header(seq=-1)) is None


def test_transaction_start_without_verification_is_invalid_txn_state():
    state = ProducerState()
    assert code(state.check, header(transactional=True)) == ErrorCode.INVALID_TXN_STATE


def test_transaction_start_needs_no_verification_when_disabled():
    state = ProducerState(ProducerStateConfig(transaction_verification_enabled=False))
    assert state.check(header(transactional=True)) is None


def test_verified_transaction_start_is_accepted_and_later_batches_need_no_guard():
    state = ProducerState()
    begin(state, 1, 0)
    assert state.verification_guard(1, 1, 0, NOW) is None  # the transaction is ongoing here
    assert state.check(header(seq=1, transactional=True)) is None


def test_guard_from_before_a_marker_does_not_start_the_next_transaction():
    state = ProducerState()
    stale = state.verification_guard(1, 0, 0, NOW)
    begin(state, 1, 0)
    end(state, 1, 1, commit=False)
    assert code(state.check, header(seq=1, transactional=True), guard=stale) == ErrorCode.INVALID_TXN_STATE


def test_sequence_above_the_one_being_verified_is_out_of_order():
    state = ProducerState()
    state.update(header(seq=0), 0)
    guard = state.verification_guard(1, 1, 0, NOW)
    assert code(state.check, header(seq=2, transactional=True), guard=guard) == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_non_transactional_write_during_a_transaction_is_invalid_txn_state():
    state = ProducerState()
    begin(state, 1, 0)
    assert code(state.check, header(seq=1)) == ErrorCode.INVALID_TXN_STATE


def test_marker_with_an_older_epoch_is_invalid_producer_epoch():
    state = ProducerState()
    begin(state, 1, 0, epoch=2)
    assert code(state.check_marker, *marker(epoch=1)) == ErrorCode.INVALID_PRODUCER_EPOCH


def test_marker_from_an_older_coordinator_epoch_is_fenced():
    state = ProducerState()
    begin(state, 1, 0)
    end(state, 1, 1, coordinator_epoch=5)
    assert code(state.check_marker, *marker(coordinator_epoch=4)) == ErrorCode.TRANSACTION_COORDINATOR_FENCED


def test_marker_for_an_unknown_producer_is_accepted_and_completes_nothing():
    state = ProducerState()
    assert end(state, 77, 0, commit=False) is None
    assert state.producers[77].coordinator_epoch == 0


def test_marker_completes_the_transaction_from_its_first_offset():
    state = ProducerState()
    begin(state, 1, 5)
    state.update(header(seq=1, transactional=True), 6)
    assert end(state, 1, 7, commit=False) == CompletedTxn(1, 5, 7, True)
    assert not state.has_ongoing_transaction(1)


def test_first_unstable_offset_is_the_oldest_open_transaction():
    state = ProducerState()
    begin(state, 1, 3)
    begin(state, 2, 4)
    assert state.first_unstable_offset() == 3
    end(state, 1, 5)
    state.on_high_watermark(6)
    assert state.first_unstable_offset() == 4


def test_completed_transaction_stays_unstable_until_the_high_watermark_passes_its_marker():
    state = ProducerState()
    begin(state, 1, 0)
    end(state, 1, 1)
    state.on_high_watermark(1)
    assert state.first_unstable_offset() == 0
    state.on_high_watermark(2)
    assert state.first_unstable_offset() is None


def test_lso_recorded_for_a_completed_transaction_is_the_next_open_one_of_another_producer():
    state = ProducerState()
    begin(state, 1, 0)
    begin(state, 2, 1)
    h, m = marker(pid=1, commit=False)
    done = state.update(h, 2, m)
    assert state.completed_lso(done) == 1
    state.complete(done)
    h, m = marker(pid=2, commit=False)
    assert state.completed_lso(state.update(h, 3, m)) == 4


def test_snapshot_has_kafkas_layout():
    state = ProducerState()
    begin(state, 7, 10, epoch=2, seq=0)
    data = state.to_snapshot()
    version, crc, count = struct.unpack_from(">hIi", data)
    assert (version, count, len(data)) == (1, 1, 10 + 46)
    assert crc == crc32c(data[6:])
    assert struct.unpack_from(">qhiqiqiq", data, 10) == (7, 2, 0, 10, 0, NOW, -1, 10)


def test_snapshot_round_trip_keeps_open_transactions_and_the_last_batch():
    state = ProducerState()
    begin(state, 1, 0)
    state.update(header(pid=2, seq=0, count=4), 1)
    loaded = ProducerState.from_snapshot(state.to_snapshot())
    assert loaded.first_unstable_offset() == 0
    assert loaded.check(header(pid=2, seq=0, count=4)) == (1, 4)


def test_snapshot_leaves_out_expired_producers():
    state = ProducerState()
    state.update(header(pid=1, ts=NOW), 0)
    begin(state, 2, 1)
    later = NOW + ProducerStateConfig().producer_id_expiration_ms
    assert set(ProducerState.from_snapshot(state.to_snapshot(), now_ms=later).producers) == {2}


def test_corrupt_snapshot_is_refused():
    state = ProducerState()
    state.update(header(), 0)
    data = bytearray(state.to_snapshot())
    data[-1] ^= 1
    with pytest.raises(CorruptSnapshotError):
        ProducerState.from_snapshot(bytes(data))


def test_idle_producers_expire_but_not_those_with_an_open_transaction():
    state = ProducerState()
    state.update(header(pid=1), 0)
    begin(state, 2, 1)
    assert state.remove_expired(NOW + ProducerStateConfig().producer_id_expiration_ms) == 1
    assert set(state.producers) == {2}


def test_batch_of_a_newer_epoch_needs_verification_while_the_old_transaction_awaits_its_marker():
    state = ProducerState()
    begin(state, 1, 0, epoch=0)
    assert code(state.check, header(epoch=1, seq=0, transactional=True)) == ErrorCode.INVALID_TXN_STATE
    guard = state.verification_guard(1, 0, 1, NOW)
    assert guard is not None and state.check(header(epoch=1, seq=0, transactional=True), guard=guard) is None
