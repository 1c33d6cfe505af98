"""The markers a transaction coordinator sends to partition leaders, without I/O (Kafka's
TransactionMarkerChannelManager and its completion handler).

Once a transaction's PrepareCommit or PrepareAbort record is durable (`send`), its partitions are
grouped by leader, one `MarkerEntry` per leader; a partition that no longer exists needs no marker.
Each leader has a queue; a leader with nothing in flight gets one WriteTxnMarkersRequest with
everything queued for it (`MarkerChannel.take_requests`). Its answer (`sent`) removes the
partitions that have their marker; the others (not the leader any more, not enough replicas, the
broker unreachable) wait with the partitions that have no leader until the metadata changes or a
backoff passes, then go to the leaders of the moment (`reroute`). A leader that answers
INVALID_PRODUCER_EPOCH or TRANSACTION_COORDINATOR_FENCED ends the sending: a newer producer or
coordinator owns the transaction. Once no partition is left the coordinator writes the
completion.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import structlog

from kafka_compat.coordinator.transaction.state import TopicPartition, TransactionMetadata, TxnTransit
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafka_compat.coordinator.transaction.machine import TransactionCoordinator

log = structlog.get_logger("kafka_compat.coordinator.transaction")
E = ErrorCode
NO_LEADER = -1  # the queue of markers waiting for a leader (or for a retry)
_RETRIABLE = frozenset({E.UNKNOWN_TOPIC_OR_PARTITION, E.NOT_LEADER_OR_FOLLOWER, E.NOT_ENOUGH_REPLICAS,
                        E.NOT_ENOUGH_REPLICAS_AFTER_APPEND, E.REQUEST_TIMED_OUT, E.KAFKA_STORAGE_ERROR})


@dataclass(eq=False)
class Completion:
    """A transaction whose markers are being written (Kafka's PendingCompleteTxn): `transit` is
    its CompleteCommit/CompleteAbort record, written once every partition has its marker."""

    transactional_id: str
    partition: int  # of __transaction_state
    coordinator_epoch: int
    metadata: TransactionMetadata
    transit: TxnTransit
    commit: bool
    producer_id: int
    producer_epoch: int
    markers_done: bool = False


class MarkerEntry(NamedTuple):
    completion: Completion
    partitions: tuple[TopicPartition, ...]


class SendMarkers(NamedTuple):
    """Send `request` (WriteTxnMarkers) to broker `broker`; report the answer with markers_sent."""

    id: int
    broker: int
    request: m.WriteTxnMarkersRequest


class MarkerChannel:
    def __init__(self) -> None:
        self._queues: dict[int, list[MarkerEntry]] = defaultdict(list)  # broker (or NO_LEADER) -> entries
        self._in_flight: dict[int, tuple[int, list[MarkerEntry]]] = {}
        self._busy: set[int] = set()
        self._next_id = 0

    def add(self, broker: int, entry: MarkerEntry) -> None:
        self._queues[broker].append(entry)

    def take_unknown(self) -> list[MarkerEntry]:
        """The entries whose partitions had no leader, to be routed again."""
        return self._queues.pop(NO_LEADER, [])

    def take_requests(self) -> list[SendMarkers]:
        """One request for every leader with markers queued and none in flight."""
        sends = []
        for broker in [b for b, q in self._queues.items() if q and b != NO_LEADER and b not in self._busy]:
            entries = self._queues.pop(broker)
            self._next_id += 1
            self._busy.add(broker)
            self._in_flight[self._next_id] = (broker, entries)
            sends.append(SendMarkers(self._next_id, broker, _request(entries)))
        return sends

    def sent(self, send: SendMarkers) -> list[MarkerEntry]:
        """The entries of an answered (or failed) request; [] if it was forgotten meanwhile."""
        broker, entries = self._in_flight.pop(send.id, (send.broker, []))
        self._busy.discard(broker)
        return entries

    def remove(self, matches: Callable[[Completion], bool]) -> None:
        """Drop queued entries of the completions that `matches` (a partition unloaded); in-flight
        ones are dropped when their answer comes."""
        for broker, q in list(self._queues.items()):
            q[:] = [e for e in q if not matches(e.completion)]
            if not q:
                del self._queues[broker]


class TxnMarkers:
    """The markers of the transactions `core` completes; see the module docstring."""

    def __init__(self, core: TransactionCoordinator):
        self.core = core
        self.channel = MarkerChannel()

    def send(self, c: Completion) -> None:
        self._route(c, list(c.metadata.partitions))

    def _route(self, c: Completion, partitions: list[TopicPartition]) -> None:
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in partitions:
            leader = self.core.leader_of(*tp)
            if leader is None:
                log.info("transaction_marker_dropped", transactional_id=c.transactional_id, topic=tp[0],
                         partition=tp[1], reason="the partition does not exist")
                c.metadata.remove_partition(tp)
            else:
                by_leader.setdefault(leader if leader >= 0 else NO_LEADER, []).append(tp)
        for leader, tps in by_leader.items():
            if leader == NO_LEADER:
                self._retry_later(MarkerEntry(c, tuple(tps)))
            else:
                self.channel.add(leader, MarkerEntry(c, tuple(tps)))
        self._maybe_complete(c)

    def reroute(self) -> None:
        self.core.timer.cancel("markers")
        for e in self.channel.take_unknown():
            if self.core.current(e.completion):
                self._route(e.completion, list(e.partitions))

    def _retry_later(self, entry: MarkerEntry) -> None:
        """Never in a tight loop against a broker that is down: after the metadata changes, or a
        backoff."""
        self.channel.add(NO_LEADER, entry)
        core = self.core
        if "markers" not in core.timer:
            core.timer.schedule("markers", core.now + core.config.marker_retry_backoff_ms, self.reroute)

    def sent(self, send: SendMarkers, response: m.WriteTxnMarkersResponse | None) -> None:
        entries = self.channel.sent(send)
        errors: dict[int, dict[TopicPartition, int]] = {}
        for r in response.markers if response is not None else ():
            errors.setdefault(r.producer_id, {}).update(
                ((t.name, p.partition_index), p.error_code) for t in r.topics for p in t.partitions)
        for e in entries:
            c = e.completion
            if not self.core.current(c):
                continue
            if response is None:
                self._retry_later(e)
                continue
            got = errors.get(c.producer_id, {})
            retry, give_up = [], False
            for tp in e.partitions:
                code = got.get(tp, E.UNKNOWN_SERVER_ERROR)
                if code in (E.NONE, E.UNSUPPORTED_FOR_MESSAGE_FORMAT, E.UNSUPPORTED_VERSION):
                    c.metadata.remove_partition(tp)  # written, or never writable there
                elif code in (E.INVALID_PRODUCER_EPOCH, E.TRANSACTION_COORDINATOR_FENCED):
                    give_up = True
                else:
                    if code not in _RETRIABLE:
                        log.warning("transaction_marker_failed", transactional_id=c.transactional_id, topic=tp[0],
                                    partition=tp[1], error=ErrorCode(code).name)
                    retry.append(tp)
            if give_up:
                log.info("transaction_markers_cancelled", transactional_id=c.transactional_id)
                c.markers_done = True
            elif retry:
                self._retry_later(MarkerEntry(c, tuple(retry)))
            else:
                self._maybe_complete(c)

    def _maybe_complete(self, c: Completion) -> None:
        if not c.markers_done and not c.metadata.partitions and self.core.current(c):
            c.markers_done = True
            self.core.write_completion(c)


def _request(entries: list[MarkerEntry]) -> m.WriteTxnMarkersRequest:
    R = m.WriteTxnMarkersRequest
    markers = []
    for e in entries:
        by_topic: dict[str, list[int]] = defaultdict(list)
        for topic, p in sorted(e.partitions):
            by_topic[topic].append(p)
        c = e.completion
        markers.append(R.WritableTxnMarker(
            producer_id=c.producer_id, producer_epoch=c.producer_epoch, transaction_result=c.commit,
            topics=[R.WritableTxnMarkerTopic(name=t, partition_indexes=ps) for t, ps in by_topic.items()],
            coordinator_epoch=c.coordinator_epoch))
    return R(markers=markers)
