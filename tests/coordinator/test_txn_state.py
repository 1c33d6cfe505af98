"""A transactional id's states and transitions (Kafka's TransactionMetadata rules)."""

import pytest

from kafka_compat.coordinator.transaction.state import TransactionMetadata, TransitionError, TxnState

NOW = 1_700_000_000_000


def fresh():
    md = TransactionMetadata("t", 1)
    md.complete_transition(md.prepare_increment_epoch(1000, None, NOW))
    return md


def test_state_names_are_kafkas():
    assert [s.kafka_name for s in TxnState] == ["Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit",
                                                "CompleteAbort", "Dead", "PrepareEpochFence"]
    assert TxnState.from_kafka_name("PrepareEpochFence") is TxnState.PREPARE_EPOCH_FENCE


def test_a_new_producer_starts_at_epoch_0():
    md = fresh()
    assert (md.state, md.producer_epoch, md.last_producer_epoch) == (TxnState.EMPTY, 0, -1)


def test_nothing_else_may_be_prepared_while_a_transition_is_pending():
    md = fresh()
    md.prepare_add_partitions({("x", 0)}, NOW, 0)
    with pytest.raises(TransitionError):
        md.prepare_add_partitions({("x", 1)}, NOW, 0)


def test_commit_cannot_follow_empty():
    md = fresh()
    with pytest.raises(TransitionError):
        md.prepare_abort_or_commit(TxnState.PREPARE_COMMIT, 0, -1, NOW, False)


def test_completion_must_be_the_pending_state():
    md = fresh()
    transit = md.prepare_add_partitions({("x", 0)}, NOW, 0)
    md.pending = None
    with pytest.raises(TransitionError):
        md.complete_transition(transit)


def test_partitions_only_leave_a_prepared_transaction():
    md = fresh()
    md.complete_transition(md.prepare_add_partitions({("x", 0)}, NOW, 0))
    with pytest.raises(TransitionError):
        md.remove_partition(("x", 0))
    md.complete_transition(md.prepare_abort_or_commit(TxnState.PREPARE_COMMIT, 0, -1, NOW, False))
    md.remove_partition(("x", 0))
    assert md.partitions == set()


def test_version_2_bumps_the_epoch_at_prepare_and_keeps_it_at_completion():
    md = fresh()
    md.complete_transition(md.prepare_add_partitions({("x", 0)}, NOW, 2))
    md.complete_transition(md.prepare_abort_or_commit(TxnState.PREPARE_ABORT, 2, -1, NOW, False))
    assert (md.producer_epoch, md.last_producer_epoch) == (1, 0)
    md.complete_transition(md.prepare_complete(NOW))
    assert (md.state, md.producer_epoch) == (TxnState.COMPLETE_ABORT, 1)
