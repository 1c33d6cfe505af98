"""What a RaftNode hands its driver: a `Ready` of things to persist, send and apply.

The order is the contract (etcd's): persist `quorum_state` and flush the log, then send
`messages`, then load `snapshot` and apply `committed`, then `advance` the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from kafka_compat.protocol.primitives import Message
from kafka_compat.raft.log import OffsetAndEpoch
from kafka_compat.raft.quorum_state import ElectionState


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
    append_time_ms: int
    values: list[bytes]
    is_control: bool


class LeaderAndEpoch(NamedTuple):
    leader_id: int
    epoch: int


@dataclass
class Ready:
    """`quorum_state`: write it (atomically) if set. `flush`: fsync the log (the node already
    appended or truncated it). `messages`: send after both. `snapshot`: restore the state machine
    from it before applying `committed`. `leader`: set when the known leader or epoch changed.
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
