"""One partition replica on this broker: its log, its role, and the decisions that role makes
(Kafka's Partition). Sans-I/O: it reads and writes its log, and is told the time.

The role comes from the metadata image (`update`): leader, or follower of a leader, in a leader
epoch; an image older than what this replica already knows (a lower partition epoch, which an
AlterPartition answer can bring before the image does) is ignored.

As leader it
- appends produce data (`append`), refusing acks=all with NOT_ENOUGH_REPLICAS while the ISR is
  smaller than min.insync.replicas (capped at the replication factor);
- answers followers' fetches (`fetch_for_follower`): the diverging epoch when the follower's
  last fetched epoch ends below its fetch offset here (KIP-320), else records up to the log end
  and the high watermark (news to the follower is reason to answer a fetch without waiting), and
  records the follower's progress (`replica.ReplicaState`);
- keeps the high watermark: the lowest log end offset among the "maximal" ISR (the ISR plus a
  member being added) and the followers that are caught up and eligible, never moving back, and
  not at all while the ISR is smaller than min.insync.replicas (KAFKA-15583);
- proposes ISR changes to the controller, one at a time: expand with a follower that reached the
  high watermark and the start of the current leader epoch, and that is unfenced, not shutting
  down and fetching with its registered broker epoch (KIP-841, KIP-903); shrink by the followers
  not caught up within replica.lag.time.max.ms. The change is `pending` until the controller
  answers; an expansion counts for the high watermark at once (it only makes it stricter), a
  shrink only once committed.

As follower it appends what the leader sent as it came, takes the leader's high watermark
(bounded by its own log end) and truncates where its fetcher (`fetcher.Fetcher`) says.

`host` is the broker around it (the ReplicaManager): replication settings, this broker's epoch,
the registered brokers, and where AlterPartition proposals go. `on_change` is called when the
high watermark moves, the log grows as leader, or the role changes: what waiting produces and
fetches are keyed on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from kafka_compat.metadata.image import BrokerImage, PartitionImage
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import ValidatedRecords, validate_records
from kafka_compat.records.batch import read_header
from kafka_compat.records.validator import CLIENT
from kafka_compat.replication.config import RACK_AWARE_SELECTOR, ReplicationConfig
from kafka_compat.replication.replica import ReplicaState
from kafka_compat.storage.errors import OffsetOutOfRangeError, OffsetsOutOfOrderError
from kafka_compat.storage.leader_epoch import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
from kafka_compat.storage.log import AppendInfo, Log
from kafka_compat.storage.producer_state import ProducerState

NO_LEADER = -1


class PartitionHost(Protocol):
    config: ReplicationConfig
    broker_epoch: int  # this broker's (-1 before it registered)
    brokers: Mapping[int, BrokerImage]  # the registered brokers, as of the latest image

    def submit_alter_partition(self, partition: Partition) -> bool:
        """Queue `partition.pending` for the controller; False if one is already queued."""


@dataclass(frozen=True, slots=True)
class PendingIsr:
    """An ISR change sent to the controller and not yet answered (Kafka's PendingExpandIsr and
    PendingShrinkIsr): the ISR asked for, with the epochs it was asked in."""

    isr: tuple[int, ...]
    broker_epochs: tuple[int, ...]  # of each member of `isr` (-1: not known)
    leader_epoch: int
    partition_epoch: int
    adding: int | None  # the follower an expansion adds


class FollowerFetch(NamedTuple):
    """What a follower's fetch of this partition gets: records (a file range, or b""), or the
    point where its log diverges from this one, and the leader's offsets (the high watermark
    with the fetch's progress counted)."""

    records: object
    diverging_epoch: tuple[int, int] | None  # (epoch, end offset)
    high_watermark: int
    log_start_offset: int
    log_end_offset: int
    news: bool = False  # a high watermark the follower was not told yet: worth answering at once


