"""The group coordinator: classic (JoinGroup/SyncGroup) and KIP-848 consumer groups, committed
offsets, persisted in `__consumer_offsets`.

- `machine.GroupCoordinator`: the sans-I/O state machine (requests, time and records in; responses,
  appends and deadlines out), driven by `kafka_compat.server.group_coordinator` (trio, the log);
- `classic`, `consumer`, `offsets`: the groups of each protocol and the committed offsets, their
  state and the APIs over them (the machine's `requests` table says which API goes where);
- `records`: the `__consumer_offsets` record formats; `hashing.partition_for`: which partition
  holds a group; `assignors`: the server-side assignors of consumer groups.
"""

from kafka_compat.coordinator.config import GroupConfig
from kafka_compat.coordinator.hashing import java_string_hash, partition_for
from kafka_compat.coordinator.machine import Append, GroupCoordinator, Load

__all__ = ["Append", "GroupConfig", "GroupCoordinator", "Load", "java_string_hash", "partition_for"]
