"""Keyed deadlines for a sans-I/O machine: schedule, replace, cancel, and run what is due.

A key has at most one deadline: scheduling it again replaces the old one (a heartbeat pushes its
session deadline out). The driver asks `next_deadline()` and calls the machine's `tick(now)` then;
nothing here sleeps or reads a clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable


class Timer:
    __slots__ = ("_entries", "_heap", "_seq")

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[int, int, Callable[[], None]]] = {}
        self._heap: list[tuple[int, int, Hashable]] = []
        self._seq = 0

    def schedule(self, key: Hashable, deadline_ms: int, fn: Callable[[], None]) -> None:
        self._seq += 1
        self._entries[key] = (deadline_ms, self._seq, fn)
        heapq.heappush(self._heap, (deadline_ms, self._seq, key))

    def cancel(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def cancel_where(self, predicate: Callable[[Hashable], bool]) -> None:
        for key in [k for k in self._entries if predicate(k)]:
            del self._entries[key]

    def deadline(self, key: Hashable) -> int | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def _prune(self) -> None:
        heap, entries = self._heap, self._entries
        while heap:
            deadline, seq, key = heap[0]
            entry = entries.get(key)
            if entry is not None and entry[1] == seq:
                return
            heapq.heappop(heap)

    def next_deadline(self) -> int | None:
        self._prune()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_ms: int) -> Callable[[], None] | None:
        """Remove and return the earliest callback due at `now_ms`, or None. Call repeatedly:
        a callback may schedule or cancel others."""
        self._prune()
        if not self._heap or self._heap[0][0] > now_ms:
            return None
        _, _, key = heapq.heappop(self._heap)
        return self._entries.pop(key)[2]
