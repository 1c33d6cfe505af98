"""The coordinators' acks=all: appends of the group and transaction coordinators (to
`__consumer_offsets` / `__transaction_state` partitions) waiting for the high watermark, reported
to their machine in log order once it covers them, or once the wait fails."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import trio

from kafka_compat.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafka_compat.replication.partition import Partition
    from kafka_compat.replication.replica_manager import ReplicaManager


class _Unreplicated(NamedTuple):
    """Appends in the log that the high watermark does not cover yet."""

    appends: list[Any]
    end_offset: int  # the high watermark that makes them durable
    leader_epoch: int  # the epoch they were appended in
    deadline: float  # trio time


class AppendWaits:
    """Per partition, in append order. `start(fn, *args)` runs a task in the driver's nursery;
    `report(appends, error)` hands a finished wait to the driver (error None: durable)."""

    def __init__(self, replicas: ReplicaManager, start: Callable[..., None],
                 report: Callable[[list[Any], ErrorCode | None], None]):
        self._replicas, self._start, self._report = replicas, start, report
        self._waiting: dict[int, deque[_Unreplicated]] = {}

    def add(self, index: int, partition: Partition, appends: list[Any], last_offset: int, timeout_s: float) -> bool:
        """Wait for `appends` (ending at `last_offset`) on `partition`; False if nothing is to wait
        for: the high watermark covers them already, with nothing earlier still waiting."""
        waiting = self._waiting.get(index)
        if waiting is None and partition.high_watermark > last_offset:
            return False
        entry = _Unreplicated(appends, last_offset + 1, partition.leader_epoch, trio.current_time() + timeout_s)
        if waiting is not None:
            waiting.append(entry)
        else:
            self._waiting[index] = deque([entry])
            self._start(self._await, index, partition)
        return True

    def drop(self, index: int) -> None:
        """The partition is no longer led here: its machine answers the waiting requests itself."""
        waiting = self._waiting.get(index)
        if waiting:
            waiting.clear()

    async def _await(self, index: int, partition: Partition) -> None:
        waiting = self._waiting[index]
        try:
            while waiting:
                entry = waiting[0]
                code = await self._replicas.wait_acknowledged(partition, entry.end_offset, entry.leader_epoch,
                                                              entry.deadline)
                if not waiting or waiting[0] is not entry:
                    continue  # the partition was lost meanwhile
                waiting.popleft()
                self._report(entry.appends, None if code == ErrorCode.NONE else code)
        finally:
            del self._waiting[index]
