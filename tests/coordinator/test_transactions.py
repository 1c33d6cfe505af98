"""The transaction coordinator on a fake clock: InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn,
EndTxn, markers, failover, timeouts, expiry, DescribeTransactions and ListTransactions."""

import pytest

from kafka_compat.coordinator.config import TransactionConfig
from kafka_compat.coordinator.hashing import partition_for
from kafka_compat.coordinator.transaction import records as txn_records
from kafka_compat.coordinator.transaction.state import TransactionMetadata, TxnState, TxnTransit
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode as E
from tests.coordinator.txn_harness import CONFIG, START, TxnHarness

TXN = "txn-a"


# -- InitProducerId ----------------------------------------------------------------------------------

def test_idempotent_producer_gets_a_fresh_producer_id_at_epoch_0():
    h = TxnHarness()
    first, second = h.init(None), h.init(None)
    assert (first.error_code, first.producer_epoch) == (E.NONE, 0)
    assert second.producer_id == first.producer_id + 1


def test_no_producer_id_at_hand_is_coordinator_load_in_progress():
    h = TxnHarness()
    for _ in range(1000):
        h.c.producer_ids.next()  # use up the block without draining (no next block asked yet)
    assert h.c.handle(m.ApiKey.INIT_PRODUCER_ID, 1, m.InitProducerIdRequest(transactional_id=None), 4,
                      h.now).error_code == E.COORDINATOR_LOAD_IN_PROGRESS


def test_first_init_writes_an_empty_state_at_epoch_0():
    h = TxnHarness()
    r = h.init(TXN, timeout=30_000)
    assert (r.error_code, r.producer_epoch) == (E.NONE, 0)
    (rec,) = h.records(TXN)
    assert (rec.state, rec.producer_id, rec.producer_epoch, rec.timeout_ms) == \
        (TxnState.EMPTY, r.producer_id, 0, 30_000)


def test_init_again_bumps_the_epoch_and_keeps_the_producer_id():
    h = TxnHarness()
    first = h.init(TXN)
    again = h.init(TXN)
    assert (again.producer_id, again.producer_epoch) == (first.producer_id, 1)


@pytest.mark.parametrize("timeout", [0, CONFIG.transaction_max_timeout_ms + 1])
def test_timeout_outside_the_maximum_is_invalid_transaction_timeout(timeout):
    assert TxnHarness().init(TXN, timeout=timeout).error_code == E.INVALID_TRANSACTION_TIMEOUT


def test_empty_transactional_id_is_invalid_request():
    assert TxnHarness().init("").error_code == E.INVALID_REQUEST


def test_transactional_id_of_a_partition_led_elsewhere_is_not_coordinator():
    h = TxnHarness(load=False)
    assert h.init(TXN).error_code == E.NOT_COORDINATOR


def test_partition_being_loaded_answers_coordinator_load_in_progress():
    h = TxnHarness(load=False)
    h.c.begin_load(h.c.partition_for(TXN), 1, h.now)  # its Load is not performed
    h.c.take_work()
    assert h.init(TXN).error_code == E.COORDINATOR_LOAD_IN_PROGRESS


def test_partition_is_kafkas_hash_of_the_transactional_id():
    assert TxnHarness().c.partition_for(TXN) == partition_for(TXN, CONFIG.transaction_state_log_num_partitions)


def test_new_instance_aborts_the_open_transaction_first_with_concurrent_transactions():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0))
    assert h.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS
    # The abort fences the old epoch, and (transaction version 2) bumps it once more.
    assert h.markers() == [(1, pid, epoch + 2, False, [("t", 0)])]
    assert h.states(TXN)[-2:] == ["PrepareAbort", "CompleteAbort"]
    r = h.init(TXN)  # the retry
    assert (r.error_code, r.producer_id, r.producer_epoch) == (E.NONE, pid, epoch + 3)


def test_new_instance_fences_the_open_transaction_once_at_transaction_version_0():
    h = TxnHarness(TransactionConfig(transaction_state_log_num_partitions=4, transaction_version=0))
    pid, epoch = h.begin(TXN, ("t", 0))
    assert h.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS
    assert h.markers() == [(1, pid, epoch + 1, False, [("t", 0)])]
    assert h.init(TXN).producer_epoch == epoch + 2


