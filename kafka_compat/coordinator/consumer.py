"""KIP-848 consumer groups: members, the group, and the reconciliation of a member's assignment.

The server owns the assignment. Three epochs drive it:

- the *group epoch* grows whenever the group's membership or subscribed metadata changes;
- the *target assignment epoch* is the group epoch the current target assignment was computed at;
- each member's *member epoch* is the target epoch it has converged to.

A member moves towards its target one heartbeat at a time (`reconcile`): it first gives up what the
target takes away (state UNREVOKED_PARTITIONS, at its old epoch, until it reports that it no longer
owns them), then is handed what the target adds, but only partitions no other member still holds
(state UNRELEASED_PARTITIONS until they are released). Hence a partition never has two owners: a
new owner gets it only after the previous one acknowledged the revocation.

Member and group state here is exactly what the ConsumerGroup* records carry; the coordinator
changes it only by applying records, live and at load alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum

from kafka_compat.protocol.primitives import Uuid

Assignment = Mapping[Uuid, frozenset[int]]  # topic id -> partitions; never mutated once built
EMPTY_ASSIGNMENT: Assignment = {}

LEAVE_GROUP_MEMBER_EPOCH = -1
LEAVE_GROUP_STATIC_MEMBER_EPOCH = -2


class MemberState(IntEnum):
    """As ConsumerGroupCurrentMemberAssignmentValue.State stores it."""

    STABLE = 0
    UNREVOKED_PARTITIONS = 1
    UNRELEASED_PARTITIONS = 2
    UNKNOWN = 127

    @classmethod
    def from_value(cls, value: int) -> MemberState:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


class ConsumerGroupState(Enum):
    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class TopicMetadata:
    topic_id: Uuid
    name: str
    num_partitions: int


@dataclass(frozen=True, slots=True)
class ConsumerMember:
    member_id: str
    member_epoch: int = 0
    previous_member_epoch: int = 0
    state: MemberState = MemberState.STABLE
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    client_id: str = ""
    client_host: str = ""
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)

    def is_reconciled_to(self, target_epoch: int) -> bool:
        return self.state is MemberState.STABLE and self.member_epoch == target_epoch

    def with_epoch(self, epoch: int) -> ConsumerMember:
        """Move to `epoch`, remembering the current one as the previous epoch."""
        return replace(self, member_epoch=epoch, previous_member_epoch=self.member_epoch)

    def subscription(self) -> tuple:
        """What the ConsumerGroupMemberMetadata record carries (to tell whether it changed)."""
        return (self.instance_id, self.rack_id, self.rebalance_timeout_ms, self.client_id, self.client_host,
                self.subscribed_topic_names, self.subscribed_topic_regex, self.server_assignor)


class ConsumerGroup:
    """One KIP-848 group: members, target assignment, epochs, subscribed topic metadata."""

    type = "consumer"
    protocol_type = "consumer"

    def __init__(self, group_id: str):
        self.group_id = group_id
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}  # instance id -> member id
        self.target_assignment: dict[str, Assignment] = {}
        self.subscription_metadata: dict[str, TopicMetadata] = {}
        self.partition_epochs: dict[Uuid, dict[int, int]] = {}  # current owner's epoch per partition
        # Not persisted (Kafka keeps these in memory too): resolved regexes and when to refresh.
        self.resolved_regexes: dict[str, frozenset[str]] = {}
        self.metadata_refresh_deadline_ms = 0

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> ConsumerGroupState:
        if not self.members:
            return ConsumerGroupState.EMPTY
        if self.group_epoch > self.assignment_epoch:
            return ConsumerGroupState.ASSIGNING
        if any(not mb.is_reconciled_to(self.assignment_epoch) for mb in self.members.values()):
            return ConsumerGroupState.RECONCILING
        return ConsumerGroupState.STABLE

    @property
    def state_name(self) -> str:
        return self.state.value

    @property
    def is_empty(self) -> bool:
        return not self.members

    # -- members ----------------------------------------------------------------------------

    def member(self, member_id: str) -> ConsumerMember | None:
        return self.members.get(member_id)

    def static_member(self, instance_id: str | None) -> ConsumerMember | None:
        if instance_id is None:
            return None
        member_id = self.static_members.get(instance_id)
        return None if member_id is None else self.members.get(member_id)

    def update_member(self, new: ConsumerMember) -> None:
        old = self.members.get(new.member_id)
        if old is not None:
            self._release(old)
        self.members[new.member_id] = new
        self._own(new)
        if new.instance_id is not None:
            self.static_members[new.instance_id] = new.member_id

    def remove_member(self, member_id: str) -> None:
        old = self.members.pop(member_id, None)
        if old is None:
            return
        self._release(old)
        if old.instance_id is not None and self.static_members.get(old.instance_id) == member_id:
            del self.static_members[old.instance_id]

    def _own(self, member: ConsumerMember) -> None:
        for assignment in (member.assigned, member.pending_revocation):
            for topic_id, partitions in assignment.items():
                epochs = self.partition_epochs.setdefault(topic_id, {})
                for p in partitions:
                    if p in epochs:
                        raise RuntimeError(f"group {self.group_id}: partition {topic_id}-{p} already owned "
                                           f"at epoch {epochs[p]}")
                    epochs[p] = member.member_epoch

    def _release(self, member: ConsumerMember) -> None:
        for assignment in (member.assigned, member.pending_revocation):
            for topic_id, partitions in assignment.items():
                epochs = self.partition_epochs.get(topic_id)
                if epochs is None:
                    continue
                for p in partitions:
                    epochs.pop(p, None)
                if not epochs:
                    del self.partition_epochs[topic_id]

    def partition_epoch(self, topic_id: Uuid, partition: int) -> int:
        """The epoch of the member that currently owns the partition, or -1 when it is free."""
        return self.partition_epochs.get(topic_id, {}).get(partition, -1)

    def member_target(self, member_id: str, instance_id: str | None = None) -> Assignment:
        if instance_id is not None:
            previous = self.static_members.get(instance_id)
            if previous is not None:
                return self.target_assignment.get(previous, EMPTY_ASSIGNMENT)
        return self.target_assignment.get(member_id, EMPTY_ASSIGNMENT)

    # -- subscriptions ------------------------------------------------------------------------

    def member_topics(self, member: ConsumerMember) -> set[str]:
        """The topic names a member subscribes to: its names plus what its regex resolved to."""
        topics = set(member.subscribed_topic_names)
        if member.subscribed_topic_regex is not None:
            topics.update(self.resolved_regexes.get(member.subscribed_topic_regex, ()))
        return topics

    def subscribed_topics(self) -> set[str]:
        topics: set[str] = set()
        for member in self.members.values():
            topics |= self.member_topics(member)
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        return any(topic in self.member_topics(mb) for mb in self.members.values())

    def preferred_assignor(self) -> str | None:
        """The server assignor most members ask for (ties: the one asked for first)."""
        counts: dict[str, int] = {}
        for member in self.members.values():
            if member.server_assignor is not None:
                counts[member.server_assignor] = counts.get(member.server_assignor, 0) + 1
        if not counts:
            return None
        return max(counts.items(), key=lambda kv: kv[1])[0]

    def __repr__(self) -> str:
        return (f"ConsumerGroup({self.group_id!r}, {self.state}, epoch={self.group_epoch}, "
                f"assignment_epoch={self.assignment_epoch}, members={len(self.members)})")


# -- reconciliation -----------------------------------------------------------------------------

OwnedPartitions = Iterable[tuple[Uuid, Iterable[int]]] | None  # what a heartbeat reports; None = not sent


def _owns_any(owned: OwnedPartitions, partitions: Assignment) -> bool:
    """Whether the member still reports owning any of `partitions` (not reporting counts as yes)."""
    if owned is None:
        return True
    for topic_id, parts in owned:
        pending = partitions.get(topic_id)
        if pending and any(p in pending for p in parts):
            return True
    return False


def owned_is_subset(owned: OwnedPartitions, assignment: Assignment) -> bool:
    if owned is None:
        return False
    for topic_id, parts in owned:
        have = assignment.get(topic_id)
        if have is None or any(p not in have for p in parts):
            return False
    return True


def reconcile(member: ConsumerMember, target_epoch: int, target: Assignment,
              partition_epoch: Callable[[Uuid, int], int], owned: OwnedPartitions) -> ConsumerMember:
    """One step of a member towards `target` at `target_epoch` (Kafka's CurrentAssignmentBuilder).

    Raises `Fenced` for a member in an unknown state that still claims partitions."""
    if member.state is MemberState.STABLE:
        if member.member_epoch == target_epoch:
            return member
        return _next_assignment(member, member.member_epoch, target_epoch, target, partition_epoch, owned)
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        if _owns_any(owned, member.pending_revocation):
            return member
        return _next_assignment(member, member.member_epoch + 1, target_epoch, target, partition_epoch, owned)
    if member.state is MemberState.UNRELEASED_PARTITIONS:
        return _next_assignment(member, member.member_epoch, target_epoch, target, partition_epoch, owned)
    if owned is None or any(True for _ in owned):
        raise Fenced("the member is in an unknown state; it must abandon its partitions and rejoin")
    return _next_assignment(member, target_epoch, target_epoch, target, partition_epoch, owned)


class Fenced(Exception):
    """The member must give up everything and rejoin (FENCED_MEMBER_EPOCH)."""


def _next_assignment(member: ConsumerMember, epoch: int, target_epoch: int, target: Assignment,
                     partition_epoch: Callable[[Uuid, int], int], owned: OwnedPartitions) -> ConsumerMember:
    keep: dict[Uuid, frozenset[int]] = {}
    revoke: dict[Uuid, frozenset[int]] = {}
    add: dict[Uuid, frozenset[int]] = {}
    unreleased = False
    for topic_id in set(target) | set(member.assigned):
        wanted = target.get(topic_id, frozenset())
        current = member.assigned.get(topic_id, frozenset())
        kept = current & wanted
        gone = current - kept
        incoming = wanted - kept
        free = frozenset(p for p in incoming if partition_epoch(topic_id, p) == -1)
        if free != incoming:
            unreleased = True
        if kept:
            keep[topic_id] = kept
        if gone:
            revoke[topic_id] = gone
        if free:
            add[topic_id] = free

    if revoke and _owns_any(owned, revoke):
        # Revoke first: stay at the current epoch until the member confirms.
        return replace(member.with_epoch(epoch), state=MemberState.UNREVOKED_PARTITIONS, assigned=keep,
                       pending_revocation=revoke)
    for topic_id, parts in add.items():
        keep[topic_id] = keep.get(topic_id, frozenset()) | parts
    state = MemberState.UNRELEASED_PARTITIONS if unreleased else MemberState.STABLE
    return replace(member.with_epoch(target_epoch), state=state, assigned=keep, pending_revocation={})


def compile_regex(pattern: str) -> re.Pattern:
    """Kafka evaluates subscription regexes with RE2/J; we use Python's `re` with full-match
    semantics (the common subset behaves the same). Raises re.error for an invalid pattern."""
    return re.compile(pattern)
