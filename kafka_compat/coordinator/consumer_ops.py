"""ConsumerGroupHeartbeat and ConsumerGroupDescribe: the KIP-848 protocol, server-side assignment.

A heartbeat (1) creates or updates the member, bumping the group epoch when its subscription (or
the subscribed topics' metadata) changed, (2) recomputes the target assignment when the group
epoch is ahead of it, (3) moves the member one step towards its target (`consumer.reconcile`),
then answers with the member's epoch and, when it changed or the request was a full one, its
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
from collections.abc import Callable, Hashable
from dataclasses import replace

import structlog

from kafka_compat.coordinator import records as R
from kafka_compat.coordinator.assignors import ASSIGNORS, MemberSpec
from kafka_compat.coordinator.classic import ClassicGroup
from kafka_compat.coordinator.consumer import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerGroup,
    ConsumerMember,
    Fenced,
    MemberState,
    TopicMetadata,
    compile_regex,
    owned_is_subset,
    reconcile,
)
from kafka_compat.coordinator.responses import GROUP_AUTHORIZED_OPERATIONS, fit
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid

log = structlog.get_logger("kafka_compat.coordinator")
E = ErrorCode
HR = m.ConsumerGroupHeartbeatResponse
DR = m.ConsumerGroupDescribeResponse
# ConsumerGroupDescribe v1's MemberType (KIP-1099): 0 a classic member of a consumer group (an online
# upgrade, not built here), 1 a consumer-protocol member.
CONSUMER_MEMBER = 1
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


class HeartbeatError(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None):
        super().__init__(message or code.name)
        self.code = code
        self.message = message


class ConsumerManager:
    def __init__(self, core):
        self.core = core
        self._regexes: dict[str, re.Pattern] = {}

    def _key(self, kind: str, group_id: str, member_id: str) -> tuple:
        return (kind, self.core.partition_for(group_id), group_id, member_id)

    # -- replay -------------------------------------------------------------------------------------

    def replay(self, shard, rec: R.CoordinatorRecord) -> None:
        t, key, value = rec.type, rec.key, rec.value
        gid = key.group_id
        group = shard.groups.get(gid)
        if not isinstance(group, ConsumerGroup):
            if value is None:
                return  # a tombstone for a group we do not have
            group = ConsumerGroup(gid)
            shard.groups[gid] = group
        if t == R.CONSUMER_GROUP_METADATA:
            if value is None:
                shard.groups.pop(gid, None)
            else:
                group.group_epoch = value.epoch
        elif t == R.CONSUMER_GROUP_PARTITION_METADATA:
            group.subscription_metadata = {} if value is None else {
                tm.topic_name: TopicMetadata(tm.topic_id, tm.topic_name, tm.num_partitions) for tm in value.topics}
        elif t == R.CONSUMER_GROUP_MEMBER_METADATA:
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
        elif t == R.CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA:
            group.assignment_epoch = -1 if value is None else value.assignment_epoch
        elif t == R.CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target_assignment.pop(key.member_id, None)
            else:
                group.target_assignment[key.member_id] = R.assignment_from(value.topic_partitions)
        elif t == R.CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT:
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
                    previous_member_epoch=value.previous_member_epoch, state=R.member_state_of(value),
                    assigned=R.assignment_from(value.assigned_partitions),
                    pending_revocation=R.assignment_from(value.partitions_pending_revocation)))

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
        core.emit(gid, [R.consumer_group_current_assignment_tombstone(gid, mid),
                        R.consumer_group_target_assignment_tombstone(gid, mid),
                        R.consumer_group_member_subscription_tombstone(gid, mid)])
        metadata = self._subscription_metadata(group)
        recs = []
        if metadata != group.subscription_metadata:
            recs.append(R.consumer_group_subscription_metadata(gid, metadata))
        recs.append(R.consumer_group_epoch(gid, group.group_epoch + 1))
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
        recs = [R.consumer_group_target_assignment(gid, mid, target.get(mid, {})) for mid in specs
                if mid not in group.target_assignment or group.target_assignment[mid] != target.get(mid, {})]
        recs.append(R.consumer_group_target_assignment_epoch(gid, group.group_epoch))
        core.emit(gid, recs)
        log.info("consumer_group_target_assignment", group_id=gid, epoch=group.group_epoch, assignor=name,
                 members=len(specs))

    # -- ConsumerGroupHeartbeat ---------------------------------------------------------------------

    def heartbeat(self, token: Hashable, req: m.ConsumerGroupHeartbeatRequest, version: int, client_id: str,
                  client_host: str):
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
                response = self._heartbeat(req, client_id, client_host)
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

    def _heartbeat(self, req: m.ConsumerGroupHeartbeatRequest, client_id: str,
                   client_host: str) -> m.ConsumerGroupHeartbeatResponse:
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
            core.emit(gid, [R.consumer_group_current_assignment_tombstone(gid, replaced.member_id),
                            R.consumer_group_target_assignment_tombstone(gid, replaced.member_id),
                            R.consumer_group_member_subscription_tombstone(gid, replaced.member_id),
                            R.consumer_group_member_subscription(gid, member),
                            R.consumer_group_target_assignment(gid, mid, old_target),
                            R.consumer_group_current_assignment(gid, member)])
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
            client_id=client_id, client_host=client_host)
        bump = False
        if is_new or updated.subscription() != member.subscription():
            core.emit(gid, [R.consumer_group_member_subscription(gid, updated)])
            bump = is_new or updated.subscribed_topic_names != member.subscribed_topic_names \
                or updated.subscribed_topic_regex != member.subscribed_topic_regex
        group = self._group(gid)
        assert group is not None
        if bump or core.now >= group.metadata_refresh_deadline_ms:
            self._resolve_regexes(group)
            metadata = self._subscription_metadata(group)
            recs = []
            if metadata != group.subscription_metadata:
                recs.append(R.consumer_group_subscription_metadata(gid, metadata))
                bump = True
            if bump:
                recs.append(R.consumer_group_epoch(gid, group.group_epoch + 1))
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
                core.emit(gid, [R.consumer_group_current_assignment(gid, reconciled)])
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
            self.core.emit(gid, [R.consumer_group_current_assignment(gid, replace(
                member, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH, pending_revocation={}))])
            log.info("consumer_group_static_member_left_temporarily", group_id=gid, member_id=mid, instance_id=iid)
            return HR(error_code=E.NONE, member_id=mid, member_epoch=LEAVE_GROUP_STATIC_MEMBER_EPOCH)
        self._fence(group, member, "it left the group")
        return HR(error_code=E.NONE, member_id=mid, member_epoch=epoch)

    # -- ConsumerGroupDescribe ----------------------------------------------------------------------

    def describe(self, req: m.ConsumerGroupDescribeRequest, version: int,
                 authorized_operations: Callable[[str], int] | None):
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
                d.authorized_operations = (authorized_operations or (lambda _: GROUP_AUTHORIZED_OPERATIONS))(gid)
            described.append(d)
        return fit(DR(groups=described), version)

    def _describe_assignment(self, assignment) -> m.ConsumerGroupDescribeResponse.Assignment:
        names = self.core.topic_names
        return DR.Assignment(topic_partitions=[
            DR.TopicPartitions(topic_id=t, topic_name=names[t], partitions=sorted(ps))
            for t, ps in sorted(assignment.items()) if t in names])