def test_old_instance_is_fenced_once_a_new_one_initialised():
    h = TxnHarness()
    first = h.init(TXN)
    h.init(TXN)
    assert h.add(TXN, first.producer_id, first.producer_epoch, ("t", 0)) == {("t", 0): E.PRODUCER_FENCED}
    old_client = h.add(TXN, first.producer_id, first.producer_epoch, ("t", 0), version=1)
    assert old_client == {("t", 0): E.INVALID_PRODUCER_EPOCH}  # before v2 clients knew PRODUCER_FENCED


def test_kip360_recovery_with_the_current_epoch_bumps_it():
    h = TxnHarness()
    r = h.init(TXN)
    again = h.init(TXN, pid=r.producer_id, epoch=r.producer_epoch)
    assert (again.error_code, again.producer_epoch) == (E.NONE, r.producer_epoch + 1)


def test_kip360_retry_with_the_previous_epoch_gets_the_current_one():
    h = TxnHarness()
    r = h.init(TXN)
    bumped = h.init(TXN, pid=r.producer_id, epoch=r.producer_epoch)
    retry = h.init(TXN, pid=r.producer_id, epoch=r.producer_epoch)
    assert (retry.error_code, retry.producer_epoch) == (E.NONE, bumped.producer_epoch)


def test_kip360_with_another_producer_id_is_fenced():
    h = TxnHarness()
    r = h.init(TXN)
    assert h.init(TXN, pid=r.producer_id + 7, epoch=0).error_code == E.PRODUCER_FENCED


def test_kip360_needs_both_producer_id_and_epoch():
    assert TxnHarness().init(TXN, pid=5, epoch=-1).error_code == E.INVALID_REQUEST


def exhausted_log(pid=77):
    """A `__transaction_state` log where TXN's producer has used up its epochs."""
    t = TxnTransit(pid, -1, -1, 32766, -1, 60_000, TxnState.EMPTY, frozenset(), -1, 1, 0)
    return {partition_for(TXN, CONFIG.transaction_state_log_num_partitions): [txn_records.record(TXN, t, 1)]}


def test_exhausted_epochs_rotate_to_a_new_producer_id():
    h = TxnHarness(log=exhausted_log())
    r = h.init(TXN)
    assert r.error_code == E.NONE and r.producer_id != 77 and r.producer_epoch == 0
    assert h.state(TXN).prev_producer_id == 77


def test_init_while_markers_are_written_is_concurrent_transactions():
    h = TxnHarness(auto_markers=False)
    pid, epoch = h.begin(TXN)
    assert h.end(TXN, pid, epoch).error_code == E.NONE
    assert h.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS
    h.answer()
    assert h.init(TXN).error_code == E.NONE


def test_init_is_answered_once_its_record_is_durable():
    h = TxnHarness(auto_append=False)
    token, response = h.call("init_producer_id", m.InitProducerIdRequest(transactional_id=TXN,
                                                                         transaction_timeout_ms=1000), 4)
    assert response is None
    h.release()
    assert h.done.pop(token).error_code == E.NONE


def test_failed_write_answers_the_mapped_error_and_allows_a_retry():
    h = TxnHarness(auto_append=False)
    token, _ = h.call("init_producer_id", m.InitProducerIdRequest(transactional_id=TXN, transaction_timeout_ms=1000), 4)
    h.release(E.NOT_ENOUGH_REPLICAS)
    assert h.done.pop(token).error_code == E.COORDINATOR_NOT_AVAILABLE
    h.auto_append = True
    assert h.init(TXN).error_code == E.NONE


# -- AddPartitionsToTxn, AddOffsetsToTxn --------------------------------------------------------------

def test_add_partitions_starts_the_transaction():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0), ("u", 1))
    md = h.state(TXN)
    assert (md.state, md.partitions, md.start_ms) == (TxnState.ONGOING, {("t", 0), ("u", 1)}, h.now)
    assert h.records(TXN)[-1].partitions == {("t", 0), ("u", 1)}


