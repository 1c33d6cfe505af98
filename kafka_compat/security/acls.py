"""ACLs as Kafka defines them: resource types, pattern types, operations, permissions, bindings,
binding filters, and `AclIndex`, the immutable set of a cluster's ACLs that the metadata image holds.

The codes are Kafka's wire codes (`ResourceType`, `PatternType`, `AclOperation`,
`AclPermissionType` in org.apache.kafka.common). `AclIndex` keeps the ACLs by id (for the log and
the admin APIs) and, for the authorizer, by resource type + literal name and by resource type +
prefix, each bucket split by principal, so that a decision looks up a handful of buckets instead of
scanning every ACL. Changes are copy-on-write: `builder()` copies the outer dicts once per batch of
records, and `freeze()` hands back a new index sharing every untouched bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import IntEnum

from kafka_compat.protocol.primitives import Uuid

CLUSTER_NAME = "kafka-cluster"  # the one name of the CLUSTER resource
WILDCARD = "*"  # a resource name or host that matches any
WILDCARD_PRINCIPAL = "User:*"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


def _enum(cls, code: int):
    """Kafka's fromCode: an unknown code reads as UNKNOWN."""
    try:
        return cls(code)
    except ValueError:
        return cls.UNKNOWN


def pascal(name: str) -> str:
    """Kafka's display form of an enum name: TRANSACTIONAL_ID -> TransactionalId."""
    return "".join(part.capitalize() for part in name.split("_"))


# What each resource type can be asked about (AclEntry.supportedOperations): the bits of the
# authorized-operations fields of Metadata, DescribeCluster and DescribeGroups.
SUPPORTED_OPERATIONS: dict[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DESCRIBE,
                         AclOperation.DELETE, AclOperation.ALTER, AclOperation.DESCRIBE_CONFIGS,
                         AclOperation.ALTER_CONFIGS),
    ResourceType.GROUP: (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE, AclOperation.DESCRIBE_CONFIGS,
                         AclOperation.ALTER_CONFIGS),
    ResourceType.CLUSTER: (AclOperation.CREATE, AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS,
                           AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER,
                           AclOperation.DESCRIBE),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE),
    ResourceType.DELEGATION_TOKEN: (AclOperation.DESCRIBE,),
    ResourceType.USER: (AclOperation.CREATE_TOKENS, AclOperation.DESCRIBE_TOKENS),
}

# The ALLOW operations that imply another: READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS
# implies DESCRIBE_CONFIGS. DENY never implies: a DENY READ does not deny DESCRIBE.
_IMPLIED_BY = {
    AclOperation.DESCRIBE: frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE,
                                      AclOperation.DELETE, AclOperation.ALTER}),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}),
}
_EVERY_OPERATION = frozenset(op for op in AclOperation if op > AclOperation.ALL)


def _covered(operation: AclOperation, permission: AclPermissionType) -> frozenset[int]:
    """The requested operations an ACL with `operation` and `permission` decides."""
    if operation == AclOperation.ALL:
        return _EVERY_OPERATION
    if permission == AclPermissionType.ALLOW:
        return frozenset({operation} | {wanted for wanted, by in _IMPLIED_BY.items() if operation in by})
    return frozenset({operation})


def principal_problem(principal: str) -> str | None:
    """Kafka's check that a principal reads `type:name`."""
    if ":" not in principal:
        return (f"Could not parse principal from `{principal}` (no colon is present separating the principal type "
                "from the principal name)")
    return None


