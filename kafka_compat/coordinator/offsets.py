"""Committed offsets: what one commit stores, and the per-partition store of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

NO_EXPIRE_TIMESTAMP = -1


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    """One committed offset, as an OffsetCommitValue record carries it."""

    offset: int
    leader_epoch: int  # -1 when the client did not send one
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int = NO_EXPIRE_TIMESTAMP  # only set by OffsetCommit v2-v4 with a retention time

    def expired(self, now_ms: int, base_timestamp_ms: int, retention_ms: int) -> bool:
        """Kafka's expiration rule: an explicit expire timestamp wins (old clients); otherwise the
        offset expires `retention_ms` after the base timestamp (commit time, or when the group
        became empty)."""
        if self.expire_timestamp_ms != NO_EXPIRE_TIMESTAMP:
            return now_ms >= self.expire_timestamp_ms
        return now_ms - base_timestamp_ms >= retention_ms


class OffsetStore:
    """group -> topic -> partition -> OffsetAndMetadata, with the operations replay needs."""

    __slots__ = ("_by_group",)

    def __init__(self) -> None:
        self._by_group: dict[str, dict[str, dict[int, OffsetAndMetadata]]] = {}

    def get(self, group: str, topic: str, partition: int) -> OffsetAndMetadata | None:
        return self._by_group.get(group, {}).get(topic, {}).get(partition)

    def put(self, group: str, topic: str, partition: int, value: OffsetAndMetadata) -> None:
        self._by_group.setdefault(group, {}).setdefault(topic, {})[partition] = value

    def remove(self, group: str, topic: str, partition: int) -> bool:
        topics = self._by_group.get(group)
        if not topics or topic not in topics or partition not in topics[topic]:
            return False
        del topics[topic][partition]
        if not topics[topic]:
            del topics[topic]
        if not topics:
            del self._by_group[group]
        return True

    def group(self, group: str) -> dict[str, dict[int, OffsetAndMetadata]]:
        """The group's offsets by topic and partition (empty if none); do not mutate."""
        return self._by_group.get(group, {})

    def groups(self) -> list[str]:
        return list(self._by_group)

    def items(self, group: str) -> Iterator[tuple[str, int, OffsetAndMetadata]]:
        for topic, parts in self._by_group.get(group, {}).items():
            for partition, value in parts.items():
                yield topic, partition, value

    def __len__(self) -> int:
        return sum(len(p) for t in self._by_group.values() for p in t.values())