def test_add_partitions_for_an_unknown_transactional_id_is_invalid_producer_id_mapping():
    assert TxnHarness().add(TXN, 5, 0, ("t", 0)) == {("t", 0): E.INVALID_PRODUCER_ID_MAPPING}


def test_add_partitions_with_another_producer_id_is_invalid_producer_id_mapping():
    h = TxnHarness()
    r = h.init(TXN)
    assert h.add(TXN, r.producer_id + 1, 0, ("t", 0)) == {("t", 0): E.INVALID_PRODUCER_ID_MAPPING}


def test_unknown_partition_fails_the_whole_transaction():
    h = TxnHarness()
    r = h.init(TXN)
    errors = h.add(TXN, r.producer_id, r.producer_epoch, ("t", 0), ("t", 9), ("nope", 0))
    assert errors == {("t", 0): E.OPERATION_NOT_ATTEMPTED, ("t", 9): E.UNKNOWN_TOPIC_OR_PARTITION,
                      ("nope", 0): E.UNKNOWN_TOPIC_OR_PARTITION}
    assert h.state(TXN).state is TxnState.EMPTY


def test_partitions_already_in_the_transaction_write_nothing():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0))
    written = len(h.records(TXN))
    assert h.add(TXN, pid, epoch, ("t", 0)) == {("t", 0): E.NONE}
    assert len(h.records(TXN)) == written


def test_add_partitions_while_markers_are_written_is_concurrent_transactions():
    h = TxnHarness(auto_markers=False)
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch)
    assert h.add(TXN, pid, epoch, ("t", 1)) == {("t", 1): E.CONCURRENT_TRANSACTIONS}


def add_v4(h, *txns, verify_only=False):
    R = m.AddPartitionsToTxnRequest
    request = R(transactions=[R.AddPartitionsToTxnTransaction(
        transactional_id=txn_id, producer_id=pid, producer_epoch=epoch, verify_only=verify_only,
        topics=[R.AddPartitionsToTxnTopic(name=t, partitions=[p]) for t, p in parts])
        for txn_id, pid, epoch, parts in txns])
    response = h.send("add_partitions_to_txn", request, 4)
    return {r.transactional_id: {(t.name, p.partition_index): p.partition_error_code
                                 for t in r.topic_results for p in t.results_by_partition}
            for r in response.results_by_transaction}


def test_batched_add_partitions_answers_each_transaction():
    h = TxnHarness()
    a, b = h.init("a"), h.init("b")
    result = add_v4(h, ("a", a.producer_id, a.producer_epoch, [("t", 0)]),
                    ("b", b.producer_id, b.producer_epoch + 1, [("t", 1)]))
    assert result == {"a": {("t", 0): E.NONE}, "b": {("t", 1): E.PRODUCER_FENCED}}


def test_verify_only_reports_partitions_outside_the_transaction_as_transaction_abortable():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0))
    written = len(h.records(TXN))
    result = add_v4(h, (TXN, pid, epoch, [("t", 0), ("t", 1)]), verify_only=True)
    assert result == {TXN: {("t", 0): E.NONE, ("t", 1): E.TRANSACTION_ABORTABLE}}
    assert len(h.records(TXN)) == written


def test_verify_only_with_a_stale_epoch_is_producer_fenced():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0))
    assert add_v4(h, (TXN, pid, epoch - 1, [("t", 0)]), verify_only=True) == {TXN: {("t", 0): E.PRODUCER_FENCED}}


def test_a_partition_leader_of_this_broker_verifies_by_a_direct_call():
    h = TxnHarness(auto_markers=False)
    pid, epoch = h.begin(TXN, ("t", 0))
    written = len(h.records(TXN))
    assert h.c.verify_partitions(TXN, pid, epoch, [("t", 0), ("t", 1)]) == {
        ("t", 0): E.NONE, ("t", 1): E.TRANSACTION_ABORTABLE}
    assert h.c.verify_partitions(TXN, pid + 1, epoch, [("t", 0)]) == {("t", 0): E.INVALID_PRODUCER_ID_MAPPING}
    h.end(TXN, pid, epoch)  # its markers are pending: a late first batch is not let in meanwhile
    assert h.c.verify_partitions(TXN, pid, epoch, [("t", 0)]) == {("t", 0): E.CONCURRENT_TRANSACTIONS}
    assert len(h.records(TXN)) == written + 1  # the PrepareCommit only: verifying writes nothing


