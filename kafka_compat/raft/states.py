"""The roles a node plays in one epoch, as small classes holding that role's timers and tallies.

Every role answers two questions the node asks when a Vote arrives, so that the voting rules of
Raft and KIP-996 read in one place:

- `can_grant_vote(candidate, log_ok)`: a real vote in this role's own epoch (the node has already
  moved to the candidate's epoch if it was higher). At most one candidate per epoch, and only one
  whose log is at least as up to date; never while a leader of this epoch is known.
- `grants_pre_vote(log_ok)`: a pre-vote, which changes nothing here. Refused while this node
  believes in a live leader, so that a node coming back from a partition cannot force an
  election on a healthy quorum.

`election_state()` is what must be on disk while in the role.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.quorum_state import ElectionState


@dataclass
class Unattached:
    """No leader known in this epoch; maybe a vote cast. Voters wait out an election timeout,
    observers look for the leader by fetching from any voter."""

    epoch: int
    voted_id: int = -1
    election_deadline: int = 0
    name = "unattached"
    leader_id = -1

    def election_state(self, node_id: int) -> ElectionState:
        return ElectionState(self.epoch, -1, self.voted_id)

    def can_grant_vote(self, candidate: int, log_ok: bool) -> bool:
        return self.voted_id == candidate or (self.voted_id == -1 and log_ok)

    def grants_pre_vote(self, log_ok: bool) -> bool:
        return log_ok


@dataclass
class _Election:
    """A round of votes (pre-votes for a Prospective). `backoff_until` is set once the round is
    lost; the next round starts when it passes."""

    epoch: int
    election_deadline: int
    round: int = 0
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)
    backoff_until: int | None = None
    retries: int = 0

    def record(self, voter: int, granted: bool) -> None:
        (self.granted if granted else self.rejected).add(voter)
        (self.rejected if granted else self.granted).discard(voter)

    def won(self, majority: int) -> bool:
        return len(self.granted) >= majority

    def lost(self, voters: int, majority: int) -> bool:
        return len(self.rejected) > voters - majority

    def grants_pre_vote(self, log_ok: bool) -> bool:
        return log_ok


@dataclass
class Prospective(_Election):
    """KIP-996: asking for pre-votes for epoch + 1 before bumping anything. Keeps the vote and the
    leader of the epoch it came from, so a leader that turns out to be alive is followed again."""

    voted_id: int = -1
    prior_leader: int = -1
    name = "prospective"
    leader_id = -1

    def election_state(self, node_id: int) -> ElectionState:
        return ElectionState(self.epoch, self.prior_leader, self.voted_id)

    def can_grant_vote(self, candidate: int, log_ok: bool) -> bool:
        return self.voted_id == candidate or (self.voted_id == -1 and self.prior_leader == -1 and log_ok)


@dataclass
class Candidate(_Election):
    """Voted for itself in `epoch` and asks the other voters for theirs."""

    name = "candidate"
    leader_id = -1

    def election_state(self, node_id: int) -> ElectionState:
        return ElectionState(self.epoch, -1, node_id)

    def can_grant_vote(self, candidate: int, log_ok: bool) -> bool:
        return False


@dataclass
class SnapshotFetch:
    snapshot_id: OffsetAndEpoch
    data: bytearray = field(default_factory=bytearray)


@dataclass
class Follower:
    """Fetches from `leader_id`. The leader counts as alive until the fetch timeout passes without
    a successful Fetch, or until it says it resigned; and not before a first successful Fetch in
    this role (a leader only heard of, never reached, must not block other elections)."""

    epoch: int
    leader_id: int
    voted_id: int = -1
    fetch_deadline: int = 0
    fetched_ok: bool = False
    leader_resigned: bool = False
    snapshot: SnapshotFetch | None = None
    name = "follower"

    def election_state(self, node_id: int) -> ElectionState:
        return ElectionState(self.epoch, self.leader_id, self.voted_id)

    def can_grant_vote(self, candidate: int, log_ok: bool) -> bool:
        return self.voted_id == candidate  # a repeated request from the candidate it elected

    def grants_pre_vote(self, log_ok: bool) -> bool:
        return log_ok and (not self.fetched_ok or self.leader_resigned)


@dataclass
class ReplicaProgress:
    """What the leader knows of one replica from its fetches (DescribeQuorum reports it)."""

    replica_id: int
    end_offset: int = -1
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1
    # The leader's end offset when this replica last fetched: reaching it later means the replica
    # was caught up as of that earlier fetch.
    leader_end_at_last_fetch: int = -1
    # The high watermark this replica was last told; a parked fetch completes when it moves.
    sent_high_watermark: int = -1

    def fetched(self, offset: int, now: int, leader_end: int) -> None:
        if offset >= leader_end:
            self.last_caught_up_ms = now
        elif self.leader_end_at_last_fetch >= 0 and offset >= self.leader_end_at_last_fetch:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.end_offset, self.last_fetch_ms, self.leader_end_at_last_fetch = offset, now, leader_end


@dataclass
class ParkedFetch:
    """A Fetch with nothing to return yet, answered when data arrives, the high watermark moves
    or its max wait passes."""

    source: int
    correlation_id: int
    fetch_offset: int
    deadline: int


@dataclass
class Leader:
    epoch: int
    epoch_start_offset: int
    voters: dict[int, ReplicaProgress]
    check_quorum_deadline: int
    granting: frozenset[int] = frozenset()
    observers: dict[int, ReplicaProgress] = field(default_factory=dict)
    # Voters that fetched since the check-quorum timer was last reset.
    fetched_voters: set[int] = field(default_factory=set)
    # Voters that have not yet acknowledged this epoch (BeginQuorumEpoch response or a Fetch).
    unacknowledged: set[int] = field(default_factory=set)
    parked: list[ParkedFetch] = field(default_factory=list)
    name = "leader"

    def election_state(self, node_id: int) -> ElectionState:
        return ElectionState(self.epoch, node_id, node_id)

    def can_grant_vote(self, candidate: int, log_ok: bool) -> bool:
        return False

    def grants_pre_vote(self, log_ok: bool) -> bool:
        return False


@dataclass
class Resigned:
    """A leader that stepped down (gracefully, or for losing touch with the quorum). It keeps its
    epoch, tells the voters with EndQuorumEpoch, and stands again after an election timeout if
    nobody else has been elected by then."""

    epoch: int
    election_deadline: int
    successors: list[int] = field(default_factory=list)
    unacknowledged: set[int] = field(default_factory=set)
    name = "resigned"
    leader_id = -1

    def election_state(self, node_id: int) -> ElectionState:
        return ElectionState(self.epoch, node_id, node_id)

    def can_grant_vote(self, candidate: int, log_ok: bool) -> bool:
        return False

    def grants_pre_vote(self, log_ok: bool) -> bool:
        return log_ok
