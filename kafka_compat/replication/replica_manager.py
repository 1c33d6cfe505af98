"""The partitions this broker hosts, kept in step with the metadata image.

`apply_image` runs after every metadata change: it opens logs for new replicas, applies leadership
and ISR changes, pushes config changes into the logs and deletes the logs of removed topics.
Handlers find partitions here and wait in its purgatory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import structlog

from kafka_compat.metadata.image import BROKER_RESOURCE, MetadataImage, TopicImage
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.replication.log_syncer import LogSyncer
from kafka_compat.replication.partition import Partition
from kafka_compat.replication.purgatory import Purgatory
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager

log = structlog.get_logger("kafka_compat.replication")


class ReplicaManager:
    def __init__(self, node_id: int, logs: LogManager, broker_defaults: Callable[[MetadataImage], LogConfig]):
        self.node_id = node_id
        self.logs = logs
        self.broker_defaults = broker_defaults  # static + dynamic broker-wide topic defaults
        self.partitions: dict[tuple[str, int], Partition] = {}
        self.purgatory = Purgatory()
        # log.fsync.on.append: appends acknowledged once synced, off the event loop (run by the broker)
        self.syncer = LogSyncer(logs.log_dirs, Partition.synced) if logs.fsync_on_append else None
        self.image: MetadataImage | None = None  # the last one applied

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

    def log_config(self, image: MetadataImage, topic: str) -> LogConfig:
        return self.broker_defaults(image).with_overrides(image.topic_configs(topic))

    async def wait_acknowledged(self, partition: Partition, offset: int, deadline: float, acks: int = -1) -> bool:
        """Wait until an append ending at `offset` can be acknowledged with `acks` (-1: the high
        watermark reached it; 1: it is appended, synced with log.fsync.on.append) (True), or the
        trio `deadline` passes (False). Returns at once, without a checkpoint, when it already can."""
        while partition.acknowledged_end(acks) < offset:
            if not await self.purgatory.wait_any([partition.key], deadline):
                return False
        return True

    def _changed(self, partition: Partition) -> None:
        self.purgatory.notify(partition.key)

    def apply_image(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """Make local replicas match the image (called after each metadata change, and at start)."""
        self.image = new
        broker_keys = (BROKER_RESOURCE, ""), (BROKER_RESOURCE, str(self.node_id))
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
                    p = Partition(name, index, topic.topic_id, lg, self.node_id, self._changed,
                                  self.syncer.request if self.syncer is not None else None)
                    self.partitions[(name, index)] = p
                    created += 1
                    leading += state.leader == self.node_id
                p.update(state)
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

    def _drop_topic(self, topic: TopicImage) -> None:
        for index in topic.partitions:
            if (topic.name, index) in self.partitions:
                self._drop(topic.name, index)

    def _drop(self, name: str, index: int) -> None:
        p = self.partitions.pop((name, index))
        self.logs.delete(name, index)
        self.purgatory.notify(p.key)  # parked fetches re-check and see the partition gone
        log.info("replica_deleted", topic=name, partition=index)