def test_add_offsets_adds_the_groups_offsets_partition():
    h = TxnHarness()
    r = h.init(TXN)
    response = h.send("add_offsets_to_txn", m.AddOffsetsToTxnRequest(
        transactional_id=TXN, producer_id=r.producer_id, producer_epoch=r.producer_epoch, group_id="grp"), 3)
    assert response.error_code == E.NONE
    assert h.state(TXN).partitions == {("__consumer_offsets", partition_for("grp", 3))}


# -- EndTxn and markers -----------------------------------------------------------------------------

def test_commit_writes_prepare_commit_then_markers_then_complete_commit():
    h = TxnHarness(leaders={("u", 0): 2})
    pid, epoch = h.begin(TXN, ("t", 0), ("t", 1), ("u", 0))
    assert h.end(TXN, pid, epoch).error_code == E.NONE
    assert h.states(TXN) == ["Empty", "Ongoing", "PrepareCommit", "CompleteCommit"]
    assert sorted(h.markers()) == [(1, pid, epoch, True, [("t", 0), ("t", 1)]), (2, pid, epoch, True, [("u", 0)])]
    assert h.state(TXN).partitions == set()


def test_abort_sends_abort_markers():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch, commit=False)
    assert h.markers() == [(1, pid, epoch, False, [("t", 0)])]
    assert h.states(TXN)[-1] == "CompleteAbort"


def test_end_txn_for_an_unknown_transactional_id_is_invalid_producer_id_mapping():
    assert TxnHarness().end("unknown", 1, 0).error_code == E.INVALID_PRODUCER_ID_MAPPING


def test_end_txn_without_a_transaction_is_invalid_txn_state():
    h = TxnHarness()
    r = h.init(TXN)
    assert h.end(TXN, r.producer_id, r.producer_epoch).error_code == E.INVALID_TXN_STATE


def test_commit_again_after_completion_succeeds_but_abort_is_invalid_txn_state():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch)
    assert h.end(TXN, pid, epoch).error_code == E.NONE
    assert h.end(TXN, pid, epoch, commit=False).error_code == E.INVALID_TXN_STATE


def test_end_txn_with_a_stale_epoch_is_producer_fenced():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    assert h.end(TXN, pid, epoch - 1).error_code == E.PRODUCER_FENCED
    assert h.end(TXN, pid, epoch - 1, version=1).error_code == E.INVALID_PRODUCER_EPOCH


def test_end_txn_while_markers_are_written_is_concurrent_transactions():
    h = TxnHarness(auto_markers=False)
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch)
    assert h.end(TXN, pid, epoch).error_code == E.CONCURRENT_TRANSACTIONS


def test_end_txn_v5_bumps_the_epoch_per_transaction():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    r = h.end(TXN, pid, epoch, version=5)
    assert (r.error_code, r.producer_id, r.producer_epoch) == (E.NONE, pid, epoch + 1)
    assert h.markers() == [(1, pid, epoch + 1, True, [("t", 0)])]
    assert h.add(TXN, pid, epoch + 1, ("t", 1)) == {("t", 1): E.NONE}  # the next transaction, at the new epoch


def test_end_txn_v5_retry_of_a_completed_commit_answers_the_bumped_epoch():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch, version=5)
    r = h.end(TXN, pid, epoch, version=5)
    assert (r.error_code, r.producer_epoch) == (E.NONE, epoch + 1)


