"""Incremental fetch sessions (KIP-227).

A consumer that opens a session (session id 0, epoch 0) gets an id back; later fetches name the
session and the next epoch, list only partitions whose fetch position changed (and those to
forget), and get back only partitions with something new: records, an error, or a changed high
watermark, last stable offset or log start offset. The cache holds
`max.incremental.fetch.session.cache.slots` sessions and evicts the least recently used.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

INITIAL_EPOCH = 0
FINAL_EPOCH = -1
INVALID_SESSION_ID = 0


@dataclass(slots=True)
class CachedPartition:
    """What the session knows about one partition: the consumer's position and what it was last told."""

    key: Hashable  # (topic name or topic id, partition)
    topic: str
    topic_id: object
    partition: int
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1

    def changed(self, hw: int, lso: int, log_start: int) -> bool:
        """Update what was told; True if any of it differs (the partition goes in the response)."""
        if (hw, lso, log_start) == (self.high_watermark, self.last_stable_offset, self.log_start_offset):
            return False
        self.high_watermark, self.last_stable_offset, self.log_start_offset = hw, lso, log_start
        return True


class FetchSession:
    __slots__ = ("id", "epoch", "partitions")

    def __init__(self, session_id: int):
        self.id = session_id
        self.epoch = INITIAL_EPOCH + 1  # the epoch the next incremental fetch must carry
        self.partitions: OrderedDict[Hashable, CachedPartition] = OrderedDict()

    def next_epoch(self) -> None:
        self.epoch = 1 if self.epoch >= 0x7FFFFFFF else self.epoch + 1


class FetchSessionCache:
    def __init__(self, max_slots: int, rng: random.Random | None = None):
        self.max_slots = max_slots
        self.sessions: OrderedDict[int, FetchSession] = OrderedDict()
        self.rng = rng or random.Random()

    def create(self) -> FetchSession | None:
        """A new session, evicting the least recently used one if full; None if sessions are off."""
        if self.max_slots <= 0:
            return None
        while len(self.sessions) >= self.max_slots:
            self.sessions.popitem(last=False)
        while True:
            sid = self.rng.randrange(1, 0x7FFFFFFF)
            if sid not in self.sessions:
                break
        session = FetchSession(sid)
        self.sessions[sid] = session
        return session

    def get(self, session_id: int) -> FetchSession | None:
        session = self.sessions.get(session_id)
        if session is not None:
            self.sessions.move_to_end(session_id)
        return session

    def remove(self, session_id: int) -> None:
        self.sessions.pop(session_id, None)
