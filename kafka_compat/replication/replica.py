"""What a partition leader knows about one follower (Kafka's Replica and ReplicaState).

A follower is known only through its Fetch requests: its fetch offset is its log end offset,
its log start offset and broker epoch come with it. From the fetch times the leader keeps
`last_caught_up_ms`, the latest time at which the follower had everything the leader had:

- a fetch at or past the leader's log end offset of that moment catches it up now;
- a fetch at or past the leader's log end offset of the *previous* fetch catches it up as of
  that previous fetch (a follower that keeps fetching everything there was one fetch ago is in
  sync even when small appends arrive between every two fetches).

A follower is caught up while its log end offset equals the leader's, or while its last
catch-up is no older than `replica.lag.time.max.ms`.
"""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN_OFFSET = -1


@dataclass(slots=True)
class ReplicaState:
    replica_id: int
    log_start_offset: int = UNKNOWN_OFFSET
    log_end_offset: int = UNKNOWN_OFFSET
    last_fetch_leader_log_end_offset: int = 0
    last_fetch_ms: int = 0
    last_caught_up_ms: int = 0
    broker_epoch: int | None = None  # from the follower's last Fetch (KIP-903); None before any
    high_watermark_told: int = 0  # the highest high watermark a Fetch answer to it carried

    def update_fetch(self, fetch_offset: int, log_start_offset: int, now_ms: int, leader_end_offset: int,
                     broker_epoch: int) -> None:
        """Record a Fetch at `fetch_offset` received at `now_ms`, when the leader's log ended at
        `leader_end_offset`."""
        if fetch_offset >= leader_end_offset:
            self.last_caught_up_ms = max(self.last_caught_up_ms, now_ms)
        elif fetch_offset >= self.last_fetch_leader_log_end_offset:
            self.last_caught_up_ms = max(self.last_caught_up_ms, self.last_fetch_ms)
        self.log_start_offset = log_start_offset
        self.log_end_offset = fetch_offset
        self.last_fetch_leader_log_end_offset = max(leader_end_offset, self.last_fetch_leader_log_end_offset)
        self.last_fetch_ms = now_ms
        self.broker_epoch = broker_epoch

    def reset(self, now_ms: int, leader_end_offset: int, new_leader: bool, in_sync: bool) -> None:
        """This broker became leader (`new_leader`) or stays leader in a new leader epoch.

        An ISR member counts as caught up now, so the new leader does not shrink the ISR before
        the follower had a chance to fetch; an out-of-sync follower gets no credit (0), so it
        does not hold the high watermark back. A new leader forgets what the follower had (it
        learns it from the next Fetch); a re-elected one keeps it, but an out-of-sync follower's
        last fetch is forgotten so that it cannot rejoin before it fetches again.
        """
        self.last_caught_up_ms = now_ms if in_sync else 0
        if new_leader:
            self.log_start_offset = self.log_end_offset = UNKNOWN_OFFSET
            self.high_watermark_told = 0
            self.last_fetch_leader_log_end_offset = UNKNOWN_OFFSET
            self.last_fetch_ms = 0
            self.broker_epoch = None
        else:
            self.last_fetch_leader_log_end_offset = leader_end_offset
            self.last_fetch_ms = now_ms if in_sync else 0

    def caught_up(self, leader_end_offset: int, now_ms: int, max_lag_ms: int) -> bool:
        return self.log_end_offset == leader_end_offset or now_ms - self.last_caught_up_ms <= max_lag_ms
