"""The leader-epoch cache: for each leader epoch, the first offset written in it.

Answers OffsetForLeaderEpoch (where did epoch N end?) so a follower or a consumer can find where
its log diverged. Persisted in the partition's `leader-epoch-checkpoint` ("epoch start_offset"
entries) on every change; changes are rare (one per leadership change), so this costs nothing on
the append path.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from pathlib import Path

from kafka_compat.storage import checkpoint

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    def __init__(self, path: Path):
        self.path = path
        self._epochs: list[int] = []
        self._offsets: list[int] = []
        for epoch, offset in checkpoint.read_entries(path, 2):
            self._epochs.append(int(epoch))
            self._offsets.append(int(offset))

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._epochs, self._offsets))

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that `epoch` starts at `start_offset`, if it is newer than the latest epoch.

        A new epoch whose start is at or below earlier entries' (a leader that truncated) replaces
        them, so start offsets stay increasing.
        """
        if epoch < 0 or (self._epochs and epoch <= self._epochs[-1]):
            return
        while self._offsets and self._offsets[-1] >= start_offset:
            self._epochs.pop()
            self._offsets.pop()
        self._epochs.append(epoch)
        self._offsets.append(start_offset)
        self._flush()

    def epoch_for_offset(self, offset: int) -> int:
        """The epoch in which `offset` was written (UNDEFINED_EPOCH if before the first entry)."""
        i = bisect_right(self._offsets, offset) - 1
        return self._epochs[i] if i >= 0 else UNDEFINED_EPOCH

    def end_offset_for_epoch(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """OffsetForLeaderEpoch: (the largest epoch <= `epoch`, the offset where it ended).

        The latest epoch ends at the log end offset; an older one at the start of the next epoch
        after it. Below the first known epoch: (`epoch`, first epoch's start offset). Above all known
        epochs or UNDEFINED: (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET). These are Kafka's answers.
        """
        if epoch == UNDEFINED_EPOCH or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if epoch == self._epochs[-1]:
            return epoch, log_end_offset
        higher = bisect_right(self._epochs, epoch)
        if higher == len(self._epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return epoch, self._offsets[0]
        return self._epochs[higher - 1], self._offsets[higher]

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after `end_offset` (the log was truncated there)."""
        i = bisect_left(self._offsets, end_offset)
        if i < len(self._offsets):
            del self._epochs[i:], self._offsets[i:]
            self._flush()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at `start_offset`: drop epochs wholly before it and move the start
        of the epoch holding it up to it."""
        i = bisect_right(self._offsets, start_offset) - 1
        if i < 0 or (i == 0 and self._offsets[0] == start_offset):
            return
        del self._epochs[:i], self._offsets[:i]
        self._offsets[0] = start_offset
        self._flush()

    def clear(self) -> None:
        if self._epochs:
            self._epochs.clear()
            self._offsets.clear()
        self._flush()

    def _flush(self) -> None:
        checkpoint.write_entries(self.path, self.entries())
