"""Broker configuration with Kafka's keys: a server.properties file, KAFKA_* variables, overrides.

Precedence, lowest first: the defaults below, the properties file, `KAFKA_*` environment variables
(mapped as Kafka's container images map them: strip the prefix, lower-case, `___` -> `-`,
`__` -> `_`, `_` -> `.`), then `--override key=value`. Every key is checked: an unknown key or a
bad value is a `ConfigError` naming it, raised before anything starts. Keys Kafka knows that this
broker does not act on are accepted (a user's existing server.properties works) and reported as
unused. `kafka-compat config keys` (and docs/configuration.md) lists every key from these tables.

Defaults are Kafka's, except where Kafka has none or assumes a multi-node cluster: a node started
with nothing configured is a single combined broker+controller (node.id 1, listening on
127.0.0.1:9092) whose internal topics have replication factor 1. Such a node, with no
`controller.quorum.voters` and no CONTROLLER listener, is a one-voter metadata quorum whose
controller runs in process; with voters configured it is a KRaft node like Kafka's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kafka_compat import properties
from kafka_compat.raft.config import Endpoint, QuorumConfig, parse_bootstrap_servers, parse_voters
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.storage import config as storage_config
from kafka_compat.storage.config import BOOLEAN, INT, INT_MAX, LIST, LONG, LONG_MAX, SHORT, STRING, TOPIC_CONFIGS
from kafka_compat.storage.errors import InvalidConfigError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
PASSWORD = "PASSWORD"  # Kafka's type for secrets: parsed as a string, never shown


class ConfigError(Exception):
    """A configuration problem, as one line naming the key."""


@dataclass(frozen=True)
class BrokerKey:
    """One broker config: `type` is Kafka's ConfigDef type name, `default` the parsed default, `doc`
    what it means here, `check` a validator returning an error sentence or None. `used=False`: a
    key Kafka has that this broker accepts and does not act on (yet)."""

    name: str
    type: str
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None
    dynamic: bool = False  # settable at run time through AlterConfigs (Kafka: cluster-wide or per broker)
    used: bool = True


def _at_least(n):
    return lambda v: None if v >= n else f"must be at least {n}"


def ip_overrides(text: str | None) -> dict[str, int]:
    """`max.connections.per.ip.overrides`, "host:count,...", as {host: count}; ValueError when an
    entry is not host:count (Kafka parses it as a CSV map of ints)."""
    out = {}
    for entry in filter(None, (e.strip() for e in (text or "").split(","))):
        host, colon, count = entry.rpartition(":")
        if not colon or not host.strip():
            raise ValueError(f"Map entry '{entry}' is improperly formatted. It should be of the form key:value")
        try:
            out[host.strip()] = int(count)
        except ValueError:
            raise ValueError(f'For input string: "{count.strip()}"') from None
    return out


def _ip_overrides_problem(text: str) -> str | None:
    try:
        ip_overrides(text)
    except ValueError as e:
        return str(e)
    return None


def _between(lo, hi):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


def _one_of(*allowed):
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _api_names(v):
    from kafka_compat.server.metrics import REQUEST_NAMES

    known = {name.lower() for name in REQUEST_NAMES.values()}
    bad = [a for a in v if a.lower() not in known]
    return f"unknown request types: {', '.join(bad)} (use Kafka's names, such as Produce,Fetch)" if bad else None


def _roles(v):
    bad = [r for r in v if r not in ("broker", "controller")]
    if bad or not v:
        return "must be a list of broker and/or controller"
    return None


_KEYS = [
    # The node and its place in the cluster
    BrokerKey("node.id", INT, 1, "This node's id, unique in the cluster (broker and controller alike).",
              _at_least(0)),
    BrokerKey("broker.id", INT, -1, "The old name of node.id; set only one of them."),
    BrokerKey("process.roles", LIST, ["broker", "controller"],
              "broker, controller or both: what this node runs (both: a combined node).", _roles),
    BrokerKey("listeners", LIST, ["PLAINTEXT://127.0.0.1:9092"],
              "NAME://host:port the node listens on (an empty host: every interface; port 0: any free port)."),
    BrokerKey("advertised.listeners", LIST, [],
              "NAME://host:port given to clients in Metadata (default: the listeners, 0.0.0.0 shown as 127.0.0.1)."),
    BrokerKey("listener.security.protocol.map", STRING,  # Kafka's type: one string of name:protocol pairs
              "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
              "NAME:PROTOCOL for each listener name: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
    BrokerKey("inter.broker.listener.name", STRING, None,
              "The listener brokers use to talk to each other, followers fetching from leaders through it "
              "(default: PLAINTEXT, else the first advertised); its security settings are those of the "
              "node's own connections there."),
    BrokerKey("controller.listener.names", LIST, ["CONTROLLER"],
              "Listener names that are controller listeners (the first one is served by a controller)."),
    BrokerKey("controller.quorum.voters", LIST, [],
              "id@host:port of every controller in the metadata quorum (empty: this node alone)."),
    BrokerKey("controller.quorum.bootstrap.servers", LIST, [],
              "host:port of controllers to find the quorum through, instead of listing the voters."),
    BrokerKey("controller.quorum.election.timeout.ms", INT, 1000,
              "How long a voter waits without a leader before it starts an election.", _at_least(1)),
    BrokerKey("controller.quorum.fetch.timeout.ms", INT, 2000,
              "How long a follower goes without a successful fetch before it looks for a new leader.", _at_least(1)),
    BrokerKey("controller.quorum.election.backoff.max.ms", INT, 1000,
              "The longest random wait before a new election after a failed one.", _at_least(1)),
    BrokerKey("controller.quorum.request.timeout.ms", INT, 2000,
              "How long a quorum request (and a broker's heartbeat) waits for its answer.", _at_least(1)),
    BrokerKey("broker.heartbeat.interval.ms", INT, 2000,
              "How often a broker heartbeats to the active controller.", _at_least(1)),
    BrokerKey("broker.session.timeout.ms", INT, 9000,
              "How long the controller waits for a broker's heartbeat before fencing it.", _at_least(1)),
    BrokerKey("broker.rack", STRING, None, "The rack of this broker, reported to clients in Metadata."),
    # Storage
    BrokerKey("log.dirs", LIST, [], "The directories partition logs are kept in (default: log.dir)."),
    BrokerKey("log.dir", LIST, ["/tmp/kafka-logs"], "The log directory when log.dirs is not set."),
    BrokerKey("metadata.log.dir", STRING, None,
              "Where the metadata log (__cluster_metadata) is kept (default: the first log dir)."),
    BrokerKey("metadata.log.max.record.bytes.between.snapshots", LONG, 20971520,
              "Bytes of metadata records applied after which a new metadata snapshot is taken.", _at_least(1)),
    BrokerKey("log.retention.check.interval.ms", LONG, 300000,
              "How often retention (time, size, log start offset) is applied.", _at_least(1)),
    BrokerKey("log.flush.scheduler.interval.ms", LONG, LONG_MAX,
              "How often logs are checked for flush.ms (they are checked every second).", _at_least(0), used=False),
    BrokerKey("log.flush.offset.checkpoint.interval.ms", INT, 60000,
              "How often recovery points, log start offsets and high watermarks are checkpointed.", _at_least(0)),
    BrokerKey("log.cleaner.enable", BOOLEAN, True, "Whether compacted topics are compacted."),
    BrokerKey("log.cleaner.backoff.ms", LONG, 15000,
              "How long the cleaner waits before looking for a log to compact again.", _at_least(0)),
    BrokerKey("log.fsync.on.append", BOOLEAN, False,
              "Not Kafka's: fsync every append before acknowledging it (Kafka's nearest is flush.messages=1)."),
    BrokerKey("log.retention.hours", INT, 168,
              "Default retention of topics in hours, when log.retention.ms and .minutes are not set.",
              _at_least(-1), dynamic=True),
    BrokerKey("log.retention.minutes", INT, None,
              "Default retention of topics in minutes, when log.retention.ms is not set.", dynamic=True),
    BrokerKey("log.roll.hours", INT, 168, "Default segment.ms of topics in hours, when log.roll.ms is not set.",
              _at_least(1), dynamic=True),
    # Topics
    BrokerKey("num.partitions", INT, 1, "Partitions of a topic created without a count (and auto-created ones).",
              _at_least(1), dynamic=True),
    BrokerKey("default.replication.factor", INT, 1, "Replicas of a topic created without a replication factor.",
              _at_least(1)),
    BrokerKey("auto.create.topics.enable", BOOLEAN, True,
              "Whether Metadata and Produce for an unknown topic create it (when the client asks)."),
    BrokerKey("delete.topic.enable", BOOLEAN, True, "Whether DeleteTopics is allowed."),
    BrokerKey("message.max.bytes", INT, 1048588,
              "The largest record batch a topic takes (the default of the topic's max.message.bytes).",
              _at_least(0), dynamic=True),
    BrokerKey("min.insync.replicas", INT, 1,
              "Default of the topic config: replicas that must have a write before acks=all is answered.",
              _at_least(1), dynamic=True),
    BrokerKey("unclean.leader.election.enable", BOOLEAN, False,
              "Default of the topic config: elect a leader outside the ISR when no ISR member is left.",
              dynamic=True),
    BrokerKey("unclean.leader.election.interval.ms", LONG, 300000,
              "How often the controller elects unclean leaders where the topic allows it.", _at_least(1)),
    BrokerKey("auto.leader.rebalance.enable", BOOLEAN, True,
              "Move leadership back to preferred replicas where a broker's imbalance is too high."),
    BrokerKey("leader.imbalance.check.interval.seconds", LONG, 300,
              "How often the controller checks leader imbalance.", _at_least(1)),
    BrokerKey("leader.imbalance.per.broker.percentage", INT, 10,
              "The share of a broker's partitions led elsewhere that triggers a preferred election.", _at_least(0)),
    # Requests and connections
    BrokerKey("socket.request.max.bytes", INT, 104857600,
              "The largest request frame; a bigger one closes the connection.", _at_least(1)),
    BrokerKey("connections.max.idle.ms", LONG, 600000,
              "Connections idle this long are closed (-1: never).", _at_least(-1)),
    BrokerKey("queued.max.requests", INT, 500, "Requests queued before reading from sockets pauses.",
              _at_least(1), used=False),
    BrokerKey("fetch.max.bytes", INT, 57671680, "The most a Fetch response carries, whatever the client asks.",
              _at_least(1024)),
    BrokerKey("max.incremental.fetch.session.cache.slots", INT, 1000,
              "Incremental fetch sessions (KIP-227) kept at once.", _at_least(0)),
    # Observability: the HTTP endpoint (server.health) and the request log (server.metrics)
    BrokerKey("metrics.port", INT, -1,
              "Port of the node's HTTP endpoint: Prometheus metrics at /metrics, container probes at /health/live "
              "and /health/ready (-1: no endpoint; 0: any free port).", _at_least(-1)),
    BrokerKey("metrics.host", STRING, "127.0.0.1",
              "Address the HTTP endpoint listens on (an empty host or 0.0.0.0: every interface)."),
    BrokerKey("request.logger.apis", LIST, [],
              "Request types to log, one line per request with its timings (Kafka's kafka.request.logger): "
              "Kafka's names, such as Produce,Fetch,OffsetCommit.", _api_names),
    BrokerKey("request.logger.slow.ms", LONG, 1000,
              "Log a request, with its timings, when it took this long, not counting its wait for a long poll "
              "or acks=all (JoinGroup and SyncGroup, which wait for a rebalance, never are; -1: never).",
              _at_least(-1)),
    # Consumer groups and offsets
    BrokerKey("offsets.topic.num.partitions", INT, 50, "Partitions of __consumer_offsets, set when it is created.",
              _at_least(1)),
    BrokerKey("offsets.topic.replication.factor", SHORT, 3,
              "Replicas of __consumer_offsets; groups wait until that many brokers are up (a single node sets 1).",
              _at_least(1)),
    BrokerKey("offsets.topic.segment.bytes", INT, 104857600, "segment.bytes of __consumer_offsets.", _at_least(1)),
    BrokerKey("offsets.retention.minutes", INT, 10080,
              "How long committed offsets of an empty group are kept.", _at_least(1)),
    BrokerKey("offsets.retention.check.interval.ms", LONG, 600000, "How often expired offsets are removed.",
              _at_least(1)),
    BrokerKey("offsets.load.buffer.size", INT, 5242880,
              "Bytes read at a time when __consumer_offsets partitions are loaded.", _at_least(1)),
    BrokerKey("offset.metadata.max.bytes", INT, 4096, "The longest metadata string an offset commit may carry."),
    BrokerKey("offsets.commit.timeout.ms", INT, 5000,
              "How long an offset commit waits for its write before it fails.", _at_least(1)),
    BrokerKey("group.initial.rebalance.delay.ms", INT, 3000,
              "How long a new classic group waits for more members before its first rebalance.", _at_least(0)),
    BrokerKey("group.min.session.timeout.ms", INT, 6000, "The shortest session timeout a classic member may ask."),
    BrokerKey("group.max.session.timeout.ms", INT, 1800000, "The longest session timeout a classic member may ask."),
    BrokerKey("group.max.size", INT, INT_MAX, "The most members a classic group takes.", _at_least(1)),
    BrokerKey("group.coordinator.rebalance.protocols", LIST, ["classic", "consumer"],
              "The group protocols served: classic (JoinGroup/SyncGroup) and consumer (KIP-848)."),
    BrokerKey("group.consumer.session.timeout.ms", INT, 45000,
              "Session timeout of KIP-848 consumer group members.", _at_least(1)),
    BrokerKey("group.consumer.heartbeat.interval.ms", INT, 5000,
              "Heartbeat interval given to KIP-848 consumer group members.", _at_least(1)),
    BrokerKey("group.consumer.assignors", LIST, ["uniform", "range"],
              "Server-side assignors of KIP-848 consumer groups; the first is the default."),
    BrokerKey("group.consumer.max.size", INT, INT_MAX, "The most members a KIP-848 consumer group takes.",
              _at_least(1)),
    # Transactions
    BrokerKey("transaction.state.log.num.partitions", INT, 50,
              "Partitions of __transaction_state, set when it is created.", _at_least(1)),
    BrokerKey("transaction.state.log.replication.factor", SHORT, 3,
              "Replicas of __transaction_state; transactional producers wait until that many brokers are up "
              "(a single node sets 1).", _at_least(1)),
    BrokerKey("transaction.state.log.min.isr", INT, 2, "min.insync.replicas of __transaction_state.", _at_least(1)),
    BrokerKey("transaction.state.log.segment.bytes", INT, 104857600, "segment.bytes of __transaction_state.",
              _at_least(1)),
    BrokerKey("transaction.state.log.load.buffer.size", INT, 5242880,
              "Bytes read at a time when __transaction_state partitions are loaded.", _at_least(1)),
    BrokerKey("transaction.max.timeout.ms", INT, 900000,
              "The longest transaction.timeout.ms a producer may ask for.", _at_least(1)),
    BrokerKey("transactional.id.expiration.ms", INT, 604800000,
              "How long a transactional id without a transaction is kept.", _at_least(1)),
    BrokerKey("transaction.abort.timed.out.transaction.cleanup.interval.ms", INT, 10000,
              "How often transactions open longer than their timeout are aborted.", _at_least(1)),
    BrokerKey("transaction.remove.expired.transaction.cleanup.interval.ms", INT, 3600000,
              "How often expired transactional ids are removed.", _at_least(1)),
    BrokerKey("transaction.partition.verification.enable", BOOLEAN, True,
              "KIP-890: a partition leader asks the coordinator before a transaction's first write to it.",
              dynamic=True),
    # Replication between brokers
    BrokerKey("replica.lag.time.max.ms", LONG, 30000, "How long a follower may lag before it leaves the ISR.",
              _at_least(0)),
    BrokerKey("replica.fetch.max.bytes", INT, 1048576, "Bytes a follower fetches per partition.", _at_least(0)),
    BrokerKey("replica.fetch.wait.max.ms", INT, 500, "How long a follower's fetch waits for data.", _at_least(0)),
    BrokerKey("replica.fetch.min.bytes", INT, 1, "Bytes a follower's fetch waits for.", _at_least(1)),
    BrokerKey("replica.fetch.response.max.bytes", INT, 10485760, "Bytes a follower fetches per request.",
              _at_least(0)),
    BrokerKey("replica.fetch.backoff.ms", INT, 1000, "How long a follower waits after a failed fetch.", _at_least(0)),
    BrokerKey("replica.socket.timeout.ms", INT, 30000, "How long a follower's request may go unanswered.",
              _at_least(1)),
    BrokerKey("num.replica.fetchers", INT, 1, "Fetchers (connections) per leader a follower fetches from.",
              _at_least(1)),
    BrokerKey("replica.selector.class", STRING, None,
              "org.apache.kafka.common.replica.RackAwareReplicaSelector: consumers with client.rack read from a "
              "replica in their rack (KIP-392)."),
    BrokerKey("replica.high.watermark.checkpoint.interval.ms", LONG, 5000,
              "How often high watermarks are written to replication-offset-checkpoint.", _at_least(1)),
    BrokerKey("controller.socket.timeout.ms", INT, 30000, "How long an AlterPartition may go unanswered.",
              _at_least(1)),
    # Security (TLS, SASL, authorizer, quotas, connection limits): each also as `listener.name.<name>.<key>`.
    BrokerKey("ssl.keystore.type", STRING, "JKS", "PEM or PKCS12 (a JKS file written as PKCS12 is read too).",
              dynamic=True),
    BrokerKey("ssl.keystore.location", STRING, None, "The listener's key and certificate chain (PEM or PKCS12); "
              "replaced at run time per listener (listener.name.<l>.ssl.keystore.* through IncrementalAlterConfigs "
              "on the broker), as the truststore.", dynamic=True),
    BrokerKey("ssl.keystore.password", PASSWORD, None, "The PKCS12 keystore's password.", dynamic=True),
    BrokerKey("ssl.key.password", PASSWORD, None, "The private key's password.", dynamic=True),
    BrokerKey("ssl.keystore.certificate.chain", PASSWORD, None, "A PEM certificate chain, inline.", dynamic=True),
    BrokerKey("ssl.keystore.key", PASSWORD, None, "A PEM private key, inline.", dynamic=True),
    BrokerKey("ssl.truststore.type", STRING, "JKS", "PEM or PKCS12.", dynamic=True),
    BrokerKey("ssl.truststore.location", STRING, None, "The CAs client certificates are checked against.",
              dynamic=True),
    BrokerKey("ssl.truststore.password", PASSWORD, None, "The PKCS12 truststore's password.", dynamic=True),
    BrokerKey("ssl.truststore.certificates", PASSWORD, None, "PEM CA certificates, inline.", dynamic=True),
    BrokerKey("ssl.client.auth", STRING, "none", "none, requested or required: whether clients present a "
              "certificate (its DN is then the principal).", _one_of("none", "requested", "required"), dynamic=True),
    BrokerKey("ssl.enabled.protocols", LIST, ["TLSv1.2", "TLSv1.3"], "TLS versions accepted.", dynamic=True),
    BrokerKey("ssl.protocol", STRING, "TLSv1.3", "Kafka's SSLContext protocol (the enabled protocols decide here).",
              dynamic=True),
    BrokerKey("ssl.cipher.suites", LIST, [], "TLS 1.2 suites by their IANA names (default: OpenSSL's).", dynamic=True),
    BrokerKey("ssl.endpoint.identification.algorithm", STRING, "https",
              "https: brokers check the host name of the brokers they connect to.", dynamic=True),
    BrokerKey("ssl.principal.mapping.rules", STRING, "DEFAULT", "RULE:pattern/replacement/[LU] rules from a "
              "certificate's distinguished name to a principal name."),
    BrokerKey("sasl.enabled.mechanisms", LIST, ["GSSAPI"], "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER "
              "(GSSAPI/Kerberos is not supported).", dynamic=True),
    BrokerKey("sasl.mechanism.inter.broker.protocol", STRING, "GSSAPI",
              "The mechanism brokers use on a SASL inter-broker listener.", dynamic=True),
    BrokerKey("sasl.mechanism.controller.protocol", STRING, "GSSAPI",
              "The mechanism brokers and controllers use on a SASL controller listener."),
    BrokerKey("sasl.jaas.config", PASSWORD, None, "JAAS: PlainLoginModule's user_<name>=\"<password>\" options; "
              "the client credentials for inter-broker SASL (username, password).", dynamic=True),
    BrokerKey("sasl.server.max.receive.size", INT, 524288, "The largest SASL frame before authentication."),
    BrokerKey("sasl.server.callback.handler.class", "CLASS", None,
              "OAUTHBEARER: OAuthBearerValidatorCallbackHandler checks signed tokens against a JWKS."),
    BrokerKey("sasl.oauthbearer.jwks.endpoint.url", STRING, None, "A file: URL of the JWKS signed tokens are "
              "checked against."),
    BrokerKey("sasl.oauthbearer.expected.audience", LIST, [], "Audiences a token must name one of."),
    BrokerKey("sasl.oauthbearer.expected.issuer", STRING, None, "The issuer a token must name."),
    BrokerKey("sasl.oauthbearer.clock.skew.seconds", INT, 30, "Tolerated clock difference for token times."),
    BrokerKey("sasl.oauthbearer.scope.claim.name", STRING, "scope", "The claim holding a token's scopes."),
    BrokerKey("sasl.oauthbearer.sub.claim.name", STRING, "sub", "The claim holding a token's principal."),
    BrokerKey("connections.max.reauth.ms", LONG, 0, "Longest SASL session before the client must "
              "re-authenticate (0: no limit)."),
    BrokerKey("connection.failed.authentication.delay.ms", INT, 100, "How long a failed authentication waits "
              "before its answer and the close."),
    BrokerKey("authorizer.class.name", STRING, "", "org.apache.kafka.metadata.authorizer.StandardAuthorizer "
              "switches ACLs on (decisions logged on kafka.authorizer.logger)."),
    BrokerKey("super.users", STRING, None, "Principals allowed everything, as User:a;User:b."),
    BrokerKey("allow.everyone.if.no.acl.found", BOOLEAN, False, "A resource no ACL names is open to everyone."),
    BrokerKey("max.connections", INT, INT_MAX, "Connections the broker keeps at once; more are closed.",
              _at_least(0), dynamic=True),
    BrokerKey("max.connections.per.ip", INT, INT_MAX, "Connections one ip may keep at once; more are closed.",
              _at_least(0), dynamic=True),
    BrokerKey("max.connections.per.ip.overrides", STRING, "", "host:count pairs that replace max.connections.per.ip.",
              _ip_overrides_problem, dynamic=True),
    BrokerKey("quota.window.num", INT, 11, "Samples a client quota's rate is measured over.", _at_least(1)),
    BrokerKey("quota.window.size.seconds", INT, 1, "Length of each quota sample.", _at_least(1)),
]

# Broker-wide defaults of topic configs (log.segment.bytes ...): same type and default as the
# topic key they stand for, unless listed above.
_BY_NAME: dict[str, BrokerKey] = {k.name: k for k in _KEYS}
for _t in TOPIC_CONFIGS.values():
    if _t.broker_key and _t.broker_key not in _BY_NAME:
        _BY_NAME[_t.broker_key] = BrokerKey(_t.broker_key, _t.type, _t.default,
                                            f"Default of the topic config {_t.name}.", _t.check, dynamic=True,
                                            used=_t.used)
BROKER_CONFIGS: dict[str, BrokerKey] = _BY_NAME

# Keys Kafka's broker knows that this broker accepts and does not act on (yet), beyond the used=False
# ones above; listed by `kafka-compat config keys` and named in one warning line at start when set.
KNOWN_UNUSED = frozenset("""
alter.config.policy.class.name alter.log.dirs.replication.quota.window.num
alter.log.dirs.replication.quota.window.size.seconds background.threads broker.id.generation.enable
client.quota.callback.class control.plane.listener.name controlled.shutdown.enable
controlled.shutdown.max.retries controlled.shutdown.retry.backoff.ms controller.quota.window.num
controller.quota.window.size.seconds create.topic.policy.class.name
delegation.token.expiry.check.interval.ms delegation.token.expiry.time.ms
delegation.token.max.lifetime.ms delegation.token.secret.key fetch.purgatory.purge.interval.requests
group.coordinator.new.enable group.coordinator.threads initial.broker.registration.timeout.ms
log.cleaner.dedupe.buffer.size log.cleaner.io.buffer.load.factor log.cleaner.io.buffer.size
log.cleaner.io.max.bytes.per.second log.cleaner.threads log.dir.failure.timeout.ms
log.initial.task.delay.ms log.message.format.version log.recovery.per.partition
log.roll.jitter.hours max.connection.creation.rate metadata.log.max.snapshot.interval.ms
metrics.num.samples metrics.recording.level metrics.sample.window.ms metadata.log.segment.bytes
metadata.log.segment.ms metadata.max.idle.interval.ms metadata.max.retention.bytes
metadata.max.retention.ms num.io.threads num.network.threads num.recovery.threads.per.data.dir
num.replica.alter.log.dirs.threads offsets.commit.required.acks principal.builder.class
producer.id.expiration.check.interval.ms producer.id.expiration.ms
producer.purgatory.purge.interval.requests queued.max.request.bytes
replica.socket.receive.buffer.bytes replication.quota.window.num
replication.quota.window.size.seconds request.timeout.ms reserved.broker.max.id
security.inter.broker.protocol socket.connection.setup.timeout.max.ms
socket.connection.setup.timeout.ms socket.listen.backlog.size socket.receive.buffer.bytes
socket.send.buffer.bytes zookeeper.connect
""".split())
# Families of keys Kafka accepts by prefix and this broker does not act on (metric reporters'
# context, tiered storage); Kafka's metrics.* keys are listed above, beside this broker's own
# metrics.port/host.
KNOWN_PREFIXES = ("metric.", "metrics.context.", "remote.log.")
# Families it acts on beyond the keys listed above: per-listener settings (`listener.name.<name>.`),
# mechanism-specific SASL keys (`sasl.`, as `plain.sasl.jaas.config` under a listener) and TLS keys.
USED_PREFIXES = ("listener.name.", "ssl.", "sasl.")


def env_key(var: str) -> str | None:
    """`KAFKA_LOG_DIRS` -> `log.dirs` (the mapping Kafka's container images use)."""
    if not var.startswith("KAFKA_"):
        return None
    name = var[len("KAFKA_"):]
    return name.lower().replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


# Variables of Kafka's images that are not configs, and this project's own (KAFKA_COMPAT_BROKERS
# is the CLI's), as Kafka's images skip their own.
_NOT_CONFIG_ENV = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_LOG4J_OPTS",
                   "KAFKA_JMX_OPTS", "KAFKA_GC_LOG_OPTS", "KAFKA_DEBUG", "KAFKA_VERSION", "KAFKA_HOME"}
