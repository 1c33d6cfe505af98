"""AlterClientQuotas and DescribeClientQuotas (v0-v1) against the metadata image, as Kafka's
ClientQuotaControlManager and ClientQuotasImage answer them. Entities: user, client-id (either or
both) or ip, each a name or the type's default (a null name). The handler authorizes first
(ALTER_CONFIGS, resp. DESCRIBE_CONFIGS, on the cluster).
"""

from __future__ import annotations

import ipaddress

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message
from kafka_compat.security.quotas import (
    CLIENT_ID,
    ENTITY_TYPES,
    IP,
    IP_KEYS,
    USER,
    USER_CLIENT_KEYS,
    QuotaEntity,
    entity_str,
    quota_entity,
)

MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
_LIMITS = {"LONG": (2 ** 63 - 1, "a LONG"), "INT": (2 ** 31 - 1, "an INT")}


def _entity_problem(pairs: list[tuple[str, str | None]]) -> str | None:
    if not pairs:
        return "Invalid empty client quota entity"
    seen = set()
    for kind, name in pairs:
        if kind in seen:
            return f"Invalid client quota entity, duplicate entity entry {kind}"
        if kind not in ENTITY_TYPES:
            return f"Unhandled client quota entity type: {kind}"
        if name == "":
            return f"Empty {kind} not supported"
        seen.add(kind)
    if IP in seen and seen != {IP}:
        return "Invalid quota entity combination, IP entity should not be combined with User or ClientId"
    ip = dict(pairs).get(IP, None)
    if IP in seen and ip is not None:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            return f"{ip} is not a valid IP or resolvable host."
    return None


def _value_problem(keys: dict[str, str], key: str, value: float) -> str | None:
    kind = keys.get(key)
    if kind is None:
        return f"Invalid configuration key {key}"
    if value <= 0.0:
        return f"Quota {key} must be greater than 0"
    if kind in _LIMITS:
        most, what = _LIMITS[kind]
        if value > most:
            return f"Proposed value for {key} is too large for {what}."
        if abs(value % 1.0) > 1e-6:
            return f"{key} cannot be a fractional value."
    return None


def alter_client_quotas(image: MetadataImage, req: m.AlterClientQuotasRequest,
                        ) -> tuple[list[Message], m.AlterClientQuotasResponse]:
    R = m.AlterClientQuotasResponse
    records: list[Message] = []
    results = []
    done: set[QuotaEntity] = set()
    for entry in req.entries:
        pairs = [(e.entity_type, e.entity_name) for e in entry.entity]
        result = R.EntryData(entity=[R.EntityData(entity_type=t, entity_name=n) for t, n in pairs])
        results.append(result)
        entity = quota_entity(pairs)
        problem = _entity_problem(pairs)
        if problem is None and entity in done:
            problem = f"Ignoring duplicate entity {entity_str(entity)}"
        done.add(entity)
        changes: dict[str, float | None] = {}
        for op in entry.ops:
            if problem is None and op.key in changes:
                problem = f"Duplicate quota key {op.key} not updating quota for this entity {entity_str(entity)}"
            changes[op.key] = None if op.remove else op.value
        keys = IP_KEYS if dict(pairs).keys() == {IP} else USER_CLIENT_KEYS
        if problem is None:
            problem = next((p for k, v in changes.items() if v is not None and (p := _value_problem(keys, k, v))), None)
        if problem:
            result.error_code, result.error_message = ErrorCode.INVALID_REQUEST, problem
            continue
        result.error_message = None
        current = image.client_quotas.get(entity, {})
        E = m.ClientQuotaRecord.EntityData
        for key, value in changes.items():
            if (value is None and key not in current) or (value is not None and current.get(key) == value):
                continue
            records.append(m.ClientQuotaRecord(entity=[E(entity_type=t, entity_name=n) for t, n in entity], key=key,
                                               value=0.0 if value is None else value, remove=value is None))
    return ([] if req.validate_only else records), R(entries=results)


def describe_client_quotas(image: MetadataImage, req: m.DescribeClientQuotasRequest) -> m.DescribeClientQuotasResponse:
    R = m.DescribeClientQuotasResponse
    exact: dict[str, str | None] = {}
    specified: set[str] = set()
    for c in req.components:
        problem = None
        if not c.entity_type:
            problem = ErrorCode.INVALID_REQUEST, "Invalid empty entity type."
        elif c.entity_type in exact or c.entity_type in specified:
            problem = (ErrorCode.INVALID_REQUEST,
                       f"Entity type {c.entity_type} cannot appear more than once in the filter.")
        elif c.entity_type not in ENTITY_TYPES:
            problem = ErrorCode.UNSUPPORTED_VERSION, f"Unsupported entity type {c.entity_type}"
        elif c.match_type == MATCH_EXACT and c.match is None:
            problem = ErrorCode.INVALID_REQUEST, "Request specified MATCH_TYPE_EXACT, but set match string to null."
        elif c.match_type == MATCH_DEFAULT and c.match is not None:
            problem = (ErrorCode.INVALID_REQUEST,
                       "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
        elif c.match_type == MATCH_SPECIFIED and c.match is not None:
            problem = (ErrorCode.INVALID_REQUEST,
                       "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
        elif c.match_type not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED):
            problem = ErrorCode.INVALID_REQUEST, f"Unknown match type {c.match_type}"
        if problem:
            return R(error_code=problem[0], error_message=problem[1], entries=None)
        if c.match_type == MATCH_SPECIFIED:
            specified.add(c.entity_type)
        else:
            exact[c.entity_type] = c.match
    named = exact.keys() | specified
    if IP in named and named & {USER, CLIENT_ID}:
        return R(error_code=ErrorCode.INVALID_REQUEST, entries=None,
                 error_message="Invalid entity filter component combination. IP filter component should not be used "
                               "with user or clientId filter component.")
    entries = []
    for entity, values in sorted(image.client_quotas.items(), key=lambda e: [(t, n or "") for t, n in e[0]]):
        have = dict(entity)
        if req.strict and len(have) != len(named):
            continue
        if any(t not in have or have[t] != n for t, n in exact.items()) or any(t not in have for t in specified):
            continue
        entries.append(R.EntryData(entity=[R.EntityData(entity_type=t, entity_name=n) for t, n in entity],
                                   values=[R.ValueData(key=k, value=v) for k, v in sorted(values.items())]))
    return R(entries=entries, error_message=None)
