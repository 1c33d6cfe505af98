"""A fake clock, an in-memory `__transaction_state` log, producer id blocks and partition leaders
that answer markers, around the real TransactionCoordinator (nothing of the machine is mocked).
With `logs`, markers are written into real storage Logs, as a partition leader would."""

from __future__ import annotations

import itertools

from kafka_compat.coordinator.config import TransactionConfig
from kafka_compat.coordinator.transaction import AllocateProducerIds, Append, Load, SendMarkers, TransactionCoordinator
from kafka_compat.coordinator.transaction import records as txn_records
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError

E = ErrorCode
START = 1_700_000_000_000
CONFIG = TransactionConfig(transaction_state_log_num_partitions=4, offsets_topic_num_partitions=3)


class TxnHarness:
    """Drives one TransactionCoordinator. Every `__transaction_state` partition is loaded at
    coordinator epoch 1; appends succeed at once into `self.log` unless `auto_append` is off (then
    `release()` them); markers are answered NONE (or `marker_errors[(topic, partition)]`) unless
    `auto_markers` is off (then `answer()` them). Topics and their partition counts are `topics`;
    every partition's leader is broker 1 unless `leaders` says otherwise (-1: no leader)."""

    def __init__(self, config: TransactionConfig = CONFIG, *, topics=None, leaders=None, auto_append=True,
                 auto_markers=True, now=START, logs=None, load=True, log=None):
        self.now = now
        self.config = config
        self.topics = {"t": 3, "u": 2, "__consumer_offsets": 3} if topics is None else topics
        self.leaders = dict(leaders or {})
        self.c = TransactionCoordinator(config, leader_of=self.leader_of, now_ms=now)
        self.log: dict[int, list[tuple[bytes, bytes | None]]] = {p: list(v) for p, v in (log or {}).items()}
        self.auto_append, self.auto_markers = auto_append, auto_markers
        self.held: list[Append] = []
        self.sends: list[SendMarkers] = []  # every WriteTxnMarkers sent
        self.held_sends: list[SendMarkers] = []
        self.marker_errors: dict[tuple[str, int], ErrorCode] = {}
        self.logs = logs or {}  # (topic, partition) -> storage Log the markers are written to
        self.done: dict[int, m.Message] = {}
        self._tokens = itertools.count(1)
        self._pids = itertools.count(1000, 1000)
        if load:
            for p in range(config.transaction_state_log_num_partitions):
                self.c.begin_load(p, 1, now)
        self.drain()

    def leader_of(self, topic: str, partition: int) -> int | None:
        if partition >= self.topics.get(topic, 0):
            return None
        return self.leaders.get((topic, partition), 1)

    # -- plumbing -----------------------------------------------------------------------------------

    def drain(self) -> None:
        while work := self.c.take_work():
            for job in work:
                if isinstance(job, Load):
                    pairs = list(self.log.get(job.partition, []))
                    assert self.c.load_records(job.partition, job.coordinator_epoch, pairs)
                    assert self.c.finish_load(job.partition, job.coordinator_epoch, self.now)
                elif isinstance(job, AllocateProducerIds):
                    self.c.producer_ids_allocated(next(self._pids), 1000)
                elif isinstance(job, SendMarkers):
                    self.sends.append(job)
                    if self.auto_markers:
                        self.c.markers_sent(job, self.answer_for(job), self.now)
                    else:
                        self.held_sends.append(job)
                elif self.auto_append:
                    self.log.setdefault(job.partition, []).extend(job.records)
                    self.c.append_done(job, None, self.now)
                else:
                    self.held.append(job)
        for token, response in self.c.take_completions():
            assert token not in self.done, f"token {token} completed twice"
            self.done[token] = response

    def answer_for(self, send: SendMarkers) -> m.WriteTxnMarkersResponse:
        """What the leader answers: each marker written to its Log (if given), or the error set."""
        R = m.WriteTxnMarkersResponse
        results = []
        for marker in send.request.markers:
            topics = []
            for t in marker.topics:
                parts = []
                for p in t.partition_indexes:
                    code = self.marker_errors.get((t.name, p), E.NONE)
                    target = self.logs.get((t.name, p))
                    if code == E.NONE and target is not None:
                        try:
                            target.append_marker(marker.producer_id, marker.producer_epoch, marker.coordinator_epoch,
                                                 marker.transaction_result, 0, self.now)
                            target.high_watermark = target.log_end_offset
                        except KafkaError as e:
                            code = e.code
                    parts.append(R.WritableTxnMarkerPartitionResult(partition_index=p, error_code=code))
                topics.append(R.WritableTxnMarkerTopicResult(name=t.name, partitions=parts))
            results.append(R.WritableTxnMarkerResult(producer_id=marker.producer_id, topics=topics))
        return R(markers=results)

    def answer(self, response_for=None) -> None:
        """Answer the held marker requests (with `response_for(send)`, None: the send failed)."""
        sends, self.held_sends = self.held_sends, []
        for send in sends:
            self.c.markers_sent(send, self.answer_for(send) if response_for is None else response_for(send), self.now)
        self.drain()

    def release(self, error: ErrorCode | None = None, count: int | None = None) -> None:
        n = len(self.held) if count is None else count
        jobs, self.held = self.held[:n], self.held[n:]
        for job in jobs:
            if error is None:
                self.log.setdefault(job.partition, []).extend(job.records)
            self.c.append_done(job, error, self.now)
        self.drain()

    def call(self, api: str, request, version: int):
        token = next(self._tokens)
        response = self.c.handle(m.ApiKey[api.upper()], token, request, version, self.now)
        self.drain()
        if response is None:
            response = self.done.pop(token, None)
        if response is not None:
            response.encode(version)  # every answer must encode at its version
        return token, response

    def send(self, api: str, request, version: int):
        token, response = self.call(api, request, version)
        assert response is not None, f"{api} was parked"
        return response

    def advance(self, ms: int) -> None:
        self.now += ms
        self.c.tick(self.now)
        self.drain()

    def reload(self, **kw) -> TxnHarness:
        """A fresh coordinator (another broker) that loads this one's log at coordinator epoch 2."""
        fresh = TxnHarness(self.config, topics=self.topics, leaders=self.leaders, now=self.now, logs=self.logs,
                           load=False, log=self.log, **kw)
        for p in range(self.config.transaction_state_log_num_partitions):
            fresh.c.begin_load(p, 2, fresh.now)
        fresh.drain()
        return fresh

    # -- reading ------------------------------------------------------------------------------------

    def state(self, txn_id: str):
        """The metadata of `txn_id` (None if unknown)."""
        return self.c.shards[self.c.partition_for(txn_id)].txns.get(txn_id)

    def records(self, txn_id: str):
        """The decoded records of `txn_id`, in log order (None for a tombstone)."""
        out = []
        for k, v in self.log.get(self.c.partition_for(txn_id), []):
            decoded = txn_records.decode(k, v)
            if decoded and decoded[0] == txn_id:
                out.append(decoded[1])
        return out

    def states(self, txn_id: str) -> list[str]:
        return [r.state.kafka_name if r else "tombstone" for r in self.records(txn_id)]

    def markers(self) -> list[tuple[int, int, int, bool, list[tuple[str, int]]]]:
        """(broker, producer id, epoch, commit, partitions) of every marker sent."""
        return [(s.broker, mk.producer_id, mk.producer_epoch, mk.transaction_result,
                 [(t.name, p) for t in mk.topics for p in t.partition_indexes])
                for s in self.sends for mk in s.request.markers]

    # -- the protocol, as a client speaks it --------------------------------------------------------

    def init(self, txn_id: str | None, *, timeout: int = 60_000, version: int = 4, pid: int = -1, epoch: int = -1):
        return self.send("init_producer_id", m.InitProducerIdRequest(
            transactional_id=txn_id, transaction_timeout_ms=timeout, producer_id=pid, producer_epoch=epoch), version)

    def add(self, txn_id: str, pid: int, epoch: int, *partitions: tuple[str, int], version: int = 3):
        topics: dict[str, list[int]] = {}
        for t, p in partitions:
            topics.setdefault(t, []).append(p)
        T = m.AddPartitionsToTxnRequest.AddPartitionsToTxnTopic
        response = self.send("add_partitions_to_txn", m.AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=txn_id, v3_and_below_producer_id=pid, v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=[T(name=t, partitions=ps) for t, ps in topics.items()]), version)
        return {(t.name, p.partition_index): p.partition_error_code
                for t in response.results_by_topic_v3_and_below for p in t.results_by_partition}

    def end(self, txn_id: str, pid: int, epoch: int, commit: bool = True, version: int = 3):
        return self.send("end_txn", m.EndTxnRequest(transactional_id=txn_id, producer_id=pid, producer_epoch=epoch,
                                                    committed=commit), version)

    def begin(self, txn_id: str, *partitions: tuple[str, int], timeout: int = 60_000):
        """InitProducerId then AddPartitionsToTxn: (producer id, epoch) of an ongoing transaction."""
        r = self.init(txn_id, timeout=timeout)
        assert r.error_code == E.NONE, r
        errors = self.add(txn_id, r.producer_id, r.producer_epoch, *(partitions or [("t", 0)]))
        assert set(errors.values()) == {E.NONE}, errors
        return r.producer_id, r.producer_epoch
