"""A transactional id's state: Kafka's TransactionMetadata, its states and their transitions.

Every change is two steps, as in Kafka: `prepare_*` checks that the target state may follow the
current one, records it as the pending state (which blocks any other change meanwhile) and returns
the target (`TxnTransit`), which is written to `__transaction_state`; `complete_transition`
applies the target once that record is durable. A failed write drops the pending state.

States (ids as the log stores them) and what leads to them:

    Empty (0)              InitProducerId; from Empty, CompleteCommit, CompleteAbort
    Ongoing (1)            AddPartitionsToTxn / AddOffsetsToTxn; from Ongoing, Empty, Complete*
    PrepareCommit (2)      EndTxn commit; from Ongoing
    PrepareAbort (3)       EndTxn abort, a fenced or timed-out transaction; from Ongoing,
                           PrepareEpochFence, and (transaction version 2) Empty, Complete*
    CompleteCommit (4)     every marker written; from PrepareCommit
    CompleteAbort (5)      every marker written; from PrepareAbort
    Dead (6)               expired transactional id (never written: its record is a tombstone)
    PrepareEpochFence (7)  a pending state only: the epoch bump before aborting a fenced
                           transaction; from Ongoing

Transaction version 2 (KIP-890 part 2: EndTxn v5) bumps the producer epoch with every EndTxn;
when that exhausts the epochs the next producer id is taken at PrepareCommit/PrepareAbort and
the producer id becomes it at completion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from kafka_compat.protocol.errors import ErrorCode

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
SHORT_MAX = 32767
TV_0, TV_2 = 0, 2  # transaction versions (the `transaction.version` feature); TV_2 bumps epochs per transaction

TopicPartition = tuple[str, int]


class TxnState(IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        """The name DescribeTransactions and ListTransactions use ("PrepareCommit", ...)."""
        return _KAFKA_NAMES[self]

    @classmethod
    def from_kafka_name(cls, name: str) -> TxnState | None:
        return next((s for s in cls if s.kafka_name == name), None)


_KAFKA_NAMES = {s: "".join(w.capitalize() for w in s.name.split("_")) for s in TxnState}


S = TxnState
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset({S.ONGOING, S.PREPARE_EPOCH_FENCE, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_ABORT, S.COMPLETE_COMMIT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}
EXPIRATION_ALLOWED = frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT})
PREPARED = frozenset({S.PREPARE_COMMIT, S.PREPARE_ABORT})
COMPLETED = frozenset({S.COMPLETE_COMMIT, S.COMPLETE_ABORT})


def epoch_exhausted(epoch: int) -> bool:
    """No epoch may reach Short.MAX_VALUE through a client, so that the coordinator can always
    fence one more time."""
    return epoch >= SHORT_MAX - 1


class TransitionError(RuntimeError):
    """A transition Kafka's coordinator deems impossible ("this should not happen"): a bug."""


@dataclass(frozen=True)
class TxnTransit:
    """The state a transactional id is moving to (Kafka's TxnTransitMetadata): what its record says."""

    producer_id: int
    prev_producer_id: int
    next_producer_id: int
    producer_epoch: int
    last_producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: frozenset[TopicPartition]
    start_ms: int
    update_ms: int
    client_version: int = TV_0