class Partition:
    """`sync`, with log.fsync.on.append, asks for the log to be synced after an append (`synced`
    follows); only synced appends count as this replica's own for acknowledgements."""

    def __init__(self, topic: str, index: int, topic_id: Uuid, log: Log, node_id: int,
                 on_change: Callable[[Partition], None], host: PartitionHost,
                 sync: Callable[[Partition], None] | None = None):
        self.topic, self.index, self.topic_id = topic, index, topic_id
        self.log = log
        self.node_id = node_id
        self.host = host
        self.leader = NO_LEADER
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()  # as committed by the controller
        self.pending: PendingIsr | None = None
        self.state: PartitionImage | None = None  # the last one applied
        self.followers: dict[int, ReplicaState] = {}  # as leader: what each follower has
        self.leader_epoch_start_offset: int | None = None  # as leader: where this epoch began
        self._on_change = on_change
        self._sync = sync

    # -- introspection -------------------------------------------------------------------------

    @property
    def producers(self) -> ProducerState:
        """Idempotent and transactional producers: the log keeps them on every append, as leader,
        follower or recovery (a follower that becomes leader knows them already)."""
        return self.log.producers

    @property
    def key(self) -> tuple[str, int]:
        return self.topic, self.index

    @property
    def is_leader(self) -> bool:
        return self.leader == self.node_id

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def appended_end(self) -> int:
        """How far this replica's own log counts for acknowledgements: its end, or with
        log.fsync.on.append what is synced of it."""
        return self.log.recovery_point if self._sync is not None else self.log.log_end_offset

    def acknowledged_end(self, acks: int) -> int:
        """The offset an append must lie below to be acknowledged with `acks` (-1 or 1)."""
        return self.high_watermark if acks == -1 else self.appended_end

    @property
    def last_stable_offset(self) -> int:
        return self.log.last_stable_offset

    @property
    def maximal_isr(self) -> tuple[int, ...]:
        """The ISR the high watermark and acks=all count: with a member being added already in."""
        p = self.pending
        return self.isr + (p.adding,) if p is not None and p.adding is not None else self.isr

    @property
    def min_isr(self) -> int:
        """min.insync.replicas, capped at the replication factor (Kafka's effective min ISR)."""
        return min(self.log.config.min_insync_replicas, max(len(self.replicas), 1))

    @property
    def under_min_isr(self) -> bool:
        return self.is_leader and len(self.isr) < self.min_isr

    def __repr__(self) -> str:
        return (f"Partition({self.topic}-{self.index} on {self.node_id}: leader {self.leader} epoch {self.leader_epoch}"
                f" partition epoch {self.partition_epoch} isr {list(self.isr)} hw {self.high_watermark}"
                f" leo {self.log.log_end_offset})")

    # -- the role, from the metadata image -----------------------------------------------------

    def update(self, state: PartitionImage, now_ms: int) -> bool:
        """Take the partition's state from the metadata image. Returns True when this replica must
        (re)start fetching: it follows a leader in a leader epoch it did not follow before."""
        if state == self.state or state.partition_epoch < self.partition_epoch:
            return False  # nothing new, or the AlterPartition answer already told us something newer
        self.state = state
        new_epoch = state.leader_epoch > self.leader_epoch
        self.replicas = state.replicas
        self.pending = None  # an answer still in flight is now stale; the change is retried if needed
        if state.leader == self.node_id:
            self._become_leader(state, now_ms, new_epoch)
            return False
        was_leader = self.is_leader
        self.leader, self.leader_epoch, self.partition_epoch = state.leader, state.leader_epoch, state.partition_epoch
        self.isr = state.isr
        self.followers = {}
        self.leader_epoch_start_offset = None
        if was_leader or new_epoch:
            self._on_change(self)  # waiting produces and fetches re-check: this replica no longer leads
        return new_epoch and state.leader != NO_LEADER

    def _become_leader(self, state: PartitionImage, now_ms: int, new_epoch: bool) -> None:
        new_leader = not self.is_leader
        self.isr = state.isr
        self.followers = {r: self.followers.get(r) or ReplicaState(r) for r in state.replicas if r != self.node_id}
        if new_epoch:
            start = self.log.log_end_offset
            # A follower may hold entries of an epoch later than any this log has seen (elections in
            # quick succession): recording where this epoch starts lets it find where to truncate.
            self.log.epochs.assign(state.leader_epoch, start)
            for f in self.followers.values():
                f.reset(now_ms, start, new_leader, f.replica_id in state.isr)
            self.leader_epoch = state.leader_epoch
            self.leader_epoch_start_offset = start
        self.partition_epoch = state.partition_epoch
        self.leader = self.node_id
        if self._sync is not None and self.appended_end < self.log.log_end_offset:
            self._sync(self)  # appended as follower or recovered after a crash, not known synced
        self._maybe_advance_high_watermark(now_ms)
        self._on_change(self)

    # -- leader: requests ----------------------------------------------------------------------

    def check_leader(self, current_leader_epoch: int = -1, require_leader: bool = True) -> None:
        """Raise the error Kafka answers when this replica cannot serve a request made in
        `current_leader_epoch` (-1: not given) as the leader (or, without `require_leader`, at all)."""
        if current_leader_epoch >= 0:
            if current_leader_epoch < self.leader_epoch:
                raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
            if current_leader_epoch > self.leader_epoch:
                raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)
        if require_leader and not self.is_leader:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)

    def append(self, records, acks: int, now_ms: int, produce_version: int | None = None, *,
               origin: str = CLIENT, verification_guard: object | None = None) -> AppendInfo:
        """Validate and append produce data (or, with `origin` COORDINATOR, a coordinator's own
        batch, which may come validated already: `own_plain_batch`) as the leader;
        `verification_guard` is a transactional produce's KIP-890 guard (`Log.verification_guard`).
        The log checks producers and answers a retried batch with its original offsets. Raises
        KafkaError."""
        self.check_leader()
        self._check_min_isr(acks)
        if type(records) is ValidatedRecords:
            validated = records
        else:
            validated = validate_records(records, self.log.config, now_ms, origin=origin,
                                         produce_version=produce_version, topic_partition=f"{self.topic}-{self.index}")
        return self._appended(self.log.append(validated, self.leader_epoch, origin=origin,
                                              verification_guard=verification_guard), now_ms)

    def append_marker(self, producer_id: int, producer_epoch: int, coordinator_epoch: int, commit: bool,
                      now_ms: int) -> AppendInfo:
        """WriteTxnMarkers: the COMMIT or ABORT marker of `producer_id`'s transaction, as the leader
        (Kafka writes markers with acks=all). Raises KafkaError."""
        self.check_leader()
        self._check_min_isr(-1)
        return self._appended(self.log.append_marker(producer_id, producer_epoch, coordinator_epoch, commit,
                                                     self.leader_epoch, now_ms), now_ms)

    def _check_min_isr(self, acks: int) -> None:
        min_isr = self.min_isr
        if acks == -1 and len(self.isr) < min_isr:
            raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                             f"The size of the current ISR Set({', '.join(map(str, self.isr))}) is insufficient to "
                             f"satisfy the min.isr requirement of {min_isr} for partition {self.topic}-{self.index}")

    def _appended(self, info: AppendInfo, now_ms: int) -> AppendInfo:
        if self._sync is not None:
            self._sync(self)
        self._maybe_advance_high_watermark(now_ms)
        self._on_change(self)  # followers' fetches waiting for data
        return info

    def check_enough_replicas(self, required_offset: int, leader_epoch: int) -> tuple[bool, ErrorCode]:
        """For an acks=all append made in `leader_epoch`, ending before `required_offset`: (done,
        error). Done with NONE once the high watermark passed it, with
        NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below min.insync.replicas meanwhile,
        with NOT_LEADER_OR_FOLLOWER if this replica stopped leading that epoch (the append may
        have been truncated; Kafka answers these when the leadership moves, which a driver that
        checks later would otherwise miss)."""
        if not self.is_leader or self.leader_epoch != leader_epoch:
            return True, ErrorCode.NOT_LEADER_OR_FOLLOWER
        if self.log.high_watermark < required_offset:
            return False, ErrorCode.NONE
        if len(self.maximal_isr) < self.min_isr:
            return True, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return True, ErrorCode.NONE

    def fetch_for_follower(self, replica_id: int, replica_epoch: int, fetch_offset: int, log_start_offset: int,
                           last_fetched_epoch: int, current_leader_epoch: int, max_bytes: int, now_ms: int,
                           min_one_batch: bool = True, update_state: bool = True) -> FollowerFetch:
        """A follower's Fetch of this partition. Raises KafkaError: FENCED_LEADER_EPOCH,
        UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER (also for a replica of no assignment, when
        the request has no epoch; UNKNOWN_LEADER_EPOCH when it has one), OFFSET_OUT_OF_RANGE.
        `update_state`: False when a fetch that waited reads again (its progress was recorded)."""
        self.check_leader(current_leader_epoch)
        follower = self.followers.get(replica_id)
        if follower is None:
            code = ErrorCode.UNKNOWN_LEADER_EPOCH if current_leader_epoch >= 0 else ErrorCode.NOT_LEADER_OR_FOLLOWER
            raise KafkaError(code,
                             f"Replica {replica_id} is not recognized as a valid replica of {self.topic}-{self.index} "
                             f"in leader epoch {self.leader_epoch} with partition epoch {self.partition_epoch}")
        log = self.log
        hw, start, leo = log.high_watermark, log.log_start_offset, log.log_end_offset
        if last_fetched_epoch >= 0:
            epoch, end = log.end_offset_for_epoch(last_fetched_epoch)
            if epoch == UNDEFINED_EPOCH or end == UNDEFINED_EPOCH_OFFSET:
                raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                                 f"Could not determine the end offset of the last fetched epoch {last_fetched_epoch}")
            if fetch_offset < start:
                raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                                 f"Received request for offset {fetch_offset} for partition {self.topic}-{self.index}, "
                                 f"but we only have log segments in the range {start} to {leo}.")
            if epoch < last_fetched_epoch or end < fetch_offset:
                return FollowerFetch(b"", (epoch, end), hw, start, leo)
        try:
            slices = log.read(fetch_offset, max_bytes, min_one_batch=min_one_batch)
        except OffsetOutOfRangeError as e:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, e.message) from None
        if update_state:
            registered = self.host.brokers.get(replica_id)
            if replica_epoch != -1 and registered is not None and not registered.fenced \
                    and registered.epoch > replica_epoch:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER, "Received stale fetch state update. "
                                 f"broker epoch={replica_epoch} vs expected={registered.epoch}")
            before = follower.log_end_offset
            follower.update_fetch(fetch_offset, log_start_offset, now_ms, leo, replica_epoch)
            self._maybe_expand_isr(follower)
            if follower.log_end_offset != before and self._maybe_advance_high_watermark(now_ms):
                self._on_change(self)
        # The follower's own readers (KIP-392) wait for the high watermark it learns here.
        hw = log.high_watermark
        news = hw > follower.high_watermark_told
        follower.high_watermark_told = max(hw, follower.high_watermark_told)
        return FollowerFetch(slices[0] if slices else b"", None, hw, start, leo, news)

    def last_offset_for_leader_epoch(self, current_leader_epoch: int, epoch: int,
                                     require_leader: bool = True) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (the largest epoch <= `epoch` here, where it ends); raises
        KafkaError as `check_leader`."""
        self.check_leader(current_leader_epoch, require_leader)
        return self.log.end_offset_for_epoch(epoch)

    def offset_for_replica(self, timestamp: int, current_leader_epoch: int) -> int:
        """ListOffsets from a follower (-1 latest: the log end offset; -2 earliest: the start)."""
        self.check_leader(current_leader_epoch)
        return self.log.log_end_offset if timestamp == -1 else self.log.log_start_offset

    def preferred_read_replica(self, client_rack: str | None, fetch_offset: int, now_ms: int) -> int:
        """KIP-392: the replica a consumer in `client_rack` should fetch from instead of this
        leader, or -1. With the rack-aware selector: the leader if it is in the client's rack,
        else the most caught-up in-sync follower there that holds `fetch_offset`."""
        if self.host.config.replica_selector_class != RACK_AWARE_SELECTOR or not client_rack or not self.is_leader:
            return -1
        brokers = self.host.brokers

        def rack(r: int) -> str | None:
            b = brokers.get(r)
            return b.rack if b is not None else None

        if rack(self.node_id) == client_rack:
            return -1
        candidates = [f for f in self.followers.values()
                      if f.replica_id in self.isr and f.log_start_offset <= fetch_offset <= f.log_end_offset
                      and rack(f.replica_id) == client_rack]
        if not candidates:
            return -1
        best = max(candidates, key=lambda f: (f.log_end_offset, -(now_ms - f.last_caught_up_ms), f.replica_id))
        return best.replica_id

    # -- leader: the high watermark and the ISR -------------------------------------------------

    def synced(self, now_ms: int) -> None:
        """The log was synced: appends up to its recovery point may be acknowledged."""
        self._maybe_advance_high_watermark(now_ms)
        self._on_change(self)  # acks=1 waits for the sync, not for the high watermark

    def _maybe_advance_high_watermark(self, now_ms: int) -> bool:
        if not self.is_leader or self.under_min_isr:
            return False
        log = self.log
        leo = log.log_end_offset
        hw = self.appended_end  # the leader's own part: with log.fsync.on.append, what is synced
        maximal = self.maximal_isr
        lag = self.host.config.replica_lag_time_max_ms
        for f in self.followers.values():
            if f.log_end_offset < hw and (f.replica_id in maximal or (
                    f.caught_up(leo, now_ms, lag) and self._isr_eligible(f))):
                hw = f.log_end_offset
        if hw > log.high_watermark:
            log.high_watermark = hw
            return True
        return False

    def _isr_eligible(self, follower: ReplicaState) -> bool:
        """Unfenced, not shutting down, and fetching with its registered broker epoch."""
        b = self.host.brokers.get(follower.replica_id)
        epoch = follower.broker_epoch
        return b is not None and b.active and epoch is not None and epoch in (-1, b.epoch)

    def _maybe_expand_isr(self, follower: ReplicaState) -> None:
        if self.pending is not None or follower.replica_id in self.isr or not self._isr_eligible(follower):
            return
        leo = follower.log_end_offset
        # The follower must hold something of this epoch too: with committed data between the
        # high watermark and the log end, it could otherwise lead before fetching it, losing it.
        if leo >= self.log.high_watermark and self.leader_epoch_start_offset is not None \
                and leo >= self.leader_epoch_start_offset:
            self._propose_isr(tuple(r for r in self.replicas if r in self.isr or r == follower.replica_id),
                              adding=follower.replica_id)

    def maybe_shrink_isr(self, now_ms: int) -> None:
        """Propose removing the followers not caught up within replica.lag.time.max.ms."""
        if not self.is_leader or self.pending is not None:
            return
        leo = self.log.log_end_offset
        lag = self.host.config.replica_lag_time_max_ms
        out = {r for r in self.isr if r != self.node_id
               and ((f := self.followers.get(r)) is None or not f.caught_up(leo, now_ms, lag))}
        if out:
            self._propose_isr(tuple(r for r in self.isr if r not in out), adding=None)

    def _propose_isr(self, isr: tuple[int, ...], adding: int | None) -> None:
        def epoch(r: int) -> int:
            if r == self.node_id:
                return self.host.broker_epoch
            f = self.followers.get(r)
            return f.broker_epoch if f is not None and f.broker_epoch is not None else -1

        epochs = tuple(epoch(r) for r in isr)
        self.pending = PendingIsr(isr, epochs, self.leader_epoch, self.partition_epoch, adding)
        if not self.host.submit_alter_partition(self):
            self.pending = None  # Kafka: OPERATION_NOT_ATTEMPTED, back to the committed state

    def on_alter_partition(self, sent: PendingIsr, now_ms: int, error: ErrorCode, leader_epoch: int = -1,
                           partition_epoch: int = -1, isr: tuple[int, ...] = ()) -> bool:
        """The controller's answer to `sent`. Returns True if it should be sent again."""
        if self.pending is not sent:
            return False  # the image moved on meanwhile: the answer is stale
        if error == ErrorCode.NONE:
            if leader_epoch != self.leader_epoch or partition_epoch < self.partition_epoch:
                return False  # stale; the image will settle it
            self.isr, self.partition_epoch, self.pending = tuple(isr), partition_epoch, None
            if self._maybe_advance_high_watermark(now_ms):
                self._on_change(self)
            return False
        if error in (ErrorCode.OPERATION_NOT_ATTEMPTED, ErrorCode.INELIGIBLE_REPLICA):
            self.pending = None  # certainly not applied: back to the committed state
            return False
        # Kafka's other definite answers (an unknown partition, a stale leader or partition
        # epoch, an invalid request, a new leader elected) wait for the image; the rest retry.
        return error not in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.UNKNOWN_TOPIC_ID,
                             ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.INVALID_UPDATE_VERSION,
                             ErrorCode.INVALID_REQUEST, ErrorCode.NEW_LEADER_ELECTED)

    # -- follower --------------------------------------------------------------------------------

    @property
    def latest_epoch(self) -> int:
        return self.log.epochs.latest_epoch

    def append_as_follower(self, records, leader_high_watermark: int, leader_log_start_offset: int) -> AppendInfo:
        """Append the leader's batches as they came (header and CRC checked), then take its high
        watermark, bounded by this log's end. Raises RecordsError, OffsetsOutOfOrderError."""
        log = self.log
        info = None
        if len(records):
            try:
                info = log.append_as_follower(records)
            except OffsetsOutOfOrderError:
                # A log started over at the leader's log start, which falls inside the first batch
                # the leader sends (DeleteRecords): start it at that batch instead.
                h = read_header(records)
                empty = log.log_end_offset == log.log_start_offset
                if not empty or not h.base_offset < log.log_end_offset <= h.last_offset:
                    raise
                self.truncate_fully_and_start_at(h.base_offset)
                info = log.append_as_follower(records)
            if self._sync is not None:
                self._sync(self)
        hw = min(leader_high_watermark, log.log_end_offset)
        changed = hw != log.high_watermark
        if changed:
            log.high_watermark = hw
        if leader_log_start_offset > log.log_start_offset:
            log.advance_log_start_offset(min(leader_log_start_offset, log.high_watermark))
        if changed:
            self._on_change(self)  # consumers fetching from this follower (KIP-392)
        return info

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.log.truncate_fully_and_start_at(offset)
