"""The consumer-group family: the coordinator's APIs, served by `ctx.broker.groups`
(`kafka_compat.coordinator.runtime.GroupCoordinatorRuntime`).

    FindCoordinator         v0-v6   group keys; transaction keys: COORDINATOR_NOT_AVAILABLE (no
                                    transaction coordinator yet); batched keys from v4
    JoinGroup               v0-v9   MEMBER_ID_REQUIRED from v4, static members from v5, SkipAssignment v9
    SyncGroup               v0-v5   protocol type/name checks from v5
    Heartbeat               v0-v4
    LeaveGroup              v0-v5   batch leave by member identity from v3
    OffsetCommit            v0-v9   member epochs for consumer groups at v9
    OffsetFetch             v0-v9   all partitions with null topics (v2+), require_stable v7, groups v8,
                                    member epoch checks v9
    OffsetDelete            v0
    ListGroups              v0-v5   states filter v4, types filter v5
    DescribeGroups          v0-v6   authorized operations from v3; GROUP_ID_NOT_FOUND with a message v6
    DeleteGroups            v0-v3   ErrorMessage v3 (null: no refusal here needs more than its code)
    ConsumerGroupHeartbeat  v0-v1   KIP-848, server-side assignors uniform and range; topic regex v1
    ConsumerGroupDescribe   v0-v1   MemberType v1

Before the coordinator runs (`ctx.broker.groups` is None) every API answers
COORDINATOR_NOT_AVAILABLE, which clients retry.
"""

from __future__ import annotations

from kafka_compat.coordinator.responses import error_response
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.server.group_log import ensure_offsets_topic
from kafka_compat.server.handlers import RequestContext, handles

A = m.ApiKey


def _unavailable(api_key: int, ctx: RequestContext, request):
    return error_response(api_key, request, ctx.api_version, ErrorCode.COORDINATOR_NOT_AVAILABLE,
                          "The coordinator is not available.")


@handles(A.FIND_COORDINATOR, versions=(0, 6))
async def find_coordinator(ctx: RequestContext, request: m.FindCoordinatorRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.FIND_COORDINATOR, ctx, request)
    if request.key_type == 0:  # a group: Kafka creates the offsets topic on the first lookup
        try:
            await ensure_offsets_topic(ctx.broker)
        except KafkaError as e:
            return error_response(A.FIND_COORDINATOR, request, ctx.api_version, e.code, e.message)
    return groups.find_coordinator(request, ctx)


@handles(A.JOIN_GROUP, versions=(0, 9))
async def join_group(ctx: RequestContext, request: m.JoinGroupRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.JOIN_GROUP, ctx, request)
    return await groups.join_group(request, ctx)


@handles(A.SYNC_GROUP, versions=(0, 5))
async def sync_group(ctx: RequestContext, request: m.SyncGroupRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.SYNC_GROUP, ctx, request)
    return await groups.sync_group(request, ctx)


@handles(A.HEARTBEAT, versions=(0, 4))
async def heartbeat(ctx: RequestContext, request: m.HeartbeatRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.HEARTBEAT, ctx, request)
    return await groups.heartbeat(request, ctx)


@handles(A.LEAVE_GROUP, versions=(0, 5))
async def leave_group(ctx: RequestContext, request: m.LeaveGroupRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.LEAVE_GROUP, ctx, request)
    return await groups.leave_group(request, ctx)


@handles(A.OFFSET_COMMIT, versions=(0, 9))
async def offset_commit(ctx: RequestContext, request: m.OffsetCommitRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.OFFSET_COMMIT, ctx, request)
    return await groups.offset_commit(request, ctx)


@handles(A.OFFSET_FETCH, versions=(0, 9))
async def offset_fetch(ctx: RequestContext, request: m.OffsetFetchRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.OFFSET_FETCH, ctx, request)
    return await groups.offset_fetch(request, ctx)


@handles(A.OFFSET_DELETE, versions=(0, 0))
async def offset_delete(ctx: RequestContext, request: m.OffsetDeleteRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.OFFSET_DELETE, ctx, request)
    return await groups.offset_delete(request, ctx)


@handles(A.LIST_GROUPS, versions=(0, 5))
async def list_groups(ctx: RequestContext, request: m.ListGroupsRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.LIST_GROUPS, ctx, request)
    return await groups.list_groups(request, ctx)


@handles(A.DESCRIBE_GROUPS, versions=(0, 6))
async def describe_groups(ctx: RequestContext, request: m.DescribeGroupsRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.DESCRIBE_GROUPS, ctx, request)
    return await groups.describe_groups(request, ctx)


@handles(A.DELETE_GROUPS, versions=(0, 3))
async def delete_groups(ctx: RequestContext, request: m.DeleteGroupsRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.DELETE_GROUPS, ctx, request)
    return await groups.delete_groups(request, ctx)


@handles(A.CONSUMER_GROUP_HEARTBEAT, versions=(0, 1))
async def consumer_group_heartbeat(ctx: RequestContext, request: m.ConsumerGroupHeartbeatRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.CONSUMER_GROUP_HEARTBEAT, ctx, request)
    return await groups.consumer_group_heartbeat(request, ctx)


@handles(A.CONSUMER_GROUP_DESCRIBE, versions=(0, 1))
async def consumer_group_describe(ctx: RequestContext, request: m.ConsumerGroupDescribeRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(A.CONSUMER_GROUP_DESCRIBE, ctx, request)
    return await groups.consumer_group_describe(request, ctx)