def test_end_txn_v5_abort_without_a_transaction_writes_an_empty_abort():
    h = TxnHarness()
    r = h.init(TXN)
    a = h.end(TXN, r.producer_id, r.producer_epoch, commit=False, version=5)
    assert (a.error_code, a.producer_epoch) == (E.NONE, r.producer_epoch + 1)
    assert h.states(TXN)[-2:] == ["PrepareAbort", "CompleteAbort"] and h.markers() == []


def test_end_txn_v5_at_the_last_epoch_moves_to_the_next_producer_id():
    h = TxnHarness(log=exhausted_log(pid=77))
    h.add(TXN, 77, 32766, ("t", 0))
    r = h.end(TXN, 77, 32766, version=5)
    assert r.error_code == E.NONE and r.producer_id != 77 and r.producer_epoch == 0
    assert h.markers() == [(1, 77, 32767, True, [("t", 0)])]
    md = h.state(TXN)
    assert (md.producer_id, md.producer_epoch, md.prev_producer_id) == (r.producer_id, 0, 77)
    retry = h.end(TXN, 77, 32766, version=5)
    assert (retry.error_code, retry.producer_id, retry.producer_epoch) == (E.NONE, r.producer_id, 0)


def test_markers_are_retried_until_every_leader_wrote_them():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0), ("t", 1))
    h.marker_errors[("t", 1)] = E.NOT_LEADER_OR_FOLLOWER
    h.end(TXN, pid, epoch)
    assert h.states(TXN)[-1] == "PrepareCommit" and h.state(TXN).partitions == {("t", 1)}
    del h.marker_errors[("t", 1)]
    h.leaders[("t", 1)] = 3
    h.advance(CONFIG.marker_retry_backoff_ms)
    assert h.markers()[-1] == (3, pid, epoch, True, [("t", 1)])
    assert h.states(TXN)[-1] == "CompleteCommit"


def test_markers_wait_for_a_partition_without_leader():
    h = TxnHarness(leaders={("t", 0): -1})
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch)
    assert h.markers() == [] and h.states(TXN)[-1] == "PrepareCommit"
    h.leaders[("t", 0)] = 2
    h.c.metadata_changed(h.now)
    h.drain()
    assert h.markers() == [(2, pid, epoch, True, [("t", 0)])] and h.states(TXN)[-1] == "CompleteCommit"


def test_markers_for_deleted_partitions_are_dropped():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 0), ("u", 0))
    del h.topics["u"]
    h.end(TXN, pid, epoch)
    assert h.markers() == [(1, pid, epoch, True, [("t", 0)])] and h.states(TXN)[-1] == "CompleteCommit"


def test_markers_that_could_not_be_sent_go_again_after_a_backoff():
    h = TxnHarness(auto_markers=False)
    pid, epoch = h.begin(TXN)
    h.end(TXN, pid, epoch)
    h.answer(lambda send: None)  # the leader could not be reached
    assert len(h.sends) == 1
    h.advance(CONFIG.marker_retry_backoff_ms)
    assert len(h.sends) == 2
    h.answer()
    assert h.states(TXN)[-1] == "CompleteCommit"


def test_one_request_at_a_time_per_leader():
    h = TxnHarness(auto_markers=False)
    a = h.begin("a")
    b = h.begin("b")
    h.end("a", *a)
    h.end("b", *b)
    assert len(h.sends) == 1  # b's marker waits for the answer to a's
    h.answer()
    assert len(h.sends) == 2


def test_marker_refused_with_invalid_producer_epoch_stops_the_completion():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    h.marker_errors[("t", 0)] = E.INVALID_PRODUCER_EPOCH
    h.end(TXN, pid, epoch)
    h.advance(10 * CONFIG.marker_retry_backoff_ms)
    assert len(h.sends) == 1 and h.states(TXN)[-1] == "PrepareCommit"


