"""The markers a transaction coordinator sends to partition leaders, without I/O (the queues of
Kafka's TransactionMarkerChannelManager).

Once a transaction's PrepareCommit or PrepareAbort record is durable, its partitions are grouped by
leader, one `MarkerEntry` per leader. Each leader has a queue; a leader with nothing in flight gets
one WriteTxnMarkersRequest with everything queued for it (`take_requests`), and its answer
(`sent`) hands the entries back to the coordinator, which requeues what must be retried with the
leaders of the moment. Partitions whose leader is unknown wait in their own queue until the
metadata changes or a backoff passes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from kafka_compat.coordinator.transaction.state import TopicPartition, TransactionMetadata, TxnTransit
from kafka_compat.protocol import messages as m

NO_LEADER = -1


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

    @property
    def waiting_for_leaders(self) -> bool:
        return bool(self._queues.get(NO_LEADER))

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
