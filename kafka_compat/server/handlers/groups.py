"""The consumer-group family: the coordinator's APIs, served by `ctx.broker.groups`
(`kafka_compat.server.group_coordinator.GroupCoordinatorDriver`).

One handler serves them all: it passes the decoded request on, and the coordinator's table
(`GroupCoordinator.requests`) says which method decides each API. `COORDINATOR_APIS` lists the
versions served, with what each version adds. FindCoordinator (v0-v6: group keys, transaction keys
from v1, batched keys from v4) creates `__consumer_offsets` on the first group lookup and
`__transaction_state` on the first transaction lookup, as Kafka does.

Before the coordinator runs (`ctx.broker.groups` is None) every API answers
COORDINATOR_NOT_AVAILABLE, which clients retry.

Authorization as Kafka's (`authorize_group_request`): READ on the group to join, sync, heartbeat,
leave and commit (and READ on each topic committed), DESCRIBE on the group and its topics to fetch
offsets, DELETE on the group (READ on the topics) to delete offsets, DESCRIBE to find a coordinator
or describe a group (whose authorized operations are filled in), DELETE to delete one; ListGroups
shows every group with DESCRIBE on the cluster, else the groups the principal may describe.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.server.authz import Op, Res, allowed, operations, refused, require, split
from kafka_compat.server.errors import error_response
from kafka_compat.server.group_coordinator import ensure_offsets_topic
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.server.transaction_coordinator import ensure_transaction_topic

A = m.ApiKey


def _unavailable(ctx: RequestContext, request):
    return error_response(ctx.api_key, request, ctx.api_version, ErrorCode.COORDINATOR_NOT_AVAILABLE,
                          "The coordinator is not available.")


@handles(A.FIND_COORDINATOR, versions=(0, 6))
async def find_coordinator(ctx: RequestContext, request: m.FindCoordinatorRequest):
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(ctx, request)
    transactions = ctx.broker.transactions
    key_type = request.key_type if ctx.api_version >= 1 else 0
    rtype = Res.GROUP if key_type == 0 else Res.TRANSACTIONAL_ID
    if ctx.api_version < 4:
        require(ctx, Op.DESCRIBE, rtype, request.key)
        denied = []
    else:
        request.coordinator_keys, denied = split(ctx, request.coordinator_keys,
                                                 lambda k: allowed(ctx, Op.DESCRIBE, rtype, k))
    no = refused(ctx, request, "coordinator_keys", denied, DENIED[rtype], "coordinators")
    if ctx.api_version >= 4 and not request.coordinator_keys:
        return m.FindCoordinatorResponse(coordinators=no)
    try:  # Kafka creates the internal topic on the first lookup
        if key_type == 0:
            await ensure_offsets_topic(ctx.broker)
        elif key_type == 1 and transactions is not None:
            await ensure_transaction_topic(ctx.broker)
    except KafkaError as e:
        return error_response(A.FIND_COORDINATOR, request, ctx.api_version, e.code, e.message)
    locate = None if transactions is None else (lambda key: transactions.locate(key, ctx.listener))
    response = groups.find_coordinator(request, ctx, locate)
    if no:
        response.coordinators += no
    return response


COORDINATOR_APIS = {
    A.JOIN_GROUP: (0, 9),  # MEMBER_ID_REQUIRED from v4, static members from v5, SkipAssignment v9
    A.SYNC_GROUP: (0, 5),  # protocol type/name checks from v5
    A.HEARTBEAT: (0, 4),
    A.LEAVE_GROUP: (0, 5),  # batch leave by member identity from v3
    A.OFFSET_COMMIT: (0, 9),  # member epochs for consumer groups at v9
    A.OFFSET_FETCH: (0, 9),  # all partitions with null topics (v2+), require_stable v7, groups v8, member epochs v9
    A.OFFSET_DELETE: (0, 0),
    A.LIST_GROUPS: (0, 5),  # states filter v4, types filter v5
    A.DESCRIBE_GROUPS: (0, 6),  # authorized operations from v3; GROUP_ID_NOT_FOUND with a message v6
    A.DELETE_GROUPS: (0, 3),  # ErrorMessage v3 (null: no refusal here needs more than its code)
    A.CONSUMER_GROUP_HEARTBEAT: (0, 1),  # KIP-848, server-side assignors uniform and range; topic regex v1
    A.CONSUMER_GROUP_DESCRIBE: (0, 1),  # MemberType v1
    A.TXN_OFFSET_COMMIT: (0, 4),  # member id and generation from v3 (KIP-447)
}


async def coordinated(ctx: RequestContext, request):
    """Every API of COORDINATOR_APIS: the coordinator decides what the principal may ask."""
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(ctx, request)
    if ctx.broker.authorizer is None:
        return await groups.handle(request, ctx)
    finish = authorize_group_request(ctx, request)
    return finish(await groups.handle(request, ctx) if finish.ask else None)


DENIED = {Res.GROUP: ErrorCode.GROUP_AUTHORIZATION_FAILED, Res.TOPIC: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
          Res.TRANSACTIONAL_ID: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED}
TOPIC_DENIED = ErrorCode.TOPIC_AUTHORIZATION_FAILED
READ_GROUP = frozenset({A.JOIN_GROUP, A.SYNC_GROUP, A.HEARTBEAT, A.LEAVE_GROUP, A.CONSUMER_GROUP_HEARTBEAT})


class _Finish:
    """What to add to the coordinator's answer for what was denied; `ask`: anything left to ask it."""

    def __init__(self, merge, ask: bool = True):
        self.merge, self.ask = merge, ask

    def __call__(self, response):
        return self.merge(response)


