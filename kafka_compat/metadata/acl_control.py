"""CreateAcls, DescribeAcls and DeleteAcls (v0-v3) against the metadata image, as Kafka's AclApis and
AclControlManager answer them. Sans-I/O: image and request in, records to append and the response
out (DescribeAcls only reads). The handler authorizes first (ALTER on the cluster to create or
delete, DESCRIBE to describe) and passes `enabled=False` when no authorizer is configured, which
every ACL API answers with SECURITY_DISABLED.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.security.acls import (
    CLUSTER_NAME,
    Acl,
    AclFilter,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    principal_problem,
)

NO_AUTHORIZER = "No Authorizer is configured."


def _new_acl_problem(acl: Acl) -> str | None:
    """Why an ACL cannot be created, in Kafka's words (AclApis, then AclControlManager.validateNewAcl)."""
    if acl.resource_type == ResourceType.CLUSTER and acl.resource_name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if not acl.resource_name:
        return "Invalid empty resource name"
    if acl.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        return f"Invalid resourceType {acl.resource_type.name}"
    if acl.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid patternType {acl.pattern_type.name}"
    if acl.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
        return f"Invalid operation {acl.operation.name}"
    if acl.permission not in (AclPermissionType.ALLOW, AclPermissionType.DENY):
        return f"Invalid permissionType {acl.permission.name}"
    return principal_problem(acl.principal)


def _v0_literal_only(version: int, pattern_type: int) -> bool:
    """Version 0 knows literal patterns only; the field does not exist on its wire (default LITERAL)."""
    return version == 0 and pattern_type != PatternType.LITERAL


def create_acls(image: MetadataImage, req: m.CreateAclsRequest, version: int, *, enabled: bool = True,
                rng: random.Random | None = None) -> tuple[list[Message], m.CreateAclsResponse]:
    """One AccessControlEntryRecord per new ACL; an ACL that exists already succeeds without one."""
    R = m.CreateAclsResponse
    if not enabled:
        return [], R(results=[R.AclCreationResult(error_code=ErrorCode.SECURITY_DISABLED, error_message=NO_AUTHORIZER)
                              for _ in req.creations])
    if any(_v0_literal_only(version, c.resource_pattern_type) for c in req.creations):
        return [], R(results=[R.AclCreationResult(error_code=ErrorCode.UNSUPPORTED_VERSION,
                                                  error_message="Version 0 only supports literal resource pattern "
                                                                "types") for _ in req.creations])
    rng = rng or random.Random()
    records: list[Message] = []
    results = []
    added: set[Acl] = set()
    for c in req.creations:
        acl = Acl.of(c.resource_type, c.resource_name, c.resource_pattern_type, c.principal, c.host, c.operation,
                     c.permission_type)
        problem = _new_acl_problem(acl)
        if problem:
            results.append(R.AclCreationResult(error_code=ErrorCode.INVALID_REQUEST, error_message=problem))
            continue
        if acl not in image.acls and acl not in added:
            added.add(acl)
            records.append(m.AccessControlEntryRecord(id=_new_id(image, rng), resource_type=acl.resource_type,
                                                      resource_name=acl.resource_name, pattern_type=acl.pattern_type,
                                                      principal=acl.principal, host=acl.host,
                                                      operation=acl.operation, permission_type=acl.permission))
        results.append(R.AclCreationResult(error_code=ErrorCode.NONE))
    return records, R(results=results)


def _new_id(image: MetadataImage, rng: random.Random) -> Uuid:
    while True:
        u = Uuid(rng.randbytes(16))
        if u != Uuid() and u[0] >> 2 != 62 and u not in image.acls.by_id:
            return u


def _filter(version: int, f) -> tuple[AclFilter | None, ErrorCode, str | None]:
    """The request's filter, normalized for v0 (ANY reads as LITERAL), or the error to answer."""
    pattern = f.pattern_type_filter
    if version == 0 and pattern == PatternType.ANY:
        pattern = PatternType.LITERAL
    if _v0_literal_only(version, pattern):
        return None, ErrorCode.UNSUPPORTED_VERSION, "Version 0 only supports literal resource pattern types"
    acl_filter = AclFilter.of(f.resource_type_filter, f.resource_name_filter, pattern, f.principal_filter,
                              f.host_filter, f.operation, f.permission_type)
    problem = acl_filter.unknown_part()
    if problem:
        return None, ErrorCode.INVALID_REQUEST, problem
    return acl_filter, ErrorCode.NONE, None


def describe_acls(image: MetadataImage, req: m.DescribeAclsRequest, version: int, *,
                  enabled: bool = True) -> m.DescribeAclsResponse:
    """The ACLs matching the filter, grouped by resource pattern."""
    R = m.DescribeAclsResponse
    if not enabled:
        return R(error_code=ErrorCode.SECURITY_DISABLED, error_message="No Authorizer is configured on the broker")
    acl_filter, code, message = _filter(version, req)
    if acl_filter is None:
        return R(error_code=code, error_message=message)
    return R(resources=_grouped(a for _, a in image.acls.matching(acl_filter)))


def _grouped(acls: Iterable[Acl]) -> list:
    R = m.DescribeAclsResponse
    by_pattern: dict[tuple[int, str, int], list[Acl]] = {}
    for a in acls:
        by_pattern.setdefault((a.resource_type, a.resource_name, a.pattern_type), []).append(a)
    return [R.DescribeAclsResource(resource_type=t, resource_name=n, pattern_type=p,
                                   acls=[R.AclDescription(principal=a.principal, host=a.host, operation=a.operation,
                                                          permission_type=a.permission)
                                         for a in sorted(entries, key=_order)])
            for (t, n, p), entries in sorted(by_pattern.items())]


def _order(a: Acl):
    return a.principal, a.host, a.operation, a.permission


def delete_acls(image: MetadataImage, req: m.DeleteAclsRequest, version: int, *,
                enabled: bool = True) -> tuple[list[Message], m.DeleteAclsResponse]:
    """One RemoveAccessControlEntryRecord per ACL any filter matches; each filter's result lists the
    ACLs it matched (an ACL two filters match is listed by both and removed once)."""
    R = m.DeleteAclsResponse
    if not enabled:
        return [], R(filter_results=[R.DeleteAclsFilterResult(error_code=ErrorCode.SECURITY_DISABLED,
                                                               error_message=NO_AUTHORIZER) for _ in req.filters])
    removed: dict[Uuid, None] = {}
    results = []
    for f in req.filters:
        acl_filter, code, message = _filter(version, f)
        if acl_filter is None:
            results.append(R.DeleteAclsFilterResult(error_code=code, error_message=message))
            continue
        matched = sorted(image.acls.matching(acl_filter), key=lambda e: (e[1].resource_type, e[1].resource_name,
                                                                         e[1].pattern_type, *_order(e[1])))
        removed.update((i, None) for i, _ in matched)
        results.append(R.DeleteAclsFilterResult(matching_acls=[
            R.DeleteAclsMatchingAcl(resource_type=a.resource_type, resource_name=a.resource_name,
                                    pattern_type=a.pattern_type, principal=a.principal, host=a.host,
                                    operation=a.operation, permission_type=a.permission) for _, a in matched]))
    return [m.RemoveAccessControlEntryRecord(id=i) for i in removed], R(filter_results=results)