def test_completion_record_is_written_again_when_replicas_are_missing():
    h = TxnHarness()
    pid, epoch = h.begin(TXN)
    h.auto_append = False
    token, _ = h.call("end_txn", m.EndTxnRequest(transactional_id=TXN, producer_id=pid, producer_epoch=epoch,
                                                 committed=True), 3)
    h.release()  # PrepareCommit is durable: answered, markers written
    assert h.done.pop(token).error_code == E.NONE
    h.release(E.NOT_ENOUGH_REPLICAS)  # CompleteCommit is not
    assert h.state(TXN).state is TxnState.PREPARE_COMMIT
    h.advance(CONFIG.marker_retry_backoff_ms)
    h.release()
    assert h.state(TXN).state is TxnState.COMPLETE_COMMIT and h.states(TXN)[-1] == "CompleteCommit"


# -- failover ---------------------------------------------------------------------------------------

def test_new_coordinator_resumes_the_markers_of_a_prepared_commit():
    h = TxnHarness(auto_markers=False)
    pid, epoch = h.begin(TXN, ("t", 0), ("u", 1))
    h.end(TXN, pid, epoch)
    assert h.states(TXN)[-1] == "PrepareCommit"  # the coordinator dies before any marker is answered
    successor = h.reload()
    assert successor.markers() == [(1, pid, epoch, True, [("t", 0), ("u", 1)])]
    assert successor.states(TXN)[-1] == "CompleteCommit"
    assert {s.request.markers[0].coordinator_epoch for s in successor.sends} == {2}


def test_unloading_answers_waiting_requests_not_coordinator():
    h = TxnHarness(auto_append=False)
    token, _ = h.call("init_producer_id", m.InitProducerIdRequest(transactional_id=TXN, transaction_timeout_ms=1000), 4)
    h.c.unload(h.c.partition_for(TXN), h.now)
    h.drain()
    assert h.done.pop(token).error_code == E.NOT_COORDINATOR
    h.release()  # the late answer to the append changes nothing
    assert h.init(TXN).error_code == E.NOT_COORDINATOR


def test_stale_load_is_refused():
    h = TxnHarness(load=False)
    p = h.c.partition_for(TXN)
    h.c.begin_load(p, 1, h.now)
    h.c.begin_load(p, 2, h.now)
    assert not h.c.load_records(p, 1, [])
    assert h.c.load_records(p, 2, [])


# -- timeouts and expiry ------------------------------------------------------------------------------

def test_timed_out_transaction_is_aborted_and_its_producer_fenced():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, timeout=5_000)
    h.advance(CONFIG.abort_timed_out_transaction_cleanup_interval_ms)
    assert h.states(TXN)[-2:] == ["PrepareAbort", "CompleteAbort"]
    assert h.markers() == [(1, pid, epoch + 2, False, [("t", 0)])]  # fenced, then bumped by version 2
    assert h.add(TXN, pid, epoch, ("t", 1)) == {("t", 1): E.PRODUCER_FENCED}


def test_transaction_within_its_timeout_is_left_alone():
    h = TxnHarness()
    h.begin(TXN, timeout=60_000)
    h.advance(CONFIG.abort_timed_out_transaction_cleanup_interval_ms)
    assert h.state(TXN).state is TxnState.ONGOING


def test_idle_transactional_id_expires_with_a_tombstone():
    config = TransactionConfig(transaction_state_log_num_partitions=4, transactional_id_expiration_ms=1000,
                               remove_expired_transaction_cleanup_interval_ms=2000)
    h = TxnHarness(config)
    h.init(TXN)
    h.advance(2000)
    assert h.states(TXN)[-1] == "tombstone" and h.state(TXN) is None
    assert h.init(TXN).producer_epoch == 0  # a fresh start


def test_ongoing_transaction_does_not_expire():
    config = TransactionConfig(transaction_state_log_num_partitions=4, transactional_id_expiration_ms=1000,
                               remove_expired_transaction_cleanup_interval_ms=2000,
                               abort_timed_out_transaction_cleanup_interval_ms=10**9)
    h = TxnHarness(config)
    h.begin(TXN)
    h.advance(2000)
    assert h.state(TXN).state is TxnState.ONGOING


# -- DescribeTransactions, ListTransactions ------------------------------------------------------------

