"""DescribeConfigs (v0-v4), AlterConfigs (v0-v2), IncrementalAlterConfigs (v0-v1): topics and brokers.

A value is reported with where it came from, as Kafka reports it: a topic override
(TOPIC_CONFIG), a dynamic per-broker or cluster-wide broker config, server.properties
(STATIC_BROKER_CONFIG) or the default; with `include_synonyms`, every level that sets it.
Static broker configs are read-only; dynamic ones and all topic configs can be altered.
Authorization: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic, or on the cluster for brokers.
"""

from __future__ import annotations

from typing import Any

from kafka_compat.metadata.image import BROKER_RESOURCE, TOPIC_RESOURCE, MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server import dynamic_config
from kafka_compat.server.authz import Op, Res, allowed, refused, split
from kafka_compat.server.config import BROKER_CONFIGS
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.storage.config import TOPIC_CONFIGS, format_value

# ConfigSource and ConfigType codes of DescribeConfigs.
TOPIC_CONFIG, DYNAMIC_BROKER, DYNAMIC_DEFAULT_BROKER, STATIC_BROKER, DEFAULT = 1, 2, 3, 4, 5
SET, DELETE = 0, 1  # IncrementalAlterConfigs operations
TYPES = {"BOOLEAN": 1, "STRING": 2, "INT": 3, "SHORT": 4, "LONG": 5, "DOUBLE": 6, "LIST": 7, "CLASS": 8, "PASSWORD": 9}


def _fmt(key, value: Any) -> str | None:
    return None if value is None else format_value(key, value)


def broker_levels(ctx: RequestContext, image: MetadataImage, key: str) -> list[tuple[str, str | None, int]]:
    """(name, value, source) of a broker key at every level that sets it, highest first."""
    broker = ctx.broker
    spec = BROKER_CONFIGS[key]
    out = []
    per_node = image.configs.get((BROKER_RESOURCE, str(broker.node_id)), {})
    cluster = image.configs.get((BROKER_RESOURCE, ""), {})
    if key in per_node:
        out.append((key, per_node[key], DYNAMIC_BROKER))
    if key in cluster:
        out.append((key, cluster[key], DYNAMIC_DEFAULT_BROKER))
    if not broker.config.is_default(key):
        out.append((key, _fmt(spec, broker.config[key]), STATIC_BROKER))
    if spec.default is not None:  # Kafka lists no synonym for a default that is null
        out.append((key, _fmt(spec, spec.default), DEFAULT))
    return out


# Broker keys that have no default of their own in Kafka (the effective default comes from
# log.retention.hours, log.roll.hours, the flush scheduler): Kafka lists no default synonym for them.
_NO_DEFAULT_SYNONYM = frozenset({"log.retention.ms", "log.roll.ms", "log.flush.interval.ms", "log.roll.jitter.ms"})


def topic_levels(ctx: RequestContext, image: MetadataImage, overrides: dict[str, str],
                 key: str) -> list[tuple[str, str | None, int]]:
    """A topic key's synonyms as Kafka lists them: the topic override, then the broker key that
    supplies its default at every level that sets it (possibly none at all)."""
    spec = TOPIC_CONFIGS[key]
    out = []
    if key in overrides:
        out.append((key, overrides[key], TOPIC_CONFIG))
    b = spec.broker_key
    if b in BROKER_CONFIGS:
        out += [lvl for lvl in broker_levels(ctx, image, b) if lvl[2] != DEFAULT or b not in _NO_DEFAULT_SYNONYM]
    return out


def topic_entries(ctx: RequestContext, image: MetadataImage, overrides: dict[str, str], keys=None):
    """[(name, value, source, synonyms)] for a topic's configs: the value and source of the first
    synonym, or the topic default where there is none."""
    out = []
    for key in sorted(TOPIC_CONFIGS) if keys is None else keys:
        if key not in TOPIC_CONFIGS:
            continue
        levels = topic_levels(ctx, image, overrides, key)
        spec = TOPIC_CONFIGS[key]
        value, source = (levels[0][1], levels[0][2]) if levels else (_fmt(spec, spec.default), DEFAULT)
        out.append((key, value, source, levels))
    return out


