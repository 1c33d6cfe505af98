"""The transaction coordinator as a sans-I/O state machine (Kafka's TransactionCoordinator,
TransactionStateManager and the logic of TransactionMarkerChannelManager): no trio, no sockets,
no files.

Inputs are method calls:

- `handle(api_key, token, request, version, now_ms)` for InitProducerId, AddPartitionsToTxn
  (v0-v5, batched and `verify_only` from v4), AddOffsetsToTxn, EndTxn (v0-v5), DescribeTransactions
  and ListTransactions (the `requests` table). It returns the response, or None when the response
  waits for a record to be durable; it then comes out of `take_completions()` under `token`.
- partition lifecycle: `begin_load(partition, coordinator_epoch)` when this broker becomes the
  leader of a `__transaction_state` partition (the coordinator epoch is that leader epoch), then
  `load_records` with what the partition holds and `finish_load`; `unload` when it stops leading.
- `append_done(append, error)` for every `Append`, in order per partition;
  `markers_sent(send, response)` for every `SendMarkers` (response None: it could not be sent);
  `producer_ids_allocated(start, length)` / `producer_ids_failed()` after an `AllocateProducerIds`;
  `metadata_changed()` when partition leaders may have moved (markers waiting for a leader retry).
- `tick(now_ms)` at `next_deadline()`: timed-out transactions are aborted
  (`transaction.abort.timed.out.transaction.cleanup.interval.ms`), idle transactional ids expire
  (`transactional.id.expiration.ms`, checked every
  `transaction.remove.expired.transaction.cleanup.interval.ms`), waiting markers are retried.

Outputs come from `take_work()`, in order: `Append`s (records for a `__transaction_state`
partition, to write with acks=all), `Load`s (read a partition back), `SendMarkers` (a
WriteTxnMarkersRequest for one broker, at most one in flight per broker) and `AllocateProducerIds`
(ask the controller for a block of producer ids).

Where the partition leaders are comes from `leader_of(topic, partition)`: a broker id, -1 while
the partition has no leader (its markers wait), None if it does not exist (its markers are
dropped: the partition was deleted). A transaction completes (CompleteCommit/CompleteAbort is
written) once every partition has its marker; a coordinator that takes over a partition with a
transaction in PrepareCommit or PrepareAbort sends its markers again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import structlog

from kafka_compat.coordinator.config import TransactionConfig
from kafka_compat.coordinator.hashing import partition_for
from kafka_compat.coordinator.responses import append_error, fit
from kafka_compat.coordinator.timer import Timer
from kafka_compat.coordinator.transaction import records
from kafka_compat.coordinator.transaction.markers import Completion, SendMarkers, TxnMarkers
from kafka_compat.coordinator.transaction.producer_ids import ProducerIdBlocks
from kafka_compat.coordinator.transaction.state import (
    COMPLETED,
    EXPIRATION_ALLOWED,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    PREPARED,
    SHORT_MAX,
    TV_0,
    TV_2,
    TopicPartition,
    TransactionMetadata,
    TxnState,
    TxnTransit,
)
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message

log = structlog.get_logger("kafka_compat.coordinator.transaction")

E = ErrorCode
S = TxnState
OFFSETS_TOPIC = "__consumer_offsets"
LeaderOf = Callable[[str, int], "int | None"]


class Append(NamedTuple):
    """Records to append (acks=all) to `__transaction_state` partition `partition`."""

    id: int
    partition: int
    records: list[tuple[bytes, bytes | None]]


class Load(NamedTuple):
    """Read `__transaction_state` partition `partition` from its start to its high watermark and
    feed load_records(partition, coordinator_epoch, ...), then finish_load."""

    partition: int
    coordinator_epoch: int


class AllocateProducerIds(NamedTuple):
    """Ask the controller for a block of producer ids (AllocateProducerIds)."""


@dataclass(eq=False)
class _Shard:
    """What one `__transaction_state` partition holds."""

    partition: int
    coordinator_epoch: int
    loading: bool = True
    txns: dict[str, TransactionMetadata] = field(default_factory=dict)


@dataclass(eq=False)
class _Pending:
    partition: int
    coordinator_epoch: int
    done: Callable[[ErrorCode | None], None]


class _Reply:
    """How a request handler answers: at once (returned by `handle`) or later (a completion)."""

    __slots__ = ("machine", "token", "version", "sync", "response")

    def __init__(self, machine: TransactionCoordinator, token: Hashable, version: int):
        self.machine, self.token, self.version = machine, token, version
        self.sync, self.response = True, None

    def __call__(self, response: Message) -> None:
        response = fit(response, self.version)
        if self.sync:
            self.response = response
        else:
            self.machine._completions.append((self.token, response))


def _fenced(code: ErrorCode, version: int, first_version_with_it: int) -> ErrorCode:
    """Clients before the version that knows PRODUCER_FENCED get INVALID_PRODUCER_EPOCH (the same
    handling), as Kafka answers them."""
    return E.INVALID_PRODUCER_EPOCH if code == E.PRODUCER_FENCED and version < first_version_with_it else code


class TransactionCoordinator:
    """Transactional ids, their transactions and markers; see the module docstring."""

    def __init__(self, config: TransactionConfig | None = None, *, leader_of: LeaderOf = lambda t, p: None,
                 now_ms: int = 0):
        self.config = config or TransactionConfig()
        self.leader_of = leader_of
        self.now = now_ms
        self.shards: dict[int, _Shard] = {}
        self.producer_ids = ProducerIdBlocks()
        self.markers = TxnMarkers(self)
        self.timer = Timer()
        self._pending: dict[int, _Pending] = {}
        self._next_append_id = 0
        self._work: list = []
        self._completions: list[tuple[Hashable, Message]] = []
        A = m.ApiKey
        self.requests: dict[int, Callable[[_Reply, Message, int], None]] = {
            A.INIT_PRODUCER_ID: self.init_producer_id,
            A.ADD_PARTITIONS_TO_TXN: self.add_partitions_to_txn,
            A.ADD_OFFSETS_TO_TXN: self.add_offsets_to_txn,
            A.END_TXN: self.end_txn,
            A.DESCRIBE_TRANSACTIONS: self.describe_transactions,
            A.LIST_TRANSACTIONS: self.list_transactions,
        }
        cfg = self.config
        self.timer.schedule("abort", now_ms + cfg.abort_timed_out_transaction_cleanup_interval_ms,
                            self._abort_timed_out)
        self.timer.schedule("expire", now_ms + cfg.remove_expired_transaction_cleanup_interval_ms,
                            self._expire_transactional_ids)

    # == outputs ===================================================================================

    def take_work(self) -> list[Append | Load | SendMarkers | AllocateProducerIds]:
        if self.producer_ids.wants_block:
            self.producer_ids.requested = True
            self._work.append(AllocateProducerIds())
        work, self._work = self._work, []
        return work + self.markers.channel.take_requests()

    def take_completions(self) -> list[tuple[Hashable, Message]]:
        done, self._completions = self._completions, []
        return done

    def next_deadline(self) -> int | None:
        return self.timer.next_deadline()

    # == time ======================================================================================

    def _advance(self, now_ms: int | None) -> None:
        if now_ms is not None and now_ms > self.now:
            self.now = now_ms

    def tick(self, now_ms: int) -> None:
        self._advance(now_ms)
        while (fn := self.timer.pop_due(self.now)) is not None:
            fn()

    # == partitions ================================================================================

    def partition_for(self, transactional_id: str) -> int:
        """The `__transaction_state` partition of a transactional id (Kafka's hash, as for groups)."""
        return partition_for(transactional_id, self.config.transaction_state_log_num_partitions)

    def owned_partitions(self) -> list[int]:
        return sorted(self.shards)

    def begin_load(self, partition: int, coordinator_epoch: int, now_ms: int | None = None) -> None:
        """This broker leads `partition` at `coordinator_epoch`: load it (a `Load` comes out of
        take_work); its transactional ids answer COORDINATOR_LOAD_IN_PROGRESS meanwhile."""
        self._advance(now_ms)
        self._drop(partition)
        self.shards[partition] = _Shard(partition, coordinator_epoch)
        self._work.append(Load(partition, coordinator_epoch))

    def load_records(self, partition: int, coordinator_epoch: int,
                     pairs: Iterable[tuple[bytes | None, bytes | None]]) -> bool:
        """Replay records read from the partition, in log order. False when this load is stale
        (the partition was unloaded or reloaded meanwhile): stop reading."""
        shard = self.shards.get(partition)
        if shard is None or shard.coordinator_epoch != coordinator_epoch or not shard.loading:
            return False
        for key, value in pairs:
            try:
                decoded = records.decode(key, value)
            except records.RecordError as e:
                log.warning("transaction_record_skipped", partition=partition, error=str(e))
                continue
            if decoded is None:
                continue
            txn_id, md = decoded
            if md is None:
                shard.txns.pop(txn_id, None)
            else:
                shard.txns[txn_id] = md
        return True

    def finish_load(self, partition: int, coordinator_epoch: int, now_ms: int | None = None) -> bool:
        """Everything was replayed: serve the partition, and send the markers of the transactions
        a previous coordinator prepared but did not complete."""
        self._advance(now_ms)
        shard = self.shards.get(partition)
        if shard is None or shard.coordinator_epoch != coordinator_epoch or not shard.loading:
            return False
        shard.loading = False
        for txn_id, md in shard.txns.items():
            if md.state in PREPARED:
                log.info("transaction_completion_resumed", transactional_id=txn_id, state=md.state.kafka_name)
                self._send_markers(txn_id, shard, md, md.prepare_complete(self.now))
        return True

    def unload(self, partition: int, now_ms: int | None = None) -> None:
        """This broker no longer leads `partition`: its requests waiting on a write are answered
        NOT_COORDINATOR and its state and markers are dropped."""
        self._advance(now_ms)
        self._drop(partition)

    def _drop(self, partition: int) -> None:
        if self.shards.pop(partition, None) is None:
            return
        self.markers.channel.remove(lambda c: c.partition == partition)
        for append_id in [i for i, p in self._pending.items() if p.partition == partition]:
            self._pending.pop(append_id).done(E.NOT_COORDINATOR)

    def _lookup(self, txn_id: str) -> tuple[_Shard | None, ErrorCode]:
        shard = self.shards.get(self.partition_for(txn_id))
        if shard is None:
            return None, E.NOT_COORDINATOR
        if shard.loading:
            return shard, E.COORDINATOR_LOAD_IN_PROGRESS
        return shard, E.NONE

    # == the transaction log =======================================================================

    def _append(self, txn_id: str, shard: _Shard, transit: TxnTransit, done: Callable[[ErrorCode | None], None],
                retry_on: frozenset[ErrorCode] = frozenset()) -> None:
        """Write `transit` for `txn_id`; once durable its metadata becomes it and `done(None)` runs;
        on failure the pending state is dropped (unless the error is in `retry_on`) and
        `done(error)` runs with the error a client should see."""
        version = records.value_version(self.config.transaction_version)

        def written(error: ErrorCode | None) -> None:
            current = self.shards.get(shard.partition)
            md = current.txns.get(txn_id) if current is not None else None
            same = current is shard and not shard.loading and md is not None
            if error is None:
                if not same:
                    error = E.NOT_COORDINATOR
                else:
                    md.complete_transition(transit)
            elif same and error not in retry_on:
                md.pending = None
            done(error)

        self._write(shard, [records.record(txn_id, transit, version)], written)

    def _write(self, shard: _Shard, recs: list, done: Callable[[ErrorCode | None], None]) -> None:
        self._next_append_id += 1
        self._pending[self._next_append_id] = _Pending(shard.partition, shard.coordinator_epoch, done)
        self._work.append(Append(self._next_append_id, shard.partition, recs))

    def append_done(self, append: Append, error: ErrorCode | None = None, now_ms: int | None = None) -> None:
        """The driver wrote `append` (error None: durable at acks=all) or failed to."""
        self._advance(now_ms)
        pending = self._pending.pop(append.id, None)
        if pending is None:
            return  # the partition was unloaded meanwhile: its waiters were answered then
        if error is not None and error != E.NONE:
            log.info("transaction_log_append_failed", partition=append.partition, error=ErrorCode(error).name)
            pending.done(append_error(ErrorCode(error)))
        else:
            pending.done(None)

    # == requests ==================================================================================

    def handle(self, api_key: int, token: Hashable, request: Message, version: int, now_ms: int) -> Message | None:
        """Decide one request of a transaction API (the keys of `requests`): its response, or None
        when it comes out of take_completions() under `token` later."""
        self._advance(now_ms)
        reply = _Reply(self, token, version)
        self.requests[api_key](reply, request, version)
        reply.sync = False
        return reply.response

    # -- InitProducerId ----------------------------------------------------------------------------

    def init_producer_id(self, reply: _Reply, req: m.InitProducerIdRequest, version: int) -> None:
        R = m.InitProducerIdResponse

        def answer(code: ErrorCode, producer_id: int = NO_PRODUCER_ID, epoch: int = NO_PRODUCER_EPOCH) -> None:
            reply(R(error_code=_fenced(code, version, 4), producer_id=producer_id, producer_epoch=epoch))

        expected = None
        if version >= 3 and (req.producer_id, req.producer_epoch) != (NO_PRODUCER_ID, NO_PRODUCER_EPOCH):
            if req.producer_id == NO_PRODUCER_ID or req.producer_epoch == NO_PRODUCER_EPOCH:
                return answer(E.INVALID_REQUEST)
            expected = (req.producer_id, req.producer_epoch)
        txn_id = req.transactional_id
        if txn_id is None:  # an idempotent producer: any broker hands it a fresh producer id
            pid = self.producer_ids.next()
            return answer(E.NONE, pid, 0) if pid is not None else answer(E.COORDINATOR_LOAD_IN_PROGRESS)
        if not txn_id:
            return answer(E.INVALID_REQUEST)
        timeout = req.transaction_timeout_ms
        if not 0 < timeout <= self.config.transaction_max_timeout_ms:
            return answer(E.INVALID_TRANSACTION_TIMEOUT)
        shard, code = self._lookup(txn_id)
        if code != E.NONE:
            return answer(code)
        md = shard.txns.get(txn_id)
        if md is None:
            pid = self.producer_ids.next()
            if pid is None:
                return answer(E.COORDINATOR_LOAD_IN_PROGRESS)
            md = shard.txns[txn_id] = TransactionMetadata(txn_id, pid, timeout_ms=timeout, update_ms=self.now)
        transit = self._prepare_init(md, timeout, expected)
        if isinstance(transit, ErrorCode):
            return answer(transit)
        if transit.state is S.PREPARE_EPOCH_FENCE:
            # Abort the previous instance's transaction first; the client retries meanwhile.
            def aborted(code: ErrorCode, pid: int, epoch: int) -> None:
                answer(code if code != E.NONE else E.CONCURRENT_TRANSACTIONS)

            self._end_transaction(txn_id, transit.producer_id, transit.producer_epoch, False, False,
                                  self.config.transaction_version, aborted)
            return None

        def written(error: ErrorCode | None) -> None:
            if error is None:
                log.info("producer_initialized", transactional_id=txn_id, producer_id=transit.producer_id,
                         producer_epoch=transit.producer_epoch)
                answer(E.NONE, transit.producer_id, transit.producer_epoch)
            else:
                answer(error)

        self._append(txn_id, shard, transit, written)
        return None

    def _prepare_init(self, md: TransactionMetadata, timeout: int,
                      expected: tuple[int, int] | None) -> TxnTransit | ErrorCode:
        if md.pending is not None:
            return E.CONCURRENT_TRANSACTIONS
        if expected is not None:
            pid, epoch = expected
            # KIP-360: the producer may go on as the current id, or as the previous one when its
            # epochs ran out and the answer that rotated it was lost; anything else is fenced.
            if not (md.producer_epoch == NO_PRODUCER_EPOCH or pid == md.producer_id
                    or (pid == md.prev_producer_id and epoch >= SHORT_MAX - 1)):
                return E.PRODUCER_FENCED
        if md.state in PREPARED:
            return E.CONCURRENT_TRANSACTIONS
        if md.state is S.ONGOING:
            return md.prepare_fence_epoch()
        if md.state in EXPIRATION_ALLOWED:
            if md.epoch_exhausted and (expected is None or expected[1] == md.producer_epoch):
                pid = self.producer_ids.next()
                if pid is None:
                    return E.COORDINATOR_LOAD_IN_PROGRESS
                return md.prepare_producer_id_rotation(pid, timeout, self.now, expected is not None)
            return md.prepare_increment_epoch(timeout, None if expected is None else expected[1], self.now)
        raise RuntimeError(f"{md.transactional_id} found in state {md.state.kafka_name}")

    # -- AddPartitionsToTxn, AddOffsetsToTxn --------------------------------------------------------

    def add_partitions_to_txn(self, reply: _Reply, req: m.AddPartitionsToTxnRequest, version: int) -> None:
        R = m.AddPartitionsToTxnResponse
        if version < 4:
            txns = [(req.v3_and_below_transactional_id, req.v3_and_below_producer_id,
                     req.v3_and_below_producer_epoch, False, req.v3_and_below_topics)]
        else:
            txns = [(t.transactional_id, t.producer_id, t.producer_epoch, t.verify_only, t.topics)
                    for t in req.transactions]
        results: dict[str, dict[TopicPartition, ErrorCode]] = {}
        if not txns:
            return reply(R(results_by_transaction=[]))

        def finish(txn_id: str, errors: dict[TopicPartition, ErrorCode]) -> None:
            results[txn_id] = {tp: _fenced(code, version, 2) for tp, code in errors.items()}
            if len(results) < len(txns):
                return
            by_txn = [R.AddPartitionsToTxnResult(transactional_id=txn_id, topic_results=_topic_results(errors))
                      for txn_id, errors in results.items()]
            if version < 4:
                reply(R(results_by_topic_v3_and_below=by_txn[0].topic_results))
            else:
                reply(R(results_by_transaction=by_txn))

        # A client (v0-v3) adds one transaction's partitions; brokers (v4+) batch transactions, and
        # partition leaders only ask whether partitions are in them (verify_only, KIP-890).
        client_version = TV_2 if version > 3 else TV_0
        for txn_id, pid, epoch, verify_only, topics in txns:
            partitions = [(t.name, p) for t in topics for p in t.partitions]
            unknown = {tp for tp in partitions if self.leader_of(*tp) is None}
            if unknown:  # the whole transaction fails; the others were not attempted
                finish(txn_id, {tp: E.UNKNOWN_TOPIC_OR_PARTITION if tp in unknown else E.OPERATION_NOT_ATTEMPTED
                                for tp in partitions})
            elif verify_only:
                finish(txn_id, self.verify_partitions(txn_id, pid, epoch, partitions))
            else:
                self._add_partitions(txn_id, pid, epoch, partitions, client_version,
                                     lambda code, i=txn_id, ps=partitions: finish(i, dict.fromkeys(ps, code)))

    def add_offsets_to_txn(self, reply: _Reply, req: m.AddOffsetsToTxnRequest, version: int) -> None:
        """The group's `__consumer_offsets` partition joins the transaction (its TxnOffsetCommits
        then wait for the marker there)."""
        partition = partition_for(req.group_id, self.config.offsets_topic_num_partitions)
        self._add_partitions(req.transactional_id, req.producer_id, req.producer_epoch, [(OFFSETS_TOPIC, partition)],
                             TV_0, lambda code: reply(m.AddOffsetsToTxnResponse(error_code=_fenced(code, version, 2))))

    def _add_partitions(self, txn_id: str, pid: int, epoch: int, partitions: list[TopicPartition],
                        client_version: int, done: Callable[[ErrorCode], None]) -> None:
        if not txn_id:
            return done(E.INVALID_REQUEST)
        shard, code = self._lookup(txn_id)
        md = shard.txns.get(txn_id) if code == E.NONE else None
        if code != E.NONE:
            return done(code)
        if md is None or md.producer_id != pid:
            return done(E.INVALID_PRODUCER_ID_MAPPING)
        if md.producer_epoch != epoch:
            return done(E.PRODUCER_FENCED)
        if md.pending is not None or md.state in PREPARED:
            return done(E.CONCURRENT_TRANSACTIONS)
        if md.state is S.ONGOING and md.partitions.issuperset(partitions):
            return done(E.NONE)
        self._append(txn_id, shard, md.prepare_add_partitions(partitions, self.now, client_version),
                     lambda error: done(error if error is not None else E.NONE))
        return None

    def verify_partitions(self, txn_id: str, pid: int, epoch: int,
                          partitions: list[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        """KIP-890: are these partitions in the producer's ongoing transaction? (No state changes;
        the partition leader's append is the final check.) AddPartitionsToTxn `verify_only` from
        another broker's partition, or a call from this broker's own."""
        code = E.INVALID_REQUEST if not txn_id else E.NONE
        if code == E.NONE:
            shard, code = self._lookup(txn_id)
        if code == E.NONE:
            md = shard.txns.get(txn_id)
            if md is None or md.producer_id != pid:
                code = E.INVALID_PRODUCER_ID_MAPPING
            elif md.producer_epoch != epoch:
                code = E.PRODUCER_FENCED
            elif md.state in PREPARED:
                code = E.CONCURRENT_TRANSACTIONS
            else:
                return {tp: E.NONE if tp in md.partitions else E.TRANSACTION_ABORTABLE for tp in partitions}
        return dict.fromkeys(partitions, code)

    # -- EndTxn -------------------------------------------------------------------------------------

    def end_txn(self, reply: _Reply, req: m.EndTxnRequest, version: int) -> None:
        # EndTxn v5 comes from clients of transaction version 2 (an epoch bump per transaction).
        client_version = TV_2 if version > 4 else TV_0

        def answer(code: ErrorCode, pid: int, epoch: int) -> None:
            reply(m.EndTxnResponse(error_code=_fenced(code, version, 2), producer_id=pid, producer_epoch=epoch))

        self._end_transaction(req.transactional_id, req.producer_id, req.producer_epoch, req.committed, True,
                              client_version, answer)

    def _end_transaction(self, txn_id: str, pid: int, epoch: int, commit: bool, from_client: bool,
                         client_version: int, done: Callable[[ErrorCode, int, int], None]) -> None:
        """End `txn_id`'s transaction: write PrepareCommit/PrepareAbort, answer, then send the
        markers. `done(code, producer id, epoch)` answers (the id and epoch for version 2)."""
        if not txn_id:
            return done(E.INVALID_REQUEST, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        shard, code = self._lookup(txn_id)
        md = shard.txns.get(txn_id) if code == E.NONE else None
        if code == E.NONE and md is None:
            code = E.INVALID_PRODUCER_ID_MAPPING
        if code != E.NONE:
            return done(code, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
        fence = md.pending is S.PREPARE_EPOCH_FENCE
        prepare = self._prepare_end_v2 if client_version >= TV_2 else self._prepare_end_v1
        transit = prepare(md, pid, epoch, commit, from_client, fence)
        if isinstance(transit, ErrorCode):
            if fence:
                md.pending = None  # the fence did not happen: nothing may stay blocked by it
            if transit == E.NONE and client_version >= TV_2:
                return done(E.NONE, md.producer_id, md.producer_epoch)  # a retry of a completed EndTxn
            return done(transit, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)

        def written(error: ErrorCode | None) -> None:
            if error is not None:
                if fence and self.shards.get(shard.partition) is shard:
                    md.failed_epoch_fence = True  # the bumped epoch was never returned: bump it once only
                return done(error, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
            if md.producer_id != pid:
                code = E.INVALID_PRODUCER_ID_MAPPING
            elif md.producer_epoch != epoch and not (client_version >= TV_2 and md.producer_epoch == epoch + 1):
                code = E.PRODUCER_FENCED
            elif md.pending is not None:
                code = E.CONCURRENT_TRANSACTIONS
            elif md.state is not (S.PREPARE_COMMIT if commit else S.PREPARE_ABORT):
                code = E.INVALID_TXN_STATE
            else:
                if client_version >= TV_2 and md.next_producer_id != NO_PRODUCER_ID:
                    done(E.NONE, md.next_producer_id, 0)  # the epochs ran out: the client goes on as the next id
                elif client_version >= TV_2:
                    done(E.NONE, md.producer_id, md.producer_epoch)
                else:
                    done(E.NONE, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
                self._send_markers(txn_id, shard, md, md.prepare_complete(self.now))
                return None
            return done(code, NO_PRODUCER_ID, NO_PRODUCER_EPOCH)

        self._append(txn_id, shard, transit, written)
        return None

    def _prepare_end_v1(self, md: TransactionMetadata, pid: int, epoch: int, commit: bool, from_client: bool,
                        fence: bool) -> TxnTransit | ErrorCode:
        if md.producer_id != pid:
            return E.INVALID_PRODUCER_ID_MAPPING
        # A client must name the current epoch; the coordinator's own abort may name a bumped one.
        if (from_client and epoch != md.producer_epoch) or epoch < md.producer_epoch:
            return E.PRODUCER_FENCED
        if md.pending is not None and not fence:
            return E.CONCURRENT_TRANSACTIONS
        if md.state is S.ONGOING:
            return self._prepare_completion(md, epoch, commit, TV_0, fence, False)
        return _same_result(md.state, commit)

    def _prepare_end_v2(self, md: TransactionMetadata, pid: int, epoch: int, commit: bool, from_client: bool,
                        fence: bool) -> TxnTransit | ErrorCode:
        retry_on_overflow = (not fence and md.prev_producer_id == pid and epoch == SHORT_MAX - 1
                             and md.producer_epoch == 0)
        retry_on_bump = not fence and md.producer_epoch == epoch + 1
        retry = retry_on_bump or retry_on_overflow
        if fence:
            valid = (not from_client or epoch == md.producer_epoch) and epoch >= md.producer_epoch
        elif md.state in PREPARED:
            valid = retry_on_bump
        elif md.state in COMPLETED:
            valid = retry or epoch == md.producer_epoch
        else:
            valid = epoch == md.producer_epoch
        if md.producer_id != pid and not retry_on_overflow:
            return E.INVALID_PRODUCER_ID_MAPPING
        if not valid:
            return E.PRODUCER_FENCED
        if md.pending is not None and not fence:
            return E.CONCURRENT_TRANSACTIONS
        if md.state is S.ONGOING:
            return self._prepare_completion(md, epoch, commit, TV_2, fence, False)
        if md.state in EXPIRATION_ALLOWED:
            if md.state in COMPLETED and retry:
                # The answer to an EndTxn that completed was lost: the same outcome again is fine.
                return E.NONE if (md.state is S.COMPLETE_COMMIT) == commit else E.INVALID_TXN_STATE
            if commit:
                return E.INVALID_TXN_STATE
            # Version 2 clients abort when unsure whether a transaction started: an empty one.
            return self._prepare_completion(md, epoch, False, TV_2, fence, True)
        return _same_result(md.state, commit)

    def _prepare_completion(self, md: TransactionMetadata, epoch: int, commit: bool, client_version: int, fence: bool,
                            no_partition_added: bool) -> TxnTransit | ErrorCode:
        next_pid = NO_PRODUCER_ID
        if client_version >= TV_2 and not fence and md.epoch_exhausted:
            next_pid = self.producer_ids.next()
            if next_pid is None:
                return E.COORDINATOR_LOAD_IN_PROGRESS
        if fence:  # make way for the abort, at the bumped epoch (never returned to a client)
            md.pending = None
            md.producer_epoch, md.last_producer_epoch = epoch, NO_PRODUCER_EPOCH
            if epoch >= SHORT_MAX:
                client_version = TV_0  # no epoch left to bump: the abort keeps the fenced one
        state = S.PREPARE_COMMIT if commit else S.PREPARE_ABORT
        return md.prepare_abort_or_commit(state, client_version, next_pid, self.now, no_partition_added)

    # -- markers ------------------------------------------------------------------------------------

    def _send_markers(self, txn_id: str, shard: _Shard, md: TransactionMetadata, transit: TxnTransit) -> None:
        self.markers.send(Completion(txn_id, shard.partition, shard.coordinator_epoch, md, transit,
                                     md.state is S.PREPARE_COMMIT, md.producer_id, md.producer_epoch))

    def markers_sent(self, send: SendMarkers, response: m.WriteTxnMarkersResponse | None,
                     now_ms: int | None = None) -> None:
        """The answer to `send` (None: the broker could not be reached; everything is retried)."""
        self._advance(now_ms)
        self.markers.sent(send, response)

    def metadata_changed(self, now_ms: int | None = None) -> None:
        """Partition leaders may have changed: markers waiting for one go out again."""
        self._advance(now_ms)
        self.markers.reroute()

    def current(self, c: Completion) -> bool:
        """Whether `c` still belongs to this coordinator (same partition leadership, same state)."""
        shard = self.shards.get(c.partition)
        return (shard is not None and not shard.loading and shard.coordinator_epoch == c.coordinator_epoch
                and shard.txns.get(c.transactional_id) is c.metadata and not c.markers_done)

    def write_completion(self, c: Completion) -> None:
        """Every marker of `c` is written: write its CompleteCommit/CompleteAbort (again later when
        replicas are missing; the next coordinator of the partition completes it otherwise)."""
        shard = self.shards.get(c.partition)
        if shard is None or shard.loading or shard.coordinator_epoch != c.coordinator_epoch:
            return

        def written(error: ErrorCode | None) -> None:
            if error == E.COORDINATOR_NOT_AVAILABLE:
                self.timer.schedule(("complete", c.transactional_id), self.now + self.config.marker_retry_backoff_ms,
                                    lambda: self.write_completion(c))
            elif error is None:
                log.debug("transaction_completed", transactional_id=c.transactional_id,
                          state=c.transit.state.kafka_name)

        self._append(c.transactional_id, shard, c.transit, written, retry_on=frozenset({E.COORDINATOR_NOT_AVAILABLE}))

    # -- timeouts and expiry ------------------------------------------------------------------------

    def _abort_timed_out(self) -> None:
        """Abort every transaction open longer than its timeout (fencing its producer)."""
        self.timer.schedule("abort", self.now + self.config.abort_timed_out_transaction_cleanup_interval_ms,
                            self._abort_timed_out)
        for shard in list(self.shards.values()):
            if shard.loading:
                continue
            for txn_id, md in list(shard.txns.items()):
                if md.state is S.ONGOING and md.pending is None and md.start_ms + md.timeout_ms < self.now:
                    log.info("transaction_timed_out", transactional_id=txn_id, producer_id=md.producer_id)
                    fence = md.prepare_fence_epoch()
                    self._end_transaction(txn_id, fence.producer_id, fence.producer_epoch, False, False,
                                          self.config.transaction_version, _log_abort(txn_id))

    def _expire_transactional_ids(self) -> None:
        """Forget transactional ids idle for transactional.id.expiration.ms (tombstones)."""
        cfg = self.config
        self.timer.schedule("expire", self.now + cfg.remove_expired_transaction_cleanup_interval_ms,
                            self._expire_transactional_ids)
        horizon = self.now - cfg.transactional_id_expiration_ms
        for shard in list(self.shards.values()):
            if shard.loading:
                continue
            expired = [(txn_id, md) for txn_id, md in shard.txns.items()
                       if md.pending is None and md.state in EXPIRATION_ALLOWED and md.update_ms <= horizon]
            if not expired:
                continue
            for _, md in expired:
                md.prepare_dead()

            def written(error: ErrorCode | None, shard=shard, expired=expired) -> None:
                current = self.shards.get(shard.partition) is shard
                for txn_id, md in expired:
                    if error is None and current and shard.txns.get(txn_id) is md and md.pending is S.DEAD:
                        del shard.txns[txn_id]
                    else:
                        md.pending = None
                if error is None:
                    log.info("transactional_ids_expired", partition=shard.partition, count=len(expired))

            self._write(shard, [records.tombstone(txn_id) for txn_id, _ in expired], written)

    # -- producer ids -------------------------------------------------------------------------------

    def producer_ids_allocated(self, start: int, length: int) -> None:
        self.producer_ids.add_block(start, length)

    def producer_ids_failed(self) -> None:
        self.producer_ids.request_failed()

    # -- admin --------------------------------------------------------------------------------------

    def describe_transactions(self, reply: _Reply, req: m.DescribeTransactionsRequest, version: int) -> None:
        R = m.DescribeTransactionsResponse
        states = []
        for txn_id in req.transactional_ids:
            shard, code = self._lookup(txn_id) if txn_id else (None, E.INVALID_REQUEST)
            md = shard.txns.get(txn_id) if code == E.NONE else None
            if code == E.NONE and (md is None or md.state is S.DEAD):
                code = E.TRANSACTIONAL_ID_NOT_FOUND
            if code != E.NONE:
                states.append(R.TransactionState(error_code=code, transactional_id=txn_id))
                continue
            by_topic: dict[str, list[int]] = {}
            for topic, p in sorted(md.partitions):
                by_topic.setdefault(topic, []).append(p)
            states.append(R.TransactionState(
                transactional_id=txn_id, transaction_state=md.state.kafka_name, transaction_timeout_ms=md.timeout_ms,
                transaction_start_time_ms=md.start_ms, producer_id=md.producer_id, producer_epoch=md.producer_epoch,
                topics=[R.TopicData(topic=t, partitions=ps) for t, ps in by_topic.items()]))
        reply(R(transaction_states=states))

    def list_transactions(self, reply: _Reply, req: m.ListTransactionsRequest, version: int) -> None:
        R = m.ListTransactionsResponse
        if any(s.loading for s in self.shards.values()):
            return reply(R(error_code=E.COORDINATOR_LOAD_IN_PROGRESS))
        wanted = {n: S.from_kafka_name(n) for n in req.state_filters}
        unknown = [n for n, s in wanted.items() if s is None]
        states = {s for s in wanted.values() if s is not None}
        pids = set(req.producer_id_filters)
        duration = req.duration_filter if version >= 1 else -1
        listed = []
        for shard in sorted(self.shards.values(), key=lambda s: s.partition):
            for txn_id, md in shard.txns.items():
                if (md.state is S.DEAD or (pids and md.producer_id not in pids) or (wanted and md.state not in states)
                        or (duration >= 0 and self.now - md.start_ms <= duration)):
                    continue
                listed.append(R.TransactionState(transactional_id=txn_id, producer_id=md.producer_id,
                                                 transaction_state=md.state.kafka_name))
        return reply(R(unknown_state_filters=unknown, transaction_states=listed))


def _same_result(state: TxnState, commit: bool) -> ErrorCode:
    """EndTxn in a state that is not Ongoing: fine (NONE) if it repeats the outcome already
    decided (CONCURRENT_TRANSACTIONS while its markers are written), else INVALID_TXN_STATE."""
    if state is (S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT):
        return E.NONE
    if state is (S.PREPARE_COMMIT if commit else S.PREPARE_ABORT):
        return E.CONCURRENT_TRANSACTIONS
    return E.INVALID_TXN_STATE


def _log_abort(txn_id: str) -> Callable[[ErrorCode, int, int], None]:
    def done(code: ErrorCode, pid: int, epoch: int) -> None:
        if code == E.NONE:
            log.info("timed_out_transaction_aborted", transactional_id=txn_id)
        else:
            log.info("timed_out_transaction_abort_cancelled", transactional_id=txn_id, error=code.name)
    return done


def _topic_results(errors: dict[TopicPartition, ErrorCode]) -> list:
    R = m.AddPartitionsToTxnResponse
    by_topic: dict[str, list] = {}
    for (topic, p), code in errors.items():
        by_topic.setdefault(topic, []).append(R.AddPartitionsToTxnPartitionResult(partition_index=p,
                                                                                  partition_error_code=code))
    return [R.AddPartitionsToTxnTopicResult(name=t, results_by_partition=ps) for t, ps in by_topic.items()]
