"""`log.fsync.on.append` off the event loop: appends synced by one worker thread per log
directory, in batches, and acknowledged once synced.

A partition that appended asks for a sync (`request`). Each log directory's task takes every log
that asked since its last pass and syncs them (`Log.sync`) in one worker thread, so the appends
that arrive while a sync runs share the next one, as group commit does. Then each partition hears
of it (`on_synced`): its high watermark moves over what is now on disk, which wakes the produce
requests and offset commits waiting for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import trio

if TYPE_CHECKING:
    from kafka_compat.replication.partition import Partition

log = structlog.get_logger("kafka_compat.replication")


class LogSyncer:
    def __init__(self, log_dirs: Iterable[Path], on_synced: Callable[[Partition], None]):
        self._on_synced = on_synced
        self._pending: dict[Path, dict[tuple[str, int], Partition]] = {Path(d): {} for d in log_dirs}
        self._wake = {d: trio.Event() for d in self._pending}

    def request(self, partition: Partition) -> None:
        """`partition` appended: sync its log in its directory's next pass."""
        d = partition.log.dir.parent
        self._pending[d][partition.key] = partition
        self._wake[d].set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """One task per log directory until cancelled."""
        async with trio.open_nursery() as nursery:
            for d in self._pending:
                nursery.start_soon(self._sync_dir, d)
            task_status.started()

    async def _sync_dir(self, d: Path) -> None:
        while True:
            await self._wake[d].wait()
            self._wake[d] = trio.Event()
            batch = list(self._pending[d].values())
            self._pending[d] = {}
            await trio.to_thread.run_sync(_sync, batch)
            for p in batch:
                self._on_synced(p)


def _sync(partitions: list[Partition]) -> None:
    for p in partitions:
        try:
            p.log.sync()
        except OSError as e:  # its appends stay unacknowledged; the next append retries the sync
            log.error("log_sync_failed", topic=p.topic, partition=p.index, error=str(e))