@dataclass(eq=False)
class TransactionMetadata:
    """One transactional id. `partitions` are those in the ongoing transaction (shrinking while
    its markers are written); `pending` the state a write under way leads to."""

    transactional_id: str
    producer_id: int
    prev_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    timeout_ms: int = 60_000
    state: TxnState = TxnState.EMPTY
    partitions: set[TopicPartition] = field(default_factory=set)
    start_ms: int = -1
    update_ms: int = -1
    client_version: int = TV_0
    pending: TxnState | None = None
    # A fence whose write failed already bumped the epoch: the next fence does not bump it again.
    failed_epoch_fence: bool = False

    @property
    def epoch_exhausted(self) -> bool:
        return epoch_exhausted(self.producer_epoch)

    def remove_partition(self, tp: TopicPartition) -> None:
        """Its marker is written."""
        if self.state not in PREPARED:
            raise TransitionError(f"{self.transactional_id}: removing a partition in state {self.state.kafka_name}")
        self.partitions.discard(tp)

    # -- preparing ------------------------------------------------------------------------------

    def _prepare(self, state: TxnState, producer_id: int, epoch: int, last_epoch: int, timeout_ms: int,
                 partitions, start_ms: int, update_ms: int, client_version: int,
                 next_producer_id: int = NO_PRODUCER_ID) -> TxnTransit:
        if self.pending is not None:
            raise TransitionError(f"{self.transactional_id}: preparing {state.kafka_name} while "
                                  f"{self.pending.kafka_name} is pending")
        if producer_id < 0 or (state is not S.DEAD and epoch < 0):
            raise TransitionError(f"{self.transactional_id}: producer id {producer_id}, epoch {epoch} for "
                                  f"{state.kafka_name}")
        if self.state not in VALID_PREVIOUS[state]:
            raise TransitionError(f"{self.transactional_id}: {state.kafka_name} cannot follow {self.state.kafka_name}")
        self.pending = state
        return TxnTransit(producer_id, self.producer_id, next_producer_id, epoch, last_epoch, timeout_ms, state,
                          frozenset(partitions), start_ms, update_ms, client_version)

    def prepare_fence_epoch(self) -> TxnTransit:
        """Bump the epoch of an ongoing transaction to fence its producer before aborting it."""
        if self.producer_epoch == SHORT_MAX:
            raise TransitionError(f"{self.transactional_id}: cannot fence epoch {SHORT_MAX}")
        epoch = self.producer_epoch if self.failed_epoch_fence else self.producer_epoch + 1
        return self._prepare(S.PREPARE_EPOCH_FENCE, self.producer_id, epoch, NO_PRODUCER_EPOCH, self.timeout_ms,
                             self.partitions, self.start_ms, self.update_ms, self.client_version)

    def prepare_increment_epoch(self, timeout_ms: int, expected_epoch: int | None,
                                now_ms: int) -> TxnTransit | ErrorCode:
        """InitProducerId: the next epoch. With the producer's `expected_epoch` (KIP-360): the
        current one continues bumped, the previous one is a retry answered with the current
        epoch, anything else is fenced."""
        bumped = self.producer_epoch + 1
        if expected_epoch is None:
            epoch, last = bumped, NO_PRODUCER_EPOCH
        elif self.producer_epoch == NO_PRODUCER_EPOCH or expected_epoch == self.producer_epoch:
            epoch, last = bumped, self.producer_epoch
        elif expected_epoch == self.last_producer_epoch:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        else:
            return ErrorCode.PRODUCER_FENCED
        if epoch == bumped and self.epoch_exhausted:
            raise TransitionError(f"{self.transactional_id}: no epochs left for producer {self.producer_id}")
        return self._prepare(S.EMPTY, self.producer_id, epoch, last, timeout_ms, (), -1, now_ms, self.client_version)

    def prepare_producer_id_rotation(self, new_producer_id: int, timeout_ms: int, now_ms: int,
                                     record_last_epoch: bool) -> TxnTransit:
        """InitProducerId with the epochs exhausted: a new producer id at epoch 0."""
        if self.state in (S.ONGOING, S.PREPARE_ABORT, S.PREPARE_COMMIT):
            raise TransitionError(f"{self.transactional_id}: rotating the producer id of a pending transaction")
        last = self.producer_epoch if record_last_epoch else NO_PRODUCER_EPOCH
        return self._prepare(S.EMPTY, new_producer_id, 0, last, timeout_ms, (), -1, now_ms, self.client_version)

    def prepare_add_partitions(self, added, now_ms: int, client_version: int) -> TxnTransit:
        start = now_ms if self.state in (S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT) else self.start_ms
        return self._prepare(S.ONGOING, self.producer_id, self.producer_epoch, self.last_producer_epoch,
                             self.timeout_ms, self.partitions | set(added), start, now_ms, client_version)

    def prepare_abort_or_commit(self, state: TxnState, client_version: int, next_producer_id: int, now_ms: int,
                                no_partition_added: bool) -> TxnTransit:
        if client_version >= TV_2:
            epoch, last = self.producer_epoch + 1, self.producer_epoch
        else:
            epoch, last = self.producer_epoch, self.last_producer_epoch
        # Version 2 may abort without any partition added: the transaction "starts" now.
        start = now_ms if no_partition_added else self.start_ms
        return self._prepare(state, self.producer_id, epoch, last, self.timeout_ms, self.partitions, start, now_ms,
                             client_version, next_producer_id)

    def prepare_complete(self, now_ms: int) -> TxnTransit:
        """Every marker is written: CompleteCommit or CompleteAbort (and, after an epoch overflow
        in version 2, the next producer id at epoch 0)."""
        state = S.COMPLETE_COMMIT if self.state is S.PREPARE_COMMIT else S.COMPLETE_ABORT
        self.failed_epoch_fence = False
        if self.client_version >= TV_2 and self.next_producer_id != NO_PRODUCER_ID:
            producer_id, epoch = self.next_producer_id, 0
        else:
            producer_id, epoch = self.producer_id, self.producer_epoch
        return self._prepare(state, producer_id, epoch, self.last_producer_epoch, self.timeout_ms, (),
                             self.start_ms, now_ms, self.client_version)

    def prepare_dead(self) -> TxnTransit:
        return self._prepare(S.DEAD, self.producer_id, self.producer_epoch, self.last_producer_epoch,
                             self.timeout_ms, (), self.start_ms, self.update_ms, self.client_version)

    # -- completing -----------------------------------------------------------------------------

    def complete_transition(self, t: TxnTransit) -> None:
        """The record of `t` is durable: become it. Raises TransitionError if `t` is not what the
        pending state allows (Kafka's checks)."""
        if self.pending is None or self.pending is not t.state:
            raise TransitionError(f"{self.transactional_id}: completing {t.state.kafka_name} while "
                                  f"{self.pending.kafka_name if self.pending else 'nothing'} is pending")
        to = t.state
        v2 = t.client_version >= TV_2
        if to is S.EMPTY:
            bumped = t.producer_epoch == self.producer_epoch + 1 or (t.producer_epoch == 0
                                                                     and t.producer_id != self.producer_id)
            if (t.producer_epoch != self.producer_epoch and not bumped) or t.partitions or t.start_ms != -1:
                self._fail(t)
            self.timeout_ms, self.producer_epoch, self.last_producer_epoch = t.timeout_ms, t.producer_epoch, \
                t.last_producer_epoch
            self.producer_id, self.prev_producer_id = t.producer_id, t.prev_producer_id
        elif to is S.ONGOING:
            if not self._valid_epoch(t) or not self.partitions <= t.partitions or self.timeout_ms != t.timeout_ms:
                self._fail(t)
            self.start_ms = t.start_ms
            self.partitions |= t.partitions
        elif to in PREPARED:
            empty_abort = to is S.PREPARE_ABORT and v2 and self.state in EXPIRATION_ALLOWED
            if (not self._valid_epoch(t) or self.partitions != t.partitions or self.timeout_ms != t.timeout_ms
                    or not (self.start_ms == t.start_ms or empty_abort)):
                self._fail(t)
            if v2:
                self.producer_epoch, self.last_producer_epoch = t.producer_epoch, t.last_producer_epoch
                self.next_producer_id, self.start_ms = t.next_producer_id, t.start_ms
        elif to in COMPLETED:
            if not self._valid_epoch(t) or self.timeout_ms != t.timeout_ms or t.start_ms == -1:
                self._fail(t)
            self.start_ms = t.start_ms
            self.partitions.clear()
            if v2:
                self.producer_epoch, self.last_producer_epoch = t.producer_epoch, t.last_producer_epoch
                self.prev_producer_id, self.producer_id = t.prev_producer_id, t.producer_id
                self.next_producer_id = t.next_producer_id
        else:  # PrepareEpochFence is never completed, Dead is removed instead
            self._fail(t)
        self.client_version = t.client_version
        self.update_ms = t.update_ms
        self.pending = None
        self.state = to

    def _valid_epoch(self, t: TxnTransit) -> bool:
        if t.client_version >= TV_2:
            if t.state in COMPLETED and t.producer_epoch == 0:  # the producer id rolled over
                return t.last_producer_epoch == self.last_producer_epoch and t.prev_producer_id == self.producer_id
            if t.state in PREPARED:
                return t.last_producer_epoch == self.producer_epoch and t.producer_id == self.producer_id
        return t.producer_epoch == self.producer_epoch and t.producer_id == self.producer_id

    def _fail(self, t: TxnTransit) -> None:
        raise TransitionError(f"{self.transactional_id}: cannot complete {t} from {self.state.kafka_name}")
