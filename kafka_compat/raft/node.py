"""A Raft node in KRaft's shape, with no I/O: messages and time in, a `Ready` out.

Inputs: `step(source, message, correlation_id, now_ms)` for every request or response that
arrives (the generated message objects), `tick(now_ms)` when the last Ready's deadline passes,
`request_failed` when the transport lost a request, and on the leader `propose(values)`.
After inputs, the caller takes `ready()` and handles it in this order:

1. persist (`ready.persist`): write `quorum_state` if set (atomically), store `snapshot_write`
   if set and then trim or reset the log as it says, flush the log if `flush`;
2. send `messages` (requests carry the node's correlation ids; a response carries the id of the
   request it answers, whatever transport id that stands for);
3. load `snapshot` into the state machine if set, then apply `committed` in order;
4. call `advance(ready)`, before any further input.

Replication is pull-based (KIP-595): followers and observers Fetch from the leader with their
end offset and last epoch; the leader answers with records, or with the point where their logs
diverge, or with a snapshot id when the follower is behind the log start. Elections go through a
pre-vote round (KIP-996) before any epoch is bumped. The leader commits once a majority of voters
have the offset, and only beyond the LeaderChangeMessage it wrote at the start of its epoch;
it resigns if a majority stops fetching for 1.5 fetch timeouts (check quorum).

The log and snapshot store are passed in as interfaces (`log.RaftLog`, `snapshots.SnapshotStore`):
the node reads both and appends to and truncates the log, but leaves durability to the caller:
the log flush, and every snapshot write with the log trim or reset that must follow it (never
precede it) go out in a Ready.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import structlog

from kafka_compat.protocol.errors import ErrorCode as E
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.protocol.primitives import Message
from kafka_compat.raft import control, wire
from kafka_compat.raft import snapshots as snapshot_files
from kafka_compat.raft.config import Endpoint, QuorumConfig
from kafka_compat.raft.election import Election
from kafka_compat.raft.log import OffsetAndEpoch, RaftLog, split_batches
from kafka_compat.raft.quorum_state import ElectionState
from kafka_compat.raft.ready import KEEP_LOG, RESET_LOG, TRIM_LOG, Batch, LeaderAndEpoch, Outbound, Ready, SnapshotWrite
from kafka_compat.raft.replication import Replication
from kafka_compat.raft.snapshots import SnapshotStore
from kafka_compat.raft.states import Candidate, Follower, Leader, Prospective, ReplicaProgress, Resigned, Unattached
from kafka_compat.records.batch import read_header
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record, iter_records

__all__ = ["Batch", "LeaderAndEpoch", "NotLeaderError", "Outbound", "RaftNode", "Ready"]
NEVER = 1 << 62
RETRY_BACKOFF_BASE_MS = 100
CHECK_QUORUM_FACTOR = 1.5


class NotLeaderError(Exception):
    """`propose` or `resign` on a node that is not the leader; `leader_id`/`epoch` say who is."""

    def __init__(self, leader_id: int, epoch: int):
        self.leader_id, self.epoch = leader_id, epoch
        super().__init__(f"not the leader (leader {leader_id}, epoch {epoch})")


@dataclass
class InFlight:
    """A request sent and not yet answered, with what its answer must be checked against."""

    dest: int
    api_key: int
    deadline: int
    context: dict = field(default_factory=dict)


class RaftNode(Election, Replication):
    """One replica of `__cluster_metadata-0`: a voter if its id is in `config.voters`, else an
    observer. `election` is the state read back from disk (None on first start); `rng` drives
    election timeouts and backoffs, so a seeded one makes the node deterministic. `logger` is a
    structlog logger (the simulator passes a quiet one)."""

    def __init__(self, node_id: int, config: QuorumConfig, raft_log: RaftLog, snapshots: SnapshotStore,
                 election: ElectionState | None, now_ms: int, rng: random.Random | None = None, logger=None):
        self.id = node_id
        self.logger = (logger or structlog.get_logger("kafka_compat.raft")).bind(node=node_id)
        self.config = config
        self.log = raft_log
        self.snapshots = snapshots
        self.rng = rng or random.Random()
        self.now = now_ms
        self.endpoints = dict(config.endpoints)
        self.is_voter = node_id in config.voters
        self.high_watermark = 0
        # Added to `now` where a wall-clock time leaves the node (record batch timestamps, snapshot
        # headers, DescribeQuorum) when `now` is a monotonic clock.
        self.wall_clock_offset_ms = 0
        self._messages: list[Outbound] = []
        self._pending: dict[int, InFlight] = {}
        self._retry_at: dict[tuple[int, int], int] = {}
        self._next_correlation = 0
        self._log_dirty = False
        self._snapshot_to_load: OffsetAndEpoch | None = None
        self._snapshot_write: SnapshotWrite | None = None  # for the next Ready
        self._reported_leader: LeaderAndEpoch | None = None
        self._discovery_at = now_ms
        self._discovery_targets: list[int] = []

        latest = snapshots.latest()
        if latest is not None and not self._log_agrees_with(latest):
            # Raft's rule for an installed snapshot: keep the log only if it holds the snapshot's
            # last entry (same offset, same epoch); otherwise it is older or another history
            # (a crash after a snapshot was stored but before the log reset was flushed).
            raft_log.reset(latest)
            self._log_dirty = True
        if raft_log.start_offset > 0 and latest is None:
            raise ValueError(f"log starts at {raft_log.start_offset} but there is no snapshot")
        if latest is not None:
            self._snapshot_to_load = latest
            self.high_watermark = latest.offset
        self._next_apply = latest.offset if latest is not None else raft_log.start_offset
        self._flushed_end = raft_log.end_offset  # what the leader may count as its own (see advance)

        self._persisted = election
        election = election or ElectionState(0)
        lone_voter = config.voters == {node_id}  # has nobody to wait for
        if election.leader_id == node_id:
            self.state = Resigned(election.epoch, now_ms if lone_voter else self._election_deadline(),
                                  unacknowledged=set(config.voters) - {node_id})
        elif election.leader_id >= 0:
            self.state = Follower(election.epoch, election.leader_id, election.voted_id,
                                  fetch_deadline=now_ms + config.fetch_timeout_ms)
        else:
            deadline = now_ms if lone_voter else self._election_deadline()
            self.state = Unattached(election.epoch, election.voted_id, deadline)
        self._poll()

    def _log_agrees_with(self, snapshot_id: OffsetAndEpoch) -> bool:
        lg = self.log
        if snapshot_id.offset < lg.start_offset:
            return True  # trimmed past it: the log starts at a newer snapshot's end
        if snapshot_id.offset > lg.end_offset:
            return False
        if snapshot_id.offset == lg.start_offset:
            return lg.start_epoch == snapshot_id.epoch
        return lg.epoch_of(snapshot_id.offset - 1) == snapshot_id.epoch

    # Introspection

    @property
    def epoch(self) -> int:
        return self.state.epoch

    @property
    def role(self) -> str:
        return self.state.name

    @property
    def leader_id(self) -> int:
        if isinstance(self.state, Leader):
            return self.id
        return self.state.leader_id

    @property
    def is_leader(self) -> bool:
        return isinstance(self.state, Leader)

    @property
    def _installing(self) -> bool:
        """A snapshot fetched from the leader waits for the next Ready to be stored."""
        return self._snapshot_write is not None and self._snapshot_write.log_then == RESET_LOG

    @property
    def applied_offset(self) -> int:
        """The offset just past everything handed to the state machine so far."""
        return self._next_apply

    # Inputs

    def tick(self, now_ms: int) -> None:
        self._advance_clock(now_ms)
        for corr in [c for c, p in self._pending.items() if p.deadline <= self.now]:
            self._forget(corr)
        if isinstance(self.state, Leader):
            self._expire_parked()
        self._poll()

    def step(self, source: int | None, message: Message, correlation_id: int, now_ms: int,
             version: int | None = None) -> None:
        """Handle one request (answered now or, for a parked Fetch, later) or response."""
        self._advance_clock(now_ms)
        if version is None:
            version = wire.VERSIONS.get(message.API_KEY, 0)
        if message.KIND == "request":
            handler = self._REQUEST_HANDLERS.get(message.API_KEY)
            if handler is None:
                return
            response = handler(self, source, message, correlation_id, version)
            if response is not None:
                self._messages.append(Outbound(source, self._with_leader_endpoint(response, version), correlation_id))
        else:
            pending = self._pending.get(correlation_id)
            if pending is None or pending.dest != source or pending.api_key != message.API_KEY:
                return  # late, duplicated or unknown: nothing waits for it
            del self._pending[correlation_id]
            for ep in getattr(message, "node_endpoints", ()):
                self.endpoints[ep.node_id] = Endpoint(ep.host, ep.port)
            self._RESPONSE_HANDLERS[message.API_KEY](self, source, message, pending)
        self._poll()

    def _with_leader_endpoint(self, response: Message, version: int) -> Message:
        """Name the leader's address in responses that can carry it (KIP-853), so that a replica
        that knows only bootstrap servers can reach the leader."""
        endpoint = self.endpoints.get(self.leader_id)
        lo, hi = getattr(type(response), "_versions", {}).get("node_endpoints", (1, 0))
        if endpoint is not None and lo <= version <= hi:
            response.node_endpoints = [type(response).NodeEndpoint(node_id=self.leader_id, host=endpoint.host,
                                                                   port=endpoint.port)]
        return response

    def request_failed(self, correlation_id: int, now_ms: int) -> None:
        """The transport gave up on a request (connection refused or lost): retry after a backoff
        instead of waiting out the request timeout."""
        self._advance_clock(now_ms)
        if correlation_id in self._pending:
            self._forget(correlation_id)
            self._poll()

    def propose(self, values: list[bytes], now_ms: int) -> OffsetAndEpoch:
        """Append `values` as one batch of the current epoch; returns the offset of its last
        record and the epoch. They are committed once the high watermark passes that offset."""
        self._advance_clock(now_ms)
        if not isinstance(self.state, Leader):
            raise NotLeaderError(self.leader_id, self.epoch)
        if not values:
            raise ValueError("nothing to propose")
        base = self.log.end_offset
        data = build_batch([Record(None, v, self.now + self.wall_clock_offset_ms) for v in values], base_offset=base,
                           partition_leader_epoch=self.epoch)
        self._append(split_batches(data))
        self._complete_parked()
        return OffsetAndEpoch(base + len(values) - 1, self.epoch)

    def resign(self, now_ms: int) -> None:
        """Graceful resignation: tell the voters, most up to date first, to elect a successor."""
        self._advance_clock(now_ms)
        if not isinstance(self.state, Leader):
            raise NotLeaderError(self.leader_id, self.epoch)
        self._become_resigned()
        self._poll()

    def create_snapshot(self, end_offset: int, values, now_ms: int, trim_log: bool = True) -> OffsetAndEpoch:
        """Snapshot the state machine's state as of `end_offset` (everything before it applied):
        the next Ready stores it and, with `trim_log`, then drops the log before it."""
        self._advance_clock(now_ms)
        staged = self._snapshot_write
        if self._installing:
            return staged.snapshot_id  # the leader's snapshot, about to be installed, is newer
        latest = staged.snapshot_id if staged is not None else self.snapshots.latest()
        if latest is not None and end_offset <= latest.offset:
            return latest
        if not self.log.start_offset < end_offset <= min(self._next_apply, self.high_watermark):
            raise ValueError(f"snapshot end {end_offset} outside the applied log "
                             f"({self.log.start_offset}, {min(self._next_apply, self.high_watermark)}]")
        snapshot_id = OffsetAndEpoch(end_offset, self.log.epoch_of(end_offset - 1))
        self._snapshot_write = SnapshotWrite(snapshot_id, snapshot_files.build(snapshot_id, values,
                                                                             self.now + self.wall_clock_offset_ms),
                                             TRIM_LOG if trim_log else KEEP_LOG)
        return snapshot_id

    # Outputs

    def has_ready(self) -> bool:
        return bool(self._messages or self._log_dirty or self._snapshot_to_load is not None
                    or self._snapshot_write is not None or self._election_state() != self._persisted
                    or self._committed_available() or self._leader_and_epoch() != self._reported_leader)

    def _committed_available(self) -> bool:
        end = min(self.high_watermark, self.log.end_offset)
        return end > self._next_apply and next(self.log.batches(self._next_apply, end), None) is not None

    def ready(self) -> Ready:
        election = self._election_state()
        leader = self._leader_and_epoch()
        write = self._snapshot_write
        rd = Ready(
            quorum_state=election if election != self._persisted else None,
            flush=self._log_dirty or write is not None and write.log_then != KEEP_LOG,
            messages=self._messages,
            snapshot=self._snapshot_to_load,
            committed=self._take_committed(),
            leader=leader if leader != self._reported_leader else None,
            deadline_ms=self.next_deadline(),
            log_end_offset=write.snapshot_id.offset if write is not None and write.log_then == RESET_LOG
            else self.log.end_offset,
            snapshot_write=write,
        )
        self._messages = []
        self._snapshot_to_load = None
        self._snapshot_write = None
        self._reported_leader = leader
        return rd

    def advance(self, rd: Ready) -> None:
        """`rd` was persisted, sent and applied."""
        if rd.quorum_state is not None:
            self._persisted = rd.quorum_state
        write = rd.snapshot_write
        if write is not None and write.log_then == RESET_LOG:
            self._installed(write.snapshot_id)
        if rd.flush:
            self._log_dirty = False
            self._flushed_end = rd.log_end_offset
            if isinstance(self.state, Leader):
                self._maybe_advance_high_watermark()
        self._poll()

    def _take_committed(self) -> list[Batch]:
        end = min(self.high_watermark, self.log.end_offset)
        out = []
        for b in self.log.batches(self._next_apply, end):
            h = read_header(b.data)
            values = [] if h.is_control else [r.value for r in iter_records(b.data, 0, h)]
            out.append(Batch(b.base_offset, b.last_offset, b.epoch, values, h.is_control))
            self._next_apply = b.next_offset
        return out

    def next_deadline(self) -> int:
        """When `tick` must be called next (NEVER if nothing is scheduled)."""
        s = self.state
        times = [p.deadline for p in self._pending.values()]
        times += [t for t in self._retry_at.values() if t > self.now]
        if isinstance(s, Unattached):
            if self.is_voter:
                times.append(s.election_deadline)
            elif not self._pending:
                times.append(self._discovery_at)
        elif isinstance(s, (Prospective, Candidate)):
            times.append(s.backoff_until if s.backoff_until is not None else s.election_deadline)
        elif isinstance(s, Follower):
            times.append(s.fetch_deadline)
        elif isinstance(s, Leader):
            if len(self.config.voters) > 1:
                times.append(s.check_quorum_deadline)
            times += [f.deadline for f in s.parked]
        elif isinstance(s, Resigned):
            times.append(s.election_deadline)
        return min(times, default=NEVER)

    # Time and timers

    def _advance_clock(self, now_ms: int) -> None:
        self.now = max(self.now, now_ms)

    def _election_deadline(self) -> int:
        timeout = self.config.election_timeout_ms
        return self.now + timeout + self.rng.randrange(timeout)

    def _election_backoff(self, retries: int) -> int:
        spread = 2 << min(retries, 10)
        return min(RETRY_BACKOFF_BASE_MS * self.rng.randrange(1, spread), self.config.election_backoff_max_ms)

    def _successor_backoff(self, successors: list[int]) -> int:
        """After EndQuorumEpoch: the first preferred successor stands at once, the next ones
        after exponentially longer waits, the rest after the maximum backoff."""
        cap = self.config.election_backoff_max_ms
        if self.id not in successors:
            return cap
        position = successors.index(self.id)
        if position == 0:
            return 0
        return min(cap, (cap >> (len(successors) - 1)) << (position - 1))

    def _discovery_backoff(self) -> int:
        return self.config.retry_backoff_ms * 10

    # Role transitions. Each clears in-flight requests: their answers belong to the old role.

    def _transition(self, state) -> None:
        old = self.state
        if isinstance(old, Leader):
            self._abandon_parked(old)
        self.state = state
        self._pending.clear()
        self._retry_at.clear()
        if type(old) is not type(state) or old.epoch != state.epoch:
            self.logger.debug("raft_transition", role=state.name, epoch=state.epoch, leader=self.leader_id,
                              previous=old.name)

    def _become_unattached(self, epoch: int, voted_id: int = -1) -> None:
        self._transition(Unattached(epoch, voted_id, self._election_deadline()))

    def _become_follower(self, epoch: int, leader_id: int) -> None:
        s = self.state
        voted = s.voted_id if epoch == s.epoch and isinstance(s, (Unattached, Prospective, Follower)) else \
            self.id if epoch == s.epoch and isinstance(s, Candidate) else -1
        self._transition(Follower(epoch, leader_id, voted, fetch_deadline=self.now + self.config.fetch_timeout_ms))

    def _become_prospective(self, retries: int = 0) -> None:
        s = self.state
        voted = self.id if isinstance(s, (Candidate, Resigned)) else s.voted_id
        prior = s.leader_id if isinstance(s, Follower) else s.prior_leader if isinstance(s, Prospective) else -1
        old_round = s.round if isinstance(s, Prospective) else 0
        self._transition(Prospective(s.epoch, self._election_deadline(), round=old_round + 1, retries=retries,
                                     voted_id=voted, prior_leader=prior))
        self.state.record(self.id, True)

    def _become_candidate(self) -> None:
        self._transition(Candidate(self.epoch + 1, self._election_deadline()))
        self.state.record(self.id, True)

    def _become_leader(self) -> None:
        s = self.state
        voters = {v: ReplicaProgress(v) for v in self.config.voters}
        start = self.log.end_offset
        leader = Leader(s.epoch, start, voters, self.now + self._check_quorum_timeout(),
                        granting=frozenset(s.granted), unacknowledged=set(self.config.voters) - {self.id})
        self._transition(leader)
        message = control.leader_change(self.id, self.config.voters, leader.granting)
        batch = control.control_batch(message, base_offset=start, epoch=leader.epoch,
                                      timestamp=self.now + self.wall_clock_offset_ms)
        self._append(split_batches(batch))
        self.logger.info("raft_elected", epoch=leader.epoch, start_offset=start)

    def _become_resigned(self) -> None:
        s = self.state
        followers = sorted((p for v, p in s.voters.items() if v != self.id),
                           key=lambda p: (-p.end_offset, p.replica_id))
        self._transition(Resigned(s.epoch, self._election_deadline(), [p.replica_id for p in followers],
                                  unacknowledged=set(self.config.voters) - {self.id}))

    def _check_quorum_timeout(self) -> int:
        return int(self.config.fetch_timeout_ms * CHECK_QUORUM_FACTOR)

    def _maybe_transition(self, leader_id: int, epoch: int, from_leader: bool = False) -> None:
        """Follow what a peer says about the epoch and its leader, if it tells us something new.
        `from_leader`: the leader itself is speaking (BeginQuorumEpoch, EndQuorumEpoch)."""
        s = self.state
        if epoch > s.epoch:
            if leader_id >= 0 and leader_id != self.id:
                self._become_follower(epoch, leader_id)
            else:
                self._become_unattached(epoch)
        elif epoch == s.epoch and leader_id >= 0 and leader_id != self.id and (
                isinstance(s, (Unattached, Candidate))
                # A prospective already knows its old leader: a voter naming it is no news (that
                # voter has not timed out yet) and must not end the pre-vote round; the leader
                # itself speaking is.
                or isinstance(s, Prospective) and (s.prior_leader != leader_id or from_leader)):
            self._become_follower(epoch, leader_id)

    # The poll: what each role does when time passes or after any input.

    def _poll(self) -> None:
        s = self.state
        if isinstance(s, Unattached):
            if self.is_voter:
                if self.now >= s.election_deadline:
                    self._become_prospective()
                    self._poll()
            else:
                self._discover_leader()
        elif isinstance(s, (Prospective, Candidate)):
            self._poll_election(s)
        elif isinstance(s, Follower):
            self._poll_follower(s)
        elif isinstance(s, Leader):
            self._poll_leader(s)
        elif isinstance(s, Resigned):
            if self.now >= s.election_deadline:
                self._become_prospective()
                self._poll()
                return
            for voter in sorted(s.unacknowledged):
                if self._can_send(voter, ApiKey.END_QUORUM_EPOCH):
                    self._send(voter, wire.end_quorum_epoch_request(self.config.cluster_id, self.id, s.epoch,
                                                                   s.successors))

    # Requests out

    def _can_send(self, dest: int, api_key: int) -> bool:
        if self._retry_at.get((dest, api_key), 0) > self.now:
            return False
        return not any(p.dest == dest and p.api_key == api_key for p in self._pending.values())

    def _send(self, dest: int, request: Message, timeout: int | None = None, **context) -> None:
        self._next_correlation += 1
        corr = self._next_correlation
        deadline = self.now + (self.config.request_timeout_ms if timeout is None else timeout)
        self._pending[corr] = InFlight(dest, request.API_KEY, deadline, context)
        self._messages.append(Outbound(dest, request, corr))

    def _forget(self, correlation_id: int) -> None:
        p = self._pending.pop(correlation_id)
        self._retry_at[(p.dest, p.api_key)] = self.now + self.config.retry_backoff_ms

    def _backoff(self, pending: InFlight) -> None:
        self._retry_at[(pending.dest, pending.api_key)] = self.now + self.config.retry_backoff_ms

    def _append(self, batches) -> None:
        self.log.append(batches)
        self._log_dirty = True

    # Shared request checks

    def _cluster_ok(self, cluster_id) -> bool:
        return cluster_id is None or self.config.cluster_id is None or cluster_id == self.config.cluster_id

    def _election_state(self) -> ElectionState:
        return self.state.election_state(self.id)

    def _leader_and_epoch(self) -> LeaderAndEpoch:
        return LeaderAndEpoch(self.leader_id, self.epoch)

    def _leader_epoch_error(self, request_epoch: int) -> int:
        """Kafka's rule for leader-only requests (Fetch, FetchSnapshot)."""
        if request_epoch < self.epoch:
            return E.FENCED_LEADER_EPOCH
        if request_epoch > self.epoch:
            return E.UNKNOWN_LEADER_EPOCH
        if not isinstance(self.state, Leader):
            return E.NOT_LEADER_OR_FOLLOWER
        return E.NONE

    def _common_response(self, p, error: int) -> bool:
        """What every response teaches: a newer epoch, or the leader of ours. False if the caller
        should stop there: the response is stale, or it moved the node to another role (unless
        it only revealed the leader of this epoch with no error, as an observer's first Fetch
        does; then its content is still good)."""
        leader_id, epoch = wire.leader_of(p)
        if epoch < self.epoch or error == E.UNKNOWN_LEADER_EPOCH:
            return False
        before = (type(self.state), self.epoch)
        self._maybe_transition(leader_id, epoch)
        if before != (type(self.state), self.epoch):
            return error == E.NONE
        return True

    # The handlers live in `election` and `replication`, by API.
    _REQUEST_HANDLERS = {
        ApiKey.VOTE: Election._on_vote_request,
        ApiKey.BEGIN_QUORUM_EPOCH: Election._on_begin_quorum_epoch_request,
        ApiKey.END_QUORUM_EPOCH: Election._on_end_quorum_epoch_request,
        ApiKey.FETCH: Replication._on_fetch_request,
        ApiKey.FETCH_SNAPSHOT: Replication._on_fetch_snapshot_request,
        ApiKey.DESCRIBE_QUORUM: Replication._on_describe_quorum_request,
    }
    _RESPONSE_HANDLERS = {
        ApiKey.VOTE: Election._on_vote_response,
        ApiKey.BEGIN_QUORUM_EPOCH: Election._on_begin_quorum_epoch_response,
        ApiKey.END_QUORUM_EPOCH: Election._on_end_quorum_epoch_response,
        ApiKey.FETCH: Replication._on_fetch_response,
        ApiKey.FETCH_SNAPSHOT: Replication._on_fetch_snapshot_response,
    }
