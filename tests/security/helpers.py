"""One-line builders for security tests: ACL records into an image, principals, hosts."""

from __future__ import annotations

import random

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import AclPermissionType as Perm
from kafka_compat.security.acls import PatternType as Pat
from kafka_compat.security.acls import ResourceType as Res

_rng = random.Random(5)


def acl_record(name: str, op: Op = Op.READ, principal: str = "User:alice", *, res: Res = Res.TOPIC,
               pattern: Pat = Pat.LITERAL, host: str = "*", perm: Perm = Perm.ALLOW,
               acl_id: Uuid | None = None) -> m.AccessControlEntryRecord:
    return m.AccessControlEntryRecord(id=acl_id or Uuid(_rng.randbytes(16)), resource_type=res, resource_name=name,
                                      pattern_type=pattern, principal=principal, host=host, operation=op,
                                      permission_type=perm)


def image_with(*records) -> MetadataImage:
    return MetadataImage(cluster_id="c").apply(list(records), len(records) - 1)
