"""Classic (JoinGroup/SyncGroup) groups: members, the group, its states and their transitions, and
the APIs that drive them (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) by Kafka's rules.

A classic group moves through Kafka's five states. The legal moves are data (the table below,
Kafka's `ClassicGroupState.validPreviousStates`); `ClassicGroup.transition_to` refuses any other.

    Empty -> PreparingRebalance          a member joins
    PreparingRebalance -> CompletingRebalance   every member rejoined (or the rebalance timed out)
    PreparingRebalance -> Empty          nobody rejoined
    CompletingRebalance -> Stable        the leader's assignment is persisted
    CompletingRebalance/Stable -> PreparingRebalance   a member joins, leaves, changes or dies
    any -> Dead                          the group is deleted or its partition unloaded

The group holds the requests parked on it as `Waiter`s (the driver's token plus the API version to
answer at); the coordinator completes them. The group and its members know nothing about records
or time sources: timestamps come in as arguments. `ClassicGroups` runs the APIs on them.

A rebalance: members (re)join and park in PreparingRebalance; when all known members have rejoined
(or the rebalance timeout passes, dropping dynamic members that did not), the generation advances,
the protocol is chosen by vote, and every parked JoinGroup is answered (the leader gets the member
list). Members then SyncGroup; the leader's assignment is persisted in a GroupMetadata record and,
once durable, handed to every member parked in SyncGroup; the group is Stable. A new group waits
`group.initial.rebalance.delay.ms` (extended while members keep arriving, up to the rebalance
timeout) before its first generation.

Static members (`group.instance.id`, KIP-345) keep their place across restarts: a known instance id
joining with an unknown member id replaces the old member id without a rebalance when the group is
Stable and the chosen protocol would not change (the old id's parked requests are fenced with
FENCED_INSTANCE_ID); a leader that does so gets the member list back with SkipAssignment (v9+).

Timer keys: ("hb", partition, group, member), ("join", partition, group), ("sync", partition, group).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from enum import Enum
from typing import TYPE_CHECKING, NamedTuple

import structlog

from kafka_compat.coordinator import records
from kafka_compat.coordinator.responses import fit, join_group_error
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import DecodeError

if TYPE_CHECKING:
    from kafka_compat.coordinator.machine import Client, GroupCoordinator

log = structlog.get_logger("kafka_compat.coordinator")
E = ErrorCode
JoinResponse = m.JoinGroupResponse
SyncResponse = m.SyncGroupResponse

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


class ClassicGroups:
    """JoinGroup, SyncGroup, Heartbeat and LeaveGroup over the coordinator's shards, and the
    GroupMetadata records of classic groups."""

    def __init__(self, core: GroupCoordinator):
        self.core = core

    # -- helpers ------------------------------------------------------------------------------------

    def _group(self, group_id: str) -> ClassicGroup | None:
        group = self.core.group(group_id)
        return group if isinstance(group, ClassicGroup) else None

    def _key(self, kind: str, group_id: str, *rest) -> tuple:
        return (kind, self.core.partition_for(group_id), group_id, *rest)

    def reschedule_heartbeat(self, group: ClassicGroup, member: ClassicMember, timeout_ms: int | None = None) -> None:
        gid, mid = group.group_id, member.member_id
        timeout = member.session_timeout_ms if timeout_ms is None else timeout_ms
        self.core.timer.schedule(self._key("hb", gid, mid), self.core.now + timeout,
                                 lambda: self._expire_heartbeat(gid, mid))

    def _cancel_heartbeat(self, group: ClassicGroup, member_id: str) -> None:
        self.core.timer.cancel(self._key("hb", group.group_id, member_id))

    def _join_response(self, group: ClassicGroup, member_id: str, *, with_members: bool,
                       leader: str | None = None, skip_assignment: bool = False) -> m.JoinGroupResponse:
        members = []
        if with_members:
            members = [JoinResponse.JoinGroupResponseMember(member_id=mb.member_id,
                                                            group_instance_id=mb.group_instance_id,
                                                            metadata=mb.metadata(group.protocol_name))
                       for mb in group.members.values()]
        return JoinResponse(error_code=E.NONE, generation_id=group.generation, protocol_type=group.protocol_type,
                            protocol_name=group.protocol_name,
                            leader=(group.leader_id if leader is None else leader) or "",
                            skip_assignment=skip_assignment, member_id=member_id, members=members)

    def _complete(self, waiter: Waiter | None, response) -> None:
        if waiter is None:
            return
        if waiter.version < 7 and isinstance(response, JoinResponse) and response.protocol_name is None:
            response.protocol_name = ""
        self.core.complete(waiter.token, waiter.version, response)

    def _fenced_join(self, member_id: str) -> m.JoinGroupResponse:
        return JoinResponse(error_code=E.FENCED_INSTANCE_ID, member_id=member_id, protocol_name=None, leader="")

    # -- loading ------------------------------------------------------------------------------------

    def group_from_record(self, group_id: str, value: m.GroupMetadataValue) -> ClassicGroup:
        protocol_type = value.protocol_type or None
        group = ClassicGroup(
            group_id, value.current_state_timestamp if value.current_state_timestamp != -1 else None,
            state=S.STABLE if value.members else S.EMPTY, generation=value.generation,
            protocol_type=protocol_type, protocol_name=value.protocol, leader_id=value.leader)
        for mm in value.members:
            rebalance_timeout = mm.session_timeout if mm.rebalance_timeout == -1 else mm.rebalance_timeout
            group.add(ClassicMember(mm.member_id, mm.group_instance_id, mm.client_id, mm.client_host,
                                    rebalance_timeout, mm.session_timeout, value.protocol_type,
                                    [(value.protocol or "", bytes(mm.subscription))], bytes(mm.assignment)))
        if group.leader_id not in group.members:
            group.leader_id = next(iter(group.members), None)
        group.subscribed_topics = group.compute_subscribed_topics()
        return group

    def on_loaded(self, group: ClassicGroup) -> None:
        for member in group.members.values():
            self.reschedule_heartbeat(group, member)
        if len(group.members) > self.core.config.group_max_size:
            self._prepare_rebalance(group, "loaded group is over group.max.size")

    def on_unloaded(self, group: ClassicGroup, error: ErrorCode) -> None:
        previous = group.state
        if group.state is not S.DEAD:
            group.transition_to(S.DEAD, self.core.now)
        for member in group.members.values():
            if previous is S.PREPARING_REBALANCE:
                self._complete(group.take_join_waiter(member),
                               JoinResponse(error_code=error, member_id=member.member_id, protocol_name=None))
            elif previous in (S.COMPLETING_REBALANCE, S.STABLE):
                self._complete(group.take_sync_waiter(member), SyncResponse(error_code=error))

    # -- JoinGroup ----------------------------------------------------------------------------------

    def join(self, token: Hashable, req: m.JoinGroupRequest, version: int, client: Client):
        core, cfg = self.core, self.core.config
        gid = req.group_id

        def error(code: ErrorCode, member_id: str | None = None):
            return fit(join_group_error(req, version, code, member_id), version)

        if not gid:
            return error(E.INVALID_GROUP_ID)
        if not cfg.group_min_session_timeout_ms <= req.session_timeout_ms <= cfg.group_max_session_timeout_ms:
            return error(E.INVALID_SESSION_TIMEOUT)
        code = core.coordinator_error(gid)
        if code != E.NONE:
            return error(code)
        group = core.group(gid)
        if group is not None and not isinstance(group, ClassicGroup):  # a consumer group
            if not group.is_empty:
                return error(E.INCONSISTENT_GROUP_PROTOCOL, "")
            core.emit(gid, core.group_tombstones(group))  # an empty consumer group gives way
            group = None
        unknown = req.member_id == ""
        is_new_group = group is None
        if group is None:
            if not unknown:
                return error(E.UNKNOWN_MEMBER_ID)
            group = ClassicGroup(gid, core.now)
            core.add_group(group)
        appends_before = core._next_append_id
        join = _Join(req, version, Waiter(token, version), client.id, client.host)
        if not self._accept_joining(group, req.member_id):
            group.remove(req.member_id)
            response = error(E.GROUP_MAX_SIZE_REACHED, "")
        elif unknown:
            response = self._join_new_member(group, join)
        else:
            response = self._join_existing_member(group, join)
        if is_new_group and core._next_append_id == appends_before:
            # Make the new group durable (Kafka writes an empty GroupMetadata record for it).
            core.emit(gid, [records.group_metadata(group, {})], replay=False)
        return response

    def _accept_joining(self, group: ClassicGroup, member_id: str) -> bool:
        limit = self.core.config.group_max_size
        if group.state in (S.EMPTY, S.DEAD):
            return True
        if group.state is S.PREPARING_REBALANCE:
            member = group.members.get(member_id)
            return (member is not None and member.awaiting_join) or group.awaiting_join_count < limit
        return member_id in group.members or len(group.members) < limit

    def _join_new_member(self, group: ClassicGroup, join: _Join):
        req, version = join.request, join.version
        if group.state is S.DEAD:
            return fit(join_group_error(req, version, E.COORDINATOR_NOT_AVAILABLE, ""), version)
        if not group.supports_protocols(req.protocol_type, join.protocol_names):
            return fit(join_group_error(req, version, E.INCONSISTENT_GROUP_PROTOCOL, ""), version)
        new_id = f"{join.instance_id or join.client_id}-{self.core.new_uuid()}"
        if join.instance_id is not None:
            existing = group.static_member_id(join.instance_id)
            if existing is not None:
                log.info("static_member_replaced", group_id=group.group_id, instance_id=join.instance_id,
                         old_member_id=existing, member_id=new_id, state=str(group.state))
                return self._replace_static_member(group, join, existing, new_id)
            return self._add_member_and_rebalance(group, join, new_id)
        if version >= 4:
            # KIP-394: hand out the member id first; the member joins with it (so a client that
            # times out and retries does not leave an orphan member behind).
            group.pending_join_members.add(new_id)
            gid = group.group_id
            self.core.timer.schedule(self._key("hb", gid, new_id), self.core.now + req.session_timeout_ms,
                                     lambda: self._expire_heartbeat(gid, new_id))
            return fit(join_group_error(req, version, E.MEMBER_ID_REQUIRED, new_id), version)
        return self._add_member_and_rebalance(group, join, new_id)

    def _join_existing_member(self, group: ClassicGroup, join: _Join):
        req, version = join.request, join.version
        mid = req.member_id

        def error(code: ErrorCode):
            return fit(join_group_error(req, version, code, mid), version)

        if group.state is S.DEAD:
            return error(E.COORDINATOR_NOT_AVAILABLE)
        if not group.supports_protocols(req.protocol_type, join.protocol_names):
            return error(E.INCONSISTENT_GROUP_PROTOCOL)
        if mid in group.pending_join_members:
            if join.instance_id is not None:
                return error(E.UNKNOWN_SERVER_ERROR)  # Kafka: a pending member is never static
            return self._add_member_and_rebalance(group, join, mid)
        code = group.validate_member(mid, join.instance_id)
        if code is not None:
            return error(E[code])
        member = group.members[mid]
        if group.state is S.PREPARING_REBALANCE:
            return self._update_member_and_rebalance(group, member, join, "member joins during rebalance")
        if group.state is S.COMPLETING_REBALANCE:
            if member.matches(join.protocols):
                # A retry of a JoinGroup whose response was lost: answer with the current generation.
                return fit(self._join_response(group, mid, with_members=group.is_leader(mid)), version)
            return self._update_member_and_rebalance(group, member, join, "member changed its metadata")
        if group.state is S.STABLE:
            if group.is_leader(mid) or not member.matches(join.protocols):
                # The leader rejoining forces a rebalance (e.g. topic metadata changed).
                return self._update_member_and_rebalance(group, member, join, "leader or changed member rejoins")
            return fit(self._join_response(group, mid, with_members=False), version)
        return error(E.UNKNOWN_MEMBER_ID)  # Empty: the member must start over

    def _add_member_and_rebalance(self, group: ClassicGroup, join: _Join, member_id: str):
        req = join.request
        member = ClassicMember(member_id, join.instance_id, join.client_id, join.client_host,
                               join.rebalance_timeout_ms, req.session_timeout_ms, req.protocol_type, join.protocols)
        member.is_new = True
        if group.state is S.PREPARING_REBALANCE and group.previous_state is S.EMPTY:
            group.new_member_added = True
        group.add(member, join.waiter)
        # New members cannot heartbeat while parked, so their join itself times out (and is retried).
        self.reschedule_heartbeat(group, member, self.core.config.classic_new_member_join_timeout_ms)
        log.info("group_member_added", group_id=group.group_id, member_id=member_id,
                 instance_id=join.instance_id, state=str(group.state))
        self._maybe_prepare_rebalance_or_complete_join(group, f"adding member {member_id}")
        return None

    def _update_member_and_rebalance(self, group: ClassicGroup, member: ClassicMember, join: _Join, reason: str):
        superseded = group.update_member(member, join.protocols, join.rebalance_timeout_ms,
                                         join.request.session_timeout_ms, join.waiter)
        if superseded is not None and superseded != join.waiter:
            # An older JoinGroup of the same member is still parked: it is answered now.
            self._complete(superseded, JoinResponse(error_code=E.REBALANCE_IN_PROGRESS, member_id=member.member_id,
                                                    protocol_name=None))
        self._maybe_prepare_rebalance_or_complete_join(group, reason)
        return None

    def _replace_static_member(self, group: ClassicGroup, join: _Join, old_id: str, new_id: str):
        core = self.core
        req = join.request
        current_leader = group.leader_id
        member, old_join, old_sync = group.replace_static_member(join.instance_id, old_id, new_id)
        self._complete(old_join, self._fenced_join(old_id))
        self._complete(old_sync, SyncResponse(error_code=E.FENCED_INSTANCE_ID))
        self._cancel_heartbeat(group, old_id)
        self.reschedule_heartbeat(group, member)
        group.update_member(member, join.protocols, join.rebalance_timeout_ms, req.session_timeout_ms, join.waiter)
        if group.state is S.STABLE:
            if group.protocol_name == group.select_protocol():
                # No rebalance: persist the new member id, then answer.
                gid = group.group_id

                def done(error: ErrorCode | None) -> None:
                    waiter = group.take_join_waiter(member)
                    if waiter is None:
                        return
                    if error is not None:
                        response = JoinResponse(error_code=error, member_id="", generation_id=group.generation,
                                                protocol_type=group.protocol_type, protocol_name=group.protocol_name,
                                                leader=current_leader or "")
                    elif waiter.version >= 9:
                        is_leader = group.is_leader(new_id)
                        response = self._join_response(group, new_id, with_members=is_leader,
                                                       skip_assignment=is_leader)
                    else:
                        # Older clients get the previous leader id, so a restarted leader does not
                        # think it must compute an assignment (which it could not sync).
                        response = self._join_response(group, new_id, with_members=False,
                                                       leader=current_leader or "")
                    self._complete(waiter, response)

                core.emit(gid, [records.group_metadata(group, group.assignments())], replay=False, on_done=done)
                return None
            self._maybe_prepare_rebalance_or_complete_join(group, "static member rejoins with another protocol")
            return None
        if group.state is S.COMPLETING_REBALANCE:
            # The leader may already have the old member id: its assignment would miss the new one.
            self._prepare_rebalance(group, "static member rejoins during CompletingRebalance")
            return None
        self._maybe_complete_join(group)
        return None

    # -- the rebalance ------------------------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join(group)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        core = self.core
        if group.state is S.COMPLETING_REBALANCE:
            for member in group.members.values():
                member.assignment = b""
            self._propagate_assignment(group, E.REBALANCE_IN_PROGRESS)
        group.pending_sync_members.clear()
        core.timer.cancel(self._key("sync", group.group_id))
        initial = group.state is S.EMPTY
        gid = group.group_id
        if initial:
            delay = core.config.group_initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            core.timer.schedule(self._key("join", gid), core.now + delay,
                                lambda: self._try_complete_initial_rebalance(gid, delay, remaining))
        group.transition_to(S.PREPARING_REBALANCE, core.now)
        log.info("group_rebalance_prepared", group_id=gid, generation=group.generation, reason=reason)
        if not initial:
            if group.has_all_members_joined():
                self._complete_join(group)
            else:
                core.timer.schedule(self._key("join", gid), core.now + group.rebalance_timeout_ms(),
                                    lambda: self._complete_join_by_id(gid))

    def _maybe_complete_join(self, group: ClassicGroup) -> None:
        if group.state is not S.PREPARING_REBALANCE:
            return
        if group.previous_state is S.EMPTY:
            return  # the initial rebalance completes on its delay
        if group.has_all_members_joined():
            self._complete_join(group)

    def _try_complete_initial_rebalance(self, group_id: str, delay: int, remaining: int) -> None:
        group = self._group(group_id)
        if group is None:
            return
        if group.new_member_added and remaining != 0:
            group.new_member_added = False
            new_delay = min(self.core.config.group_initial_rebalance_delay_ms, remaining)
            new_remaining = max(remaining - delay, 0)
            self.core.timer.schedule(self._key("join", group_id), self.core.now + new_delay,
                                     lambda: self._try_complete_initial_rebalance(group_id, new_delay, new_remaining))
        else:
            self._complete_join(group)

    def _complete_join_by_id(self, group_id: str) -> None:
        group = self._group(group_id)
        if group is not None:
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        core = self.core
        gid = group.group_id
        core.timer.cancel(self._key("join", gid))
        dropped = [mb.member_id for mb in group.not_yet_rejoined() if not mb.is_static]
        for mid in dropped:
            group.remove(mid)
            self._cancel_heartbeat(group, mid)
        if dropped:
            log.info("group_members_dropped", group_id=gid, members=dropped, reason="did not rejoin in time")
        if group.state is S.DEAD:
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined: wait another rebalance timeout (session timeouts will prune).
            core.timer.schedule(self._key("join", gid), core.now + group.rebalance_timeout_ms(),
                                lambda: self._complete_join_by_id(gid))
            return
        group.init_next_generation(core.now)
        if group.state is S.EMPTY:
            log.info("group_empty", group_id=gid, generation=group.generation)
            core.emit(gid, [records.group_metadata(group, {})], replay=False)
            return
        log.info("group_generation_started", group_id=gid, generation=group.generation,
                 protocol=group.protocol_name, members=len(group.members), leader=group.leader_id)
        for member in group.members.values():
            response = self._join_response(group, member.member_id, with_members=group.is_leader(member.member_id))
            self._complete(group.take_join_waiter(member), response)
            self.reschedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        generation = group.generation
        core.timer.schedule(self._key("sync", gid), core.now + group.rebalance_timeout_ms(),
                            lambda: self._expire_pending_sync(gid, generation))

    def _expire_pending_sync(self, group_id: str, generation: int) -> None:
        group = self._group(group_id)
        if group is None or group.generation != generation:
            return
        if group.state in (S.COMPLETING_REBALANCE, S.STABLE) and group.pending_sync_members:
            missing = sorted(group.pending_sync_members)
            for mid in missing:
                group.remove(mid)
                self._cancel_heartbeat(group, mid)
            self._prepare_rebalance(group, f"members {missing} did not sync in time")

    def _expire_heartbeat(self, group_id: str, member_id: str) -> None:
        group = self._group(group_id)
        if group is None or group.state is S.DEAD:
            return
        if member_id in group.pending_join_members:
            group.remove(member_id)
            log.info("group_pending_member_expired", group_id=group_id, member_id=member_id)
            if group.state is S.PREPARING_REBALANCE and group.has_all_members_joined():
                self._complete_join(group)
            return
        member = group.members.get(member_id)
        if member is None or member.has_satisfied_heartbeat():
            return
        log.info("group_member_expired", group_id=group_id, member_id=member_id)
        self._remove_member_and_update(group, member, "session timeout")

    def _remove_member_and_update(self, group: ClassicGroup, member: ClassicMember, reason: str) -> None:
        # A new member may time out while parked in JoinGroup: tell it to retry.
        self._complete(group.take_join_waiter(member),
                       JoinResponse(error_code=E.UNKNOWN_MEMBER_ID, member_id="", protocol_name=None))
        group.remove(member.member_id)
        self._cancel_heartbeat(group, member.member_id)
        if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
            self._maybe_prepare_rebalance_or_complete_join(group, f"removing {member.member_id}: {reason}")
        elif group.state is S.PREPARING_REBALANCE and group.has_all_members_joined():
            self._complete_join(group)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        ok = error == E.NONE
        for member in group.members.values():
            waiter = group.take_sync_waiter(member)
            if waiter is not None:
                self._complete(waiter, SyncResponse(
                    error_code=error, protocol_type=group.protocol_type if ok else None,
                    protocol_name=group.protocol_name if ok else None, assignment=member.assignment))
                # Its session restarts now: its heartbeats were "satisfied" while it waited.
                self.reschedule_heartbeat(group, member)

    # -- SyncGroup ----------------------------------------------------------------------------------

    def sync(self, token: Hashable, req: m.SyncGroupRequest, version: int, client: Client):
        core = self.core
        gid, mid = req.group_id, req.member_id

        def error(code: ErrorCode):
            return fit(SyncResponse(error_code=code), version)

        if not gid:
            return error(E.INVALID_GROUP_ID)
        code = core.coordinator_error(gid)
        if code != E.NONE:
            return error(code)
        group = self._group(gid)
        if group is None or group.is_empty:
            return error(E.UNKNOWN_MEMBER_ID)
        instance_id = req.group_instance_id if version >= 3 else None
        if group.state is S.DEAD:
            return error(E.COORDINATOR_NOT_AVAILABLE)
        code_name = group.validate_member(mid, instance_id)
        if code_name is not None:
            return error(E[code_name])
        if req.generation_id != group.generation:
            return error(E.ILLEGAL_GENERATION)
        if version >= 5 and (_inconsistent(req.protocol_type, group.protocol_type)
                             or _inconsistent(req.protocol_name, group.protocol_name)):
            return error(E.INCONSISTENT_GROUP_PROTOCOL)
        if group.state is S.PREPARING_REBALANCE:
            return error(E.REBALANCE_IN_PROGRESS)
        member = group.members[mid]
        if group.state is S.COMPLETING_REBALANCE:
            superseded = member.sync_waiter
            member.sync_waiter = Waiter(token, version)
            if superseded is not None:
                self._complete(superseded, SyncResponse(error_code=E.REBALANCE_IN_PROGRESS))
            self._sync_received(group, mid)
            if group.is_leader(mid):
                self._leader_sync(group, req)
            return None
        # Stable: the member missed the assignment (or retries): hand it over again.
        self._sync_received(group, mid)
        return fit(SyncResponse(error_code=E.NONE, protocol_type=group.protocol_type,
                                protocol_name=group.protocol_name, assignment=member.assignment), version)

    def _leader_sync(self, group: ClassicGroup, req: m.SyncGroupRequest) -> None:
        core = self.core
        assignment = {mid: b"" for mid in group.members}
        for a in req.assignments:
            if a.member_id in assignment:
                assignment[a.member_id] = bytes(a.assignment)
        generation = group.generation
        log.info("group_assignment_received", group_id=group.group_id, generation=generation,
                 leader=req.member_id, members=len(group.members))

        def done(error: ErrorCode | None) -> None:
            if core.group(group.group_id) is not group or group.state is not S.COMPLETING_REBALANCE \
                    or group.generation != generation:
                return
            if error is not None:
                for member in group.members.values():
                    member.assignment = b""
                self._propagate_assignment(group, error)
                self._maybe_prepare_rebalance_or_complete_join(group, f"storing the assignment failed: {error.name}")
                return
            for member in group.members.values():
                member.assignment = assignment.get(member.member_id, b"")
            self._propagate_assignment(group, E.NONE)
            group.transition_to(S.STABLE, core.now)
            log.info("group_stable", group_id=group.group_id, generation=generation)

        core.emit(group.group_id, [records.group_metadata(group, assignment)], replay=False, on_done=done)

    def _sync_received(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if group.state in (S.DEAD, S.EMPTY, S.PREPARING_REBALANCE) or not group.pending_sync_members:
            self.core.timer.cancel(self._key("sync", group.group_id))

    # -- Heartbeat ----------------------------------------------------------------------------------

    def heartbeat(self, token: Hashable, req: m.HeartbeatRequest, version: int, client: Client):
        core = self.core
        gid = req.group_id

        def reply(code: ErrorCode):
            response = m.HeartbeatResponse(error_code=code)
            return core.respond(gid, token, version, response, lambda e: m.HeartbeatResponse(error_code=e))

        if not gid:
            return fit(m.HeartbeatResponse(error_code=E.INVALID_GROUP_ID), version)
        code = core.coordinator_error(gid)
        if code == E.COORDINATOR_LOAD_IN_PROGRESS:
            return fit(m.HeartbeatResponse(error_code=E.NONE), version)  # Kafka answers blindly while loading
        if code != E.NONE:
            return fit(m.HeartbeatResponse(error_code=code), version)
        group = self._group(gid)
        if group is None:
            return fit(m.HeartbeatResponse(error_code=E.UNKNOWN_MEMBER_ID), version)
        if group.state is S.DEAD:
            return fit(m.HeartbeatResponse(error_code=E.COORDINATOR_NOT_AVAILABLE), version)
        instance_id = req.group_instance_id if version >= 3 else None
        code_name = group.validate_member(req.member_id, instance_id)
        if code_name is not None:
            return fit(m.HeartbeatResponse(error_code=E[code_name]), version)
        if req.generation_id != group.generation:
            return fit(m.HeartbeatResponse(error_code=E.ILLEGAL_GENERATION), version)
        if group.state is S.EMPTY:
            return fit(m.HeartbeatResponse(error_code=E.UNKNOWN_MEMBER_ID), version)
        self.reschedule_heartbeat(group, group.members[req.member_id])
        if group.state is S.PREPARING_REBALANCE:
            return reply(E.REBALANCE_IN_PROGRESS)
        return reply(E.NONE)

    # -- LeaveGroup ---------------------------------------------------------------------------------

    def leave(self, token: Hashable, req: m.LeaveGroupRequest, version: int, client: Client):
        core = self.core
        gid = req.group_id
        LR = m.LeaveGroupResponse
        if version >= 3:
            identities = [(mi.member_id, mi.group_instance_id) for mi in req.members]
        else:
            identities = [(req.member_id, None)]

        def build(members: list, top: ErrorCode = E.NONE) -> m.LeaveGroupResponse:
            if version < 3:
                # One member, no per-member results: its error is the response's.
                if top == E.NONE and members:
                    top = ErrorCode(members[0].error_code)
                return LR(error_code=top)
            return LR(error_code=top, members=members)

        if not gid:
            return fit(LR(error_code=E.INVALID_GROUP_ID), version)
        code = core.coordinator_error(gid)
        if code != E.NONE:
            return fit(LR(error_code=code), version)
        group = self._group(gid)
        if group is None:
            return fit(build([LR.MemberResponse(member_id=mid, group_instance_id=iid, error_code=E.UNKNOWN_MEMBER_ID)
                              for mid, iid in identities]), version)
        if group.state is S.DEAD:
            return fit(LR(error_code=E.COORDINATOR_NOT_AVAILABLE), version)
        results = []
        left = []
        for mid, iid in identities:
            if mid == "":
                # Admin removal of a static member by instance id (KIP-345).
                target = group.static_member_id(iid)
                if target is None:
                    results.append(LR.MemberResponse(member_id=mid, group_instance_id=iid,
                                                     error_code=E.UNKNOWN_MEMBER_ID))
                    continue
                self._remove_leaving_member(group, target)
                left.append(target)
            elif mid in group.pending_join_members:
                group.remove(mid)
                self._cancel_heartbeat(group, mid)
                left.append(mid)
            else:
                code_name = group.validate_member(mid, iid)
                if code_name is not None:
                    results.append(LR.MemberResponse(member_id=mid, group_instance_id=iid, error_code=E[code_name]))
                    continue
                self._remove_leaving_member(group, mid)
                left.append(mid)
            results.append(LR.MemberResponse(member_id=mid, group_instance_id=iid, error_code=E.NONE))
        if left:
            log.info("group_members_left", group_id=gid, members=left)
            if group.state in (S.STABLE, S.COMPLETING_REBALANCE):
                self._maybe_prepare_rebalance_or_complete_join(group, f"members {left} left")
            elif group.state is S.PREPARING_REBALANCE:
                self._maybe_complete_join(group)
        return core.respond(gid, token, version, build(results), lambda e: LR(error_code=e))

    def _remove_leaving_member(self, group: ClassicGroup, member_id: str) -> None:
        member = group.members[member_id]
        self._cancel_heartbeat(group, member_id)
        self._complete(group.take_join_waiter(member),
                       JoinResponse(error_code=E.UNKNOWN_MEMBER_ID, member_id="", protocol_name=None))
        self._complete(group.take_sync_waiter(member), SyncResponse(error_code=E.UNKNOWN_MEMBER_ID))
        group.remove(member_id)


class _Join:
    """A JoinGroup request, normalised across versions."""

    __slots__ = ("request", "version", "waiter", "client_id", "client_host", "instance_id", "rebalance_timeout_ms",
                 "protocols", "protocol_names")

    def __init__(self, request: m.JoinGroupRequest, version: int, waiter: Waiter, client_id: str, client_host: str):
        self.request = request
        self.version = version
        self.waiter = waiter
        self.client_id = client_id
        self.client_host = client_host
        self.instance_id = request.group_instance_id if version >= 5 else None
        # v0 has no rebalance timeout: the session timeout is both.
        self.rebalance_timeout_ms = request.session_timeout_ms if version == 0 else request.rebalance_timeout_ms
        self.protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
        self.protocol_names = {name for name, _ in self.protocols}


def _inconsistent(requested: str | None, actual: str | None) -> bool:
    return requested is not None and actual is not None and requested != actual
