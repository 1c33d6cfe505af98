"""The consumer-group family: the coordinator's APIs, served by `ctx.broker.groups`
(`kafka_compat.server.group_coordinator.GroupCoordinatorDriver`).

One handler serves them all: it passes the decoded request on, and the coordinator's table
(`GroupCoordinator.requests`) says which method decides each API. `COORDINATOR_APIS` lists the
versions served, with what each version adds. FindCoordinator (v0-v6: group keys, transaction keys
from v1, batched keys from v4) creates `__consumer_offsets` on the first group lookup and
`__transaction_state` on the first transaction lookup, as Kafka does.

Before the coordinator runs (`ctx.broker.groups` is None) every API answers
COORDINATOR_NOT_AVAILABLE, which clients retry.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
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
    try:  # Kafka creates the internal topic on the first lookup
        if key_type == 0:
            await ensure_offsets_topic(ctx.broker)
        elif key_type == 1 and transactions is not None:
            await ensure_transaction_topic(ctx.broker)
    except KafkaError as e:
        return error_response(A.FIND_COORDINATOR, request, ctx.api_version, e.code, e.message)
    locate = None if transactions is None else (lambda key: transactions.locate(key, ctx.listener))
    return groups.find_coordinator(request, ctx, locate)


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
    """Every API of COORDINATOR_APIS: the coordinator decides."""
    groups = ctx.broker.groups
    if groups is None:
        return _unavailable(ctx, request)
    return await groups.handle(request, ctx)


for _api_key, _versions in COORDINATOR_APIS.items():
    handles(_api_key, _versions)(coordinated)
