"""Authorization in one line per check, for handlers: what Kafka's AuthHelper does.

    if not allowed(ctx, Op.READ, Res.TOPIC, name): ...            per item, the item's error
    require(ctx, Op.ALTER)                                         the cluster, else CLUSTER_AUTHORIZATION_FAILED

With no authorizer configured (`authorizer.class.name` unset) everything is allowed. Decisions go
to the `kafka.authorizer.logger` audit log (denials at info, the rest at debug: `--log-level debug`
shows every decision), with the API that asked.
"""

from __future__ import annotations

import copy

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.security.acls import CLUSTER_NAME, SUPPORTED_OPERATIONS
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import ResourceType as Res
from kafka_compat.server.errors import error_response
from kafka_compat.server.handlers import RequestContext

__all__ = ["Op", "Res", "allowed", "allowed_any", "denied_error", "operations", "require", "filter_allowed", "split",
           "refused"]

DENIED = {Res.TOPIC: ErrorCode.TOPIC_AUTHORIZATION_FAILED, Res.GROUP: ErrorCode.GROUP_AUTHORIZATION_FAILED,
          Res.CLUSTER: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
          Res.TRANSACTIONAL_ID: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
          Res.DELEGATION_TOKEN: ErrorCode.DELEGATION_TOKEN_AUTHORIZATION_FAILED}
_API_NAMES = {k.value: k.name for k in m.ApiKey}
ALL_OPERATIONS = {rtype: sum(1 << op for op in ops) for rtype, ops in SUPPORTED_OPERATIONS.items()}


def allowed(ctx: RequestContext, op: Op, rtype: Res = Res.CLUSTER, name: str = CLUSTER_NAME, *,
            log_if_allowed: bool = True, log_if_denied: bool = True) -> bool:
    authorizer = ctx.broker.authorizer
    return authorizer is None or authorizer.authorize(
        ctx.broker.metadata.acls, ctx.principal, ctx.client_host, op, rtype, name, log_if_allowed=log_if_allowed,
        log_if_denied=log_if_denied, api=_API_NAMES.get(ctx.api_key))


def allowed_any(ctx: RequestContext, op: Op, rtype: Res) -> bool:
    """May the principal do `op` on some resource of the type (Kafka's authorizeByResourceType)."""
    authorizer = ctx.broker.authorizer
    return authorizer is None or authorizer.authorize_by_resource_type(ctx.broker.metadata.acls, ctx.principal,
                                                                       ctx.client_host, op, rtype)


def filter_allowed(ctx: RequestContext, op: Op, rtype: Res, names, *, log_if_denied: bool = True) -> set[str]:
    """The names among `names` the principal may do `op` on."""
    if ctx.broker.authorizer is None:
        return set(names)
    return {n for n in names if allowed(ctx, op, rtype, n, log_if_denied=log_if_denied)}


def operations(ctx: RequestContext, rtype: Res, name: str = CLUSTER_NAME) -> int:
    """The authorized-operations bit field for the resource (every supported one without an authorizer)."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return ALL_OPERATIONS[rtype]
    return authorizer.authorized_operations(ctx.broker.metadata.acls, ctx.principal, ctx.client_host, rtype, name)


def split(ctx: RequestContext, items, may) -> tuple[list, list]:
    """(allowed, denied) items by `may(item)`."""
    allowed_items, denied = [], []
    for item in items:
        (allowed_items if may(item) else denied).append(item)
    return allowed_items, denied


def refused(ctx: RequestContext, request, field: str, items: list, code: ErrorCode, result_field: str) -> list:
    """The results a response lists for `items` (the `field` items of `request`) failed with `code`:
    the API's own error response, for those items alone."""
    if not items:
        return []
    part = copy.copy(request)
    setattr(part, field, items)
    return getattr(error_response(ctx.api_key, part, ctx.api_version, code), result_field)


def denied_error(rtype: Res) -> ErrorCode:
    return DENIED[rtype]


def require(ctx: RequestContext, op: Op, rtype: Res = Res.CLUSTER, name: str = CLUSTER_NAME) -> None:
    """KafkaError with the resource type's *_AUTHORIZATION_FAILED code unless allowed."""
    if not allowed(ctx, op, rtype, name):
        raise KafkaError(DENIED[rtype], _message(op, rtype, name))


def _message(op: Op, rtype: Res, name: str) -> str:
    if rtype == Res.CLUSTER:
        return "Cluster authorization failed."
    return f"Not authorized to {op.name} {rtype.name.lower()} {name}."
