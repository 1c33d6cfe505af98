"""Kafka's StandardAuthorizer: a pure function of the image's ACLs, a principal, a host, an operation
and a resource.

    authorizer = Authorizer.from_config(config)     # None unless authorizer.class.name names it
    authorizer.authorize(image.acls, "User:alice", "10.0.0.7", AclOperation.READ, ResourceType.TOPIC, "orders")

The rules, in order: a super user (`super.users`, "User:a;User:b") may do anything. Otherwise every
ACL whose resource pattern covers the resource counts: LITERAL ACLs of that name, LITERAL ACLs named
`*`, and PREFIXED ACLs whose name starts the resource's. Of those, the ones for the principal (or
`User:*`), for the host (or `*`) and for the operation (or ALL; an ALLOW of READ, WRITE, DELETE or
ALTER also allows DESCRIBE, and ALTER_CONFIGS allows DESCRIBE_CONFIGS) decide: any DENY denies, else
any ALLOW allows. With no matching ACL the answer is no, unless no ACL at all covers the resource
and `allow.everyone.if.no.acl.found` is true.

Every decision can be logged (`audit=True`): one structlog event on the `kafka.authorizer.logger`
logger, at info for an explicit request that was denied and at debug otherwise, as Kafka's
authorizer logger does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from kafka_compat.security.acls import (
    SUPPORTED_OPERATIONS,
    WILDCARD,
    WILDCARD_PRINCIPAL,
    AclIndex,
    AclOperation,
    AclPermissionType,
    PatternType,
    ResourceType,
    pascal,
    principal_problem,
)

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
audit_log = structlog.get_logger("kafka.authorizer.logger")


class Authorizer:
    __slots__ = ("super_users", "allow_if_no_acl", "audit")

    def __init__(self, super_users: frozenset[str] | set[str] = frozenset(), allow_if_no_acl: bool = False,
                 audit: bool = False):
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self.audit = audit

    @classmethod
    def from_config(cls, config: Mapping[str, Any], audit: bool = False) -> Authorizer | None:
        """From `authorizer.class.name`, `super.users` and `allow.everyone.if.no.acl.found`; None
        when no authorizer is configured. ValueError names a bad value."""
        name = str(config.get("authorizer.class.name") or "").strip()
        if not name:
            return None
        if name != STANDARD_AUTHORIZER:
            raise ValueError(f"authorizer.class.name: {name} is not supported (only {STANDARD_AUTHORIZER})")
        supers = set()
        for part in str(config.get("super.users") or "").split(";"):
            part = part.strip()
            if part:
                if principal_problem(part):
                    raise ValueError(f"super.users: expected a string in format principalType:principalName "
                                     f"but got {part}")
                supers.add(part)
        allow = config.get("allow.everyone.if.no.acl.found", False)
        allow = allow if isinstance(allow, bool) else str(allow).strip().lower() == "true"
        return cls(frozenset(supers), allow, audit)

    def authorize(self, acls: AclIndex, principal: str, host: str, operation: AclOperation,
                  resource_type: ResourceType, name: str, *, log_if_allowed: bool = True, log_if_denied: bool = True,
                  api: str | None = None) -> bool:
        """Whether `principal` connecting from `host` may do `operation` on the resource."""
        if principal in self.super_users:
            if self.audit:
                self._log(True, "SuperUser", principal, host, operation, resource_type, name, log_if_allowed,
                          log_if_denied, api)
            return True
        allowed = None  # the ACL that allows, if one does
        found = False  # whether any ACL covers the resource at all
        for bucket in acls.buckets(resource_type, name):
            found = True
            for who in (principal, WILDCARD_PRINCIPAL):
                for acl, covers in bucket.get(who, ()):
                    if operation in covers and (acl.host == WILDCARD or acl.host == host):
                        if not acl.allow:
                            if self.audit:
                                self._log(False, acl, principal, host, operation, resource_type, name,
                                          log_if_allowed, log_if_denied, api)
                            return False
                        allowed = acl
        if allowed is not None:
            result, rule = True, allowed
        elif not found:
            result, rule = self.allow_if_no_acl, "DefaultAllow" if self.allow_if_no_acl else "DefaultDeny"
        else:
            result, rule = False, "DefaultDeny"
        if self.audit:
            self._log(result, rule, principal, host, operation, resource_type, name, log_if_allowed, log_if_denied,
                      api)
        return result

    def authorize_by_resource_type(self, acls: AclIndex, principal: str, host: str, operation: AclOperation,
                                   resource_type: ResourceType) -> bool:
        """Whether `principal` may do `operation` on at least one resource of the type (Kafka's
        authorizeByResourceType: IDEMPOTENT_WRITE falls back to WRITE on any topic, and
        DescribeTransactions/ListTransactions ask it): some ALLOW that no DENY of the same or a
        shorter prefix overrides."""
        if self.authorize(acls, principal, host, operation, resource_type, "hardcode", log_if_allowed=False,
                          log_if_denied=False):
            return True
        deny_literal: set[str] = set()
        deny_prefix: set[str] = set()
        allow_literal: set[str] = set()
        allow_prefix: set[str] = set()
        for acl, _covers in _entries(acls, resource_type):
            if acl.host not in (host, WILDCARD) or acl.principal not in (principal, WILDCARD_PRINCIPAL):
                continue
            if acl.operation not in (operation, AclOperation.ALL):
                continue
            literal = acl.pattern_type == PatternType.LITERAL
            if acl.permission == AclPermissionType.DENY:
                if literal and acl.resource_name == WILDCARD:
                    return False
                (deny_literal if literal else deny_prefix).add(acl.resource_name)
            elif acl.permission == AclPermissionType.ALLOW:
                if literal and acl.resource_name == WILDCARD:
                    return True
                (allow_literal if literal else allow_prefix).add(acl.resource_name)
        for literal, names in ((True, allow_literal), (False, allow_prefix)):
            for allowed in names:
                if literal and allowed in deny_literal:
                    continue
                if not any(allowed[:n] in deny_prefix for n in range(1, len(allowed) + 1)):
                    return True
        return False

    def authorized_operations(self, acls: AclIndex, principal: str, host: str, resource_type: ResourceType,
                              name: str) -> int:
        """The authorized-operations bit field of Metadata, DescribeCluster and DescribeGroups: bit
        `op` set for each operation the resource type supports that `principal` may do."""
        bits = 0
        for op in SUPPORTED_OPERATIONS[resource_type]:
            if self.authorize(acls, principal, host, op, resource_type, name, log_if_allowed=False,
                              log_if_denied=False):
                bits |= 1 << op
        return bits

    def _log(self, allowed: bool, rule, principal: str, host: str, operation: AclOperation,
             resource_type: ResourceType, name: str, log_if_allowed: bool, log_if_denied: bool,
             api: str | None) -> None:
        explicit = log_if_allowed if allowed else log_if_denied
        emit = audit_log.info if (explicit and not allowed) else audit_log.debug
        emit("authorization", principal=principal, allowed=allowed, operation=operation.name, host=host,
             resource=f"{pascal(resource_type.name)}:LITERAL:{name}", api=api, rule=str(rule))


def _entries(acls: AclIndex, resource_type: ResourceType):
    for table in (acls.literal, acls.prefixed):
        for (rtype, _name), bucket in table.items():
            if rtype == resource_type:
                for entries in bucket.values():
                    yield from entries