def test_describe_transactions_shows_state_partitions_and_times():
    h = TxnHarness()
    pid, epoch = h.begin(TXN, ("t", 1), ("t", 0), ("u", 0), timeout=9000)
    (s,) = h.send("describe_transactions", m.DescribeTransactionsRequest(transactional_ids=[TXN]), 0).transaction_states
    assert (s.error_code, s.transaction_state, s.producer_id, s.producer_epoch) == (E.NONE, "Ongoing", pid, epoch)
    assert (s.transaction_timeout_ms, s.transaction_start_time_ms) == (9000, h.now)
    assert {(t.topic, tuple(t.partitions)) for t in s.topics} == {("t", (0, 1)), ("u", (0,))}


def test_describe_unknown_transactional_id_is_not_found():
    h = TxnHarness()
    (s,) = h.send("describe_transactions", m.DescribeTransactionsRequest(transactional_ids=["x"]), 0).transaction_states
    assert s.error_code == E.TRANSACTIONAL_ID_NOT_FOUND


def list_txns(h, states=(), pids=(), duration=-1, version=1):
    return h.send("list_transactions", m.ListTransactionsRequest(state_filters=list(states),
                                                                 producer_id_filters=list(pids),
                                                                 duration_filter=duration), version)


def test_list_transactions_filters_by_state_producer_id_and_duration():
    h = TxnHarness()
    a, _ = h.begin("a")
    h.now += 10_000
    b, _ = h.begin("b")
    c = h.init("c").producer_id
    listed = {t.transactional_id: (t.producer_id, t.transaction_state) for t in list_txns(h).transaction_states}
    assert listed == {"a": (a, "Ongoing"), "b": (b, "Ongoing"), "c": (c, "Empty")}
    assert [t.transactional_id for t in list_txns(h, states=["Empty"]).transaction_states] == ["c"]
    assert [t.transactional_id for t in list_txns(h, pids=[b]).transaction_states] == ["b"]
    assert {t.transactional_id for t in list_txns(h, states=["Ongoing"], duration=5000).transaction_states} == {"a"}


def test_list_transactions_reports_unknown_state_filters():
    r = list_txns(TxnHarness(), states=["Ongoing", "Sleeping"])
    assert (r.error_code, r.unknown_state_filters) == (E.NONE, ["Sleeping"])


def test_list_transactions_while_loading_is_coordinator_load_in_progress():
    h = TxnHarness()
    h.c.begin_load(0, 3, h.now)
    h.c.take_work()
    assert list_txns(h).error_code == E.COORDINATOR_LOAD_IN_PROGRESS


# -- the records --------------------------------------------------------------------------------------

def test_transaction_log_records_round_trip_in_both_value_versions():
    t = TxnTransit(5, 4, 6, 3, 2, 1000, TxnState.ONGOING, frozenset({("t", 0), ("t", 2), ("u", 1)}), 10, 20, 2)
    for version in (0, 1):
        txn_id, md = txn_records.decode(*txn_records.record("id", t, version))
        assert isinstance(md, TransactionMetadata)
        assert (txn_id, md.producer_id, md.producer_epoch, md.state, md.partitions, md.start_ms, md.update_ms) == \
            ("id", 5, 3, TxnState.ONGOING, set(t.partitions), 10, 20)
        assert (md.prev_producer_id, md.next_producer_id, md.client_version) == ((4, 6, 2) if version else (-1, -1, 0))
    assert txn_records.decode(*txn_records.tombstone("id")) == ("id", None)


def test_timed_out_transaction_at_the_last_epoch_is_aborted_without_overflowing():
    t = TxnTransit(77, -1, -1, 32766, -1, 1000, TxnState.ONGOING, frozenset({("t", 0)}), START, START, 0)
    h = TxnHarness(log={partition_for(TXN, CONFIG.transaction_state_log_num_partitions):
                        [txn_records.record(TXN, t, 1)]})
    h.advance(CONFIG.abort_timed_out_transaction_cleanup_interval_ms)
    assert h.markers() == [(1, 77, 32767, False, [("t", 0)])]
    assert h.states(TXN)[-1] == "CompleteAbort"
    r = h.init(TXN)
    assert r.error_code == E.NONE and r.producer_id != 77 and r.producer_epoch == 0