@dataclass(frozen=True, slots=True)
class Acl:
    """One ACL binding: a resource pattern and an access control entry (Kafka's StandardAcl)."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str  # "User:alice"
    host: str
    operation: AclOperation
    permission: AclPermissionType

    @classmethod
    def of(cls, resource_type: int, resource_name: str, pattern_type: int, principal: str, host: str,
           operation: int, permission: int) -> Acl:
        return cls(_enum(ResourceType, resource_type), resource_name, _enum(PatternType, pattern_type), principal,
                   host, _enum(AclOperation, operation), _enum(AclPermissionType, permission))

    @classmethod
    def from_record(cls, r) -> Acl:
        return cls.of(r.resource_type, r.resource_name, r.pattern_type, r.principal, r.host, r.operation,
                      r.permission_type)

    @property
    def allow(self) -> bool:
        return self.permission == AclPermissionType.ALLOW

    def pattern(self) -> str:
        return f"{pascal(self.resource_type.name)}:{self.pattern_type.name}:{self.resource_name}"

    def __str__(self) -> str:
        return (f"(principal={self.principal}, host={self.host}, op={self.operation.name}, "
                f"permissionType={self.permission.name}) on {self.pattern()}")


@dataclass(frozen=True, slots=True)
class AclFilter:
    """An AclBindingFilter: None for a name, principal or host matches any; ANY for an enum matches
    any; a MATCH pattern matches the literal name, the wildcard and every prefix of the name."""

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: AclPermissionType = AclPermissionType.ANY

    @classmethod
    def of(cls, resource_type: int, resource_name: str | None, pattern_type: int, principal: str | None,
           host: str | None, operation: int, permission: int) -> AclFilter:
        return cls(_enum(ResourceType, resource_type), resource_name, _enum(PatternType, pattern_type), principal,
                   host, _enum(AclOperation, operation), _enum(AclPermissionType, permission))

    def unknown_part(self) -> str | None:
        """Kafka's "Unknown patternFilter." / "Unknown entryFilter." for a filter with an UNKNOWN field."""
        if self.resource_type == ResourceType.UNKNOWN or self.pattern_type == PatternType.UNKNOWN:
            return "Unknown patternFilter."
        if self.operation == AclOperation.UNKNOWN or self.permission == AclPermissionType.UNKNOWN:
            return "Unknown entryFilter."
        return None

    def matches(self, acl: Acl) -> bool:
        if self.resource_type != ResourceType.ANY and self.resource_type != acl.resource_type:
            return False
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation != AclOperation.ANY and self.operation != acl.operation:
            return False
        if self.permission != AclPermissionType.ANY and self.permission != acl.permission:
            return False
        pt = self.pattern_type
        if pt not in (PatternType.ANY, PatternType.MATCH) and pt != acl.pattern_type:
            return False
        name = self.resource_name
        if name is None:
            return True
        if pt in (PatternType.ANY, acl.pattern_type):
            return name == acl.resource_name
        # MATCH: the ACLs that would apply to a resource of this name
        if acl.pattern_type == PatternType.LITERAL:
            return name == acl.resource_name or acl.resource_name == WILDCARD
        return acl.pattern_type == PatternType.PREFIXED and name.startswith(acl.resource_name)


# A bucket: the ACLs of one resource pattern, by principal; each ACL paired with the requested
# operations it decides, so that a decision is a set lookup.
Bucket = Mapping[str, tuple[tuple[Acl, frozenset[int]], ...]]