_NOT_CONFIG_ENV_PREFIX = "KAFKA_COMPAT_"


def read_properties(path: Path) -> dict[str, str]:
    """A server.properties file (`kafka_compat.properties`), its problems as ConfigError."""
    try:
        return properties.read(path)
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(str(e)) from None


def parse_value(key: BrokerKey, text: str) -> Any:
    """Parse a string value by the key's type; ConfigError naming the key when it does not fit."""
    try:
        return storage_config.parse_value(key, text)
    except InvalidConfigError as e:
        raise ConfigError(e.message) from None


@dataclass(frozen=True)
class Listener:
    name: str
    host: str
    port: int
    security_protocol: str

    @property
    def bind_host(self) -> str:
        return self.host or "0.0.0.0"


def parse_listeners(entries: Iterable[str], key: str) -> list[tuple[str, str, int]]:
    out = []
    for e in entries:
        if "://" not in e:
            raise ConfigError(f"invalid value '{e}' for {key}: expected NAME://host:port")
        name, rest = e.split("://", 1)
        host, _, port = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        try:
            port_n = int(port)
            if not 0 <= port_n <= 65535:
                raise ValueError
        except ValueError:
            raise ConfigError(f"invalid value '{e}' for {key}: bad port '{port}'") from None
        if not name or not name.replace("_", "").isalnum():
            raise ConfigError(f"invalid value '{e}' for {key}: bad listener name '{name}'")
        out.append((name.upper(), host, port_n))
    names = [n for n, _, _ in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"invalid value for {key}: each listener name may appear once")
    return out


