"""Shaping group-API responses for the version they answer, and whole-request error responses.

`fit(response, version)` resets every field the version does not carry to its default (nested
structs too), so a response built with all the facts encodes at any version: fields a version
lacks are never "non-ignorable but set". `group_error_response` answers any group API with one
error code in the place that API carries it (top level, per partition, per group or per key).
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, SchemaStruct

ApiKey = m.ApiKey


def fit(obj: SchemaStruct, version: int) -> SchemaStruct:
    """Reset, in place, the fields `version` does not carry; return `obj`."""
    resets, children = _plan(type(obj), version)
    for name, default, factory in resets:
        setattr(obj, name, default if factory is None else factory())
    for name in children:
        value = getattr(obj, name)
        if type(value) is list:
            if value and isinstance(value[0], SchemaStruct) and _plan(type(value[0]), version) != _NOTHING:
                for item in value:
                    fit(item, version)
        elif isinstance(value, SchemaStruct):
            fit(value, version)
    return obj


_NOTHING = ((), ())
_PLANS: dict[tuple[type, int], tuple[tuple, tuple]] = {}


def _plan(cls: type, version: int) -> tuple[tuple, tuple]:
    """What `fit` does to a `cls` at `version`: the fields to reset (name, default, factory), and
    the fields that may hold structs (lists and nullable fields). Computed once per pair."""
    plan = _PLANS.get((cls, version))
    if plan is None:
        resets, children = [], []
        for name in cls._fields:
            lo, hi = cls._versions.get(name, (0, -1))
            if lo <= version <= hi:
                if cls._defaults.get(name) is None:  # a list or struct factory, or nullable
                    children.append(name)
            elif name in cls._defaults:
                resets.append((name, cls._defaults[name], None))
            elif name in cls._factories:
                resets.append((name, None, cls._factories[name]))
        plan = _PLANS[(cls, version)] = (tuple(resets), tuple(children)) if resets or children else _NOTHING
    return plan


def join_group_error(request: m.JoinGroupRequest | None, version: int, code: ErrorCode,
                     member_id: str | None = None) -> m.JoinGroupResponse:
    if member_id is None:
        member_id = request.member_id if request is not None else ""
    return m.JoinGroupResponse(error_code=code, generation_id=-1, member_id=member_id,
                               protocol_name=None if version >= 7 else "", leader="")


def offset_commit_error(request: m.OffsetCommitRequest, code: ErrorCode) -> m.OffsetCommitResponse:
    R = m.OffsetCommitResponse
    return R(topics=[R.OffsetCommitResponseTopic(name=t.name, partitions=[
        R.OffsetCommitResponsePartition(partition_index=p.partition_index, error_code=code) for p in t.partitions])
        for t in request.topics])


def txn_offset_commit_error(request: m.TxnOffsetCommitRequest, code: ErrorCode) -> m.TxnOffsetCommitResponse:
    R = m.TxnOffsetCommitResponse
    return R(topics=[R.TxnOffsetCommitResponseTopic(name=t.name, partitions=[
        R.TxnOffsetCommitResponsePartition(partition_index=p.partition_index, error_code=code) for p in t.partitions])
        for t in request.topics])


def offset_fetch_group_error(group_id: str, code: ErrorCode) -> m.OffsetFetchResponse.OffsetFetchResponseGroup:
    return m.OffsetFetchResponse.OffsetFetchResponseGroup(group_id=group_id, error_code=code, topics=[])


def offset_fetch_error(request: m.OffsetFetchRequest, version: int, code: ErrorCode) -> m.OffsetFetchResponse:
    R = m.OffsetFetchResponse
    if version >= 8:
        return R(groups=[offset_fetch_group_error(g.group_id, code) for g in request.groups])
    if version >= 2:
        return R(error_code=code, topics=[])
    # v0-v1 have no top-level error: every requested partition carries it.
    return R(topics=[R.OffsetFetchResponseTopic(name=t.name, partitions=[
        R.OffsetFetchResponsePartition(partition_index=p, committed_offset=-1, metadata="", error_code=code)
        for p in t.partition_indexes]) for t in (request.topics or [])])


def find_coordinator_error(request: m.FindCoordinatorRequest, version: int, code: ErrorCode,
                           message: str | None = None) -> m.FindCoordinatorResponse:
    R = m.FindCoordinatorResponse
    if version >= 4:
        return R(coordinators=[R.Coordinator(key=k, node_id=-1, host="", port=-1, error_code=code,
                                             error_message=message)
                               for k in request.coordinator_keys])
    return R(error_code=code, error_message=message, node_id=-1, host="", port=-1)


# The APIs `group_error_response` answers.
GROUP_APIS = frozenset({
    ApiKey.JOIN_GROUP, ApiKey.SYNC_GROUP, ApiKey.HEARTBEAT, ApiKey.LEAVE_GROUP, ApiKey.OFFSET_COMMIT,
    ApiKey.OFFSET_FETCH, ApiKey.OFFSET_DELETE, ApiKey.FIND_COORDINATOR, ApiKey.LIST_GROUPS,
    ApiKey.DESCRIBE_GROUPS, ApiKey.DELETE_GROUPS, ApiKey.CONSUMER_GROUP_HEARTBEAT, ApiKey.CONSUMER_GROUP_DESCRIBE,
    ApiKey.TXN_OFFSET_COMMIT,
})


def group_error_response(api_key: int, request: Message, version: int, code: ErrorCode,
                         message: str | None = None) -> Message:
    """A response to the group request `request` failing as a whole with `code`, fitted to `version`."""
    k = ApiKey(api_key)
    if k is ApiKey.JOIN_GROUP:
        r = join_group_error(request, version, code)
    elif k is ApiKey.SYNC_GROUP:
        r = m.SyncGroupResponse(error_code=code)
    elif k is ApiKey.HEARTBEAT:
        r = m.HeartbeatResponse(error_code=code)
    elif k is ApiKey.LEAVE_GROUP:
        r = m.LeaveGroupResponse(error_code=code)
    elif k is ApiKey.OFFSET_COMMIT:
        r = offset_commit_error(request, code)
    elif k is ApiKey.TXN_OFFSET_COMMIT:
        r = txn_offset_commit_error(request, code)
    elif k is ApiKey.OFFSET_FETCH:
        r = offset_fetch_error(request, version, code)
    elif k is ApiKey.OFFSET_DELETE:
        r = m.OffsetDeleteResponse(error_code=code)
    elif k is ApiKey.FIND_COORDINATOR:
        r = find_coordinator_error(request, version, code, message)
    elif k is ApiKey.LIST_GROUPS:
        r = m.ListGroupsResponse(error_code=code)
    elif k is ApiKey.DESCRIBE_GROUPS:
        R = m.DescribeGroupsResponse
        r = R(groups=[R.DescribedGroup(group_id=g, error_code=code) for g in request.groups])
    elif k is ApiKey.DELETE_GROUPS:
        R = m.DeleteGroupsResponse
        r = R(results=[R.DeletableGroupResult(group_id=g, error_code=code) for g in request.groups_names])
    elif k is ApiKey.CONSUMER_GROUP_HEARTBEAT:
        r = m.ConsumerGroupHeartbeatResponse(error_code=code, error_message=message)
    elif k is ApiKey.CONSUMER_GROUP_DESCRIBE:
        R = m.ConsumerGroupDescribeResponse
        r = R(groups=[R.DescribedGroup(group_id=g, error_code=code, error_message=message) for g in request.group_ids])
    else:
        raise ValueError(f"not a group API: {k.name}")
    return fit(r, version)


def append_error(code: ErrorCode) -> ErrorCode:
    """The error a client sees when the coordinator's append failed with `code` (Kafka's
    mapping: the client should look for the coordinator again, or give up on a size error). A
    TxnOffsetCommit's verification that got no answer is retried without a coordinator lookup."""
    if code == ErrorCode.NETWORK_EXCEPTION:
        return ErrorCode.COORDINATOR_LOAD_IN_PROGRESS
    if code in (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ErrorCode.NOT_ENOUGH_REPLICAS,
                ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND, ErrorCode.REQUEST_TIMED_OUT,
                ErrorCode.COORDINATOR_NOT_AVAILABLE):
        return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if code in (ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.KAFKA_STORAGE_ERROR):
        return ErrorCode.NOT_COORDINATOR
    if code in (ErrorCode.MESSAGE_TOO_LARGE, ErrorCode.RECORD_LIST_TOO_LARGE, ErrorCode.INVALID_FETCH_SIZE):
        return ErrorCode.UNKNOWN_SERVER_ERROR
    return code


# Kafka's AclOperation codes a GROUP resource supports (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS,
# ALTER_CONFIGS), as the 32-bit field DescribeGroups returns when no authorizer restricts them.
GROUP_AUTHORIZED_OPERATIONS = sum(1 << op for op in (3, 6, 8, 10, 11))
