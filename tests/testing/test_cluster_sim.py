"""The whole-cluster replication simulation: hundreds of seeds hold every invariant, and brokers
with a broken replication core are caught."""

import pytest

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.replication.fetcher import FETCHING, Fetcher
from kafka_compat.replication.partition import Partition
from kafka_compat.storage.log import AppendInfo
from kafka_compat.storage.producer_state import ProducerState
from kafka_compat.testing import cluster_sim

SEEDS = 300
CHUNK = 25


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_seeded_cluster_simulations_hold_every_invariant(first):
    configs = [cluster_sim.default_config(seed) for seed in range(first, first + CHUNK)]
    report = []
    failures, events = cluster_sim.run_many(configs, out=report.append)
    assert not failures, "\n".join(report)
    assert events > 500 * CHUNK


def test_the_seeds_cover_every_fault_mode_both_truncation_paths_and_three_and_four_brokers(tmp_path):
    sims = [cluster_sim.Simulation(cluster_sim.default_config(seed), tmp_path) for seed in range(SEEDS)]
    assert {s.mode for s in sims} == set(cluster_sim.MODES)
    assert {s.replication.truncate_on_fetch for s in sims} == {True, False}
    assert {s.cfg.brokers for s in sims} == {3, 4}
    assert {(s.cfg.transactions, s.mode) for s in sims} == {(t, m) for t in (True, False) for m in cluster_sim.MODES}


def test_transactions_commit_and_abort_through_the_faults_and_coordinator_failovers():
    # (transactional seeds where a coordinator fails over in the middle of a commit or an abort)
    results = [cluster_sim.run(cluster_sim.default_config(seed)) for seed in (201, 231, 251, 271)]
    assert all(r.config.transactions for r in results)
    assert sum(r.crashes for r in results) > 8
    assert sum(r.committed_txns for r in results) > 15
    assert sum(r.aborted_txns for r in results) > 2
    assert sum(r.resumed_txns for r in results) > 2  # a new coordinator finished a commit or abort


def test_the_faults_happen_and_replication_works_through_them():
    results = [cluster_sim.run(cluster_sim.default_config(seed)) for seed in range(12)]
    assert sum(r.crashes for r in results) > 20
    assert sum(r.power_losses for r in results) > 2
    assert sum(r.controlled_shutdowns for r in results) > 2
    assert sum(r.truncations for r in results) >= 3  # divergent suffixes cut by followers
    assert sum(r.leader_epochs for r in results) > 3 * 12
    assert all(r.acked > 0 for r in results) and sum(r.acked for r in results) > 200


def test_a_seed_replays_identically():
    a = cluster_sim.run(cluster_sim.default_config(11))
    b = cluster_sim.run(cluster_sim.default_config(11))
    assert (a.events, a.acked, a.produced, a.crashes, a.power_losses, a.truncations, a.leader_epochs,
            a.committed_txns, a.aborted_txns) == \
        (b.events, b.acked, b.produced, b.crashes, b.power_losses, b.truncations, b.leader_epochs,
         b.committed_txns, b.aborted_txns)
    assert a.acked > 0 and a.crashes > 0 and a.config.transactions and a.committed_txns > 0


class HighWatermarkFromLeaderOnly(Partition):
    """Broken on purpose: the leader's high watermark is its own log end, whatever its followers have."""

    def _maybe_advance_high_watermark(self, now_ms):
        if self.is_leader and self.log.log_end_offset > self.log.high_watermark:
            self.log.high_watermark = self.log.log_end_offset
            return True
        return False


class AcksBeforeReplication(Partition):
    """Broken on purpose: an acks=all produce is answered as soon as the leader has it."""

    def check_enough_replicas(self, required_offset, leader_epoch):
        return True, ErrorCode.NONE


class IgnoresDivergingEpoch(Fetcher):
    """Broken on purpose: a follower keeps the suffix the leader says diverges (no KIP-320 truncation)."""

    def _truncate(self, s, p, leader_epoch, leader_end):
        s.phase, s.last_fetched_epoch = FETCHING, -1


class TruncatesToHighWatermark(Fetcher):
    """Broken on purpose, as before KIP-101: a new follower cuts its log at its high watermark."""

    def add(self, p):
        current = self.states.get(p.key)
        if current is None or current.current_leader_epoch != p.leader_epoch:
            p.log.truncate_to(p.high_watermark)
        super().add(p)


@pytest.mark.parametrize("broken, mode, finding, seeds", [
    (HighWatermarkFromLeaderOnly, None, "below its high watermark", 40),
    (AcksBeforeReplication, None, "acknowledges a produce at offset 0 of partition 0 that is not committed", 40),
    (IgnoresDivergingEpoch, "network", "that differs from the committed one", 40),
    # A leader answers a follower at once with a high watermark it has not told it (Kafka's
    # lastSentHighWatermark), so a follower's lags only for a round trip: seed 76 is the first
    # where truncating to it cuts committed records.
    (TruncatesToHighWatermark, None, "below its high watermark", 100),
])
def test_the_invariants_catch_a_broken_replication_core(broken, mode, finding, seeds):
    key = "partition_class" if issubclass(broken, Partition) else "fetcher_class"
    for seed in range(seeds):
        report: list[str] = []
        config = cluster_sim.default_config(seed, mode=mode, transactions=False, **{key: broken})
        cluster_sim.run_many([config], out=report.append)
        if report and finding in report[0]:
            break
    else:
        pytest.fail(f"{broken.__name__} went unnoticed over {seeds} seeds")
    assert "InvariantViolation" in report[0]
    assert report[1].strip().startswith("replay: python -m kafka_compat.testing.cluster_sim --seed ")


class AbortMarkerWrittenAsCommit(Partition):
    """Broken on purpose: WriteTxnMarkers writes every marker as COMMIT."""

    def append_marker(self, producer_id, producer_epoch, coordinator_epoch, commit, now_ms):
        return super().append_marker(producer_id, producer_epoch, coordinator_epoch, True, now_ms)


def first_unstable_offset_ignoring_open_transactions(state):
    """Broken on purpose: only completed transactions whose marker is not replicated yet hold the
    last stable offset back."""
    return min(state._unreplicated, default=None)


class MarkerNotWritten(Partition):
    """Broken on purpose: WriteTxnMarkers answers as if the marker were written, and writes nothing."""

    def append_marker(self, producer_id, producer_epoch, coordinator_epoch, commit, now_ms):
        end = self.log.log_end_offset
        return AppendInfo(end - 1, end - 1, -1, self.log.log_start_offset)


@pytest.mark.parametrize("plant, finding", [
    (AbortMarkerWrittenAsCommit, "of a transaction that was aborted"),
    ("lso_ignores_open_transactions", "passed the open transaction"),
    (MarkerNotWritten, "a transaction is still open"),
])
def test_the_invariants_catch_a_broken_transaction_path(plant, finding, monkeypatch):
    kw = {}
    if plant == "lso_ignores_open_transactions":
        monkeypatch.setattr(ProducerState, "first_unstable_offset", first_unstable_offset_ignoring_open_transactions)
    else:
        kw["partition_class"] = plant
    for seed in range(1, 200, 10):
        report: list[str] = []
        cluster_sim.run_many([cluster_sim.default_config(seed, **kw)], out=report.append)
        if report and finding in report[0]:
            break
    else:
        pytest.fail(f"{getattr(plant, '__name__', plant)} went unnoticed over 20 seeds")
    assert "InvariantViolation" in report[0]
    assert "--transactions" in report[1]