@dataclass
class BrokerConfig:
    """Parsed static broker configuration; `config[key]` gives the typed value."""

    values: dict[str, Any]
    explicit: dict[str, str] = field(default_factory=dict)  # key -> the string that set it
    unused: list[str] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def is_default(self, key: str) -> bool:
        return key not in self.explicit

    @property
    def node_id(self) -> int:
        return self.values["node.id"]

    @property
    def log_dirs(self) -> list[str]:
        return self.values["log.dirs"] or self.values["log.dir"]

    @property
    def metadata_log_dir(self) -> str:
        return self.values["metadata.log.dir"] or self.log_dirs[0]

    @property
    def roles(self) -> set[str]:
        return set(self.values["process.roles"])

    def security_protocols(self) -> dict[str, str]:
        out = {}
        for entry in filter(None, (e.strip() for e in self.values["listener.security.protocol.map"].split(","))):
            name, _, proto = entry.partition(":")
            out[name.strip().upper()] = proto.strip().upper()
        for name in self.values["controller.listener.names"]:
            out.setdefault(name.upper(), "PLAINTEXT")
        return out

    @property
    def listeners(self) -> list[Listener]:
        protos = self.security_protocols()
        return [Listener(n, h, p, protos[n]) for n, h, p in parse_listeners(self.values["listeners"], "listeners")]

    @property
    def advertised_listeners(self) -> list[Listener]:
        """What clients are told; defaults to the listeners (a wildcard host becomes 127.0.0.1)."""
        entries = self.values["advertised.listeners"]
        if not entries:
            controllers = {n.upper() for n in self.values["controller.listener.names"]}
            return [Listener(l.name, l.host if l.host not in ("", "0.0.0.0", "::") else "127.0.0.1", l.port,
                             l.security_protocol) for l in self.listeners if l.name not in controllers]
        protos = self.security_protocols()
        return [Listener(n, h, p, protos.get(n, "PLAINTEXT"))
                for n, h, p in parse_listeners(entries, "advertised.listeners")]

    @property
    def broker_listener_names(self) -> list[str]:
        controllers = {n.upper() for n in self.values["controller.listener.names"]}
        return [l.name for l in self.listeners if l.name not in controllers]

    @property
    def inter_broker_listener(self) -> str | None:
        """The listener name followers reach leaders through: inter.broker.listener.name, else
        PLAINTEXT (Kafka's default, by security.inter.broker.protocol) or the first advertised one."""
        name = self.values["inter.broker.listener.name"]
        if name:
            return name.upper()
        names = [l.name for l in self.advertised_listeners]
        return "PLAINTEXT" if "PLAINTEXT" in names else next(iter(names), None)

    def replication_config(self) -> ReplicationConfig:
        """The replication settings: ReplicationConfig's fields are Kafka's keys, dots as underscores."""
        keys = {f.name: f.name.replace("_", ".") for f in fields(ReplicationConfig)}
        return ReplicationConfig(**{name: self.values[key] for name, key in keys.items() if key in self.values})

    @property
    def controller_listener(self) -> Listener | None:
        """The listener the controller serves (the first of controller.listener.names in listeners)."""
        by_name = {l.name: l for l in self.listeners}
        return next((by_name[n.upper()] for n in self.values["controller.listener.names"] if n.upper() in by_name),
                    None)

    @property
    def voters(self) -> dict[int, Endpoint]:
        return parse_voters(",".join(self.values["controller.quorum.voters"]))

    @property
    def single_node(self) -> bool:
        """This node alone is the metadata quorum (no other voter, no bootstrap controller)."""
        return set(self.voters) <= {self.node_id} and not self.values["controller.quorum.bootstrap.servers"]

    def quorum_config(self, cluster_id: str | None) -> QuorumConfig:
        """The metadata quorum's configuration. With no voters configured this node is the only one
        (the single-node default): it votes for itself and needs no controller listener; where it
        has one, that is its endpoint (what DescribeQuorum shows)."""
        listener = self.controller_listener
        own = Endpoint(listener.host, listener.port) if listener is not None and listener.host else None
        voters = self.voters or {self.node_id: own}
        bootstrap = parse_bootstrap_servers(",".join(self.values["controller.quorum.bootstrap.servers"]))
        endpoints = {**{i: e for i, e in voters.items() if e is not None}, **bootstrap}
        return QuorumConfig(
            voters=frozenset(voters), endpoints=endpoints, bootstrap=tuple(bootstrap), cluster_id=cluster_id,
            election_timeout_ms=self.values["controller.quorum.election.timeout.ms"],
            fetch_timeout_ms=self.values["controller.quorum.fetch.timeout.ms"],
            election_backoff_max_ms=self.values["controller.quorum.election.backoff.max.ms"],
            request_timeout_ms=self.values["controller.quorum.request.timeout.ms"],
            listener_name=listener.name if listener is not None else "CONTROLLER")


