"""Replication by Fetch (KIP-595) and FetchSnapshot (KIP-630), both sides, and the leader's
high watermark and DescribeQuorum. A mixin of RaftNode: the state it reads and the transitions
it calls live in `node`.

The leader validates a follower's (fetch offset, last fetched epoch) against its own log: a
follower behind the log start gets the latest snapshot id, one whose log diverges gets the end
of the largest epoch both logs share (it truncates there and fetches again), the rest get
records. A Fetch with nothing new waits (parked) until data arrives, the high watermark moves,
or its max wait passes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode as E
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.raft import snapshots as snapshot_files
from kafka_compat.raft import wire
from kafka_compat.raft.log import OffsetAndEpoch, split_batches
from kafka_compat.raft.ready import RESET_LOG, Outbound, SnapshotWrite
from kafka_compat.raft.states import Follower, Leader, ParkedFetch, ReplicaProgress, SnapshotFetch
from kafka_compat.records.batch import check_crc, read_header
from kafka_compat.records.errors import RecordsError

if TYPE_CHECKING:
    from kafka_compat.raft.node import InFlight


class Replication:
    """Fetch, FetchSnapshot and DescribeQuorum handlers of RaftNode, and the leader's high watermark."""

    # Fetch: the leader's side

    def _on_fetch_request(self, source, req: m.FetchRequest, corr: int, version: int):
        s = self.state
        if not self._cluster_ok(req.cluster_id):
            return wire.fetch_response(E.INCONSISTENT_CLUSTER_ID, -1, -1)
        p = wire.partition_of(req)
        if p is None:
            return wire.fetch_response(E.INVALID_REQUEST, -1, -1)
        error = self._leader_epoch_error(p.current_leader_epoch)
        if error:
            return wire.fetch_response(E.NONE, self.leader_id, self.epoch, partition_error=error)
        if p.fetch_offset < 0 or p.last_fetched_epoch < 0:
            return wire.fetch_response(E.NONE, self.id, s.epoch, partition_error=E.INVALID_REQUEST)
        replica = wire.fetch_replica_id(req, version)
        answer = self._validate_fetch_position(OffsetAndEpoch(p.fetch_offset, p.last_fetched_epoch))
        if answer is not None:
            return answer
        progress = self._fetched(s, replica, p.fetch_offset)
        if p.fetch_offset < self.log.end_offset or req.max_wait_ms <= 0 or progress is None \
                or progress.sent_high_watermark != self.high_watermark:
            return self._fetch_answer(progress, p.fetch_offset)
        wait = min(req.max_wait_ms, self.config.fetch_max_wait_ms)
        s.parked.append(ParkedFetch(source, corr, p.fetch_offset, self.now + wait))
        return None

    def _validate_fetch_position(self, position: OffsetAndEpoch) -> m.FetchResponse | None:
        """None if the follower's log agrees with ours up to `position`; else the answer that
        sends it to a snapshot or tells it where to truncate (KIP-595, KIP-630)."""
        lg = self.log
        if lg.start_offset == 0 and position.offset == 0:
            return None
        if lg.start_offset > 0 and (position.offset < lg.start_offset or position.epoch < lg.start_epoch or (
                position.offset == lg.start_offset and position.epoch != lg.start_epoch)):
            return wire.fetch_response(E.NONE, self.id, self.epoch, high_watermark=self.high_watermark,
                                       log_start=lg.start_offset, snapshot=self.snapshots.latest())
        end = lg.end_offset_for_epoch(position.epoch)
        if end.epoch != position.epoch or end.offset < position.offset:
            return wire.fetch_response(E.NONE, self.id, self.epoch, high_watermark=self.high_watermark,
                                       log_start=lg.start_offset, diverging=end)
        return None

    def _fetched(self, s: Leader, replica: int, offset: int) -> ReplicaProgress | None:
        """Record a valid fetch position; a voter's may move the high watermark."""
        if replica < 0:
            return None
        if replica in s.voters:
            progress = s.voters[replica]
            s.unacknowledged.discard(replica)
            s.fetched_voters.add(replica)
            if len(s.fetched_voters | {self.id}) >= self.config.majority:
                s.check_quorum_deadline = self.now + self._check_quorum_timeout()
                s.fetched_voters.clear()
        else:
            progress = s.observers.setdefault(replica, ReplicaProgress(replica))
        progress.fetched(offset, self.now, self.log.end_offset)
        if replica in s.voters:
            self._maybe_advance_high_watermark()
        return progress

    def _fetch_answer(self, progress: ReplicaProgress | None, offset: int) -> m.FetchResponse:
        records = self.log.read(offset, self.config.fetch_max_bytes) if offset < self.log.end_offset else b""
        if progress is not None:
            progress.sent_high_watermark = self.high_watermark
        return wire.fetch_response(E.NONE, self.id, self.epoch, high_watermark=self.high_watermark,
                                   log_start=self.log.start_offset, records=records)

    def _maybe_advance_high_watermark(self) -> None:
        s = self.state
        s.voters[self.id].fetched(min(self._flushed_end, self.log.end_offset), self.now, self.log.end_offset)
        offsets = sorted((p.end_offset for p in s.voters.values()), reverse=True)
        candidate = offsets[len(offsets) // 2]
        # Only past this epoch's LeaderChangeMessage: committing an entry of its own epoch is what
        # lets a leader count older entries as committed (Raft §5.4.2).
        if candidate > s.epoch_start_offset and candidate > self.high_watermark:
            self.high_watermark = candidate
            self._complete_parked()

    def _complete_parked(self) -> None:
        s = self.state
        if not isinstance(s, Leader) or not s.parked:
            return
        still = []
        for f in s.parked:
            progress = s.voters.get(f.source) or s.observers.get(f.source)
            stale_hw = progress is not None and progress.sent_high_watermark != self.high_watermark
            if f.fetch_offset < self.log.end_offset or stale_hw:
                self._answer_parked(f, progress)
            else:
                still.append(f)
        s.parked = still

    def _answer_parked(self, f: ParkedFetch, progress: ReplicaProgress | None) -> None:
        self._messages.append(Outbound(f.source, self._fetch_answer(progress, f.fetch_offset), f.correlation_id))

    def _expire_parked(self) -> None:
        s = self.state
        due = [f for f in s.parked if f.deadline <= self.now]
        if due:
            s.parked = [f for f in s.parked if f.deadline > self.now]
            for f in due:
                self._answer_parked(f, s.voters.get(f.source) or s.observers.get(f.source))
        for replica in [r for r, p in s.observers.items()
                        if p.last_fetch_ms + self.config.observer_session_timeout_ms <= self.now]:
            del s.observers[replica]

    def _abandon_parked(self, old: Leader) -> None:
        for f in old.parked:
            self._messages.append(Outbound(f.source, wire.fetch_response(
                E.NONE, self.leader_id, self.epoch, partition_error=E.NOT_LEADER_OR_FOLLOWER), f.correlation_id))
        old.parked = []

    # Fetch: the follower's side

    def _poll_follower(self, s: Follower) -> None:
        if self.now >= s.fetch_deadline:
            if self.is_voter:
                self._become_prospective()
            else:
                self._become_unattached(s.epoch)
            self._poll()
            return
        if not self._can_send(s.leader_id, ApiKey.FETCH) or not self._can_send(s.leader_id, ApiKey.FETCH_SNAPSHOT) \
                or self._installing:
            return
        if s.snapshot is not None:
            sid = s.snapshot.snapshot_id
            self._send(s.leader_id, wire.fetch_snapshot_request(
                self.config.cluster_id, self.id, s.epoch, sid, len(s.snapshot.data), self.config.snapshot_chunk_bytes),
                epoch=s.epoch)
        else:
            self._send(s.leader_id, wire.fetch_request(
                self.config.cluster_id, self.id, s.epoch, self.log.end, self.log.start_offset,
                self.config.fetch_max_wait_ms, self.config.fetch_max_bytes),
                epoch=s.epoch, fetch_offset=self.log.end_offset)

    def _discover_leader(self) -> None:
        """An observer without a leader fetches from any voter (or bootstrap server), now and
        then: the answer names the leader."""
        if self.now < self._discovery_at or any(p.api_key == ApiKey.FETCH for p in self._pending.values()):
            return
        if not self._discovery_targets:
            # Voters whose address is known, else the bootstrap servers (KIP-853), else voters as
            # they are (a transport that needs no addresses). Each once per pass, in a random
            # order: a few unreachable ones cannot keep an observer from the rest.
            voters = sorted(self.config.voters - {self.id})
            known = [v for v in voters if v in self.endpoints]
            self._discovery_targets = known or list(self.config.bootstrap) or voters
            self.rng.shuffle(self._discovery_targets)
            if not self._discovery_targets:
                return
        target = self._discovery_targets.pop()
        self._discovery_at = self.now + self._discovery_backoff()
        # The answer needs no waiting on the other side, so do not wait long for it either.
        self._send(target, wire.fetch_request(
            self.config.cluster_id, self.id, self.epoch, self.log.end, self.log.start_offset, 0,
            self.config.fetch_max_bytes), timeout=self.config.fetch_max_wait_ms, epoch=self.epoch,
            fetch_offset=self.log.end_offset)


    def _on_fetch_response(self, source, resp: m.FetchResponse, pending: InFlight) -> None:
        p = wire.partition_of(resp)
        if p is None or resp.error_code:
            self._backoff(pending)
            return
        error = p.error_code
        if not self._common_response(p, error):
            return
        s = self.state
        if not isinstance(s, Follower) or s.leader_id != source or s.epoch != pending.context["epoch"]:
            self._backoff(pending)
            return
        if error:
            if error == E.NOT_LEADER_OR_FOLLOWER:
                s.leader_resigned = True  # our leader stepped down: grant pre-votes from now on
            self._backoff(pending)
            return
        s.fetched_ok = True
        s.fetch_deadline = self.now + self.config.fetch_timeout_ms
        if pending.context["fetch_offset"] != self.log.end_offset:
            return  # the log changed under this fetch (a snapshot loaded meanwhile)
        if p.diverging_epoch.epoch >= 0 or p.diverging_epoch.end_offset >= 0:
            diverging = OffsetAndEpoch(p.diverging_epoch.end_offset, p.diverging_epoch.epoch)
            if diverging.offset < self.high_watermark:
                self.logger.error("raft_divergence_below_high_watermark", diverging=diverging,
                          high_watermark=self.high_watermark)
                return
            self._flushed_end = min(self._flushed_end, self.log.truncate_to_end_offset(diverging))
            self._log_dirty = True
            return
        if p.snapshot_id.epoch >= 0 and p.snapshot_id.end_offset >= 0:
            s.snapshot = SnapshotFetch(OffsetAndEpoch(p.snapshot_id.end_offset, p.snapshot_id.epoch))
            return
        if p.records:
            try:
                batches = [b for b in split_batches(p.records) if b.last_offset >= self.log.end_offset]
                for b in batches:
                    check_crc(b.data, 0, read_header(b.data))
            except RecordsError as e:
                self.logger.warning("raft_fetch_corrupt", leader=source, error=str(e))
                self._backoff(pending)
                return
            if batches and batches[0].base_offset != self.log.end_offset:
                self._backoff(pending)
                return
            if batches:
                self._append(batches)
        hw = min(p.high_watermark, self.log.end_offset)
        if hw > self.high_watermark:
            self.high_watermark = hw

    # FetchSnapshot

    def _on_fetch_snapshot_request(self, source, req: m.FetchSnapshotRequest, corr: int, version: int):
        if not self._cluster_ok(req.cluster_id):
            return wire.fetch_snapshot_response(E.INCONSISTENT_CLUSTER_ID, -1, -1)
        p = wire.partition_of(req)
        if p is None:
            return wire.fetch_snapshot_response(E.INVALID_REQUEST, -1, -1)
        error = self._leader_epoch_error(p.current_leader_epoch)
        if error:
            return wire.fetch_snapshot_response(E.NONE, self.leader_id, self.epoch, partition_error=error)
        s = self.state
        sid = OffsetAndEpoch(p.snapshot_id.end_offset, p.snapshot_id.epoch)
        if sid not in self.snapshots.ids():
            return wire.fetch_snapshot_response(E.NONE, self.id, s.epoch, partition_error=E.SNAPSHOT_NOT_FOUND,
                                                snapshot_id=sid)
        size = self.snapshots.size(sid)
        if not 0 <= p.position < size:
            return wire.fetch_snapshot_response(E.NONE, self.id, s.epoch, partition_error=E.POSITION_OUT_OF_RANGE,
                                                snapshot_id=sid, size=size)
        if req.replica_id in s.voters:
            s.fetched_voters.add(req.replica_id)
            s.unacknowledged.discard(req.replica_id)
        max_bytes = max(1, min(req.max_bytes, self.config.snapshot_chunk_bytes))
        data = self.snapshots.read(sid, p.position, max_bytes)
        return wire.fetch_snapshot_response(E.NONE, self.id, s.epoch, snapshot_id=sid, size=size,
                                            position=p.position, data=data)

    def _on_fetch_snapshot_response(self, source, resp: m.FetchSnapshotResponse, pending: InFlight) -> None:
        p = wire.partition_of(resp)
        if p is None or resp.error_code:
            self._backoff(pending)
            return
        if not self._common_response(p, p.error_code):
            self._backoff(pending)
            return
        s = self.state
        if not isinstance(s, Follower) or s.leader_id != source or s.snapshot is None:
            return
        if p.error_code:
            s.snapshot = None  # the leader moved on to a newer snapshot: Fetch again to learn it
            self._backoff(pending)
            return
        s.fetched_ok = True
        s.fetch_deadline = self.now + self.config.fetch_timeout_ms
        sid = OffsetAndEpoch(p.snapshot_id.end_offset, p.snapshot_id.epoch)
        if sid != s.snapshot.snapshot_id or p.position != len(s.snapshot.data):
            return
        s.snapshot.data += bytes(p.unaligned_records or b"")
        if len(s.snapshot.data) < p.size:
            return
        data = bytes(s.snapshot.data)
        s.snapshot = None
        try:
            snapshot_files.read_values(data)
        except (ValueError, RecordsError) as e:
            self.logger.warning("raft_snapshot_invalid", snapshot=sid, error=str(e))
            return
        # Stored, and the log reset to it, by the next Ready; the node takes it as its state in
        # `advance` (`_installed`), and fetches nothing more until then.
        self._snapshot_write = SnapshotWrite(sid, data, RESET_LOG)

    def _installed(self, sid: OffsetAndEpoch) -> None:
        """A snapshot fetched from the leader is stored and the log starts at its end: load it."""
        self._flushed_end = sid.offset
        self.high_watermark = max(self.high_watermark, sid.offset)
        self._next_apply = sid.offset
        self._snapshot_to_load = sid
        self.logger.info("raft_snapshot_loaded", snapshot=sid)

    # DescribeQuorum

    def _on_describe_quorum_request(self, source, req, corr: int, version: int):
        return self.describe_quorum(version)

    def describe_quorum(self, version: int = wire.VERSIONS[ApiKey.DESCRIBE_QUORUM],
                        now_ms: int | None = None) -> m.DescribeQuorumResponse:
        """The leader's view of the quorum (NOT_LEADER_OR_FOLLOWER elsewhere), with what
        `version` can carry (timestamps from v1, node endpoints from v2), as of `now_ms` if given."""
        if now_ms is not None:
            self._advance_clock(now_ms)
        R = m.DescribeQuorumResponse
        s = self.state
        if not isinstance(s, Leader):
            p = R.PartitionData(partition_index=wire.METADATA_PARTITION, error_code=E.NOT_LEADER_OR_FOLLOWER,
                                leader_id=self.leader_id, leader_epoch=self.epoch, high_watermark=self.high_watermark)
            return R(topics=[R.TopicData(topic_name=wire.METADATA_TOPIC, partitions=[p])])
        wall = self.wall_clock_offset_ms
        me = ReplicaProgress(self.id, self.log.end_offset, self.now, self.now)

        def replica(p: ReplicaProgress):
            def ts(t):
                return t + wall if t >= 0 and version >= 1 else -1
            return R.ReplicaState(replica_id=p.replica_id, log_end_offset=p.end_offset,
                                  last_fetch_timestamp=ts(p.last_fetch_ms),
                                  last_caught_up_timestamp=ts(p.last_caught_up_ms))

        p = R.PartitionData(partition_index=wire.METADATA_PARTITION, leader_id=self.id, leader_epoch=s.epoch,
                            high_watermark=self.high_watermark,
                            current_voters=[replica(me if v == self.id else s.voters[v]) for v in sorted(s.voters)],
                            observers=[replica(s.observers[o]) for o in sorted(s.observers)])
        nodes = [R.Node(node_id=v, listeners=[R.Listener(name=self.config.listener_name, host=ep.host, port=ep.port)])
                 for v in sorted(self.config.voters) if (ep := self.endpoints.get(v)) is not None and version >= 2]
        return R(topics=[R.TopicData(topic_name=wire.METADATA_TOPIC, partitions=[p])], nodes=nodes)
