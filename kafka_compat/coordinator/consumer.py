"""KIP-848 consumer groups: members, the group, the reconciliation of a member's assignment, and
the APIs that drive them (ConsumerGroupHeartbeat, ConsumerGroupDescribe) with server-side assignors.

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

A heartbeat (1) creates or updates the member, bumping the group epoch when its subscription (or
the subscribed topics' metadata) changed, (2) recomputes the target assignment when the group
epoch is ahead of it, (3) moves the member one step towards its target (`reconcile`), then
answers with the member's epoch and, when it changed or the request was a full one, its
assignment. Every change is a record, applied as it is emitted (`replay` below) and the response
is released once the records are durable.

Member epoch -1 leaves; -2 is a static member leaving temporarily (it keeps its partitions until
its session expires or it comes back under a new member id). Epoch 0 (re)joins: as in Kafka since
KAFKA-19233, a known member rejoining with epoch 0 is accepted and handed its current assignment.

Subscriptions by regex (`SubscribedTopicRegex`, ConsumerGroupHeartbeat v1) are evaluated with
Python's `re` in full-match mode (Kafka uses RE2/J; the common syntax behaves the same), against
the topics `set_topics` provided, internal topics excluded, and re-evaluated when topics change.

Timer keys: ("session", partition, group, member), ("rebalance", partition, group, member).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum, IntEnum
from typing import TYPE_CHECKING

import structlog

from kafka_compat.coordinator import records
from kafka_compat.coordinator.assignors import ASSIGNORS, MemberSpec
from kafka_compat.coordinator.classic import ClassicGroup
from kafka_compat.coordinator.responses import GROUP_AUTHORIZED_OPERATIONS, fit
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid

if TYPE_CHECKING:
    from kafka_compat.coordinator.machine import Client, GroupCoordinator

log = structlog.get_logger("kafka_compat.coordinator")
E = ErrorCode
HR = m.ConsumerGroupHeartbeatResponse
DR = m.ConsumerGroupDescribeResponse
# ConsumerGroupDescribe v1's MemberType (KIP-1099): 0 a classic member of a consumer group (an online
# upgrade, not built here), 1 a consumer-protocol member.
CONSUMER_MEMBER = 1
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})

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


class HeartbeatError(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None):
        super().__init__(message or code.name)
        self.code = code
        self.message = message


class ConsumerGroups:
    """ConsumerGroupHeartbeat, ConsumerGroupDescribe and the replay of consumer-group records over
    the coordinator's shards."""

    def __init__(self, core: GroupCoordinator):
        self.core = core
        self._regexes: dict[str, re.Pattern] = {}

    def _key(self, kind: str, group_id: str, member_id: str) -> tuple:
        return (kind, self.core.partition_for(group_id), group_id, member_id)

    # -- replay -------------------------------------------------------------------------------------

    def replay(self, shard, rec: records.CoordinatorRecord) -> None:
        t, key, value = rec.type, rec.key, rec.value
        gid = key.group_id
        group = shard.groups.get(gid)
        if not isinstance(group, ConsumerGroup):
            if value is None:
                return  # a tombstone for a group we do not have
            group = ConsumerGroup(gid)
            shard.groups[gid] = group
        if t == records.CONSUMER_GROUP_METADATA:
            if value is None:
                shard.groups.pop(gid, None)
            else:
                group.group_epoch = value.epoch
        elif t == records.CONSUMER_GROUP_PARTITION_METADATA:
            group.subscription_metadata = {} if value is None else {
                tm.topic_name: TopicMetadata(tm.topic_id, tm.topic_name, tm.num_partitions) for tm in value.topics}
        elif t == records.CONSUMER_GROUP_MEMBER_METADATA:
            mid = key.member_id
            if value is None:
                group.remove_member(mid)
            else:
                member = group.members.get(mid) or ConsumerMember(mid)
                group.update_member(replace(
                    member, instance_id=value.instance_id, rack_id=value.rack_id, client_id=value.client_id,
                    client_host=value.client_host, subscribed_topic_names=tuple(sorted(value.subscribed_topic_names)),
                    subscribed_topic_regex=value.subscribed_topic_regex or None,
                    rebalance_timeout_ms=value.rebalance_timeout_ms, server_assignor=value.server_assignor))
        elif t == records.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA:
            group.assignment_epoch = -1 if value is None else value.assignment_epoch
        elif t == records.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target_assignment.pop(key.member_id, None)
            else:
                group.target_assignment[key.member_id] = _assignment_from(value.topic_partitions)
        elif t == records.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT:
            mid = key.member_id
            member = group.members.get(mid)
            if value is None:
                if member is not None:
                    group.update_member(replace(member, member_epoch=LEAVE_GROUP_MEMBER_EPOCH,
                                                previous_member_epoch=LEAVE_GROUP_MEMBER_EPOCH, assigned={},
                                                pending_revocation={}))
            else:
                group.update_member(replace(
                    member or ConsumerMember(mid), member_epoch=value.member_epoch,
                    previous_member_epoch=value.previous_member_epoch, state=MemberState.from_value(value.state),
                    assigned=_assignment_from(value.assigned_partitions),
                    pending_revocation=_assignment_from(value.partitions_pending_revocation)))

    def on_loaded(self, group: ConsumerGroup) -> None:
        group.metadata_refresh_deadline_ms = 0
        for member in group.members.values():
            self._schedule_session_timeout(group.group_id, member.member_id)
            if member.state is MemberState.UNREVOKED_PARTITIONS:
                self._schedule_rebalance_timeout(group.group_id, member)

    # -- timers -------------------------------------------------------------------------------------

    def _schedule_session_timeout(self, gid: str, mid: str) -> None:
        core = self.core
        core.timer.schedule(self._key("session", gid, mid), core.now + core.config.consumer_session_timeout_ms,
                            lambda: self._fence_by_id(gid, mid, "its session expired"))

    def _schedule_rebalance_timeout(self, gid: str, member: ConsumerMember) -> None:
        core = self.core
        mid, epoch = member.member_id, member.member_epoch

        def expire() -> None:
            group = self._group(gid)
            current = group.member(mid) if group is not None else None
            if current is not None and current.member_epoch == epoch:
                self._fence(group, current, f"it did not revoke partitions within {member.rebalance_timeout_ms} ms")

        core.timer.schedule(self._key("rebalance", gid, mid), core.now + max(member.rebalance_timeout_ms, 0), expire)

    def _cancel_timers(self, gid: str, mid: str) -> None:
        self.core.timer.cancel(self._key("session", gid, mid))
        self.core.timer.cancel(self._key("rebalance", gid, mid))

    def _group(self, gid: str) -> ConsumerGroup | None:
        group = self.core.group(gid)
        return group if isinstance(group, ConsumerGroup) else None

    def _fence_by_id(self, gid: str, mid: str, reason: str) -> None:
        group = self._group(gid)
        member = group.member(mid) if group is not None else None
        if member is not None:
            self._fence(group, member, reason)

    def _fence(self, group: ConsumerGroup, member: ConsumerMember, reason: str) -> None:
        """Remove a member (it left, or was fenced) and bump the group epoch."""
        core, gid, mid = self.core, group.group_id, member.member_id
        core.emit(gid, [records.consumer_group_current_assignment_tombstone(gid, mid),
                        records.consumer_group_target_assignment_tombstone(gid, mid),
                        records.consumer_group_member_subscription_tombstone(gid, mid)])
        metadata = self._subscription_metadata(group)
        recs = []
        if metadata != group.subscription_metadata:
            recs.append(records.consumer_group_subscription_metadata(gid, metadata))
        recs.append(records.consumer_group_epoch(gid, group.group_epoch + 1))
        core.emit(gid, recs)
        self._cancel_timers(gid, mid)
        log.info("consumer_group_member_removed", group_id=gid, member_id=mid, reason=reason,
                 group_epoch=group.group_epoch)

    # -- subscriptions ------------------------------------------------------------------------------

    def _resolve_regexes(self, group: ConsumerGroup) -> None:
        topics = self.core.topics or {}
        resolved = {}
        for member in group.members.values():
            pattern = member.subscribed_topic_regex
            if pattern is None or pattern in resolved:
                continue
            regex = self._regexes.get(pattern)
            if regex is None:
                try:
                    regex = self._regexes[pattern] = compile_regex(pattern)
                except re.error:
                    resolved[pattern] = frozenset()
                    continue
            resolved[pattern] = frozenset(t for t in topics if t not in INTERNAL_TOPICS and regex.fullmatch(t))
        group.resolved_regexes = resolved

    def _subscription_metadata(self, group: ConsumerGroup) -> dict[str, TopicMetadata]:
        topics = self.core.topics or {}
        out = {}
        for name in group.subscribed_topics():
            info = topics.get(name)
            if info is not None:
                out[name] = TopicMetadata(info[0], name, info[1])
        return out

    def _update_target_assignment(self, group: ConsumerGroup) -> None:
        core, gid = self.core, group.group_id
        name = group.preferred_assignor() or core.config.consumer_assignors[0]
        assignor = ASSIGNORS.get(name) or ASSIGNORS["uniform"]
        meta = group.subscription_metadata
        specs = {}
        for mid, member in group.members.items():
            topic_ids = frozenset(meta[t].topic_id for t in group.member_topics(member) if t in meta)
            specs[mid] = MemberSpec(mid, topic_ids, member.instance_id, member.rack_id,
                                    group.target_assignment.get(mid, {}))
        target = assignor(specs, {tm.topic_id: tm.num_partitions for tm in meta.values()})
        recs = [records.consumer_group_target_assignment(gid, mid, target.get(mid, {})) for mid in specs
                if mid not in group.target_assignment or group.target_assignment[mid] != target.get(mid, {})]
        recs.append(records.consumer_group_target_assignment_epoch(gid, group.group_epoch))
        core.emit(gid, recs)
        log.info("consumer_group_target_assignment", group_id=gid, epoch=group.group_epoch, assignor=name,
                 members=len(specs))

    # -- ConsumerGroupHeartbeat ---------------------------------------------------------------------

    def heartbeat(self, token: Hashable, req: m.ConsumerGroupHeartbeatRequest, version: int, client: Client):
        core = self.core
        if not core.config.consumer_protocol_enabled:
            return fit(HR(error_code=E.UNSUPPORTED_VERSION,
                          error_message="The consumer rebalance protocol is disabled."), version)
        code = core.coordinator_error(req.group_id)
        if code != E.NONE:
            return fit(HR(error_code=code), version)
        try:
            self._validate(req, version)
            if req.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                response = self._leave(req)
            else:
                response = self._heartbeat(req, client)
        except HeartbeatError as e:
            return fit(HR(error_code=e.code, error_message=e.message), version)
        return core.respond(req.group_id, token, version, response, lambda err: HR(error_code=err))

    def _validate(self, req: m.ConsumerGroupHeartbeatRequest, version: int) -> None:
        def invalid(message: str) -> HeartbeatError:
            return HeartbeatError(E.INVALID_REQUEST, message)

        if not req.group_id:
            raise invalid("GroupId can't be empty.")
        if req.instance_id == "":
            raise invalid("InstanceId can't be empty.")
        if req.rack_id == "":
            raise invalid("RackId can't be empty.")
        regex = req.subscribed_topic_regex if version >= 1 else None
        epoch = req.member_epoch
        if epoch > 0 or epoch == LEAVE_GROUP_MEMBER_EPOCH:
            if not req.member_id:
                raise invalid("MemberId can't be empty.")
        elif epoch == 0:
            if req.rebalance_timeout_ms == -1:
                raise invalid("RebalanceTimeoutMs must be provided in first request.")
            if req.topic_partitions is None or req.topic_partitions:
                raise invalid("TopicPartitions must be empty when (re-)joining.")
            if req.subscribed_topic_names is None and regex is None:
                raise invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if not req.member_id:
                raise invalid("MemberId can't be empty.")
            if req.instance_id is None:
                raise invalid("InstanceId can't be null.")
        else:
            raise invalid("MemberEpoch is invalid.")
        if req.server_assignor is not None and req.server_assignor not in self.core.config.consumer_assignors:
            raise HeartbeatError(E.UNSUPPORTED_ASSIGNOR, f"ServerAssignor {req.server_assignor} is not supported. "
                                 f"Supported assignors: {', '.join(self.core.config.consumer_assignors)}.")
        if regex:
            try:
                compile_regex(regex)
            except re.error as e:
                raise HeartbeatError(E.INVALID_REGULAR_EXPRESSION,
                                     f"SubscribedTopicRegex {regex!r} is invalid: {e}") from e

    @staticmethod
    def _check_epoch(member: ConsumerMember, epoch: int, owned) -> None:
        if epoch == 0:
            return  # (re)joining: accepted, the member gets its current assignment (KAFKA-19233)
        if epoch > member.member_epoch:
            raise HeartbeatError(E.FENCED_MEMBER_EPOCH, f"The member epoch ({epoch}) is greater than the "
                                 f"coordinator's ({member.member_epoch}); the member must rejoin.")
        if epoch < member.member_epoch and (epoch != member.previous_member_epoch
                                            or not owned_is_subset(owned, member.assigned)):
            # The previous epoch with a subset of the assignment is fine: our response was lost.
            raise HeartbeatError(E.FENCED_MEMBER_EPOCH, f"The member epoch ({epoch}) is smaller than the "
                                 f"coordinator's ({member.member_epoch}); the member must rejoin.")

    def _heartbeat(self, req: m.ConsumerGroupHeartbeatRequest, client: Client) -> m.ConsumerGroupHeartbeatResponse:
        core, cfg = self.core, self.core.config
        gid, mid, epoch = req.group_id, req.member_id, req.member_epoch
        joining = epoch == 0
        owned = None if req.topic_partitions is None else [(tp.topic_id, list(tp.partitions))
                                                           for tp in req.topic_partitions]
        existing = core.group(gid)
        classic_to_replace = None
        if existing is None:
            if not joining:
                raise HeartbeatError(E.GROUP_ID_NOT_FOUND, f"Group {gid} not found.")
            group = None
        elif isinstance(existing, ClassicGroup):
            if not (joining and existing.is_empty):
                raise HeartbeatError(E.GROUP_ID_NOT_FOUND, f"Group {gid} is not a consumer group.")
            classic_to_replace, group = existing, None
        else:
            group = existing
        if group is not None and len(group.members) >= cfg.consumer_max_size and (not mid or mid not in group.members):
            raise HeartbeatError(E.GROUP_MAX_SIZE_REACHED, f"The consumer group has reached its maximum capacity "
                                 f"of {cfg.consumer_max_size} members.")
        if not mid:
            mid = str(Uuid(core.new_uuid().bytes))

        # Who is this member? (All validation happens before any record is emitted.)
        iid = req.instance_id
        replaced: ConsumerMember | None = None
        if iid is None:
            member = group.member(mid) if group is not None else None
            if member is None:
                if not joining:
                    raise HeartbeatError(E.UNKNOWN_MEMBER_ID, f"Member {mid} is not a member of group {gid}.")
                member = ConsumerMember(mid)
            else:
                self._check_epoch(member, epoch, owned)
        else:
            static = group.static_member(iid) if group is not None else None
            if joining:
                if static is None:
                    member = (group.member(mid) if group is not None else None) or ConsumerMember(mid)
                elif static.member_id == mid:
                    member = static
                else:
                    if static.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                        raise HeartbeatError(E.UNRELEASED_INSTANCE_ID, f"Static member {mid} with instance id "
                                             f"{iid} cannot join the group because the instance id is owned by "
                                             f"member {static.member_id}.")
                    replaced = static
                    member = replace(static, member_id=mid, member_epoch=0, previous_member_epoch=0)
            else:
                if static is None:
                    raise HeartbeatError(E.UNKNOWN_MEMBER_ID, f"Instance id {iid} is unknown.")
                if static.member_id != mid:
                    raise HeartbeatError(E.FENCED_INSTANCE_ID, f"Static member {mid} with instance id {iid} "
                                         f"was fenced by member {static.member_id}.")
                self._check_epoch(static, epoch, owned)
                member = static
        original = replaced or member

        # 1. The member and the group epoch.
        if classic_to_replace is not None:
            core.emit(gid, core.group_tombstones(classic_to_replace))
        if replaced is not None:
            # The new incarnation takes the old one's place: its subscription, target and partitions.
            old_target = group.target_assignment.get(replaced.member_id, {})
            core.emit(gid, [records.consumer_group_current_assignment_tombstone(gid, replaced.member_id),
                            records.consumer_group_target_assignment_tombstone(gid, replaced.member_id),
                            records.consumer_group_member_subscription_tombstone(gid, replaced.member_id),
                            records.consumer_group_member_subscription(gid, member),
                            records.consumer_group_target_assignment(gid, mid, old_target),
                            records.consumer_group_current_assignment(gid, member)])
            self._cancel_timers(gid, replaced.member_id)
            log.info("consumer_group_static_member_replaced", group_id=gid, instance_id=iid,
                     old_member_id=replaced.member_id, member_id=mid)
        is_new = group is None or mid not in group.members
        updated = replace(
            member,
            instance_id=iid if iid is not None else member.instance_id,
            rack_id=req.rack_id if req.rack_id is not None else member.rack_id,
            rebalance_timeout_ms=(req.rebalance_timeout_ms if req.rebalance_timeout_ms != -1
                                  else member.rebalance_timeout_ms),
            server_assignor=req.server_assignor if req.server_assignor is not None else member.server_assignor,
            subscribed_topic_names=tuple(sorted(set(req.subscribed_topic_names)))
            if req.subscribed_topic_names is not None else member.subscribed_topic_names,
            subscribed_topic_regex=(req.subscribed_topic_regex or None)
            if req.subscribed_topic_regex is not None else member.subscribed_topic_regex,
            client_id=client.id, client_host=client.host)
        bump = False
        if is_new or updated.subscription() != member.subscription():
            core.emit(gid, [records.consumer_group_member_subscription(gid, updated)])
            bump = is_new or updated.subscribed_topic_names != member.subscribed_topic_names \
                or updated.subscribed_topic_regex != member.subscribed_topic_regex
        group = self._group(gid)
        assert group is not None
        if bump or core.now >= group.metadata_refresh_deadline_ms:
            self._resolve_regexes(group)
            metadata = self._subscription_metadata(group)
            recs = []
            if metadata != group.subscription_metadata:
                recs.append(records.consumer_group_subscription_metadata(gid, metadata))
                bump = True
            if bump:
                recs.append(records.consumer_group_epoch(gid, group.group_epoch + 1))
            core.emit(gid, recs)
            if bump:
                log.info("consumer_group_epoch_bumped", group_id=gid, epoch=group.group_epoch, member_id=mid)
            group.metadata_refresh_deadline_ms = core.now + core.config.consumer_metadata_refresh_interval_ms

        # 2. The target assignment.
        if group.group_epoch > group.assignment_epoch:
            self._update_target_assignment(group)

        # 3. Reconcile the member towards its target.
        member = group.members[mid]
        if not member.is_reconciled_to(group.assignment_epoch):
            try:
                reconciled = reconcile(member, group.assignment_epoch, group.member_target(mid),
                                       group.partition_epoch, owned)
            except Fenced as e:
                raise HeartbeatError(E.FENCED_MEMBER_EPOCH, str(e)) from e
            if reconciled != member:
                core.emit(gid, [records.consumer_group_current_assignment(gid, reconciled)])
                if reconciled.state is MemberState.UNREVOKED_PARTITIONS:
                    self._schedule_rebalance_timeout(gid, reconciled)
                else:
                    self.core.timer.cancel(self._key("rebalance", gid, mid))
            member = group.members[mid]
        self._schedule_session_timeout(gid, mid)

        response = HR(error_code=E.NONE, member_id=mid, member_epoch=member.member_epoch,
                      heartbeat_interval_ms=cfg.consumer_heartbeat_interval_ms)
        full = joining or (req.rebalance_timeout_ms != -1 and req.subscribed_topic_names is not None
                           and owned is not None)
        if full or member.assigned != original.assigned:
            response.assignment = HR.Assignment(topic_partitions=[
                HR.TopicPartitions(topic_id=t, partitions=sorted(ps)) for t, ps in sorted(member.assigned.items())])
        return response

    def _leave(self, req: m.ConsumerGroupHeartbeatRequest) -> m.ConsumerGroupHeartbeatResponse:
        gid, mid, epoch, iid = req.group_id, req.member_id, req.member_epoch, req.instance_id
        group = self._group(gid)
        if group is None:
            raise HeartbeatError(E.GROUP_ID_NOT_FOUND, f"Group {gid} not found.")
        if iid is None:
            member = group.member(mid)
            if member is None:
                raise HeartbeatError(E.UNKNOWN_MEMBER_ID, f"Member {mid} is not a member of group {gid}.")
            self._fence(group, member, "it left the group")
            return HR(error_code=E.NONE, member_id=mid, member_epoch=epoch)
        member = group.static_member(iid)
        if member is None:
            raise HeartbeatError(E.UNKNOWN_MEMBER_ID, f"Instance id {iid} is unknown.")
        if member.member_id != mid:
            raise HeartbeatError(E.FENCED_INSTANCE_ID, f"Static member {mid} with instance id {iid} was fenced "
                                 f"by member {member.member_id}.")
        if epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            # Leaving for a while (a restart): it keeps its partitions, nobody else gets them, until
            # it returns under a new member id or its session expires.
            self.core.emit(gid, [records.consumer_group_current_assignment(gid, replace(
                member, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH, pending_revocation={}))])
            log.info("consumer_group_static_member_left_temporarily", group_id=gid, member_id=mid, instance_id=iid)
            return HR(error_code=E.NONE, member_id=mid, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH)
        self._fence(group, member, "it left the group")
        return HR(error_code=E.NONE, member_id=mid, member_epoch=epoch)

    # -- ConsumerGroupDescribe ----------------------------------------------------------------------

    def describe(self, token: Hashable, req: m.ConsumerGroupDescribeRequest, version: int, client: Client):
        core = self.core
        described = []
        for gid in req.group_ids:
            if not gid:
                described.append(DR.DescribedGroup(group_id=gid, error_code=E.INVALID_GROUP_ID))
                continue
            code = core.coordinator_error(gid)
            if code != E.NONE:
                described.append(DR.DescribedGroup(group_id=gid, error_code=code))
                continue
            group = self._group(gid)
            if group is None:
                described.append(DR.DescribedGroup(group_id=gid, error_code=E.GROUP_ID_NOT_FOUND,
                                                   error_message=f"Group {gid} not found."))
                continue
            members = [DR.Member(
                member_id=mb.member_id, instance_id=mb.instance_id, rack_id=mb.rack_id, member_epoch=mb.member_epoch,
                client_id=mb.client_id, client_host=mb.client_host,
                subscribed_topic_names=list(mb.subscribed_topic_names),
                subscribed_topic_regex=mb.subscribed_topic_regex,
                assignment=self._describe_assignment(mb.assigned),
                target_assignment=self._describe_assignment(group.target_assignment.get(mb.member_id, {})),
                member_type=CONSUMER_MEMBER)
                for mb in group.members.values()]
            d = DR.DescribedGroup(group_id=gid, group_state=group.state_name, group_epoch=group.group_epoch,
                                  assignment_epoch=group.assignment_epoch,
                                  assignor_name=group.preferred_assignor() or core.config.consumer_assignors[0],
                                  members=members)
            if req.include_authorized_operations:
                d.authorized_operations = GROUP_AUTHORIZED_OPERATIONS  # no authorizer restricts them yet
            described.append(d)
        return fit(DR(groups=described), version)

    def _describe_assignment(self, assignment) -> m.ConsumerGroupDescribeResponse.Assignment:
        names = self.core.topic_names
        return DR.Assignment(topic_partitions=[
            DR.TopicPartitions(topic_id=t, topic_name=names[t], partitions=sorted(ps))
            for t, ps in sorted(assignment.items()) if t in names])


def _assignment_from(topic_partitions) -> Assignment:
    """An Assignment from a record's topic partitions (topics without partitions left out)."""
    return {tp.topic_id: frozenset(tp.partitions) for tp in topic_partitions if tp.partitions}