def load_config(properties: Path | None = None, env: Mapping[str, str] | None = None,
                overrides: Iterable[str] = ()) -> BrokerConfig:
    """Read, merge and check the configuration; raise ConfigError (one line) on any problem."""
    raw: dict[str, str] = {}
    origin: dict[str, str] = {}  # key -> the environment variable that set it, named in errors
    if properties is not None:
        raw.update(read_properties(properties))
    for var, text in (os.environ if env is None else env).items():
        key = env_key(var)
        if key and var not in _NOT_CONFIG_ENV and not var.startswith(_NOT_CONFIG_ENV_PREFIX):
            raw[key], origin[key] = text, f" (from the environment variable {var})"
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override '{item}' is not key=value")
        raw[key.strip()] = text.strip()
        origin.pop(key.strip(), None)
    values = {k.name: k.default for k in BROKER_CONFIGS.values()}
    unused = []
    for key, text in raw.items():
        spec = BROKER_CONFIGS.get(key)
        if spec is None:
            if key in KNOWN_UNUSED or key.startswith(KNOWN_PREFIXES + USED_PREFIXES):
                if not key.startswith(USED_PREFIXES):
                    unused.append(key)
                values[key] = text
                continue
            raise ConfigError(f"unknown config key '{key}'{origin.get(key, '')}")
        try:
            values[key] = parse_value(spec, text)
        except ConfigError as e:
            raise ConfigError(f"{e}{origin.get(key, '')}") from None
        if not spec.used:
            unused.append(key)
    config = BrokerConfig(values, dict(raw), sorted(unused))
    _check(config)
    return config