def authorize_group_request(ctx: RequestContext, request):
    """Kafka's checks for a group API: raises KafkaError (the group denied: the API's whole-request
    error), or returns a `_Finish` that completes the coordinator's answer (items denied, the
    request trimmed to the rest)."""
    k, v = ctx.api_key, ctx.api_version
    R = m.response_class(k)
    if k in READ_GROUP:
        require(ctx, Op.READ, Res.GROUP, request.group_id)
        return _Finish(lambda r: r)
    if k in (A.OFFSET_COMMIT, A.OFFSET_DELETE):
        require(ctx, Op.READ if k == A.OFFSET_COMMIT else Op.DELETE, Res.GROUP, request.group_id)
        request.topics, denied = split(ctx, request.topics, lambda t: allowed(ctx, Op.READ, Res.TOPIC, t.name))
        topic, part = ((R.OffsetCommitResponseTopic, R.OffsetCommitResponsePartition) if k == A.OFFSET_COMMIT
                       else (R.OffsetDeleteResponseTopic, R.OffsetDeleteResponsePartition))
        no = [topic(name=t.name, partitions=[part(partition_index=p.partition_index, error_code=TOPIC_DENIED)
                                             for p in t.partitions]) for t in denied]
        return _Finish(lambda r: _extend(r or R(topics=[]), "topics", no), ask=bool(request.topics))
    if k == A.OFFSET_FETCH:
        return _offset_fetch(ctx, request, v)
    if k == A.TXN_OFFSET_COMMIT:  # Kafka: WRITE on the transactional id, READ on the group and topics
        require(ctx, Op.WRITE, Res.TRANSACTIONAL_ID, request.transactional_id)
        require(ctx, Op.READ, Res.GROUP, request.group_id)
        request.topics, denied = split(ctx, request.topics, lambda t: allowed(ctx, Op.READ, Res.TOPIC, t.name))
        no = [R.TxnOffsetCommitResponseTopic(name=t.name, partitions=[R.TxnOffsetCommitResponsePartition(
            partition_index=p.partition_index, error_code=TOPIC_DENIED) for p in t.partitions]) for t in denied]
        return _Finish(lambda r: _extend(r or R(topics=[]), "topics", no), ask=bool(request.topics))
    if k == A.LIST_GROUPS:
        if allowed(ctx, Op.DESCRIBE, log_if_denied=False):
            return _Finish(lambda r: r)
        return _Finish(lambda r: _keep(r, "groups", lambda g: allowed(ctx, Op.DESCRIBE, Res.GROUP, g.group_id,
                                                                       log_if_denied=False)))
    field, op = {A.DESCRIBE_GROUPS: ("groups", Op.DESCRIBE), A.CONSUMER_GROUP_DESCRIBE: ("group_ids", Op.DESCRIBE),
                 A.DELETE_GROUPS: ("groups_names", Op.DELETE)}[k]
    kept, denied = split(ctx, getattr(request, field), lambda g: allowed(ctx, op, Res.GROUP, g))
    setattr(request, field, kept)
    no = refused(ctx, request, field, denied, ErrorCode.GROUP_AUTHORIZATION_FAILED,
                 "results" if k == A.DELETE_GROUPS else "groups")
    result = "results" if k == A.DELETE_GROUPS else "groups"

    def merge(r):
        r = r or R(**{result: []})
        if k != A.DELETE_GROUPS and getattr(request, "include_authorized_operations", False):
            for g in r.groups:
                if g.error_code == 0:
                    g.authorized_operations = operations(ctx, Res.GROUP, g.group_id)
        return _extend(r, result, no)
    return _Finish(merge, ask=bool(kept))


