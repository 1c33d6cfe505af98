"""The broker's side of the group coordinator: `__consumer_offsets` as its log.

`start_group_coordinator` builds the coordinator runtime (kafka_compat.coordinator.runtime) with
three callables over this broker's replicas (append a batch and wait for the high watermark, read
a partition back in chunks, locate a partition's leader on a listener), starts it, and keeps it in
step with the metadata image: topics for KIP-848 subscriptions, and which `__consumer_offsets`
partitions this broker leads (each is loaded when led, dropped when lost).

`__consumer_offsets` is created on the first FindCoordinator, as Kafka does, with
`offsets.topic.num.partitions`, `offsets.topic.replication.factor` and a compacted log, by the
active controller (forwarded there from any broker).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import trio

from kafka_compat.coordinator.runtime import GroupCoordinatorRuntime, records_to_batch
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records import iter_headers, iter_records

if TYPE_CHECKING:
    from kafka_compat.server.broker import Broker

OFFSETS_TOPIC = "__consumer_offsets"


async def start_group_coordinator(broker: Broker, nursery: trio.Nursery) -> GroupCoordinatorRuntime:
    runtime = GroupCoordinatorRuntime(
        broker.config,
        append=lambda partition, records: _append(broker, partition, records),
        read=lambda partition: _read(broker, partition),
        locate=lambda partition, listener: _locate(broker, partition, listener),
        topics=_topics(broker.metadata))
    await nursery.start(runtime.run)

    def follow(old: MetadataImage | None, new: MetadataImage) -> None:
        if old is None or old.topics is not new.topics:
            runtime.set_topics(_topics(new))
        before = _led(broker, old) if old is not None else set()
        now = _led(broker, new)
        for p in sorted(before - now):
            runtime.on_partition_lost(p)
        for p in sorted(now - before):
            runtime.on_partition_leader(p)

    follow(None, broker.metadata)
    broker.quorum.add_listener(follow)  # after the replica manager's: the partition logs exist by then
    return runtime


async def ensure_offsets_topic(broker: Broker) -> None:
    """Create `__consumer_offsets` (through the active controller) if it does not exist yet."""
    if OFFSETS_TOPIC in broker.metadata.topics:
        return
    cfg = broker.config
    C = m.CreateTopicsRequest
    configs = {"cleanup.policy": "compact", "compression.type": "producer",
               "segment.bytes": str(cfg["offsets.topic.segment.bytes"])}
    response = await broker.create_topics([C.CreatableTopic(
        name=OFFSETS_TOPIC, num_partitions=cfg["offsets.topic.num.partitions"],
        replication_factor=cfg["offsets.topic.replication.factor"],
        configs=[C.CreatableTopicConfig(name=k, value=v) for k, v in configs.items()])])
    (result,) = response.topics
    if result.error_code not in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS):
        # e.g. fewer live brokers than the replication factor: clients retry FindCoordinator
        raise KafkaError(ErrorCode.COORDINATOR_NOT_AVAILABLE, result.error_message)


def _topics(image: MetadataImage) -> dict:
    return {name: (t.topic_id, len(t.partitions)) for name, t in image.topics.items()}


def _led(broker: Broker, image: MetadataImage) -> set[int]:
    topic = image.topics.get(OFFSETS_TOPIC)
    if topic is None:
        return set()
    return {index for index, state in topic.partitions.items() if state.leader == broker.node_id}


def _locate(broker: Broker, partition: int, listener: str) -> tuple[int, str, int] | None:
    image = broker.metadata
    topic = image.topics.get(OFFSETS_TOPIC)
    state = topic.partitions.get(partition) if topic is not None else None
    leader = image.brokers.get(state.leader) if state is not None else None
    if leader is None or leader.fenced:
        return None
    endpoint = leader.endpoint(listener)
    return None if endpoint is None else (leader.node_id, endpoint.host, endpoint.port)


async def _append(broker: Broker, partition: int, records) -> None:
    """Append one batch as the leader and return once the high watermark covers it (acks=all)."""
    p = broker.replicas.leader(OFFSETS_TOPIC, partition)
    min_isr = int(broker.metadata.topic_configs(OFFSETS_TOPIC).get("min.insync.replicas",
                                                                    broker.config["min.insync.replicas"]))
    # Raises KafkaError, e.g. MESSAGE_TOO_LARGE for a group's metadata larger than max.message.bytes.
    info = p.append(records_to_batch(records), -1, int(time.time() * 1000), None, min_isr)
    deadline = trio.current_time() + broker.config["offsets.commit.timeout.ms"] / 1000
    while p.high_watermark <= info.last_offset:
        if not await broker.replicas.purgatory.wait_any([p.key], deadline):
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT)


async def _read(broker: Broker, partition: int) -> AsyncIterator[tuple[bytes | None, bytes | None]]:
    """The partition's committed records, in order, read `offsets.load.buffer.size` at a time."""
    log = broker.replicas.get(OFFSETS_TOPIC, partition).log
    chunk = broker.config["offsets.load.buffer.size"]
    offset, end = log.log_start_offset, log.high_watermark
    while offset < end:
        view = memoryview(log.read_bytes(offset, chunk, max_offset=end))
        if not view:
            break
        for position, header in iter_headers(view):
            if not header.is_control:
                for record in iter_records(view, position, header):
                    yield record.key, record.value
            offset = header.last_offset + 1
        await trio.sleep(0)