def _check(config: BrokerConfig) -> None:
    """Checks that involve several keys."""
    listeners = config.listeners
    if not listeners:
        raise ConfigError("listeners must name at least one listener")
    names = {l.name for l in listeners}
    protos = config.security_protocols()
    for l in listeners:
        if l.name not in protos:
            raise ConfigError(f"listener {l.name} has no entry in listener.security.protocol.map")
        if l.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(f"listener {l.name}: unknown security protocol {l.security_protocol} in "
                              f"listener.security.protocol.map (one of {', '.join(SECURITY_PROTOCOLS)})")
    for l in config.advertised_listeners:
        if l.name not in names:
            raise ConfigError(f"advertised.listeners names {l.name}, which is not in listeners")
    if "broker" in config.roles and not config.broker_listener_names:
        raise ConfigError("a broker needs a listener that is not a controller listener")
    _check_quorum(config)
    broker_id = config["broker.id"]
    if broker_id not in (-1, config.node_id) and "broker.id" in config.explicit and "node.id" in config.explicit:
        raise ConfigError("broker.id and node.id differ; set only node.id")
    if broker_id != -1 and "node.id" not in config.explicit:
        config.values["node.id"] = broker_id


def _check_quorum(config: BrokerConfig) -> None:
    """KRaft's rules for process.roles, the voters and the controller listener (Kafka's wording)."""
    try:
        voters = config.voters
        parse_bootstrap_servers(",".join(config["controller.quorum.bootstrap.servers"]))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    node, listener = config.node_id, config.controller_listener
    voter_list = ",".join(config["controller.quorum.voters"])
    if "controller" in config.roles:
        if voters and node not in voters:
            raise ConfigError(f"If process.roles contains controller, the node id {node} must be included in the set "
                              f"of voters controller.quorum.voters={voter_list}")
        if not config.single_node and listener is None:
            raise ConfigError("controller.listener.names must contain at least one value appearing in the 'listeners' "
                              "configuration when running the KRaft controller role")
    else:
        if node in voters:
            raise ConfigError(f"If process.roles contains just the 'broker' role, the node id {node} must not be "
                              f"included in the set of voters controller.quorum.voters={voter_list}")
        if not voters and not config["controller.quorum.bootstrap.servers"]:
            raise ConfigError("If using process.roles, either controller.quorum.bootstrap.servers must contain the set "
                              "of bootstrap controllers or controller.quorum.voters must contain a parseable set of "
                              "controllers.")
        if listener is not None:
            raise ConfigError("controller.listener.names must not contain a value appearing in the 'listeners' "
                              "configuration when running KRaft with just the broker role")
