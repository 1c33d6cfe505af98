"""The seam between the quorum and what it replicates.

A state machine takes committed batches in log order and can describe itself as a list of
records (its snapshot) and be rebuilt from one. The metadata controller plugs its MetadataImage in
here: batches of serialized metadata records in, the image's records out as a snapshot.
`deliver` is the one place a Ready's snapshot and committed batches reach the state machine.
"""

from __future__ import annotations

from typing import Protocol

from kafka_compat.raft import snapshots as snapshot_files
from kafka_compat.raft.ready import Batch, Ready
from kafka_compat.raft.snapshots import SnapshotStore


class StateMachine(Protocol):
    def apply(self, batch: Batch) -> None:
        """Apply one committed batch (control batches carry no values but still count)."""

    def snapshot(self) -> tuple[int, list[bytes]]:
        """(offset just past the last applied record, records that rebuild the current state)."""

    def restore(self, end_offset: int, values: list[bytes]) -> None:
        """Replace the whole state by the one a snapshot describes."""


def deliver(ready: Ready, state_machine: StateMachine, snapshots: SnapshotStore) -> None:
    if ready.snapshot is not None:
        values = snapshot_files.read_values(snapshots.read(ready.snapshot))
        state_machine.restore(ready.snapshot.offset, values)
    for batch in ready.committed:
        state_machine.apply(batch)

