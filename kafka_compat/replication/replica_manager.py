"""The partitions this broker hosts and their replication, kept in step with the metadata image
(Kafka's ReplicaManager). Sans-I/O: the driver feeds it images, requests, answers and the time,
and sends what it returns.

- `apply_image(old, new, now_ms)` after every metadata change: opens logs for new replicas,
  applies leadership and ISR changes (a follower of a new leader epoch starts fetching from that
  leader, a new leader stops), pushes config changes into the logs and deletes the logs of
  removed topics. The first image must already hold this broker's own registration, and
  `broker_epoch` be set from it: an older image still shows what the previous incarnation led,
  and a restarted broker would lead it with whatever it lost in the crash (the simulator finds
  acknowledged records lost that way).
- As leader: `fetch_for_follower` answers a follower's Fetch, `offsets_for_leader_epoch` and
  `list_offsets_for_replica` its truncation questions; produce handlers append through
  `Partition.append` and complete acks=all with `Partition.check_enough_replicas`.
- Outbound: `poll(now_ms)` returns the requests to send now, as `Outbound`s: Fetch,
  OffsetForLeaderEpoch and ListOffsets to leaders (one fetcher per leader and
  `num.replica.fetchers` slot, one request in flight each) and AlterPartition to the active
  controller (`CONTROLLER`); it also shrinks ISRs every replica.lag.time.max.ms / 2. Their
  answers go to `on_response`, their failures (no connection, no answer) to `request_failed`.
  `next_deadline()` says when to poll again if nothing arrives; `on_work()` is called when there
  is something new to send before then (fetchers added, an ISR change queued).
- Waiters: whenever a partition's high watermark moves, its leader log grows or its role
  changes, `waiters.notify(key)` wakes what waits on that partition (acks=all produces, long-poll
  fetches, followers' fetches parked at the leader).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator
from typing import NamedTuple

import structlog

from kafka_compat.metadata.image import BROKER_RESOURCE, NO_LEADER, MetadataImage, TopicImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message
from kafka_compat.replication.alter_partition import AlterPartitionManager
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.fetcher import Fetcher
from kafka_compat.replication.partition import Partition
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager

log = structlog.get_logger("kafka_compat.replication")

CONTROLLER = -1  # Outbound.dest of AlterPartition: the active controller, wherever it is
FR = m.FetchResponse


class Outbound(NamedTuple):
    """A request to send to `dest` (a broker id, or CONTROLLER); its answer comes back to
    `on_response` with `correlation_id`."""

    dest: int
    message: Message
    correlation_id: int
    channel: int = 0  # the fetcher slot (num.replica.fetchers): each has a connection of its own


def wall_clock_ms() -> int:
    """The time of the trio server's replication: the wall clock, as Kafka's (produce handlers and
    the group coordinator append with it, and the followers' catch-up times must compare to it)."""
    return int(time.time() * 1000)


class ReplicaManager:
    partition_class = Partition
    fetcher_class = Fetcher

    def __init__(self, node_id: int, logs: LogManager, broker_defaults: Callable[[MetadataImage], LogConfig], *,
                 config: ReplicationConfig | None = None, waiters=None, clock: Callable[[], int] = wall_clock_ms):
        self.node_id = node_id
        self.logs = logs
        self.broker_defaults = broker_defaults  # static + dynamic broker-wide topic defaults
        self.config = config or ReplicationConfig()
        if waiters is None:
            from kafka_compat.replication.purgatory import Purgatory  # the trio driver's; a simulator passes its own
            waiters = Purgatory()
        self.purgatory = waiters
        self.clock = clock  # for callers that do not pass the time
        self.partitions: dict[tuple[str, int], Partition] = {}
        # log.fsync.on.append: appends acknowledged once synced, off the event loop (run by the broker)
        self.syncer = None
        if logs.fsync_on_append:
            from kafka_compat.replication.log_syncer import LogSyncer  # trio's; the simulator syncs nothing
            self.syncer = LogSyncer(logs.log_dirs, lambda p: p.synced(self.clock()))
        self.image: MetadataImage | None = None  # the last one applied
        self.brokers: dict = {}  # registered brokers, from the last image (ISR eligibility, racks)
        self.broker_epoch = -1  # set by the driver once this broker is registered
        self.fetchers: dict[tuple[int, int], Fetcher] = {}  # (leader, fetcher id) -> fetcher
        self._fetching: dict[tuple[str, int], tuple[int, int]] = {}  # partition -> its fetcher
        self.alter_partition = AlterPartitionManager(self.config)
        self._in_flight: dict[int, tuple[int, int] | None] = {}  # correlation id -> fetcher (None: AlterPartition)
        self._next_correlation = 0
        self._next_shrink_check: int | None = None
        self.on_work: Callable[[], None] = lambda: None  # the driver's wake-up

    def __iter__(self) -> Iterator[Partition]:
        return iter(self.partitions.values())

    def get(self, topic: str, index: int) -> Partition:
        """The partition, or KafkaError: NOT_LEADER_OR_FOLLOWER if it exists on other brokers only
        (the client's metadata is stale), UNKNOWN_TOPIC_OR_PARTITION if it does not exist."""
        p = self.partitions.get((topic, index))
        if p is None:
            t = self.image.topics.get(topic) if self.image is not None else None
            if t is not None and index in t.partitions:
                raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        return p

    def leader(self, topic: str, index: int, current_leader_epoch: int = -1) -> Partition:
        p = self.get(topic, index)
        p.check_leader(current_leader_epoch)
        return p

    def readable(self, topic: str, index: int, current_leader_epoch: int, allow_follower: bool) -> Partition:
        """The partition for a consumer's read: the leader, or with `allow_follower` (Fetch v11+,
        which carries the client's rack: KIP-392) any replica, which serves up to its high
        watermark."""
        p = self.get(topic, index)
        p.check_leader(current_leader_epoch, require_leader=not allow_follower)
        return p

    def log_config(self, image: MetadataImage, topic: str) -> LogConfig:
        return self.broker_defaults(image).with_overrides(image.topic_configs(topic))

    async def wait_acknowledged(self, partition: Partition, offset: int, leader_epoch: int, deadline: float,
                                acks: int = -1) -> ErrorCode:
        """Wait until an append made in `leader_epoch` and ending at `offset` can be acknowledged
        with `acks`: -1 as `Partition.check_enough_replicas` decides (NONE,
        NOT_ENOUGH_REPLICAS_AFTER_APPEND, NOT_LEADER_OR_FOLLOWER), 1 once it is appended (synced,
        with log.fsync.on.append); REQUEST_TIMED_OUT when the trio `deadline` passes first.
        Returns at once, without a checkpoint, when it already can."""
        while True:
            if acks == -1:
                done, code = partition.check_enough_replicas(offset, leader_epoch)
            elif partition.acknowledged_end(acks) >= offset:
                done, code = True, ErrorCode.NONE
            elif not partition.is_leader or partition.leader_epoch != leader_epoch:
                done, code = True, ErrorCode.NOT_LEADER_OR_FOLLOWER  # not synced, and maybe truncated
            else:
                done = False
            if done:
                return code
            if not await self.purgatory.wait_any([partition.key], deadline):
                return ErrorCode.REQUEST_TIMED_OUT

    def _changed(self, partition: Partition) -> None:
        self.purgatory.notify(partition.key)

    # -- PartitionHost --------------------------------------------------------------------------

    def submit_alter_partition(self, partition: Partition) -> bool:
        if not self.alter_partition.submit(partition):
            return False
        self.on_work()
        return True

    # -- the metadata image ---------------------------------------------------------------------

    def apply_image(self, old: MetadataImage | None, new: MetadataImage, now_ms: int | None = None) -> None:
        """Make local replicas match the image (called after each metadata change, and at start)."""
        now_ms = self.clock() if now_ms is None else now_ms
        self.image = new
        self.brokers = new.brokers
        broker_keys = ((BROKER_RESOURCE, ""), (BROKER_RESOURCE, str(self.node_id)))
        defaults_changed = old is None or any(old.configs.get(k) != new.configs.get(k) for k in broker_keys)
        for name, topic in new.topics.items():
            before = old.topics.get(name) if old is not None else None
            if before is not None and before.topic_id != topic.topic_id:
                self._drop_topic(before)  # deleted and created again under the same name
                before = None
            # Topic configs live beside the topic in the image: an altered config leaves `topic` as it was.
            configs_changed = before is not None and old.topic_configs(name) != new.topic_configs(name)
            if before is topic and not defaults_changed and not configs_changed:
                continue
            config = None
            created = leading = 0
            for index, state in topic.partitions.items():
                if self.node_id not in state.replicas:
                    if (name, index) in self.partitions:
                        self._drop(name, index)
                    continue
                p = self.partitions.get((name, index))
                if p is None:
                    config = config or self.log_config(new, name)
                    lg = self.logs.create(name, index, config)
                    if lg.config != config:  # a log found on disk at start was opened with the defaults
                        lg.update_config(config)
                    p = self.partition_class(name, index, topic.topic_id, lg, self.node_id, self._changed, self,
                                             self.syncer.request if self.syncer is not None else None)
                    self.partitions[(name, index)] = p
                    created += 1
                    leading += state.leader == self.node_id
                if p.update(state, now_ms):
                    self._follow(p)
                elif p.is_leader or p.leader == NO_LEADER:
                    self._stop_fetching(p.key)
            if created:  # one line a topic, not one a partition
                log.info("replicas_created", topic=name, partitions=created, leading=leading)
            if before is not None and (defaults_changed or configs_changed):
                config = config or self.log_config(new, name)
                for index in topic.partitions:
                    p = self.partitions.get((name, index))
                    if p is not None:
                        p.log.update_config(config)
        if old is not None:
            for name, topic in old.topics.items():
                current = new.topics.get(name)
                if current is None or current.topic_id != topic.topic_id:
                    self._drop_topic(topic)
        self.on_work()

    def _drop_topic(self, topic: TopicImage) -> None:
        for index in topic.partitions:
            if (topic.name, index) in self.partitions:
                self._drop(topic.name, index)

    def _drop(self, name: str, index: int) -> None:
        p = self.partitions.pop((name, index))
        self._stop_fetching(p.key)
        self.logs.delete(name, index)
        self.purgatory.notify(p.key)  # parked fetches re-check and see the partition gone
        log.info("replica_deleted", topic=name, partition=index)

    # -- fetchers -------------------------------------------------------------------------------

    def _fetcher_id(self, key: tuple[str, int]) -> int:
        n = self.config.num_replica_fetchers
        return 0 if n <= 1 else (zlib.crc32(key[0].encode()) * 31 + key[1]) % n

    def _follow(self, p: Partition) -> None:
        fk = (p.leader, self._fetcher_id(p.key))
        if self._fetching.get(p.key) != fk:
            self._stop_fetching(p.key)
        f = self.fetchers.get(fk)
        if f is None:
            f = self.fetchers[fk] = self.fetcher_class(self.node_id, p.leader, self.partitions.get, self.config)
        f.add(p)
        self._fetching[p.key] = fk
        log.debug("replica_following", topic=p.topic, partition=p.index, leader=p.leader, leader_epoch=p.leader_epoch,
                 log_end_offset=p.log.log_end_offset)

    def _stop_fetching(self, key: tuple[str, int]) -> None:
        fk = self._fetching.pop(key, None)
        if fk is not None and fk in self.fetchers:  # (a fetcher that dropped all its partitions is gone)
            self.fetchers[fk].remove(key)

    # -- outbound requests ----------------------------------------------------------------------

    def poll(self, now_ms: int) -> list[Outbound]:
        """What to send now: fetchers' requests, queued ISR changes; and ISRs shrunk when due."""
        out: list[Outbound] = []
        if self._next_shrink_check is None or now_ms >= self._next_shrink_check:
            self._next_shrink_check = now_ms + max(self.config.replica_lag_time_max_ms // 2, 1)
            for p in self.partitions.values():
                if p.is_leader:
                    p.maybe_shrink_isr(now_ms)
        for fk, f in list(self.fetchers.items()):
            self._in_flight.pop(f.expire(now_ms), None)
            corr = self._next_correlation + 1
            request = f.request(now_ms, self.broker_epoch, corr)
            if request is not None:
                out.append(Outbound(fk[0], request, self._correlate(fk), fk[1]))
            elif not f and f.in_flight is None:
                del self.fetchers[fk]
        self._in_flight.pop(self.alter_partition.expire(now_ms), None)
        request = self.alter_partition.request(now_ms, self.node_id, self.broker_epoch, self._next_correlation + 1)
        if request is not None:
            out.append(Outbound(CONTROLLER, request, self._correlate(None)))
        return out

    def _correlate(self, target: tuple[int, int] | None) -> int:
        self._next_correlation += 1
        self._in_flight[self._next_correlation] = target
        return self._next_correlation

    def on_response(self, correlation_id: int, response: Message, now_ms: int) -> None:
        """The answer to a request `poll` returned (late, duplicated or unknown ones are ignored)."""
        if correlation_id not in self._in_flight:
            return
        target = self._in_flight.pop(correlation_id)
        if target is None:
            if isinstance(response, m.AlterPartitionResponse):
                self.alter_partition.on_response(correlation_id, response, now_ms)
        elif (f := self.fetchers.get(target)) is not None:
            f.on_response(correlation_id, response, now_ms)

    def request_failed(self, correlation_id: int, now_ms: int) -> None:
        """A request `poll` returned will get no answer (no connection, no answer in time)."""
        if correlation_id not in self._in_flight:
            return
        target = self._in_flight.pop(correlation_id)
        if target is None:
            self.alter_partition.failed(correlation_id, now_ms)
        elif (f := self.fetchers.get(target)) is not None:
            f.failed(correlation_id, now_ms)

    def next_deadline(self) -> int | None:
        """When `poll` must run again if nothing arrives (None: only on news)."""
        times = [t for f in self.fetchers.values() if (t := f.next_deadline()) is not None]
        if (t := self.alter_partition.next_deadline()) is not None:
            times.append(t)
        if self._next_shrink_check is not None and any(p.is_leader and len(p.isr) > 1 for p in self):
            times.append(self._next_shrink_check)
        return min(times, default=None)

    # -- a follower's requests, as leader ---------------------------------------------------------

    def fetch_for_follower(self, request: m.FetchRequest, version: int, now_ms: int,
                           update_state: bool = True) -> tuple[m.FetchResponse, bool]:
        """Answer a follower's Fetch. Returns (response, done): done when it must be sent now
        (enough bytes, an error, a divergence, a high watermark new to the follower, or no wait
        asked); otherwise the driver parks it
        until one of its partitions changes or max_wait_ms passes, then calls again with
        `update_state` False and sends whatever it gets."""
        replica_id = request.replica_state.replica_id if version >= 15 else request.replica_id
        replica_epoch = request.replica_state.replica_epoch if version >= 15 else -1
        image = self.image
        remaining = request.max_bytes
        total, done = 0, request.max_wait_ms <= 0
        topics = []
        for t in request.topics:
            if version >= 13:
                topic = image.topics_by_id.get(t.topic_id) if image is not None else None
                name = topic.name if topic is not None else None
            else:
                name = t.topic
            parts = []
            for fp in t.partitions:
                pd = FR.PartitionData(partition_index=fp.partition, error_code=ErrorCode.NONE, high_watermark=-1,
                                      last_stable_offset=-1, log_start_offset=-1, preferred_read_replica=-1,
                                      records=b"")
                parts.append(pd)
                try:
                    if name is None:
                        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID)
                    p = self.get(name, fp.partition)
                    got = p.fetch_for_follower(replica_id, replica_epoch, fp.fetch_offset, fp.log_start_offset,
                                               fp.last_fetched_epoch if version >= 12 else -1,
                                               fp.current_leader_epoch if version >= 9 else -1,
                                               min(fp.partition_max_bytes, remaining), now_ms,
                                               min_one_batch=total == 0, update_state=update_state)
                except KafkaError as e:
                    pd.error_code, done = e.code, True
                    if name is not None and (p := self.partitions.get((name, fp.partition))) is not None \
                            and e.code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH):
                        pd.current_leader = FR.LeaderIdAndEpoch(leader_id=p.leader, leader_epoch=p.leader_epoch)
                    continue
                pd.high_watermark = pd.last_stable_offset = got.high_watermark
                pd.log_start_offset = got.log_start_offset
                if got.diverging_epoch is not None:
                    epoch, end = got.diverging_epoch
                    pd.diverging_epoch = FR.EpochEndOffset(epoch=epoch, end_offset=end)
                    done = True
                done = done or got.news
                pd.records = got.records
                total += len(got.records)
                remaining = max(remaining - len(got.records), 0)
            topics.append(FR.FetchableTopicResponse(topic=name if name is not None else t.topic, topic_id=t.topic_id,
                                                    partitions=parts))
        done = done or total >= request.min_bytes
        return FR(throttle_time_ms=0, error_code=ErrorCode.NONE, session_id=0, responses=topics), done

    def offsets_for_leader_epoch(self, request: m.OffsetForLeaderEpochRequest) -> m.OffsetForLeaderEpochResponse:
        """OffsetForLeaderEpoch, from a follower or a consumer: served by the leader only."""
        R = m.OffsetForLeaderEpochResponse
        topics = []
        for t in request.topics:
            parts = []
            for rp in t.partitions:
                out = R.EpochEndOffset(partition=rp.partition, error_code=ErrorCode.NONE, leader_epoch=-1,
                                       end_offset=-1)
                try:
                    p = self.get(t.topic, rp.partition)
                    out.leader_epoch, out.end_offset = p.last_offset_for_leader_epoch(rp.current_leader_epoch,
                                                                                      rp.leader_epoch)
                except KafkaError as e:
                    out.error_code = e.code
                parts.append(out)
            topics.append(R.OffsetForLeaderTopicResult(topic=t.topic, partitions=parts))
        return R(throttle_time_ms=0, topics=topics)

    def list_offsets_for_replica(self, request: m.ListOffsetsRequest) -> m.ListOffsetsResponse:
        """ListOffsets from a follower: the leader's log end (-1) or start (-2)."""
        R = m.ListOffsetsResponse
        topics = []
        for t in request.topics:
            parts = []
            for rp in t.partitions:
                out = R.ListOffsetsPartitionResponse(partition_index=rp.partition_index, error_code=ErrorCode.NONE,
                                                     timestamp=-1, offset=-1, leader_epoch=-1)
                try:
                    p = self.get(t.name, rp.partition_index)
                    out.offset = p.offset_for_replica(rp.timestamp, rp.current_leader_epoch)
                    out.leader_epoch = p.leader_epoch
                except KafkaError as e:
                    out.error_code = e.code
                parts.append(out)
            topics.append(R.ListOffsetsTopicResponse(name=t.name, partitions=parts))
        return R(throttle_time_ms=0, topics=topics)
