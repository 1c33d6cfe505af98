"""A follower's fetching from one leader (Kafka's AbstractFetcherThread and ReplicaFetcherThread),
sans-I/O: `request` says what to send next, the `on_*` methods take the answers.

Per partition the fetcher keeps the fetch offset (this replica's log end offset), the leader
epoch it follows, the epoch of the last batch it holds and a phase:

- FETCHING: the partition goes into the next Fetch. The leader answers with records (appended
  as they came; the leader's high watermark taken) or, when this log diverged from the leader's
  (KIP-320), with the end of the last common epoch: the log is truncated there and fetching goes
  on from the new end.
- TRUNCATING: where the fetcher does not truncate on fetch (`truncate_on_fetch` off, Kafka's
  protocol before 2.7), a partition with a leader-epoch cache first asks OffsetForLeaderEpoch
  for the end of its latest epoch on the leader and truncates to it (KIP-101, KIP-279).
- RESETTING: the leader answered OFFSET_OUT_OF_RANGE: ListOffsets for the leader's end (this log
  is longer: truncate to it, as after an unclean election) and then its start (this log ends
  before the leader's start: start over there).

A partition that got data goes to the back of the next Fetch, so that tight fetch limits starve
none. A partition with an error is retried after replica.fetch.backoff.ms; one whose leader is at a
newer epoch than the fetcher knows (FENCED_LEADER_EPOCH) is dropped until the metadata image
brings that epoch (the ReplicaManager adds it again). One request is in flight at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.records import RecordsError
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.partition import Partition
from kafka_compat.storage.errors import StorageError
from kafka_compat.storage.leader_epoch import UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET

log = structlog.get_logger("kafka_compat.replication")

FETCHING, TRUNCATING, RESETTING = "fetching", "truncating", "resetting"
LATEST, EARLIEST = -1, -2  # ListOffsets timestamps
# Versions of the replica requests: Fetch with ReplicaState and topic ids, OffsetForLeaderEpoch
# with the replica id, ListOffsets with the current leader epoch.
VERSIONS = {m.ApiKey.FETCH: 17, m.ApiKey.OFFSET_FOR_LEADER_EPOCH: 4, m.ApiKey.LIST_OFFSETS: 7}

F = m.FetchRequest


@dataclass(slots=True)
class PartitionFetchState:
    topic_id: Uuid
    fetch_offset: int
    current_leader_epoch: int
    last_fetched_epoch: int  # -1: the log holds no epoch
    phase: str
    delayed_until: int = 0
    reset_timestamp: int = LATEST  # RESETTING: the ListOffsets step


@dataclass
class InFlight:
    correlation_id: int
    api_key: int
    deadline: int
    sent: dict = field(default_factory=dict)  # partition key -> (fetch offset, current leader epoch)


class Fetcher:
    """Fetches the partitions this broker (`node_id`) follows from `leader_id`. `partitions` finds
    a followed partition by key (None once it is gone)."""

    def __init__(self, node_id: int, leader_id: int, partitions: Callable[[tuple[str, int]], Partition | None],
                 config: ReplicationConfig):
        self.node_id, self.leader_id = node_id, leader_id
        self.partitions = partitions
        self.config = config
        self.states: dict[tuple[str, int], PartitionFetchState] = {}
        self.in_flight: InFlight | None = None
        self._correlation_id = 0

    def __bool__(self) -> bool:
        return bool(self.states)

    # -- partitions ------------------------------------------------------------------------

    def add(self, p: Partition) -> None:
        """Follow `p` from this leader in `p.leader_epoch`, from its log end. A partition already
        followed in that epoch keeps its state."""
        current = self.states.get(p.key)
        if current is not None and current.current_leader_epoch == p.leader_epoch:
            return
        latest = p.latest_epoch
        phase = FETCHING if latest != UNDEFINED_EPOCH and self.config.truncate_on_fetch else TRUNCATING
        self.states[p.key] = PartitionFetchState(p.topic_id, p.log.log_end_offset, p.leader_epoch, latest, phase)

    def remove(self, key: tuple[str, int]) -> None:
        self.states.pop(key, None)

    # -- requests --------------------------------------------------------------------------

    def request(self, now_ms: int, broker_epoch: int, correlation_id: int) -> Message | None:
        """The next request for the leader, if none is in flight: OffsetForLeaderEpoch for
        partitions truncating, ListOffsets for partitions resetting, else Fetch. Its answer is
        expected with `correlation_id`."""
        if self.in_flight is not None:
            return None
        self._correlation_id = correlation_id
        ready = {k: s for k, s in self.states.items() if s.delayed_until <= now_ms}
        for s in ready.values():
            s.delayed_until = 0
        truncating = {}
        for k, s in ready.items():
            if s.phase == TRUNCATING:
                p = self.partitions(k)
                if p is None:
                    continue
                if p.latest_epoch == UNDEFINED_EPOCH:
                    s.phase = FETCHING  # nothing to compare: Kafka "truncates to the high watermark", its fetch offset
                else:
                    truncating[k] = (s, p.latest_epoch)
        if truncating:
            return self._offset_for_leader_epoch(truncating, now_ms)
        resetting = {k: s for k, s in ready.items() if s.phase == RESETTING}
        if resetting:
            return self._list_offsets(resetting, now_ms)
        fetching = {k: s for k, s in ready.items() if s.phase == FETCHING}
        if fetching:
            return self._fetch(fetching, now_ms, broker_epoch)
        return None

    def _start(self, api_key: int, now_ms: int, sent: dict) -> None:
        self.in_flight = InFlight(self._correlation_id, api_key, now_ms + self.config.replica_socket_timeout_ms, sent)

    def _fetch(self, states: dict, now_ms: int, broker_epoch: int) -> m.FetchRequest:
        c = self.config
        by_topic: dict = {}
        for (topic, index), s in states.items():
            t = by_topic.get(topic)
            if t is None:
                t = by_topic[topic] = F.FetchTopic(topic=topic, topic_id=s.topic_id, partitions=[])
            p = self.partitions((topic, index))
            t.partitions.append(F.FetchPartition(
                partition=index, current_leader_epoch=s.current_leader_epoch, fetch_offset=s.fetch_offset,
                last_fetched_epoch=s.last_fetched_epoch if c.truncate_on_fetch else -1,
                log_start_offset=p.log.log_start_offset if p is not None else -1,
                partition_max_bytes=c.replica_fetch_max_bytes))
        self._start(m.ApiKey.FETCH, now_ms + c.replica_fetch_wait_max_ms,
                    {k: (s.fetch_offset, s.current_leader_epoch) for k, s in states.items()})
        return F(replica_state=F.ReplicaState(replica_id=self.node_id, replica_epoch=broker_epoch),
                 max_wait_ms=c.replica_fetch_wait_max_ms, min_bytes=c.replica_fetch_min_bytes,
                 max_bytes=c.replica_fetch_response_max_bytes, isolation_level=0, session_id=0, session_epoch=-1,
                 topics=list(by_topic.values()))

    def _offset_for_leader_epoch(self, truncating: dict, now_ms: int) -> m.OffsetForLeaderEpochRequest:
        R = m.OffsetForLeaderEpochRequest
        by_topic: dict = {}
        for (topic, index), (s, epoch) in truncating.items():
            by_topic.setdefault(topic, []).append(R.OffsetForLeaderPartition(
                partition=index, current_leader_epoch=s.current_leader_epoch, leader_epoch=epoch))
        self._start(m.ApiKey.OFFSET_FOR_LEADER_EPOCH, now_ms,
                    {k: (s.fetch_offset, s.current_leader_epoch) for k, (s, _) in truncating.items()})
        return R(replica_id=self.node_id,
                 topics=[R.OffsetForLeaderTopic(topic=t, partitions=ps) for t, ps in by_topic.items()])

    def _list_offsets(self, resetting: dict, now_ms: int) -> m.ListOffsetsRequest:
        R = m.ListOffsetsRequest
        by_topic: dict = {}
        for (topic, index), s in resetting.items():
            by_topic.setdefault(topic, []).append(R.ListOffsetsPartition(
                partition_index=index, current_leader_epoch=s.current_leader_epoch, timestamp=s.reset_timestamp))
        self._start(m.ApiKey.LIST_OFFSETS, now_ms,
                    {k: (s.fetch_offset, s.current_leader_epoch, s.reset_timestamp) for k, s in resetting.items()})
        return R(replica_id=self.node_id, isolation_level=0,
                 topics=[R.ListOffsetsTopic(name=t, partitions=ps) for t, ps in by_topic.items()])

    def failed(self, correlation_id: int, now_ms: int) -> None:
        """The request in flight will get no answer (timeout, lost connection): its partitions
        retry after the backoff."""
        if self.in_flight is not None and self.in_flight.correlation_id == correlation_id:
            self._delay(self.in_flight.sent, now_ms)
            self.in_flight = None

    def next_deadline(self) -> int | None:
        """When to call `expire` (a request's answer is overdue) or `request` (a backoff ends)."""
        if self.in_flight is not None:
            return self.in_flight.deadline
        return min((s.delayed_until for s in self.states.values() if s.delayed_until > 0), default=None)

    def expire(self, now_ms: int) -> int | None:
        """Give up on the request in flight if its answer is overdue; returns its correlation id."""
        if self.in_flight is not None and self.in_flight.deadline <= now_ms:
            correlation_id = self.in_flight.correlation_id
            self.failed(correlation_id, now_ms)
            return correlation_id
        return None

    # -- answers ---------------------------------------------------------------------------

    def on_response(self, correlation_id: int, response: Message, now_ms: int) -> None:
        flight = self.in_flight
        if flight is None or flight.correlation_id != correlation_id or flight.api_key != response.API_KEY:
            return  # late (given up on), duplicated or unknown
        self.in_flight = None
        if isinstance(response, m.FetchResponse):
            self._on_fetch(response, flight.sent, now_ms)
        elif isinstance(response, m.OffsetForLeaderEpochResponse):
            self._on_offsets_for_leader_epoch(response, flight.sent, now_ms)
        else:
            self._on_list_offsets(response, flight.sent, now_ms)

    def _current(self, key, sent: dict, phase: str) -> tuple[PartitionFetchState, Partition] | None:
        """The partition's state if the answer is still about it: same fetch offset and leader
        epoch as asked, same phase."""
        s = self.states.get(key)
        asked = sent.get(key)
        if s is None or asked is None or s.phase != phase or asked[:2] != (s.fetch_offset, s.current_leader_epoch):
            return None
        p = self.partitions(key)
        return (s, p) if p is not None else None

    def _on_fetch(self, response: m.FetchResponse, sent: dict, now_ms: int) -> None:
        names = {s.topic_id: k[0] for k, s in self.states.items()}
        if response.error_code != ErrorCode.NONE:
            self._delay(sent, now_ms)
            return
        for t in response.responses:
            topic = names.get(t.topic_id) if t.topic_id != Uuid() else t.topic
            for pd in t.partitions:
                key = (topic, pd.partition_index)
                found = self._current(key, sent, FETCHING)
                if found is None:
                    continue
                s, p = found
                error = pd.error_code
                if error == ErrorCode.NONE:
                    div = pd.diverging_epoch
                    if self.config.truncate_on_fetch and (div.epoch != -1 or div.end_offset != -1):
                        self._truncate(s, p, div.epoch, div.end_offset)
                    else:
                        self._append(key, s, p, pd, now_ms)
                elif error == ErrorCode.OFFSET_OUT_OF_RANGE:
                    s.phase, s.reset_timestamp = RESETTING, LATEST
                elif error == ErrorCode.FENCED_LEADER_EPOCH:
                    self._fenced(key, s, sent[key][1], now_ms)
                else:  # UNKNOWN_LEADER_EPOCH, NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_*, ...: try again later
                    s.delayed_until = now_ms + self.config.replica_fetch_backoff_ms

    def _append(self, key, s: PartitionFetchState, p: Partition, pd, now_ms: int) -> None:
        if s.fetch_offset != p.log.log_end_offset:
            log.error("replica_fetch_offset_mismatch", topic=key[0], partition=key[1], fetch_offset=s.fetch_offset,
                      log_end_offset=p.log.log_end_offset)
            self.states.pop(key)
            return
        records = pd.records if pd.records is not None else b""
        try:
            info = p.append_as_follower(records, pd.high_watermark, pd.log_start_offset)
        except RecordsError as e:  # damaged in transit or a torn read: fetched again after the backoff
            log.warning("replica_fetch_corrupt", topic=key[0], partition=key[1], offset=s.fetch_offset,
                        reason=e.message)
            s.delayed_until = now_ms + self.config.replica_fetch_backoff_ms
            return
        except StorageError as e:
            log.error("replica_append_failed", topic=key[0], partition=key[1], offset=s.fetch_offset, reason=e.message)
            self.states.pop(key)
            return
        if info is not None:
            s.fetch_offset = p.log.log_end_offset
            s.last_fetched_epoch = p.latest_epoch
            # To the back of the next Fetch: only its first partition is sure to get a batch when the
            # limits are tight (KIP-74), and the others must get their turn.
            self.states[key] = self.states.pop(key)

    def _truncate(self, s: PartitionFetchState, p: Partition, leader_epoch: int, leader_end: int) -> None:
        """Truncate to where the leader's (`leader_epoch`, `leader_end`) says the logs part
        (Kafka's getOffsetTruncationState), then fetch (or ask again) from the new end."""
        leo = p.log.log_end_offset
        complete = True
        if leader_end == UNDEFINED_EPOCH_OFFSET:
            offset = s.fetch_offset  # the leader cannot tell: keep what we have
        elif leader_epoch == UNDEFINED_EPOCH:
            offset = min(leader_end, leo)
        else:
            epoch, end = p.log.end_offset_for_epoch(leader_epoch)
            if end == UNDEFINED_EPOCH_OFFSET:
                offset = min(leader_end, leo)  # this log knows no epoch that old
            elif epoch != leader_epoch:
                offset, complete = min(end, leo), False  # the leader's epoch is unknown here: go one epoch back
            else:
                offset = min(end, leader_end, leo)
        p.truncate_to(offset)  # (even at the end: it drops an epoch entry this log has no data of)
        s.fetch_offset = p.log.log_end_offset
        s.last_fetched_epoch = p.latest_epoch
        s.phase = FETCHING if self.config.truncate_on_fetch or complete else TRUNCATING

    def _on_offsets_for_leader_epoch(self, response: m.OffsetForLeaderEpochResponse, sent: dict, now_ms: int) -> None:
        for t in response.topics:
            for r in t.partitions:
                key = (t.topic, r.partition)
                found = self._current(key, sent, TRUNCATING)
                if found is None:
                    continue
                s, p = found
                if r.error_code == ErrorCode.NONE:
                    self._truncate(s, p, r.leader_epoch, r.end_offset)
                elif r.error_code == ErrorCode.FENCED_LEADER_EPOCH:
                    self._fenced(key, s, sent[key][1], now_ms)
                else:
                    s.delayed_until = now_ms + self.config.replica_fetch_backoff_ms

    def _on_list_offsets(self, response: m.ListOffsetsResponse, sent: dict, now_ms: int) -> None:
        for t in response.topics:
            for r in t.partitions:
                key = (t.name, r.partition_index)
                found = self._current(key, sent, RESETTING)
                if found is None or sent[key][2] != found[0].reset_timestamp:
                    continue
                s, p = found
                if r.error_code == ErrorCode.FENCED_LEADER_EPOCH:
                    self._fenced(key, s, sent[key][1], now_ms)
                elif r.error_code != ErrorCode.NONE:
                    s.delayed_until = now_ms + self.config.replica_fetch_backoff_ms
                elif s.reset_timestamp == LATEST:
                    leo = p.log.log_end_offset
                    if r.offset < leo:  # the leader has less than this log (an unclean election)
                        log.warning("replica_reset_to_leader_end", topic=key[0], partition=key[1], offset=r.offset)
                        p.truncate_to(r.offset)
                        s.fetch_offset, s.last_fetched_epoch, s.phase = p.log.log_end_offset, p.latest_epoch, FETCHING
                    else:
                        s.reset_timestamp = EARLIEST
                else:
                    if r.offset > p.log.log_end_offset:  # all of this log is older than the leader's: start over there
                        p.truncate_fully_and_start_at(r.offset)
                    s.fetch_offset, s.last_fetched_epoch, s.phase = p.log.log_end_offset, p.latest_epoch, FETCHING

    # -- errors ----------------------------------------------------------------------------

    def _fenced(self, key, s: PartitionFetchState, asked_epoch: int, now_ms: int) -> None:
        """The leader is at a newer epoch than the one asked in: if we still follow the epoch we
        asked in, stop until the image brings the new one; else retry with the newer."""
        if asked_epoch == s.current_leader_epoch:
            self.states.pop(key)
        else:
            s.delayed_until = now_ms + self.config.replica_fetch_backoff_ms

    def _delay(self, sent: dict, now_ms: int) -> None:
        until = now_ms + self.config.replica_fetch_backoff_ms
        for key in sent:
            s = self.states.get(key)
            if s is not None:
                s.delayed_until = max(s.delayed_until, until)
