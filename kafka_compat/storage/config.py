"""Topic (log) configuration: Kafka's topic config keys, types, defaults and validation, in one table.

`TOPIC_CONFIGS` is the single source for DescribeConfigs (name, type, default, broker synonym,
sensitivity) and for validation. `LogConfig` holds parsed values as attributes named after the keys
with dots as underscores (segment.bytes -> segment_bytes). Defaults are Kafka 3.9's.

Not a Kafka key: the broker-level `log.fsync.on.append` (see `LogManager(fsync_on_append=...)`),
which syncs every append to disk before it is acknowledged, for single-node deployments that want each
acknowledged write on disk. Kafka's nearest equivalent is flush.messages=1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_compat.storage.errors import InvalidConfigError

LONG_MAX = (1 << 63) - 1
INT_MAX = (1 << 31) - 1

BOOLEAN, SHORT, INT, LONG, DOUBLE, STRING, LIST = "BOOLEAN", "SHORT", "INT", "LONG", "DOUBLE", "STRING", "LIST"


@dataclass(frozen=True)
class ConfigKey:
    """One topic config: `type` is Kafka's ConfigDef type name, `default` the parsed default, `doc`
    what it means here, `check` a validator returning an error sentence or None, `broker_key` the
    broker-wide default's name (DescribeConfigs reports it as a synonym). `used=False`: a key Kafka
    has that this broker accepts and does not act on (yet)."""

    name: str
    type: str
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    broker_key: str | None = None
    used: bool = True


def _at_least(n):
    return lambda v: None if v >= n else f"must be at least {n}"


def _between(lo, hi):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def _one_of(*allowed):
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _subset_of(*allowed):
    def check(v):
        if not v:
            return "must not be empty"
        bad = [x for x in v if x not in allowed]
        return f"unknown value {bad[0]!r}; allowed: {', '.join(allowed)}" if bad else None
    return check


def _gzip_level(v):
    return None if v == -1 or 1 <= v <= 9 else "must be -1 or between 1 and 9"


_COMPRESSIONS = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

TOPIC_CONFIGS: dict[str, ConfigKey] = {k.name: k for k in [
    ConfigKey("cleanup.policy", LIST, ["delete"], "delete (retention removes old segments), compact (the "
              "latest record of each key is kept) or both.", _subset_of("delete", "compact"), "log.cleanup.policy"),
    ConfigKey("compression.type", STRING, "producer", "The codec batches are stored with: producer (as they "
              "came), uncompressed, gzip, snappy, lz4 or zstd.", _one_of(*_COMPRESSIONS), "compression.type"),
    ConfigKey("compression.gzip.level", INT, -1, "gzip level when the broker recompresses (-1: the codec's "
              "default).", _gzip_level, "compression.gzip.level"),
    ConfigKey("compression.lz4.level", INT, 9, "lz4 level when the broker recompresses.", _between(1, 17),
              "compression.lz4.level"),
    ConfigKey("compression.zstd.level", INT, 3, "zstd level when the broker recompresses.", _between(-131072, 22),
              "compression.zstd.level"),
    ConfigKey("delete.retention.ms", LONG, 86400000, "How long the tombstone of a key stays in a compacted topic.",
              _at_least(0), "log.cleaner.delete.retention.ms"),
    ConfigKey("file.delete.delay.ms", LONG, 60000, "How long removed segment files stay on disk (for reads in "
              "progress) before they are deleted.", _at_least(0), "log.segment.delete.delay.ms"),
    ConfigKey("flush.messages", LONG, LONG_MAX, "fsync the log after this many records (default: leave it to the "
              "operating system).", _at_least(1), "log.flush.interval.messages"),
    ConfigKey("flush.ms", LONG, LONG_MAX, "fsync the log when its oldest unflushed record is this old.",
              _at_least(0), "log.flush.interval.ms"),
    ConfigKey("follower.replication.throttled.replicas", LIST, [], "Replicas whose replication is throttled (no "
              "replication yet).", None, None, used=False),
    ConfigKey("index.interval.bytes", INT, 4096, "Bytes of batches between two offset index entries.",
              _at_least(0), "log.index.interval.bytes"),
    ConfigKey("leader.replication.throttled.replicas", LIST, [], "Replicas whose replication is throttled (no "
              "replication yet).", None, None, used=False),
    ConfigKey("local.retention.bytes", LONG, -2, "Local retention with tiered storage (no tiered storage).",
              _at_least(-2), "log.local.retention.bytes", used=False),
    ConfigKey("local.retention.ms", LONG, -2, "Local retention with tiered storage (no tiered storage).",
              _at_least(-2), "log.local.retention.ms", used=False),
    ConfigKey("max.compaction.lag.ms", LONG, LONG_MAX, "The longest a record may stay uncompacted.", _at_least(1),
              "log.cleaner.max.compaction.lag.ms"),
    ConfigKey("max.message.bytes", INT, 1048588, "The largest record batch the topic takes (after compression).",
              _at_least(0), "message.max.bytes"),
    ConfigKey("message.downconversion.enable", BOOLEAN, True, "Whether old fetch versions get newer batches "
              "converted to their format.", None, "log.message.downconversion.enable"),
    ConfigKey("message.timestamp.after.max.ms", LONG, LONG_MAX, "How far in the future a record's CreateTime may "
              "be.", _at_least(0), "log.message.timestamp.after.max.ms"),
    ConfigKey("message.timestamp.before.max.ms", LONG, LONG_MAX, "How far in the past a record's CreateTime may "
              "be.", _at_least(0), "log.message.timestamp.before.max.ms"),
    ConfigKey("message.timestamp.type", STRING, "CreateTime", "CreateTime (the producer's) or LogAppendTime (the "
              "broker's clock at append).", _one_of("CreateTime", "LogAppendTime"), "log.message.timestamp.type"),
    ConfigKey("min.cleanable.dirty.ratio", DOUBLE, 0.5, "Share of a compacted log not yet compacted at which "
              "it is compacted.", _between(0.0, 1.0), "log.cleaner.min.cleanable.ratio"),
    ConfigKey("min.compaction.lag.ms", LONG, 0, "The shortest a record stays uncompacted.", _at_least(0),
              "log.cleaner.min.compaction.lag.ms"),
    ConfigKey("min.insync.replicas", INT, 1, "Replicas that must have a write before acks=all is answered "
              "(NOT_ENOUGH_REPLICAS otherwise).", _at_least(1), "min.insync.replicas"),
    ConfigKey("preallocate", BOOLEAN, False, "Preallocate segment files when they are created.", None,
              "log.preallocate", used=False),
    ConfigKey("remote.storage.enable", BOOLEAN, False, "Tiered storage (not served).", None, None, used=False),
    ConfigKey("retention.bytes", LONG, -1, "Size above which the oldest segments of a partition are deleted "
              "(-1: no limit).", None, "log.retention.bytes"),
    ConfigKey("retention.ms", LONG, 604800000, "Age after which segments are deleted (-1: forever).",
              _at_least(-1), "log.retention.ms"),
    ConfigKey("segment.bytes", INT, 1073741824, "Size at which a new segment file is started.", _at_least(14),
              "log.segment.bytes"),
    ConfigKey("segment.index.bytes", INT, 10485760, "The largest size of a segment's offset and time index.",
              _at_least(8), "log.index.size.max.bytes"),
    ConfigKey("segment.jitter.ms", LONG, 0, "Random time taken off segment.ms, so that segments do not all roll "
              "at once.", _at_least(0), "log.roll.jitter.ms"),
    ConfigKey("segment.ms", LONG, 604800000, "Age at which a new segment is started even if not full.",
              _at_least(1), "log.roll.ms"),
    ConfigKey("unclean.leader.election.enable", BOOLEAN, False, "Elect a leader outside the ISR when no ISR member "
              "is left, losing what it lacks.", None, "unclean.leader.election.enable"),
]}


def parse_value(key: ConfigKey, text: str) -> Any:
    """Parse and check one string value; raises InvalidConfigError naming the key."""
    raw = text.strip()
    try:
        if key.type == BOOLEAN:
            if raw.lower() not in ("true", "false"):
                raise ValueError
            value: Any = raw.lower() == "true"
        elif key.type in (SHORT, INT, LONG):
            value = int(raw)
            bits = {SHORT: 15, INT: 31, LONG: 63}[key.type]
            lo, hi = -(1 << bits), (1 << bits) - 1
            if not lo <= value <= hi:
                raise ValueError
        elif key.type == DOUBLE:
            value = float(raw)
        elif key.type == LIST:
            value = [x.strip() for x in raw.split(",") if x.strip()]
        else:
            value = raw
    except ValueError:
        raise InvalidConfigError(
            f"Invalid value {text!r} for configuration {key.name}: expected {key.type.lower()}") from None
    problem = key.check(value) if key.check else None
    if problem:
        raise InvalidConfigError(f"Invalid value {text!r} for configuration {key.name}: {problem}")
    return value


def format_value(key: ConfigKey, value: Any) -> str:
    """The string form Kafka reports (booleans lower case, lists comma-joined)."""
    if key.type == BOOLEAN:
        return "true" if value else "false"
    if key.type == LIST:
        return ",".join(value)
    return str(value)


class LogConfig:
    """Parsed topic config. Build with `LogConfig.from_dict({"segment.bytes": "1048576"})`, or
    `base.with_overrides({...})` for a topic's overrides on top of the broker's defaults.

    Attributes are the keys with dots as underscores. `overrides` is the set of keys given
    explicitly (DescribeConfigs reports those as topic-level configs). Instances are treated as
    immutable: a config change builds a new LogConfig and hands it to `Log.update_config`.
    """

    cleanup_policy: list[str]
    compression_type: str
    compression_gzip_level: int
    compression_lz4_level: int
    compression_zstd_level: int
    delete_retention_ms: int
    file_delete_delay_ms: int
    flush_messages: int
    flush_ms: int
    index_interval_bytes: int
    max_compaction_lag_ms: int
    max_message_bytes: int
    message_downconversion_enable: bool
    message_timestamp_after_max_ms: int
    message_timestamp_before_max_ms: int
    message_timestamp_type: str
    min_cleanable_dirty_ratio: float
    min_compaction_lag_ms: int
    min_insync_replicas: int
    preallocate: bool
    retention_bytes: int
    retention_ms: int
    segment_bytes: int
    segment_index_bytes: int
    segment_jitter_ms: int
    segment_ms: int

    def __init__(self, values: Mapping[str, Any] | None = None, overrides: frozenset[str] = frozenset()):
        self._values = {name: key.default for name, key in TOPIC_CONFIGS.items()}
        if values:
            self._values.update(values)
        self.overrides = overrides
        for name, value in self._values.items():
            setattr(self, name.replace(".", "_"), value)

    @classmethod
    def from_dict(cls, props: Mapping[str, str]) -> LogConfig:
        """Parse string values (as in CreateTopics / AlterConfigs); unknown keys and bad values
        raise InvalidConfigError (error INVALID_CONFIG) with a one-line message naming the key."""
        return cls().with_overrides(props)

    @classmethod
    def from_broker(cls, props: Mapping[str, str]) -> LogConfig:
        """Broker-wide defaults from server.properties keys (log.segment.bytes, log.retention.ms,
        ...); keys that are not log defaults are ignored. Overrides are empty: these are defaults."""
        by_broker_key = {k.broker_key: k for k in TOPIC_CONFIGS.values() if k.broker_key}
        values = {}
        for bkey, text in props.items():
            key = by_broker_key.get(bkey)
            if key is not None:
                values[key.name] = parse_value(key, str(text))
        # Kafka's coarser retention and roll keys apply when the ms form is absent.
        for unit_key, ms_key, factor in (("log.retention.minutes", "retention.ms", 60000),
                                         ("log.retention.hours", "retention.ms", 3600000),
                                         ("log.roll.hours", "segment.ms", 3600000)):
            if TOPIC_CONFIGS[ms_key].broker_key not in props and unit_key in props and ms_key not in values:
                values[ms_key] = parse_value(TOPIC_CONFIGS[ms_key], str(int(props[unit_key]) * factor))
        return cls(values)

    def with_overrides(self, props: Mapping[str, str]) -> LogConfig:
        values = dict(self._values)
        for name, text in props.items():
            key = TOPIC_CONFIGS.get(name)
            if key is None:
                raise InvalidConfigError(f"Unknown topic config name: {name}")
            values[name] = parse_value(key, str(text))
        return LogConfig(values, self.overrides | frozenset(props))

    def get(self, name: str) -> Any:
        return self._values[name]

    @property
    def compact(self) -> bool:
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        return "delete" in self.cleanup_policy

    def __eq__(self, other) -> bool:
        return isinstance(other, LogConfig) and self._values == other._values

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._values.items() if v != TOPIC_CONFIGS[k].default}
        return f"LogConfig({changed})"