def _describe(ctx: RequestContext, req, image: MetadataImage, res):
    R = m.DescribeConfigsResponse
    v = ctx.api_version
    result = R.DescribeConfigsResult(error_code=ErrorCode.NONE, resource_type=res.resource_type,
                                     resource_name=res.resource_name, configs=[])
    keys = res.configuration_keys or None  # null and empty both mean every key, as in Kafka
    if res.resource_type == TOPIC_RESOURCE:
        if res.resource_name not in image.topics:
            result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            result.error_message = f"Topic {res.resource_name} does not exist."
            return result
        entries = [(k, val, src, lv, False, TOPIC_CONFIGS[k].type)
                   for k, val, src, lv in topic_entries(ctx, image, dict(image.topic_configs(res.resource_name)), keys)]
    elif res.resource_type == BROKER_RESOURCE:
        if res.resource_name not in ("", str(ctx.broker.node_id)):
            result.error_code = ErrorCode.INVALID_REQUEST
            result.error_message = f"Unexpected broker id {res.resource_name}"
            return result
        entries = []
        for k in sorted(BROKER_CONFIGS) if keys is None else keys:
            spec = BROKER_CONFIGS.get(k)
            if spec is None:
                continue
            levels = broker_levels(ctx, image, k)
            if res.resource_name == "":  # the cluster-wide default resource shows dynamic defaults only
                levels = [lv for lv in levels if lv[2] == DYNAMIC_DEFAULT_BROKER]
                if not levels:
                    continue
            value, source = (levels[0][1], levels[0][2]) if levels else (None, DEFAULT)
            entries.append((k, value, source, levels, not spec.dynamic, spec.type))
    else:
        result.error_code = ErrorCode.INVALID_REQUEST
        result.error_message = f"Unsupported resource type {res.resource_type}"
        return result
    for name, value, source, levels, read_only, kind in entries:
        sensitive = kind == "PASSWORD"  # secrets are never shown, as Kafka's PASSWORD configs
        if sensitive:
            value, levels = None, [(n, None, src) for n, _, src in levels]
        c = R.DescribeConfigsResourceResult(name=name, value=value, read_only=read_only, is_sensitive=sensitive)
        if v == 0:
            c.is_default = source == DEFAULT
        else:
            c.config_source = source
        if v >= 3:
            c.config_type = TYPES.get(kind, 0)
            c.documentation = None  # no documentation is kept; Kafka sends null unless asked for it
        if v >= 1 and req.include_synonyms:
            c.synonyms = [R.DescribeConfigsSynonym(name=n, value=val, source=src) for n, val, src in levels]
        result.configs.append(c)
    return result


@handles(m.ApiKey.DESCRIBE_CONFIGS, versions=(0, 4))
async def describe_configs(ctx: RequestContext, req: m.DescribeConfigsRequest) -> m.DescribeConfigsResponse:
    image = ctx.broker.metadata
    R = m.DescribeConfigsResponse
    results = []
    for r in req.resources:
        denied = _denied(ctx, Op.DESCRIBE_CONFIGS, r)
        results.append(_describe(ctx, req, image, r) if denied is None else R.DescribeConfigsResult(
            error_code=denied, resource_type=r.resource_type, resource_name=r.resource_name, configs=[]))
    return R(throttle_time_ms=0, results=results)


def _denied(ctx: RequestContext, op: Op, resource) -> ErrorCode | None:
    if resource.resource_type == TOPIC_RESOURCE:
        ok, code = allowed(ctx, op, Res.TOPIC, resource.resource_name), ErrorCode.TOPIC_AUTHORIZATION_FAILED
    else:
        ok, code = allowed(ctx, op), ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    return None if ok else code


@handles(m.ApiKey.ALTER_CONFIGS, versions=(0, 2))
@handles(m.ApiKey.INCREMENTAL_ALTER_CONFIGS, versions=(0, 1))
async def alter_configs(ctx: RequestContext, req):
    """AlterConfigs and IncrementalAlterConfigs: to the active controller, what may be altered."""
    denied: dict[int, list] = {}
    for r in req.resources:
        code = _denied(ctx, Op.ALTER_CONFIGS, r)
        if code is not None:
            denied.setdefault(code, []).append(r)
    req.resources, _ = split(ctx, req.resources, lambda r: all(r not in rs for rs in denied.values()))
    no = [x for code, rs in denied.items() for x in refused(ctx, req, "resources", rs, code, "responses")]
    R = m.response_class(ctx.api_key)
    kept = []
    for r in req.resources:
        problem = _dynamic_problem(ctx, r)
        if problem is None:
            kept.append(r)
        else:
            no.append(R.AlterConfigsResourceResponse(error_code=ErrorCode.INVALID_REQUEST, error_message=problem,
                                                     resource_type=r.resource_type, resource_name=r.resource_name))
    req.resources = kept
    if not req.resources:
        return m.response_class(ctx.api_key)(responses=no)
    response = await ctx.broker.controller_request(ctx, req)
    response.responses += no
    return response


def _dynamic_problem(ctx: RequestContext, resource) -> str | None:
    """Why this broker refuses a change of its own (or the cluster-wide) broker configs, as Kafka's
    DynamicBrokerConfig validation does before the change goes to the controller."""
    broker = ctx.broker
    if resource.resource_type != BROKER_RESOURCE or resource.resource_name not in ("", str(broker.node_id)):
        return None
    per_broker = resource.resource_name != ""
    listeners = {listener.name.upper() for listener in broker.config.listeners}
    for c in resource.configs:
        problem = dynamic_config.key_problem(c.name, per_broker, listeners)
        if problem:
            return problem
    deleted = {c.name for c in resource.configs if getattr(c, "config_operation", SET) == DELETE}
    changes = {c.name: c.value for c in resource.configs if c.name not in deleted}
    if not dynamic_config.reconfigurable_tls({**changes, **dict.fromkeys(deleted, "")}):
        return None
    image = broker.metadata
    merged = {**broker.config.values, **image.configs.get((BROKER_RESOURCE, ""), {}),
              **image.configs.get((BROKER_RESOURCE, str(broker.node_id)), {}), **changes}
    for key in deleted:
        merged.pop(key, None)
    return dynamic_config.tls_problem(merged, [name for name, security in broker.security.items()
                                               if security.tls is not None])
