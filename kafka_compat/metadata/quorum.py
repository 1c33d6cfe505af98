"""The metadata log `__cluster_metadata-0`, replicated by the Raft quorum, and the image built from it.

`MetadataQuorum` runs this node's Raft replica (a voter on a controller, an observer on a broker
that is only a broker) with the metadata state machine: every committed batch of metadata records
is applied, in log order, to the MetadataImage that handlers read, on every node. Records enter
the log only through `propose`, on the leader, which is where the active controller runs. A single
node with no voters configured is a one-voter quorum: it elects itself at once and commits as soon
as a batch is on its own disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import trio

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.records import encode_record
from kafka_compat.metadata.state_machine import Listener, MetadataStateMachine
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Message
from kafka_compat.raft.config import Endpoint, QuorumConfig
from kafka_compat.raft.driver import RaftDriver
from kafka_compat.raft.node import LeaderAndEpoch
from kafka_compat.raft.states import Leader


class MetadataQuorum:
    """This node's replica of the metadata log; the other replicas reach it (`driver`) through the
    node's controller listener."""

    def __init__(self, node_id: int, config: QuorumConfig, directory: Path, cluster_id: str, *,
                 snapshot_every_bytes: int = 0):
        self.node_id = node_id
        self.config = config
        self.state = MetadataStateMachine(cluster_id)
        self.driver = RaftDriver(node_id, config, Path(directory), self.state,
                                 snapshot_every_bytes=snapshot_every_bytes)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await self.driver.run(task_status=task_status)

    @property
    def image(self) -> MetadataImage:
        return self.state.image

    def add_listener(self, listener: Listener) -> None:
        """Called with (old image, new image) after each committed batch is applied."""
        self.state.add_listener(listener)

    @property
    def leader(self) -> LeaderAndEpoch:
        return self.driver.leader

    @property
    def is_voter(self) -> bool:
        return self.driver.node.is_voter

    @property
    def active(self) -> bool:
        """Leader, with everything committed before its epoch applied: the image a controller
        decides against is the whole committed log."""
        s = self.driver.node.state
        return isinstance(s, Leader) and self.driver.node.applied_offset > s.epoch_start_offset

    @property
    def applied_offset(self) -> int:
        """The offset of the last batch applied here (-1 before any)."""
        return self.state.end_offset - 1

    @property
    def next_offset(self) -> int:
        """Where the next proposed record lands (meaningful on the leader)."""
        return self.driver.log.end_offset

    def endpoint(self, node_id: int) -> Endpoint | None:
        return self.driver.node.endpoints.get(node_id)

    async def propose(self, records: Iterable[Message]) -> int:
        """Append `records` as one batch (leader only) and return its last offset once committed
        and applied here. Raises NotLeaderError or CommitLost; callers bound the wait."""
        offset = await self.driver.propose([encode_record(r) for r in records])
        return offset.offset

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until `predicate()` holds (checked whenever the quorum's state or the image changed)."""
        await self.driver.wait_for(predicate)

    async def describe_quorum(self, version: int) -> m.DescribeQuorumResponse:
        return await self.driver.describe_quorum(version)

    async def shutdown(self, timeout: float = 2.0) -> None:
        """Stop; a leader resigns first so that the others elect a successor without waiting out a
        fetch timeout."""
        await self.driver.shutdown(timeout)

