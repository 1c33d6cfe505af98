"""Elections, as the node answers and counts them: Vote (with KIP-996 pre-votes),
BeginQuorumEpoch and EndQuorumEpoch (KIP-595). A mixin of RaftNode: the state it reads and the
transitions it calls live in `node`; who may grant what is in `states`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode as E
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.raft import wire
from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.states import Candidate, Follower, Leader, Prospective, Resigned, Unattached

if TYPE_CHECKING:
    from kafka_compat.raft.node import InFlight


class Election:
    """Vote, BeginQuorumEpoch and EndQuorumEpoch handlers of RaftNode."""

    def _on_vote_request(self, source, req: m.VoteRequest, corr: int, version: int):
        if not self._cluster_ok(req.cluster_id):
            return wire.vote_response(E.INCONSISTENT_CLUSTER_ID, -1, -1, False)
        p = wire.partition_of(req)
        if p is None:
            return wire.vote_response(E.INVALID_REQUEST, -1, -1, False)
        candidate, epoch = p.replica_id, p.replica_epoch
        if not self.is_voter or candidate not in self.config.voters:
            return wire.vote_response(E.NONE, self.leader_id, self.epoch, False, E.INCONSISTENT_VOTER_SET)
        log_ok = OffsetAndEpoch(p.last_offset, p.last_offset_epoch).up_to_date_with(self.log.end)
        if wire.is_pre_vote(p):
            # A pre-vote asks about epoch + 1 and bumps nothing. But the asker's own epoch is real
            # (a candidate started it), and a node already in it can never follow a leader of an
            # older one: move up to it, as Raft does with any newer term.
            if epoch - 1 > self.epoch:
                self._become_unattached(epoch - 1)
            granted = epoch > self.epoch and self.state.grants_pre_vote(log_ok)
            return wire.vote_response(E.NONE, self.leader_id, self.epoch, granted)
        if epoch < self.epoch:
            return wire.vote_response(E.NONE, self.leader_id, self.epoch, False, E.FENCED_LEADER_EPOCH)
        if epoch > self.epoch:
            self._become_unattached(epoch)
        granted = self._grants_vote(candidate, log_ok)
        if granted and isinstance(self.state, Unattached) and self.state.voted_id == -1:
            self._transition(Unattached(epoch, candidate, self._election_deadline()))
        return wire.vote_response(E.NONE, self.leader_id, self.epoch, granted)

    def _grants_vote(self, candidate: int, log_ok: bool) -> bool:
        return self.state.can_grant_vote(candidate, log_ok)

    def _on_vote_response(self, source, resp: m.VoteResponse, pending: InFlight) -> None:
        p = wire.partition_of(resp)
        if p is None or resp.error_code:
            self._backoff(pending)
            return
        if not self._common_response(p, p.error_code):
            return
        s, ctx = self.state, pending.context
        if ctx["pre_vote"]:
            if isinstance(s, Prospective) and s.round == ctx["round"]:
                s.record(source, p.vote_granted)
        elif isinstance(s, Candidate) and s.epoch == ctx["epoch"]:
            s.record(source, p.vote_granted)

    # BeginQuorumEpoch

    def _on_begin_quorum_epoch_request(self, source, req, corr: int, version: int):
        if not self._cluster_ok(req.cluster_id):
            return wire.begin_quorum_epoch_response(E.INCONSISTENT_CLUSTER_ID, -1, -1)
        p = wire.partition_of(req)
        if p is None:
            return wire.begin_quorum_epoch_response(E.INVALID_REQUEST, -1, -1)
        if p.leader_epoch < self.epoch:
            return wire.begin_quorum_epoch_response(E.NONE, self.leader_id, self.epoch, E.FENCED_LEADER_EPOCH)
        self._maybe_transition(p.leader_id, p.leader_epoch, from_leader=True)
        return wire.begin_quorum_epoch_response(E.NONE, self.leader_id, self.epoch)

    def _on_begin_quorum_epoch_response(self, source, resp, pending: InFlight) -> None:
        p = wire.partition_of(resp)
        error = wire.response_error(resp, p)
        if p is None or not self._common_response(p, error):
            return
        if error:
            self._backoff(pending)
        elif isinstance(self.state, Leader):
            self.state.unacknowledged.discard(source)

    # EndQuorumEpoch

    def _on_end_quorum_epoch_request(self, source, req, corr: int, version: int):
        if not self._cluster_ok(req.cluster_id):
            return wire.end_quorum_epoch_response(E.INCONSISTENT_CLUSTER_ID, -1, -1)
        p = wire.partition_of(req)
        if p is None:
            return wire.end_quorum_epoch_response(E.INVALID_REQUEST, -1, -1)
        if p.leader_epoch < self.epoch:
            return wire.end_quorum_epoch_response(E.NONE, self.leader_id, self.epoch, E.FENCED_LEADER_EPOCH)
        self._maybe_transition(p.leader_id, p.leader_epoch, from_leader=True)
        s = self.state
        if isinstance(s, Follower) and s.leader_id == p.leader_id and s.epoch == p.leader_epoch:
            s.leader_resigned = True
            delay = self._successor_backoff(wire.preferred_successors(p, version))
            s.fetch_deadline = min(s.fetch_deadline, self.now + delay)
        return wire.end_quorum_epoch_response(E.NONE, self.leader_id, self.epoch)

    def _on_end_quorum_epoch_response(self, source, resp, pending: InFlight) -> None:
        p = wire.partition_of(resp)
        error = wire.response_error(resp, p)
        if p is None or not self._common_response(p, error):
            return
        if error:
            self._backoff(pending)
        elif isinstance(self.state, Resigned):
            self.state.unacknowledged.discard(source)

    # The candidate's side, run by the node's poll

    def _poll_election(self, s: Prospective | Candidate) -> None:
        voters = len(self.config.voters)
        majority = self.config.majority
        if s.won(majority):
            if isinstance(s, Prospective):
                self._become_candidate()
            else:
                self._become_leader()
            self._poll()
            return
        if s.backoff_until is None and (s.lost(voters, majority) or self.now >= s.election_deadline):
            if isinstance(s, Prospective) and s.prior_leader >= 0:
                # The quorum still believes in the old leader: follow it again (and, having not
                # reached it yet, grant other pre-votes) until the fetch timeout says otherwise.
                self._become_follower(s.epoch, s.prior_leader)
                self._poll()
                return
            s.retries += 1
            s.backoff_until = self.now + self._election_backoff(s.retries)
        if s.backoff_until is not None:
            if self.now >= s.backoff_until:
                self._become_prospective(s.retries)
                self._poll()
            return
        pre_vote = isinstance(s, Prospective)
        epoch = s.epoch + 1 if pre_vote else s.epoch
        for voter in sorted(self.config.voters - {self.id} - s.granted - s.rejected):
            if self._can_send(voter, ApiKey.VOTE):
                request = wire.vote_request(self.config.cluster_id, self.id, epoch, self.log.end, voter, pre_vote)
                self._send(voter, request, pre_vote=pre_vote, round=s.round, epoch=s.epoch)

    def _poll_leader(self, s: Leader) -> None:
        if len(self.config.voters) > 1 and self.now >= s.check_quorum_deadline:
            self.logger.warning("raft_check_quorum_failed", epoch=s.epoch, fetched=sorted(s.fetched_voters))
            self._become_resigned()
            self._poll()
            return
        for voter in sorted(s.unacknowledged):
            if self._can_send(voter, ApiKey.BEGIN_QUORUM_EPOCH):
                self._send(voter, wire.begin_quorum_epoch_request(self.config.cluster_id, self.id, s.epoch, voter))
