"""Classic (JoinGroup/SyncGroup) groups: members, the group, its states and their transitions.

A classic group moves through Kafka's five states. The legal moves are data (the table below,
Kafka's `ClassicGroupState.validPreviousStates`); `ClassicGroup.transition_to` refuses any other.

    Empty -> PreparingRebalance          a member joins
    PreparingRebalance -> CompletingRebalance   every member rejoined (or the rebalance timed out)
    PreparingRebalance -> Empty          nobody rejoined
    CompletingRebalance -> Stable        the leader's assignment is persisted
    CompletingRebalance/Stable -> PreparingRebalance   a member joins, leaves, changes or dies
    any -> Dead                          the group is deleted or its partition unloaded

The group holds the requests parked on it as `Waiter`s (the driver's token plus the API version to
answer at); the coordinator completes them. Nothing here knows about records or time sources:
timestamps come in as arguments.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from enum import Enum
from typing import NamedTuple

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import DecodeError

CONSUMER_PROTOCOL_TYPE = "consumer"


class ClassicState(Enum):
    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"

    def __str__(self) -> str:
        return self.value


S = ClassicState
VALID_PREVIOUS_STATES: dict[ClassicState, frozenset[ClassicState]] = {
    S.EMPTY: frozenset({S.PREPARING_REBALANCE}),
    S.PREPARING_REBALANCE: frozenset({S.STABLE, S.COMPLETING_REBALANCE, S.EMPTY}),
    S.COMPLETING_REBALANCE: frozenset({S.PREPARING_REBALANCE}),
    S.STABLE: frozenset({S.COMPLETING_REBALANCE}),
    S.DEAD: frozenset(ClassicState),
}


class Waiter(NamedTuple):
    """A parked request: the driver's token and the API version its response must use."""

    token: Hashable
    version: int


Protocols = list[tuple[str, bytes]]  # (name, metadata) in the member's order of preference


class ClassicMember:
    __slots__ = ("member_id", "group_instance_id", "client_id", "client_host", "rebalance_timeout_ms",
                 "session_timeout_ms", "protocol_type", "protocols", "assignment", "join_waiter", "sync_waiter",
                 "is_new")

    def __init__(self, member_id: str, group_instance_id: str | None, client_id: str, client_host: str,
                 rebalance_timeout_ms: int, session_timeout_ms: int, protocol_type: str, protocols: Protocols,
                 assignment: bytes = b""):
        self.member_id = member_id
        self.group_instance_id = group_instance_id
        self.client_id = client_id
        self.client_host = client_host
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.session_timeout_ms = session_timeout_ms
        self.protocol_type = protocol_type
        self.protocols = protocols
        self.assignment = assignment
        self.join_waiter: Waiter | None = None
        self.sync_waiter: Waiter | None = None
        self.is_new = False

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    @property
    def awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def awaiting_sync(self) -> bool:
        return self.sync_waiter is not None

    def metadata(self, protocol: str | None) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol:
                return metadata
        return b""

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, metadata and order: a rejoin that changes nothing."""
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str:
        """The member's most preferred protocol among those every member supports."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        raise ValueError(f"member {self.member_id} supports none of {sorted(candidates)}")

    def has_satisfied_heartbeat(self) -> bool:
        """Whether an expiring heartbeat deadline may be ignored: members parked in a rebalance
        are alive by definition, except brand-new ones (which have no member id to heartbeat with)."""
        if self.is_new:
            return False
        return self.awaiting_join or self.awaiting_sync

    def __repr__(self) -> str:
        return f"ClassicMember({self.member_id!r}, instance={self.group_instance_id!r})"


