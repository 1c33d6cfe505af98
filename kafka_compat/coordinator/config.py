"""The group coordinator's settings, read from the broker configuration by Kafka's key names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INT_MAX = (1 << 31) - 1


@dataclass(frozen=True)
class GroupConfig:
    """Everything the coordinator reads from the broker's configuration (Kafka's defaults)."""

    offsets_topic_num_partitions: int = 50
    group_initial_rebalance_delay_ms: int = 3000
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1800000
    group_max_size: int = INT_MAX
    offset_metadata_max_bytes: int = 4096
    offsets_retention_ms: int = 10080 * 60 * 1000
    offsets_retention_check_interval_ms: int = 600000
    rebalance_protocols: tuple[str, ...] = ("classic", "consumer")
    consumer_session_timeout_ms: int = 45000
    consumer_heartbeat_interval_ms: int = 5000
    consumer_assignors: tuple[str, ...] = ("uniform", "range")
    consumer_max_size: int = INT_MAX
    offsets_commit_timeout_ms: int = 5000  # the wait for an append to be replicated
    offsets_load_buffer_size: int = 5 * 1024 * 1024  # bytes read at a time when loading a partition
    # Not broker keys in Kafka either (internal constants there):
    # a new classic member's JoinGroup is dropped after this long (Kafka: 5 minutes) ...
    classic_new_member_join_timeout_ms: int = 5 * 60 * 1000
    # ... and a consumer group re-reads its subscribed topics' metadata at least this often.
    consumer_metadata_refresh_interval_ms: int = 5 * 60 * 1000

    @classmethod
    def from_broker(cls, config: Mapping[str, Any] | Any) -> GroupConfig:
        """Read Kafka's keys from a broker config (anything with `.get(key, default)`)."""

        def get(key: str, default):
            value = config.get(key, default)
            return default if value is None else value

        retention_minutes = int(get("offsets.retention.minutes", 10080))
        return cls(
            offsets_topic_num_partitions=int(get("offsets.topic.num.partitions", 50)),
            group_initial_rebalance_delay_ms=int(get("group.initial.rebalance.delay.ms", 3000)),
            group_min_session_timeout_ms=int(get("group.min.session.timeout.ms", 6000)),
            group_max_session_timeout_ms=int(get("group.max.session.timeout.ms", 1800000)),
            group_max_size=int(get("group.max.size", INT_MAX)),
            offset_metadata_max_bytes=int(get("offset.metadata.max.bytes", 4096)),
            offsets_retention_ms=retention_minutes * 60 * 1000,
            offsets_retention_check_interval_ms=int(get("offsets.retention.check.interval.ms", 600000)),
            rebalance_protocols=tuple(_as_list(get("group.coordinator.rebalance.protocols", ["classic", "consumer"]))),
            consumer_session_timeout_ms=int(get("group.consumer.session.timeout.ms", 45000)),
            consumer_heartbeat_interval_ms=int(get("group.consumer.heartbeat.interval.ms", 5000)),
            consumer_assignors=tuple(_as_list(get("group.consumer.assignors", ["uniform", "range"]))),
            consumer_max_size=int(get("group.consumer.max.size", INT_MAX)),
            offsets_commit_timeout_ms=int(get("offsets.commit.timeout.ms", 5000)),
            offsets_load_buffer_size=int(get("offsets.load.buffer.size", 5 * 1024 * 1024)),
        )

    @property
    def consumer_protocol_enabled(self) -> bool:
        return "consumer" in self.rebalance_protocols


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value]


@dataclass(frozen=True)
class TransactionConfig:
    """What the transaction coordinator reads from the broker's configuration (Kafka's defaults)."""

    transactional_id_expiration_ms: int = 604_800_000
    transaction_max_timeout_ms: int = 900_000
    transaction_state_log_num_partitions: int = 50
    abort_timed_out_transaction_cleanup_interval_ms: int = 10_000
    remove_expired_transaction_cleanup_interval_ms: int = 3_600_000
    offsets_topic_num_partitions: int = 50  # AddOffsetsToTxn adds the group's __consumer_offsets partition
    # The cluster's finalized `transaction.version` feature: 2 on a new Kafka 4 cluster. Versions
    # 1+ write flexible transaction log values; the coordinator's own aborts use it.
    transaction_version: int = 2
    # Not a broker key in Kafka either: how long markers whose partition has no leader wait
    # before the next try, and before a failed completion record is written again.
    marker_retry_backoff_ms: int = 100

    @classmethod
    def from_broker(cls, config: Mapping[str, Any] | Any) -> TransactionConfig:
        """Read Kafka's keys from a broker config (anything with `.get(key, default)`)."""

        def get(key: str, default: int) -> int:
            value = config.get(key, default)
            return default if value is None else int(value)

        d = cls()
        return cls(
            transactional_id_expiration_ms=get("transactional.id.expiration.ms", d.transactional_id_expiration_ms),
            transaction_max_timeout_ms=get("transaction.max.timeout.ms", d.transaction_max_timeout_ms),
            transaction_state_log_num_partitions=get("transaction.state.log.num.partitions",
                                                     d.transaction_state_log_num_partitions),
            abort_timed_out_transaction_cleanup_interval_ms=get(
                "transaction.abort.timed.out.transaction.cleanup.interval.ms",
                d.abort_timed_out_transaction_cleanup_interval_ms),
            remove_expired_transaction_cleanup_interval_ms=get(
                "transaction.remove.expired.transaction.cleanup.interval.ms",
                d.remove_expired_transaction_cleanup_interval_ms),
            offsets_topic_num_partitions=get("offsets.topic.num.partitions", d.offsets_topic_num_partitions),
        )
