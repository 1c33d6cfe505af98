"""Where a new partition's replicas go: Kafka's striped replica placer.

Goals, in order: spread each partition's replicas over as many racks (`broker.rack`) as there
are, then over the brokers, and prefer unfenced brokers to fenced ones. Constraints: a broker
holds at most one replica of a partition (so the replication factor is at most the number of
usable brokers), and the first replica, the leader, is unfenced.

The racks are visited round-robin from a random start that moves one rack per partition, and
inside a rack the brokers round-robin from their own random start, unfenced ones first: this
gives the "striped" pattern (A0 B0 C0, B1 C1 A1, C2 A2 B2 ...). Once as many partitions have
been placed as there are unfenced brokers, racks and brokers are shuffled so that large topics
do not repeat the same replica sets.

Usable brokers are the registered ones that are not shutting down; fenced ones count (they get
followers only), as in Kafka, whose error says "registered". Manual assignments are checked by
`assignment_problem` instead.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kafka_compat.metadata.image import MetadataImage


class PlacementError(Exception):
    """The replication factor cannot be met (Kafka's InvalidReplicationFactorException)."""


@dataclass(frozen=True, slots=True)
class UsableBroker:
    node_id: int
    rack: str | None
    fenced: bool


def usable_brokers(image: MetadataImage) -> list[UsableBroker]:
    return [UsableBroker(b.node_id, b.rack, b.fenced) for b in image.brokers.values() if not b.in_controlled_shutdown]


def place(brokers: list[UsableBroker], partitions: int, replication_factor: int,
          rng: random.Random) -> list[list[int]]:
    """Replica lists (leader first) for `partitions` new partitions; PlacementError with Kafka's
    sentence when the brokers cannot hold `replication_factor` replicas each."""
    racks = _Racks(brokers, rng)
    if replication_factor <= 0:
        raise PlacementError(f"Invalid replication factor {replication_factor}: "
                             "the replication factor must be positive.")
    if racks.unfenced == 0:
        raise PlacementError("All brokers are currently fenced.")
    if replication_factor > racks.total:
        raise PlacementError(f"The target replication factor of {replication_factor} cannot be reached because "
                             f"only {racks.total} broker(s) are registered.")
    return [racks.place(replication_factor) for _ in range(partitions)]


def assignment_problem(image: MetadataImage, replicas: list[int], replication_factor: int | None = None) -> str | None:
    """Kafka's checks of a manual replica list (brokers in sorted order), or None if it is valid."""
    if not replicas:
        return "The manual partition assignment includes an empty replica list."
    previous = None
    for b in sorted(replicas):
        if b not in image.brokers:
            return f"The manual partition assignment includes broker {b}, but no such broker is registered."
        if b == previous:
            return f"The manual partition assignment includes the broker {b} more than once."
        previous = b
    if replication_factor is not None and len(replicas) != replication_factor:
        return (f"The manual partition assignment includes a partition with {len(replicas)} replica(s), but this is "
                f"not consistent with previous partitions, which have {replication_factor} replica(s).")
    return None


class _Cycle:
    """Brokers handed out round-robin, each at most once per round; a new round starts one
    broker further on."""

    def __init__(self, rng: random.Random, ids: list[int]):
        self.ids = sorted(ids)
        self.offset = rng.randrange(len(self.ids)) if self.ids else 0
        self.index = 0
        self.round = 0

    def next(self, round_: int) -> int | None:
        if not self.ids:
            return None
        if round_ != self.round:
            self.round, self.index = round_, 0
            self.offset = (self.offset + 1) % len(self.ids)
        if self.index >= len(self.ids):
            return None
        self.index += 1
        return self.ids[(self.index - 1 + self.offset) % len(self.ids)]


class _Rack:
    def __init__(self, rng: random.Random, unfenced: list[int], fenced: list[int]):
        self.unfenced = _Cycle(rng, unfenced)
        self.fenced = _Cycle(rng, fenced)

    def next(self, round_: int) -> int | None:
        b = self.unfenced.next(round_)
        return b if b is not None else self.fenced.next(round_)


class _Racks:
    def __init__(self, brokers: list[UsableBroker], rng: random.Random):
        self.rng = rng
        names: dict[str | None, tuple[list[int], list[int]]] = {}
        for b in brokers:
            unfenced, fenced = names.setdefault(b.rack, ([], []))
            (fenced if b.fenced else unfenced).append(b.node_id)
        # No rack sorts first, as Kafka orders an empty Optional.
        self.names = sorted(names, key=lambda n: (n is not None, n or ""))
        self.racks = {n: _Rack(rng, *names[n]) for n in self.names}
        self.total = len(brokers)
        self.unfenced = sum(not b.fenced for b in brokers)
        self.round = 0
        self.offset = rng.randrange(len(self.names)) if self.names else 0

    def place(self, rf: int) -> list[int]:
        if self.round == self.unfenced and self.unfenced > 1:
            self._shuffle()
            self.round = 0
        if self.offset == len(self.names):
            self.offset = 0
        n = len(self.names)
        first_rack = self.offset
        while (leader := self.racks[self.names[first_rack]].unfenced.next(self.round)) is None:
            first_rack = (first_rack + 1) % n
        replicas = [leader]
        i = self.offset
        skip = first_rack  # the leader's rack is passed over once, so that followers start elsewhere
        while len(replicas) < rf:
            b = None
            if i == skip:
                skip = -1
            else:
                b = self.racks[self.names[i]].next(self.round)
            i = (i + 1) % n
            if b is not None:
                replicas.append(b)
        self.round += 1
        self.offset += 1
        return replicas

    def _shuffle(self) -> None:
        self.rng.shuffle(self.names)
        for rack in self.racks.values():
            self.rng.shuffle(rack.unfenced.ids)
            self.rng.shuffle(rack.fenced.ids)