class ClassicGroup:
    """One classic group's membership and rebalance state (Kafka's ClassicGroup)."""

    type = "classic"

    def __init__(self, group_id: str, state_timestamp_ms: int | None, *, state: ClassicState = S.EMPTY,
                 generation: int = 0, protocol_type: str | None = None, protocol_name: str | None = None,
                 leader_id: str | None = None):
        self.group_id = group_id
        self.state = state
        self.previous_state = state
        self.state_timestamp_ms = state_timestamp_ms  # when it entered its state (None: unknown, old records)
        self.generation = generation
        self.protocol_type = protocol_type
        self.protocol_name = protocol_name
        self.leader_id = leader_id
        self.members: dict[str, ClassicMember] = {}  # in join order: the next leader is the oldest
        self.static_members: dict[str, str] = {}  # group.instance.id -> member id
        self.pending_join_members: set[str] = set()  # ids handed out with MEMBER_ID_REQUIRED
        self.pending_sync_members: set[str] = set()
        self.supported_protocols: Counter[str] = Counter()
        self.new_member_added = False
        self.subscribed_topics: set[str] | None = None
        self.awaiting_join_count = 0

    # -- state ------------------------------------------------------------------------------

    def transition_to(self, state: ClassicState, now_ms: int) -> None:
        if self.state not in VALID_PREVIOUS_STATES[state]:
            raise RuntimeError(f"group {self.group_id}: illegal transition {self.state} -> {state}")
        self.previous_state, self.state = self.state, state
        self.state_timestamp_ms = now_ms

    def can_rebalance(self) -> bool:
        return self.state in VALID_PREVIOUS_STATES[S.PREPARING_REBALANCE]

    @property
    def is_empty(self) -> bool:
        return self.state is S.EMPTY

    @property
    def state_name(self) -> str:
        return self.state.value

    def uses_consumer_protocol(self) -> bool:
        return self.protocol_type == CONSUMER_PROTOCOL_TYPE

    # -- membership --------------------------------------------------------------------------

    def is_leader(self, member_id: str) -> bool:
        return self.leader_id is not None and self.leader_id == member_id

    def add(self, member: ClassicMember, waiter: Waiter | None = None) -> None:
        if member.group_instance_id is not None:
            if member.group_instance_id in self.static_members:
                raise RuntimeError(f"instance id {member.group_instance_id} is already in group {self.group_id}")
            self.static_members[member.group_instance_id] = member.member_id
        if not self.members:
            self.protocol_type = member.protocol_type
        if self.protocol_type != member.protocol_type or not self.supports_protocols(member.protocol_type,
                                                                                      member.protocol_names()):
            raise RuntimeError(f"member {member.member_id} does not fit group {self.group_id}'s protocols")
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.members[member.member_id] = member
        self.supported_protocols.update(member.protocol_names())
        member.join_waiter = waiter
        if waiter is not None:
            self.awaiting_join_count += 1
        self.pending_join_members.discard(member.member_id)

    def remove(self, member_id: str) -> ClassicMember | None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self.supported_protocols.subtract(member.protocol_names())
            self.supported_protocols += Counter()  # drop zero counts
            if member.awaiting_join:
                self.awaiting_join_count -= 1
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.is_leader(member_id):
            self.leader_id = next(iter(self.members), None)
        self.pending_join_members.discard(member_id)
        self.pending_sync_members.discard(member_id)
        return member

    def update_member(self, member: ClassicMember, protocols: Protocols, rebalance_timeout_ms: int,
                      session_timeout_ms: int, waiter: Waiter | None) -> Waiter | None:
        """Apply a rejoin; returns the waiter this one supersedes (to be answered), if any."""
        self.supported_protocols.subtract(member.protocol_names())
        member.protocols = protocols
        self.supported_protocols.update(member.protocol_names())
        self.supported_protocols += Counter()
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        superseded = member.join_waiter
        if waiter is not None and superseded is None:
            self.awaiting_join_count += 1
        elif waiter is None and superseded is not None:
            self.awaiting_join_count -= 1
        member.join_waiter = waiter
        return superseded if waiter is not None else None

    def take_join_waiter(self, member: ClassicMember) -> Waiter | None:
        waiter = member.join_waiter
        if waiter is not None:
            member.join_waiter = None
            self.awaiting_join_count -= 1
        return waiter

    def take_sync_waiter(self, member: ClassicMember) -> Waiter | None:
        waiter, member.sync_waiter = member.sync_waiter, None
        return waiter

    def replace_static_member(self, instance_id: str, old_member_id: str, new_member_id: str) -> tuple[
            ClassicMember, Waiter | None, Waiter | None]:
        """Give a known static member a new member id, keeping its place (and leadership).
        Returns the new member and the old one's parked join and sync requests (to be fenced)."""
        old = self.members.pop(old_member_id)
        join_waiter = old.join_waiter
        if join_waiter is not None:
            self.awaiting_join_count -= 1
        new = ClassicMember(new_member_id, old.group_instance_id, old.client_id, old.client_host,
                            old.rebalance_timeout_ms, old.session_timeout_ms, old.protocol_type, old.protocols,
                            old.assignment)
        self.members[new_member_id] = new
        if self.is_leader(old_member_id):
            self.leader_id = new_member_id
        self.static_members[instance_id] = new_member_id
        self.pending_sync_members.discard(old_member_id)
        return new, join_waiter, old.sync_waiter

    def static_member_id(self, instance_id: str | None) -> str | None:
        return None if instance_id is None else self.static_members.get(instance_id)

    def validate_member(self, member_id: str, instance_id: str | None) -> str | None:
        """None if (member_id, instance_id) is a current member; else the error name to answer."""
        if instance_id is not None:
            existing = self.static_members.get(instance_id)
            if existing is None:
                return "UNKNOWN_MEMBER_ID"
            if existing != member_id:
                return "FENCED_INSTANCE_ID"
        if member_id not in self.members:
            return "UNKNOWN_MEMBER_ID"
        return None

    def has_all_members_joined(self) -> bool:
        return len(self.members) == self.awaiting_join_count and not self.pending_join_members

    def not_yet_rejoined(self) -> list[ClassicMember]:
        return [mb for mb in self.members.values() if not mb.awaiting_join]

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep a leader that rejoined, else promote a member that did; False if none did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].awaiting_join:
            return True
        for member in self.members.values():
            if member.awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def rebalance_timeout_ms(self) -> int:
        return max((mb.rebalance_timeout_ms for mb in self.members.values()), default=0)

    # -- protocols ---------------------------------------------------------------------------

    def candidate_protocols(self) -> set[str]:
        n = len(self.members)
        return {name for name, count in self.supported_protocols.items() if count == n}

    def select_protocol(self) -> str:
        """Every member votes for its preferred protocol among those all support; most votes win
        (ties: the first protocol to reach the top count, in member order)."""
        if not self.members:
            raise RuntimeError(f"cannot select a protocol for empty group {self.group_id}")
        candidates = self.candidate_protocols()
        votes: Counter[str] = Counter(mb.vote(candidates) for mb in self.members.values())
        return votes.most_common(1)[0][0]

    def supports_protocols(self, protocol_type: str, protocols: set[str]) -> bool:
        if self.state is S.EMPTY:
            return bool(protocol_type) and bool(protocols)
        n = len(self.members)
        return self.protocol_type == protocol_type and any(self.supported_protocols.get(p, 0) == n for p in protocols)

    def init_next_generation(self, now_ms: int) -> None:
        self.generation += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(S.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.subscribed_topics = self.compute_subscribed_topics()
            self.transition_to(S.EMPTY, now_ms)
        self.pending_sync_members.clear()

    def compute_subscribed_topics(self) -> set[str] | None:
        """The topics the members subscribe to, when the group uses the consumer protocol and
        the subscriptions parse (as Kafka does, from the version-0 prefix of each); else None."""
        if not self.uses_consumer_protocol():
            return None
        if not self.members:
            return set()
        if self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            parsed = parse_subscription_topics(member.metadata(self.protocol_name))
            if parsed is None:
                return None
            topics.update(parsed)
        return topics

    def is_subscribed_to(self, topic: str) -> bool:
        if self.subscribed_topics is None:
            return self.uses_consumer_protocol()
        return topic in self.subscribed_topics

    def assignments(self) -> dict[str, bytes]:
        return {mid: mb.assignment for mid, mb in self.members.items()}

    def __repr__(self) -> str:
        return (f"ClassicGroup({self.group_id!r}, {self.state}, generation={self.generation}, "
                f"members={len(self.members)})")


def parse_subscription_topics(metadata: bytes) -> list[str] | None:
    """Topics of a ConsumerProtocol subscription (int16 version, then the body); every version
    starts with the version-0 fields, so that prefix is all we read. None if it does not parse."""
    if len(metadata) < 2:
        return None
    try:
        subscription, end = m.ConsumerProtocolSubscription.decode_prefix(bytes(metadata), 0, 2)
    except DecodeError:
        return None
    if end > len(metadata):
        return None
    return list(subscription.topics)
