"""Waiting for something to happen to a partition, keyed by what completes the wait.

A long-poll fetch waits for data on any of its partitions; an acks=all produce waits for a
partition's high watermark. Each waiter registers an event under its keys; whoever changes a
partition calls `notify(key)`, which wakes exactly the waiters of that key. No polling loops.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable

import trio


class Purgatory:
    def __init__(self) -> None:
        self._waiters: dict[Hashable, set[trio.Event]] = defaultdict(set)

    async def wait_any(self, keys: Iterable[Hashable], deadline: float) -> bool:
        """Wait until one of `keys` is notified (True) or the trio `deadline` passes (False)."""
        event = trio.Event()
        keys = list(keys)
        for k in keys:
            self._waiters[k].add(event)
        try:
            with trio.move_on_at(deadline):
                await event.wait()
                return True
            return False
        finally:
            for k in keys:
                waiters = self._waiters.get(k)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[k]

    def notify(self, key: Hashable) -> None:
        for event in self._waiters.pop(key, ()):
            event.set()
