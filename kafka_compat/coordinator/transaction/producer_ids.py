"""Producer ids from the controller's blocks (Kafka's RPCProducerIdManager), without I/O.

The controller hands out blocks of ids (AllocateProducerIds, recorded as ProducerIdsRecord), so
ids stay unique across brokers and restarts. The next block is asked for once 90% of the current
one is used, so that it is there before the current one runs out; while no id is at hand, `next`
returns None and InitProducerId answers COORDINATOR_LOAD_IN_PROGRESS (retriable), as Kafka does.
"""

from __future__ import annotations

PREFETCH_AT = 0.9


class ProducerIdBlocks:
    def __init__(self) -> None:
        self._next = self._end = 0  # the current block: ids [next, end)
        self._length = 0
        self._spare: tuple[int, int] | None = None  # (start, length) of the block fetched ahead
        self.requested = False  # an AllocateProducerIds is under way

    @property
    def wants_block(self) -> bool:
        """Whether to ask the controller for a block now."""
        if self.requested or self._spare is not None:
            return False
        return self._next >= self._end or self._end - self._next <= self._length * (1 - PREFETCH_AT)

    def add_block(self, start: int, length: int) -> None:
        self.requested = False
        if self._next >= self._end:
            self._next, self._end, self._length = start, start + length, length
        else:
            self._spare = (start, length)

    def request_failed(self) -> None:
        self.requested = False

    def next(self) -> int | None:
        if self._next >= self._end and self._spare is not None:
            start, length = self._spare
            self._spare = None
            self._next, self._end, self._length = start, start + length, length
        if self._next >= self._end:
            return None
        pid = self._next
        self._next += 1
        return pid
