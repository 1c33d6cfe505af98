"""The seeded quorum simulation: hundreds of seeds hold every invariant, and broken nodes are caught."""

import pytest

from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.node import RaftNode
from kafka_compat.testing import raft_sim

SEEDS = 300
CHUNK = 25


@pytest.mark.parametrize("first", range(0, SEEDS, CHUNK))
def test_seeded_simulations_hold_every_invariant(first):
    configs = [raft_sim.default_config(seed) for seed in range(first, first + CHUNK)]
    report = []
    failures, events = raft_sim.run_many(configs, out=report.append)
    assert not failures, "\n".join(report)
    assert events > 100 * CHUNK


def test_the_seeds_cover_one_three_and_five_voters_and_observers():
    configs = [raft_sim.default_config(seed) for seed in range(SEEDS)]
    assert {c.voters for c in configs} == {1, 3, 5}
    assert {c.observers for c in configs} == {0, 1, 2}


def test_a_seed_replays_identically():
    a = raft_sim.run(raft_sim.default_config(7))
    b = raft_sim.run(raft_sim.default_config(7))
    assert (a.events, a.committed_offset, a.elections, a.crashes) == \
        (b.events, b.committed_offset, b.elections, b.crashes)
    assert a.committed_offset > 0 and a.events > 500


class VotesTwice(RaftNode):
    """Broken on purpose: grants a vote in an epoch where it already voted for someone else."""

    def _grants_vote(self, candidate, log_ok):
        return log_ok and self.role in ("unattached", "prospective", "follower")


class CommitsAlone(RaftNode):
    """Broken on purpose: a leader that counts only itself for the high watermark."""

    def _maybe_advance_high_watermark(self):
        if self._flushed_end > self.high_watermark and self._flushed_end > self.state.epoch_start_offset:
            self.high_watermark = self._flushed_end
            self._complete_parked()


class TrimsBeforeStoring(RaftNode):
    """Broken on purpose: trims its log to a snapshot at once instead of leaving the snapshot and
    then the trim to the Ready, so the snapshot is never stored."""

    def create_snapshot(self, end_offset, values, now_ms, trim_log=True):
        snapshot_id = OffsetAndEpoch(end_offset, self.log.epoch_of(end_offset - 1))
        self.log.trim_before(snapshot_id)
        self._log_dirty = True
        return snapshot_id


@pytest.mark.parametrize("broken, finding", [(VotesTwice, "two leaders in epoch"),
                                             (CommitsAlone, "committed"),
                                             (TrimsBeforeStoring, "but there is no snapshot")])
def test_the_invariants_catch_a_broken_node(broken, finding):
    report = []
    configs = [raft_sim.default_config(seed, voters=5, node_class=broken) for seed in range(40)]
    failures, _ = raft_sim.run_many(configs, out=report.append)
    assert failures, f"{broken.__name__} went unnoticed over 40 seeds"
    assert any(finding in line for line in report)
    replay = [line for line in report if "replay:" in line]
    assert replay[0].strip().startswith("replay: python -m kafka_compat.testing.raft_sim --seed ")
