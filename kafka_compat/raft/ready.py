"""What a RaftNode hands its driver: a `Ready` of things to persist, send and apply.

The order is the contract (etcd's): persist (`persist` below: the quorum state, a snapshot and
the log trim or reset it allows, the log flush), then send `messages`, then load `snapshot` and
apply `committed`, then `advance` the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from kafka_compat.protocol.primitives import Message
from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.quorum_state import ElectionState

if TYPE_CHECKING:
    from kafka_compat.raft.log import RaftLog
    from kafka_compat.raft.quorum_state import QuorumStateStore
    from kafka_compat.raft.snapshots import SnapshotStore


class Outbound(NamedTuple):
    """A message to send. A request's correlation id is the node's own (its answer must come
    back with it); a response's is the one the node was given with the request, so the driver
    can route it to the connection it came from. `dest` is a node id (None: an anonymous client)."""

    dest: int | None
    message: Message
    correlation_id: int

    @property
    def is_request(self) -> bool:
        return self.message.KIND == "request"


class Batch(NamedTuple):
    """A committed batch for the state machine: data records' values, or a control batch (with
    no values) that still moves the applied offset."""

    base_offset: int
    last_offset: int
    epoch: int
    values: list[bytes]
    is_control: bool


class LeaderAndEpoch(NamedTuple):
    leader_id: int
    epoch: int


# What the log does once a snapshot is stored.
KEEP_LOG = "keep"
TRIM_LOG = "trim"  # drop the batches below the snapshot's end (a snapshot of this node's own state)
RESET_LOG = "reset"  # drop every batch and start at the snapshot's end (a snapshot fetched from the leader)


class SnapshotWrite(NamedTuple):
    """Store `data` as snapshot `snapshot_id`, durably, and only then change the log as `log_then`
    says (forgetting the older snapshots unless the log is kept): a crash in between leaves the
    snapshot and the whole log, never a trimmed log without its snapshot."""

    snapshot_id: OffsetAndEpoch
    data: bytes
    log_then: str = KEEP_LOG


@dataclass
class Ready:
    """`quorum_state`: write it (atomically) if set. `snapshot_write`: store that snapshot, then
    trim or reset the log. `flush`: fsync the log (the node already appended or truncated it).
    `messages`: send after all three. `snapshot`: restore the state machine from it (already in
    the store) before applying `committed`. `leader`: set when the known leader or epoch changed.
    `deadline_ms`: when to `tick` next if nothing arrives. `log_end_offset`: what `flush` made
    durable (the node reads it back in `advance`)."""

    quorum_state: ElectionState | None
    flush: bool
    messages: list[Outbound]
    snapshot: OffsetAndEpoch | None
    committed: list[Batch]
    leader: LeaderAndEpoch | None
    deadline_ms: int
    log_end_offset: int = 0
    snapshot_write: SnapshotWrite | None = None

    @property
    def writes(self) -> bool:
        """Whether `persist` has anything to do (a driver skips its worker thread otherwise)."""
        return self.quorum_state is not None or self.snapshot_write is not None or self.flush


def persist(rd: Ready, quorum_state: QuorumStateStore, log: RaftLog, snapshots: SnapshotStore) -> None:
    """The disk's part of a Ready, in the contract's order; durable when it returns. Blocking:
    a driver runs it in a worker thread, the simulator inline."""
    if rd.quorum_state is not None:
        quorum_state.write(rd.quorum_state)
    write = rd.snapshot_write
    if write is not None:
        snapshots.write(write.snapshot_id, write.data)
        if write.log_then == RESET_LOG:
            log.reset(write.snapshot_id)
        elif write.log_then == TRIM_LOG:
            log.trim_before(write.snapshot_id)
        if write.log_then != KEEP_LOG:
            snapshots.delete_before(write.snapshot_id)
    if rd.flush:
        log.flush()
