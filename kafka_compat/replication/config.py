"""The replication settings of a broker: Kafka's keys (`replica.lag.time.max.ms` is
`replica_lag_time_max_ms`) with Kafka's defaults."""

from __future__ import annotations

from dataclasses import dataclass

RACK_AWARE_SELECTOR = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


@dataclass(frozen=True)
class ReplicationConfig:
    replica_lag_time_max_ms: int = 30000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_min_bytes: int = 1
    replica_fetch_max_bytes: int = 1048576
    replica_fetch_response_max_bytes: int = 10485760
    replica_fetch_backoff_ms: int = 1000
    replica_socket_timeout_ms: int = 30000  # how long a replica request may go unanswered
    num_replica_fetchers: int = 1
    controller_socket_timeout_ms: int = 30000  # how long an AlterPartition may go unanswered
    replica_selector_class: str | None = None  # KIP-392; RACK_AWARE_SELECTOR or None
    # Kafka's inter-broker protocol 2.7+ detects divergence in Fetch itself (KIP-320, the
    # response's diverging epoch); before it a follower first asked OffsetForLeaderEpoch.
    truncate_on_fetch: bool = True