class AclIndex:
    """Immutable: the ACLs by id, and by (resource type, literal name) and (resource type, prefix)."""

    __slots__ = ("by_id", "literal", "prefixed", "prefix_lengths", "_lengths_count")

    def __init__(self, by_id: Mapping[Uuid, Acl] | None = None, literal: Mapping | None = None,
                 prefixed: Mapping | None = None, lengths_count: Mapping | None = None):
        self.by_id: Mapping[Uuid, Acl] = by_id or {}
        self.literal: Mapping[tuple[int, str], Bucket] = literal or {}
        self.prefixed: Mapping[tuple[int, str], Bucket] = prefixed or {}
        self._lengths_count: Mapping[tuple[int, int], int] = lengths_count or {}
        # The distinct prefix lengths per resource type, shortest first: a name of length n can only
        # match prefixes of these lengths (<= n), one dict lookup each.
        lengths: dict[int, list[int]] = {}
        for (rtype, n) in self._lengths_count:
            lengths.setdefault(rtype, []).append(n)
        self.prefix_lengths: dict[int, tuple[int, ...]] = {t: tuple(sorted(ns)) for t, ns in lengths.items()}

    def __len__(self) -> int:
        return len(self.by_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AclIndex) and self.by_id == other.by_id

    __hash__ = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[tuple[Uuid, Acl]]:
        return iter(self.by_id.items())

    def __contains__(self, acl: Acl) -> bool:
        key = (acl.resource_type, acl.resource_name)
        bucket = (self.literal if acl.pattern_type == PatternType.LITERAL else self.prefixed).get(key, {})
        return any(a == acl for a, _ in bucket.get(acl.principal, ()))

    def matching(self, acl_filter: AclFilter) -> Iterable[tuple[Uuid, Acl]]:
        return [(i, a) for i, a in self.by_id.items() if acl_filter.matches(a)]

    def buckets(self, resource_type: int, name: str) -> Iterator[Bucket]:
        """Every bucket whose ACLs apply to the resource `name` of `resource_type`: the literal name,
        the wildcard, and each prefix of the name that has PREFIXED ACLs."""
        literal = self.literal
        b = literal.get((resource_type, name))
        if b is not None:
            yield b
        b = literal.get((resource_type, WILDCARD))
        if b is not None and name != WILDCARD:
            yield b
        lengths = self.prefix_lengths.get(resource_type)
        if lengths:
            prefixed, n = self.prefixed, len(name)
            for length in lengths:
                if length > n:
                    break
                b = prefixed.get((resource_type, name[:length]))
                if b is not None:
                    yield b

    def builder(self) -> AclIndexBuilder:
        return AclIndexBuilder(self)


class AclIndexBuilder:
    """Changes to an AclIndex, applied in record order; `freeze()` makes the new index."""

    def __init__(self, base: AclIndex):
        self.by_id = dict(base.by_id)
        self.literal = dict(base.literal)
        self.prefixed = dict(base.prefixed)
        self.lengths_count = dict(base._lengths_count)
        self._owned: set[tuple[bool, tuple[int, str]]] = set()  # buckets already copied for this batch

    def _bucket(self, acl: Acl) -> tuple[dict, tuple[int, str]]:
        table = self.literal if acl.pattern_type == PatternType.LITERAL else self.prefixed
        return table, (acl.resource_type, acl.resource_name)

    def add(self, acl_id: Uuid, acl: Acl) -> None:
        if acl_id in self.by_id:
            self.remove(acl_id)
        self.by_id[acl_id] = acl
        table, key = self._bucket(acl)
        if key not in table and acl.pattern_type == PatternType.PREFIXED:
            n = (acl.resource_type, len(acl.resource_name))
            self.lengths_count[n] = self.lengths_count.get(n, 0) + 1
        bucket = self._own(table, key)
        bucket[acl.principal] = bucket.get(acl.principal, ()) + ((acl, _covered(acl.operation, acl.permission)),)

    def remove(self, acl_id: Uuid) -> None:
        acl = self.by_id.pop(acl_id, None)
        if acl is None:
            return
        table, key = self._bucket(acl)
        bucket = self._own(table, key)
        entries = bucket.get(acl.principal, ())
        i = next((i for i, e in enumerate(entries) if e[0] == acl), len(entries))
        left = entries[:i] + entries[i + 1:]
        if left:
            bucket[acl.principal] = left
        else:
            bucket.pop(acl.principal, None)
        if not bucket:
            del table[key]
            if acl.pattern_type == PatternType.PREFIXED:
                n = (acl.resource_type, len(acl.resource_name))
                if self.lengths_count.get(n, 0) <= 1:
                    self.lengths_count.pop(n, None)
                else:
                    self.lengths_count[n] -= 1

    def _own(self, table: dict, key: tuple[int, str]) -> dict:
        """The bucket at `key`, copied first if it is still shared with the base index."""
        owned = (table is self.literal, key)
        bucket = table.get(key)
        if bucket is None or owned not in self._owned:
            bucket = table[key] = dict(bucket or {})
            self._owned.add(owned)
        return bucket

    def freeze(self) -> AclIndex:
        return AclIndex(self.by_id, self.literal, self.prefixed, self.lengths_count)


