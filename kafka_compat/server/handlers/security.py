"""ACLs, SCRAM credentials and client quotas (Kafka's AclApis, the SCRAM and quota APIs of KafkaApis).

CreateAcls, DeleteAcls (v0-v3), AlterUserScramCredentials (v0) and AlterClientQuotas (v0-v1) change
metadata: the active controller decides them (`metadata.acl_control`, `scram_control`,
`quota_control`) and the answer waits until this broker's image shows the change. DescribeAcls
(v0-v3), DescribeUserScramCredentials (v0) and DescribeClientQuotas (v0-v1) read this broker's image.
Authorization as Kafka's: the ACL APIs ALTER / DESCRIBE on the cluster, SCRAM ALTER / DESCRIBE on
the cluster, quotas ALTER_CONFIGS / DESCRIBE_CONFIGS on the cluster. Without an authorizer the ACL
APIs answer SECURITY_DISABLED.
"""

from __future__ import annotations

from kafka_compat.metadata import acl_control, quota_control, scram_control
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.authz import Op, allowed, require
from kafka_compat.server.handlers import RequestContext, handles

A = m.ApiKey
CLUSTER_DENIED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED


@handles(A.CREATE_ACLS, versions=(0, 3))
async def create_acls(ctx: RequestContext, req: m.CreateAclsRequest) -> m.CreateAclsResponse:
    R = m.CreateAclsResponse
    if ctx.broker.authorizer is None:
        return acl_control.create_acls(ctx.broker.metadata, req, ctx.api_version, enabled=False)[1]
    if not allowed(ctx, Op.ALTER):
        return R(results=[R.AclCreationResult(error_code=CLUSTER_DENIED) for _ in req.creations])
    return await _forward(ctx, req, lambda r: [x.error_code for x in r.results])


@handles(A.DELETE_ACLS, versions=(0, 3))
async def delete_acls(ctx: RequestContext, req: m.DeleteAclsRequest) -> m.DeleteAclsResponse:
    R = m.DeleteAclsResponse
    if ctx.broker.authorizer is None:
        return acl_control.delete_acls(ctx.broker.metadata, req, ctx.api_version, enabled=False)[1]
    if not allowed(ctx, Op.ALTER):
        return R(filter_results=[R.DeleteAclsFilterResult(error_code=CLUSTER_DENIED) for _ in req.filters])
    return await _forward(ctx, req, lambda r: [x.error_code for x in r.filter_results if x.matching_acls])


@handles(A.DESCRIBE_ACLS, versions=(0, 3))
async def describe_acls(ctx: RequestContext, req: m.DescribeAclsRequest) -> m.DescribeAclsResponse:
    enabled = ctx.broker.authorizer is not None
    if enabled:
        require(ctx, Op.DESCRIBE)
    return acl_control.describe_acls(ctx.broker.metadata, req, ctx.api_version, enabled=enabled)


@handles(A.ALTER_USER_SCRAM_CREDENTIALS, versions=(0, 0))
async def alter_user_scram_credentials(ctx: RequestContext, req: m.AlterUserScramCredentialsRequest
                                       ) -> m.AlterUserScramCredentialsResponse:
    R = m.AlterUserScramCredentialsResponse
    if not allowed(ctx, Op.ALTER):
        users = dict.fromkeys([d.name for d in req.deletions] + [u.name for u in req.upsertions])
        return R(results=[R.AlterUserScramCredentialsResult(user=u, error_code=CLUSTER_DENIED) for u in users])
    return await _forward(ctx, req, lambda r: [x.error_code for x in r.results])


@handles(A.DESCRIBE_USER_SCRAM_CREDENTIALS, versions=(0, 0))
async def describe_user_scram_credentials(ctx: RequestContext, req: m.DescribeUserScramCredentialsRequest
                                          ) -> m.DescribeUserScramCredentialsResponse:
    require(ctx, Op.DESCRIBE)
    return scram_control.describe_user_scram_credentials(ctx.broker.metadata, req)


@handles(A.ALTER_CLIENT_QUOTAS, versions=(0, 1))
async def alter_client_quotas(ctx: RequestContext, req: m.AlterClientQuotasRequest) -> m.AlterClientQuotasResponse:
    R = m.AlterClientQuotasResponse
    if not allowed(ctx, Op.ALTER_CONFIGS):
        return R(entries=[R.EntryData(error_code=CLUSTER_DENIED, entity=[
            R.EntityData(entity_type=e.entity_type, entity_name=e.entity_name) for e in entry.entity])
            for entry in req.entries])
    if req.validate_only:
        return await ctx.broker.controller_request(ctx, req)
    return await _forward(ctx, req, lambda r: [x.error_code for x in r.entries])


@handles(A.DESCRIBE_CLIENT_QUOTAS, versions=(0, 1))
async def describe_client_quotas(ctx: RequestContext, req: m.DescribeClientQuotasRequest
                                 ) -> m.DescribeClientQuotasResponse:
    require(ctx, Op.DESCRIBE_CONFIGS)
    return quota_control.describe_client_quotas(ctx.broker.metadata, req)


async def _forward(ctx: RequestContext, req, codes):
    """To the active controller; the answer waits (briefly) until this broker's image has moved on,
    when the change wrote anything: a client's next request here sees what it just did. (A change
    that wrote nothing, as re-creating an existing ACL, may wait out the catch-up bound on a broker
    that is not the controller.)"""
    before = ctx.broker.metadata.offset
    return await ctx.broker.controller_request(
        ctx, req, seen=lambda image, response: image.offset > before or not any(c == 0 for c in codes(response)))