def _offset_fetch(ctx: RequestContext, request, v: int):
    R = m.OffsetFetchResponse
    if v < 8:
        require(ctx, Op.DESCRIBE, Res.GROUP, request.group_id)
        trim = _trim_topics(ctx, request)
        return _Finish(lambda r: trim(r, "topics"))
    request.groups, denied = split(ctx, request.groups, lambda g: allowed(ctx, Op.DESCRIBE, Res.GROUP, g.group_id))
    no = refused(ctx, request, "groups", denied, ErrorCode.GROUP_AUTHORIZATION_FAILED, "groups")
    trims = {g.group_id: _trim_topics(ctx, g) for g in request.groups}

    def merge(r):
        r = r or R(groups=[])
        for g in r.groups:
            if g.group_id in trims:
                trims[g.group_id](g, "topics")
        return _extend(r, "groups", no)
    return _Finish(merge, ask=bool(request.groups))


def _trim_topics(ctx: RequestContext, holder):
    """OffsetFetch's topics for one group: all of them (null) filtered to what the principal may
    describe, or the listed ones split, the denied answered TOPIC_AUTHORIZATION_FAILED."""
    if holder.topics is None:
        return lambda r, field: _keep(r, field, lambda t: allowed(ctx, Op.DESCRIBE, Res.TOPIC, t.name,
                                                                   log_if_denied=False))
    holder.topics, denied = split(ctx, holder.topics, lambda t: allowed(ctx, Op.DESCRIBE, Res.TOPIC, t.name))

    def add(r, field):
        R = m.OffsetFetchResponse
        topic, part = ((R.OffsetFetchResponseTopics, R.OffsetFetchResponsePartitions)
                       if isinstance(r, R.OffsetFetchResponseGroup)
                       else (R.OffsetFetchResponseTopic, R.OffsetFetchResponsePartition))
        return _extend(r, field, [topic(name=t.name, partitions=[
            part(partition_index=p, committed_offset=-1, metadata="", error_code=TOPIC_DENIED)
            for p in t.partition_indexes]) for t in denied])
    return add


def _extend(r, field: str, items: list):
    if items:
        setattr(r, field, list(getattr(r, field) or []) + items)
    return r


def _keep(r, field: str, keep):
    if getattr(r, "error_code", 0) == 0 and getattr(r, field) is not None:
        setattr(r, field, [x for x in getattr(r, field) if keep(x)])
    return r


for _api_key, _versions in COORDINATOR_APIS.items():
    handles(_api_key, _versions)(coordinated)
