"""A client for the Kafka protocol, built on the project's codecs. It talks to any Kafka-compatible
cluster, not only this project's broker.

- connection: `Connection`, one outbound trio connection with pipelined requests, matched by
  correlation id, reconnected with backoff; a node's own requests to its peers use it (Raft's
  RPCs, the channel to the active controller).
- blocking: `BrokerConnection`, one blocking connection to one broker, for the CLI and for tests
  that speak the wire protocol directly.
- cluster: `Cluster`, blocking connections to a whole cluster from a bootstrap list, routing each
  request to the partition leader, the group coordinator or any broker.
- partitioner: `murmur2` / `partition_for_key`, the Java producer's partitioner for keyed records.
- fetched: `iter_fetched` / `fetched_end`, the records of a Fetch response's record bytes, whatever
  their format, and where the next fetch starts.
"""

from kafka_compat.client.blocking import (
    BrokerConnection,
    BrokerUnreachable,
    ConnectionClosed,
    UnsupportedApi,
    error_code,
    split_address,
)
from kafka_compat.client.cluster import (
    COORDINATOR_MOVED,
    EARLIEST,
    LATEST,
    LEADER_MOVED,
    Cluster,
    ClusterMeta,
    Node,
    PartitionMeta,
    TopicMeta,
)
from kafka_compat.client.fetched import fetched_end, iter_fetched
from kafka_compat.client.partitioner import murmur2, partition_for_key

__all__ = [
    "COORDINATOR_MOVED", "EARLIEST", "LATEST", "LEADER_MOVED", "BrokerConnection", "BrokerUnreachable", "Cluster",
    "ClusterMeta", "ConnectionClosed", "Node", "PartitionMeta", "TopicMeta", "UnsupportedApi", "error_code",
    "fetched_end", "iter_fetched", "murmur2", "partition_for_key", "split_address",
]
