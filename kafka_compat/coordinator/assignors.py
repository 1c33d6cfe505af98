"""Server-side assignors for KIP-848 consumer groups: `uniform` and `range`.

An assignor sees each member's subscribed topic ids, instance id and current target assignment,
and the partition count of every subscribed topic that exists; it returns the new target
assignment of every member. Both assignors are deterministic (same input, same output) and give
every partition of a subscribed topic to exactly one member subscribed to that topic.

- `uniform` (Kafka's default) balances the number of partitions per member and is sticky: a member
  keeps what it has unless balance requires moving it. When all members subscribe to the same
  topics the counts differ by at most one; otherwise no single partition move could make the two
  members involved more even (a member with the partition has at most one more than any other
  subscriber of its topic).
- `range` gives each subscriber of a topic a contiguous range of its partitions, members ordered
  by instance id (static members first) then member id, so that members line up across topics with
  equal partition counts (co-partitioning, for joins).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kafka_compat.protocol.primitives import Uuid

GroupAssignment = dict[str, dict[Uuid, frozenset[int]]]


@dataclass(frozen=True)
class MemberSpec:
    member_id: str
    topics: frozenset[Uuid]
    instance_id: str | None = None
    rack_id: str | None = None
    assignment: Mapping[Uuid, frozenset[int]] = field(default_factory=dict)


Assignor = Callable[[Mapping[str, MemberSpec], Mapping[Uuid, int]], GroupAssignment]


def _freeze(owned: Mapping[str, set[tuple[Uuid, int]]]) -> GroupAssignment:
    out: GroupAssignment = {}
    for member_id, pairs in owned.items():
        by_topic: dict[Uuid, set[int]] = {}
        for topic_id, p in pairs:
            by_topic.setdefault(topic_id, set()).add(p)
        out[member_id] = {t: frozenset(ps) for t, ps in by_topic.items()}
    return out


def uniform(members: Mapping[str, MemberSpec], partitions: Mapping[Uuid, int]) -> GroupAssignment:
    """Balanced and sticky (see the module docstring)."""
    if not members:
        return {}
    topics = {t: n for t, n in partitions.items() if n > 0}
    order = sorted(members)
    # Partitions each member may keep: valid for its subscription, and first come first kept when
    # two members claim the same one.
    owner: dict[tuple[Uuid, int], str] = {}
    owned: dict[str, set[tuple[Uuid, int]]] = {mid: set() for mid in order}
    for mid in order:
        spec = members[mid]
        for topic_id, parts in spec.assignment.items():
            if topic_id not in spec.topics or topic_id not in topics:
                continue
            for p in parts:
                tp = (topic_id, p)
                if p < topics[topic_id] and tp not in owner:
                    owner[tp] = mid
                    owned[mid].add(tp)
    subscribed = {t for spec in members.values() for t in spec.topics if t in topics}
    homogeneous = len({frozenset(spec.topics & topics.keys()) for spec in members.values()}) == 1
    if homogeneous:
        return _freeze(_uniform_homogeneous(order, owned, owner, sorted(subscribed), topics))
    return _freeze(_uniform_heterogeneous(members, order, owned, owner, topics))


def _uniform_homogeneous(order, owned, owner, subscribed, topics):
    total = sum(topics[t] for t in subscribed)
    quota, extra = divmod(total, len(order))
    # Members already holding more than the minimum are first in line for the +1 slots.
    by_size = sorted(order, key=lambda mid: (-len(owned[mid]), mid))
    limit = {mid: quota + (1 if i < extra else 0) for i, mid in enumerate(by_size)}
    for mid in order:
        if len(owned[mid]) > limit[mid]:
            for tp in sorted(owned[mid])[limit[mid]:]:
                owned[mid].discard(tp)
                del owner[tp]
    free = [(t, p) for t in subscribed for p in range(topics[t]) if (t, p) not in owner]
    it = iter(free)
    for mid in by_size:
        while len(owned[mid]) < limit[mid]:
            owned[mid].add(next(it))
    return owned


def _uniform_heterogeneous(members, order, owned, owner, topics):
    eligible: dict[Uuid, list[str]] = {}
    for mid in order:
        for t in members[mid].topics:
            if t in topics:
                eligible.setdefault(t, []).append(mid)
    # Hand out the free partitions, most constrained topics first, each to its least loaded subscriber.
    free = [(t, p) for t in sorted(eligible, key=lambda t: (len(eligible[t]), t)) for p in range(topics[t])
            if (t, p) not in owner]
    for tp in free:
        mid = min(eligible[tp[0]], key=lambda m: (len(owned[m]), m))
        owned[mid].add(tp)
        owner[tp] = mid
    # Then move partitions from a member to a less loaded subscriber of the same topic while that
    # evens them out (each move lowers the sum of squared loads, so this ends).
    moved = True
    while moved:
        moved = False
        for mid in sorted(order, key=lambda m: (-len(owned[m]), m)):
            for tp in sorted(owned[mid]):
                target = min(eligible[tp[0]], key=lambda m: (len(owned[m]), m))
                if len(owned[target]) < len(owned[mid]) - 1:
                    owned[mid].discard(tp)
                    owned[target].add(tp)
                    owner[tp] = target
                    moved = True
    return owned


def _range_order(members: Mapping[str, MemberSpec]) -> list[str]:
    """Static members first, by instance id; then the others by member id (Kafka's order)."""
    return sorted(members, key=lambda mid: (members[mid].instance_id is None, members[mid].instance_id or "", mid))


def range_assignor(members: Mapping[str, MemberSpec], partitions: Mapping[Uuid, int]) -> GroupAssignment:
    """Contiguous, co-partitioned ranges (see the module docstring)."""
    out: GroupAssignment = {mid: {} for mid in members}
    order = _range_order(members)
    for topic_id in sorted({t for spec in members.values() for t in spec.topics}):
        count = partitions.get(topic_id)
        if not count:
            continue
        subscribers = [mid for mid in order if topic_id in members[mid].topics]
        quota, extra = divmod(count, len(subscribers))
        start = 0
        for i, mid in enumerate(subscribers):
            size = quota + (1 if i < extra else 0)
            if size:
                out[mid][topic_id] = frozenset(range(start, start + size))
            start += size
    return out


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_assignor}
