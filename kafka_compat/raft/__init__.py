"""The metadata quorum: a sans-I/O Raft node in KRaft's shape, its log, snapshots and quorum state.

- node: `RaftNode` (step / tick / propose / ready / advance), with `election` and `replication`
  holding its RPC handlers and `states` its roles (Unattached, Prospective, Candidate, Follower,
  Leader, Resigned)
- ready: what the node hands out (`Ready`, `Outbound`, committed `Batch`es)
- log, file_log: the replicated log interface, in memory and on disk (`__cluster_metadata-0`)
- snapshots, quorum_state: snapshot files and the `quorum-state` file
- state_machine: the seam to what is replicated (`StateMachine`, `deliver`)
- wire, control, config: KRaft RPCs and control records, `controller.quorum.*` settings
- driver (trio, not imported here): runs a node, its requests to the other replicas over TCP
  (`kafka_compat.testing.raft_peer` runs one on its own, with a key/value toy)
"""

from kafka_compat.raft.config import Endpoint, QuorumConfig, parse_bootstrap_servers, parse_voters
from kafka_compat.raft.file_log import FileLog
from kafka_compat.raft.log import MemoryLog, OffsetAndEpoch, RaftLog
from kafka_compat.raft.node import NotLeaderError, RaftNode
from kafka_compat.raft.quorum_state import ElectionState, FileQuorumStateStore, MemoryQuorumStateStore
from kafka_compat.raft.ready import Batch, LeaderAndEpoch, Outbound, Ready
from kafka_compat.raft.snapshots import FileSnapshotStore, MemorySnapshotStore, SnapshotStore
from kafka_compat.raft.state_machine import StateMachine, deliver

__all__ = [
    "Batch", "ElectionState", "Endpoint", "FileLog", "FileQuorumStateStore", "FileSnapshotStore",
    "LeaderAndEpoch", "MemoryLog", "MemoryQuorumStateStore", "MemorySnapshotStore",
    "NotLeaderError", "OffsetAndEpoch", "Outbound", "QuorumConfig", "RaftLog", "RaftNode", "Ready", "SnapshotStore",
    "StateMachine", "deliver", "parse_bootstrap_servers", "parse_voters",
]
