"""Raw wire probes for the differential suite: the same requests, built with kafka-compat's own
codecs, sent to kafka-compat and to Apache Kafka; each probe reduces the answers to flat
{field: value} dicts with everything that legitimately differs between two clusters (ids, ports,
times) left out, so that any difference left is a difference of behaviour.

A probe is a function `probe(peer) -> dict` over a `Peer`: a bootstrap address and a topic made the
same way on both brokers. `differences(ours, theirs)` names every field that differs.
"""

from __future__ import annotations

import socket
import struct
import time
import uuid
from dataclasses import dataclass

from kafka_compat.client import BrokerConnection, split_address
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import Record, build_batch

PROBES: dict[str, tuple] = {}  # name -> (function, the request class whose common version it uses)
TOPIC_RESOURCE, BROKER_RESOURCE = 2, 4
SOURCES = {1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
           4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
           7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}


@dataclass
class Peer:
    name: str
    bootstrap: str
    broker_id: str
    topic: str  # 2 partitions, 3 records in partition 0, retention.ms=3600000, created by the fixture

    def connect(self) -> BrokerConnection:
        return BrokerConnection.to(self.bootstrap, client_id="differential", timeout=10.0)

    def ask(self, request, version: int | None = None):
        with self.connect() as conn:
            return conn.request(request, version)

    def version(self, cls) -> int:
        with self.connect() as conn:
            return conn.version_for(cls)


def probe(api=None):
    """Register a probe; with `api`, it is called with the highest version of that request both
    brokers serve (so that a difference is never just a version one of them lacks)."""
    def register(fn):
        PROBES[fn.__name__.removeprefix("probe_").replace("_", "-")] = (fn, api)
        return fn
    return register


def error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"error {code}"


def differences(ours: dict, theirs: dict) -> dict[str, tuple]:
    """{field: (ours, theirs)} for every field whose value differs or that only one side has."""
    missing = object()
    out = {}
    for k in sorted(set(ours) | set(theirs)):
        a, b = ours.get(k, missing), theirs.get(k, missing)
        if a != b:
            out[k] = (None if a is missing else a, None if b is missing else b)
    return out


def run(name: str, ours: Peer, theirs: Peer) -> dict:
    """Run probe `name` on both brokers: {field: (ours, theirs)} for each field that differs."""
    fn, api = PROBES[name]
    version = min(ours.version(api), theirs.version(api)) if api is not None else None
    a, b = fn(ours, version), fn(theirs, version)
    if name == "api-versions":
        return {k: v for k, v in api_versions_differences(a, b).items() if v}
    if name.startswith("describe-configs-") and name != "describe-configs-unknown":
        # config names only one side lists: one field each, the list of names
        only = {"names-only-kafka-compat-lists": sorted(set(a) - set(b)),
                "names-only-apache-kafka-lists": sorted(set(b) - set(a))}
        common = set(a) & set(b)
        return {**{k: v for k, v in only.items() if v},
                **differences({k: a[k] for k in common}, {k: b[k] for k in common})}
    return differences(a, b)


# -- ApiVersions -----------------------------------------------------------------------------------

def _api_name(key: int) -> str:
    try:
        return "".join(w.capitalize() for w in m.ApiKey(key).name.split("_"))
    except ValueError:
        return f"ApiKey{key}"


@probe()
def probe_api_versions(peer: Peer, version=None) -> dict:
    """The API keys served, and the version range of each (as one field: "Name min-max, ...")."""
    resp = peer.ask(m.ApiVersionsRequest(client_software_name="differential", client_software_version="1"), 3)
    return {"served": sorted(_api_name(k.api_key) for k in resp.api_keys),
            "ranges": {_api_name(k.api_key): f"{k.min_version}-{k.max_version}" for k in resp.api_keys}}


def api_versions_differences(ours: dict, theirs: dict) -> dict:
    """ApiVersions' difference in words: the APIs only one side serves, the ranges that differ."""
    only_theirs = sorted(set(theirs["served"]) - set(ours["served"]))
    only_ours = sorted(set(ours["served"]) - set(theirs["served"]))
    both = set(ours["ranges"]) & set(theirs["ranges"])
    ranges = sorted(f"{k} {ours['ranges'][k]} vs {theirs['ranges'][k]}" for k in both
                    if ours["ranges"][k] != theirs["ranges"][k])
    return {"not-served": only_theirs, "only-ours": only_ours, "ranges": ranges}


@probe()
def probe_api_versions_unknown_version(peer: Peer, version=None) -> dict:
    """ApiVersions at a version from the future (a flexible header, as a newer client sends it): a
    v0 answer, UNSUPPORTED_VERSION and the API list, so that the client can retry."""
    with peer.connect() as conn:
        frame = struct.pack(">hhih", m.ApiKey.API_VERSIONS, 99, 7, -1) + b"\x00"  # no tagged fields
        conn.sock.sendall(framing.SIZE.pack(len(frame)) + frame)
        try:
            cid, resp = conn.receive(m.ApiKey.API_VERSIONS, 0)
        except ConnectionError:
            return {"answer": "connection closed"}
    return {"answer": "v0", "correlation_id": cid, "error": error_name(resp.error_code),
            "lists_apis": bool(resp.api_keys)}


def _closed_after(peer: Peer, frame: bytes) -> dict:
    """What the broker does with a raw frame: answers, or closes the connection."""
    with socket.create_connection(split_address(peer.bootstrap), timeout=10) as s:
        s.sendall(frame)
        try:
            data = s.recv(1 << 16)
        except TimeoutError:
            return {"answer": "none within 10 s"}
        except ConnectionResetError:
            data = b""
    return {"answer": "connection closed" if not data else f"{len(data)} bytes"}


@probe()
def probe_unsupported_request_version(peer: Peer, version=None) -> dict:
    """Metadata at version 99: Kafka cannot parse it and closes the connection."""
    frame = struct.pack(">hhih", m.ApiKey.METADATA, 99, 1, -1) + b"\x00" * 8
    return _closed_after(peer, framing.SIZE.pack(len(frame)) + frame)


@probe()
def probe_malformed_frame(peer: Peer, version=None) -> dict:
    """A Metadata v1 request whose topic array claims 3 entries and holds none."""
    frame = struct.pack(">hhih", m.ApiKey.METADATA, 1, 5, -1) + struct.pack(">i", 3)
    return _closed_after(peer, framing.SIZE.pack(len(frame)) + frame)


@probe()
def probe_unknown_api_key(peer: Peer, version=None) -> dict:
    frame = struct.pack(">hhih", 999, 0, 1, -1)
    return _closed_after(peer, framing.SIZE.pack(len(frame)) + frame)


# -- topics, metadata ------------------------------------------------------------------------------

@probe(m.MetadataRequest)
def probe_metadata_topics(peer: Peer, version: int) -> dict:
    T = m.MetadataRequest.MetadataRequestTopic
    out = {}
    cases = (("ours", T(name=peer.topic)), ("unknown", T(name="no-such-topic-here")), ("bad-name", T(name="bad/name")),
             ("unknown-id", T(topic_id=Uuid(uuid.uuid4().bytes), name=None)))
    for case, topic in cases:
        [t] = peer.ask(m.MetadataRequest(topics=[topic], allow_auto_topic_creation=False), version).topics
        out[f"{case}.error"] = error_name(t.error_code)
        out[f"{case}.name"] = t.name if case != "ours" else "ours"
        out[f"{case}.partitions"] = [(p.partition_index, error_name(p.error_code), len(p.replica_nodes),
                                      len(p.isr_nodes)) for p in t.partitions]
        out[f"{case}.internal"] = t.is_internal
    return out


def _create(peer: Peer, version: int, **topic) -> dict:
    C = m.CreateTopicsRequest
    configs = [C.CreatableTopicConfig(name=k, value=v) for k, v in topic.pop("configs", {}).items()]
    req = C(timeout_ms=10_000, validate_only=True, topics=[C.CreatableTopic(
        name=topic.pop("name", f"diff-{uuid.uuid4().hex[:8]}"), num_partitions=topic.pop("partitions", 1),
        replication_factor=topic.pop("rf", 1), assignments=[], configs=configs)])
    [t] = peer.ask(req, version).topics
    return {"error": error_name(t.error_code), "message": t.error_message}


@probe(m.CreateTopicsRequest)
def probe_create_topics_refusals(peer: Peer, version: int) -> dict:
    out = {}
    cases = {"rf-too-high": {"rf": 3}, "bad-name": {"name": "bad/name"}, "too-long-name": {"name": "x" * 250},
             "unknown-config": {"configs": {"no.such.config": "1"}}, "bad-value": {"configs": {"retention.ms": "abc"}},
             "zero-partitions": {"partitions": 0}, "exists": {"name": peer.topic},
             "bad-policy": {"configs": {"cleanup.policy": "forever"}}}
    for case, topic in cases.items():
        for k, v in _create(peer, version, **topic).items():
            out[f"{case}.{k}"] = v
    return out


# -- configs ---------------------------------------------------------------------------------------

def _describe_configs(peer: Peer, version: int, rtype: int, name: str) -> m.DescribeConfigsResponse:
    D = m.DescribeConfigsRequest
    return peer.ask(D(resources=[D.DescribeConfigsResource(resource_type=rtype, resource_name=name)],
                      include_synonyms=True, include_documentation=False), version).results[0]


def _config_entries(result, local=()) -> dict:
    out = {}
    for c in result.configs:
        if c.name in local:  # set differently on the two brokers: only what does not follow from the value
            out[c.name] = (c.read_only, c.is_sensitive, c.config_type)
            continue
        out[c.name] = (c.value, SOURCES.get(c.config_source, c.config_source), c.read_only, c.is_sensitive,
                       c.config_type, c.documentation, [(s.name, s.value, SOURCES.get(s.source)) for s in c.synonyms])
    return out


@probe(m.DescribeConfigsRequest)
def probe_describe_configs_topic(peer: Peer, version: int) -> dict:
    """Every config of a topic with one override: value, source, read-only, sensitive, type, doc, synonyms."""
    return _config_entries(_describe_configs(peer, version, TOPIC_RESOURCE, peer.topic))


# Broker settings that name this very broker, or that the two test brokers are given differently
# (Apache Kafka's replication factors and partition count for one node: peers/apache_kafka.py).
_BROKER_LOCAL = {"advertised.listeners", "listeners", "log.dirs", "node.id", "broker.id", "process.roles",
                 "controller.quorum.voters", "controller.listener.names", "inter.broker.listener.name",
                 "listener.security.protocol.map", "log.dir", "num.partitions", "offsets.topic.replication.factor",
                 "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
                 "share.coordinator.state.topic.replication.factor"}


@probe(m.DescribeConfigsRequest)
def probe_describe_configs_broker(peer: Peer, version: int) -> dict:
    """Every broker config both brokers list (kafka-compat lists the settings it implements); the
    names Kafka lists beyond those count as one field."""
    result = _describe_configs(peer, version, BROKER_RESOURCE, peer.broker_id)
    return _config_entries(result, local=_BROKER_LOCAL)


@probe(m.DescribeConfigsRequest)
def probe_describe_configs_unknown(peer: Peer, version: int) -> dict:
    out = {}
    for label, rtype, name in (("topic", TOPIC_RESOURCE, "no-such-topic-here"), ("broker", BROKER_RESOURCE, "7"),
                               ("resource-type", 99, "x")):
        r = _describe_configs(peer, version, rtype, name)
        out[f"{label}.error"] = error_name(r.error_code)
        out[f"{label}.message"] = r.error_message
    return out


@probe(m.IncrementalAlterConfigsRequest)
def probe_incremental_alter_configs(peer: Peer, version: int) -> dict:
    I = m.IncrementalAlterConfigsRequest
    cases = {"unknown-topic": ("no-such-topic-here", [("retention.ms", 0, "1")]),
             "unknown-key": (peer.topic, [("no.such.config", 0, "1")]),
             "bad-value": (peer.topic, [("retention.ms", 0, "abc")]),
             "append-non-list": (peer.topic, [("retention.ms", 2, "1")]),
             "duplicate-key": (peer.topic, [("retention.ms", 0, "1"), ("retention.ms", 1, None)]),
             "ok": (peer.topic, [("retention.ms", 0, "3600000")])}
    out = {}
    for case, (name, ops) in cases.items():
        req = I(validate_only=True, resources=[I.AlterConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=name,
                configs=[I.AlterableConfig(name=k, config_operation=op, value=v) for k, op, v in ops])])
        [r] = peer.ask(req, version).responses
        out[f"{case}.error"] = error_name(r.error_code)
        out[f"{case}.message"] = r.error_message
    return out


# -- produce, fetch, offsets -----------------------------------------------------------------------

def _produce(peer: Peer, version: int, topic: str, partition: int, records: bytes, acks: int = -1) -> dict:
    P = m.ProduceRequest
    req = P(acks=acks, timeout_ms=10_000, topic_data=[P.TopicProduceData(name=topic, partition_data=[
        P.PartitionProduceData(index=partition, records=records)])])
    [t] = peer.ask(req, version).responses
    [p] = t.partition_responses
    return {"error": error_name(p.error_code), "message": p.error_message,
            "record_errors": [(e.batch_index, e.batch_index_error_message) for e in p.record_errors]}


def _batch(value: bytes = b"v", n: int = 1) -> bytes:
    return bytes(build_batch([Record(key=b"k", value=value, timestamp=1_700_000_000_000, offset=i) for i in range(n)]))


@probe(m.ProduceRequest)
def probe_produce_refusals(peer: Peer, version: int) -> dict:
    out = {}
    corrupt = bytearray(_batch())
    corrupt[-1] ^= 0xFF  # flips a byte the CRC covers
    future = bytes(build_batch([Record(key=b"k", value=b"v", timestamp=2 ** 42, offset=0)]))
    cases = {"unknown-topic": ("no-such-topic-here", 0, _batch()), "unknown-partition": (peer.topic, 99, _batch()),
             "oversized": (peer.topic, 1, _batch(b"x" * 1_100_000)), "corrupt-crc": (peer.topic, 1, bytes(corrupt)),
             "far-future-timestamp": (peer.topic, 1, future), "invalid-acks": (peer.topic, 1, _batch())}
    for case, (topic, partition, data) in cases.items():
        acks = 2 if case == "invalid-acks" else -1
        for k, v in _produce(peer, version, topic, partition, data, acks).items():
            out[f"{case}.{k}"] = v
    return out


@probe(m.FetchRequest)
def probe_fetch_out_of_range(peer: Peer, version: int) -> dict:
    F = m.FetchRequest
    tid = next(t.topic_id for t in peer.ask(m.MetadataRequest(topics=None), 12).topics if t.name == peer.topic)
    out = {}
    for case, offset in (("past-end", 1000), ("negative", -5), ("at-end", 3)):
        req = F(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0, topics=[F.FetchTopic(
            topic=peer.topic, topic_id=tid, partitions=[F.FetchPartition(partition=0, fetch_offset=offset,
                                                                          partition_max_bytes=1 << 20)])])
        resp = peer.ask(req, version)
        [t] = resp.responses
        [p] = t.partitions
        out[f"{case}.error"] = error_name(p.error_code)
        out[f"{case}.high_watermark"] = p.high_watermark
        out[f"{case}.log_start"] = p.log_start_offset
        out[f"{case}.bytes"] = len(p.records or b"")
    return out


@probe(m.ListOffsetsRequest)
def probe_list_offsets(peer: Peer, version: int) -> dict:
    L = m.ListOffsetsRequest
    cases = {"earliest": -2, "latest": -1, "max-timestamp": -3, "before-all": 0, "after-all": 2 ** 42}
    out = {}
    for case, ts in cases.items():
        req = L(replica_id=-1, isolation_level=0, topics=[L.ListOffsetsTopic(name=peer.topic, partitions=[
            L.ListOffsetsPartition(partition_index=0, timestamp=ts)])])
        [t] = peer.ask(req, version).topics
        [p] = t.partitions
        out[case] = (error_name(p.error_code), p.offset, p.timestamp if case != "max-timestamp" else "-")
    req = L(replica_id=-1, topics=[L.ListOffsetsTopic(name="no-such-topic-here", partitions=[
        L.ListOffsetsPartition(partition_index=0, timestamp=-1)])])
    out["unknown-topic"] = error_name(peer.ask(req, version).topics[0].partitions[0].error_code)
    return out


@probe(m.DeleteRecordsRequest)
def probe_delete_records(peer: Peer, version: int) -> dict:
    D = m.DeleteRecordsRequest
    out = {}
    for case, partition, offset in (("past-high-watermark", 1, 50), ("unknown-partition", 9, 0)):
        req = D(timeout_ms=10_000, topics=[D.DeleteRecordsTopic(name=peer.topic, partitions=[
            D.DeleteRecordsPartition(partition_index=partition, offset=offset)])])
        [t] = peer.ask(req, version).topics
        out[case] = error_name(t.partitions[0].error_code)
    return out


# -- groups, producers -----------------------------------------------------------------------------

def _wait_for_coordinator(conn: BrokerConnection, group: str, timeout: float = 30.0) -> None:
    """Until the group's coordinator (this single node) has loaded its `__consumer_offsets`
    partition: a fresh Apache Kafka creates the topic on the first FindCoordinator."""
    O = m.OffsetFetchRequest
    deadline = time.monotonic() + timeout
    while True:
        conn.request(m.FindCoordinatorRequest(key=group, key_type=0),
                     min(conn.version_for(m.FindCoordinatorRequest), 3))
        resp = conn.request(O(group_id=group, topics=[]), min(conn.version_for(O), 7))
        if resp.error_code not in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
                                   ErrorCode.COORDINATOR_NOT_AVAILABLE):
            return
        assert time.monotonic() < deadline, f"no coordinator for {group} within {timeout}s"
        time.sleep(0.1)


@probe()
def probe_groups(peer: Peer, version=None) -> dict:
    out = {}
    with peer.connect() as conn:
        g = f"diff-{uuid.uuid4().hex[:8]}"
        _wait_for_coordinator(conn, g)
        J = m.JoinGroupRequest
        jv = min(conn.version_for(J), 9)
        protocols = [J.JoinGroupRequestProtocol(name="range", metadata=b"")]
        join = conn.request(J(group_id=g, session_timeout_ms=10, rebalance_timeout_ms=1000, member_id="",
                              protocol_type="consumer", protocols=protocols), jv)
        out["join.tiny-session-timeout"] = error_name(join.error_code)
        D = m.DescribeGroupsRequest
        [d] = conn.request(D(groups=[g]), conn.version_for(D)).groups
        out["describe.unknown"] = (error_name(d.error_code), d.group_state,
                                   d.error_message and d.error_message.replace(g, "<group>"))
        O = m.OffsetFetchRequest
        ov = min(conn.version_for(O), 7)
        topics = [O.OffsetFetchRequestTopic(name=peer.topic, partition_indexes=[0])]
        resp = conn.request(O(group_id=g, topics=topics), ov)
        out["offset-fetch.unknown-group"] = (error_name(resp.error_code),
                                             [(p.committed_offset, error_name(p.error_code)) for t in resp.topics
                                              for p in t.partitions])
        H = m.HeartbeatRequest
        hb = conn.request(H(group_id=g, generation_id=1, member_id="nobody"), conn.version_for(H))
        out["heartbeat.unknown"] = error_name(hb.error_code)
        L = m.LeaveGroupRequest
        lv = conn.version_for(L)
        leave = conn.request(L(group_id=g, members=[L.MemberIdentity(member_id="nobody")]), lv)
        out["leave.unknown"] = (error_name(leave.error_code), [error_name(x.error_code) for x in leave.members])
        DG = m.DeleteGroupsRequest
        [dg] = conn.request(DG(groups_names=[g]), conn.version_for(DG)).results
        out["delete.unknown"] = (error_name(dg.error_code), dg.error_message)
    return out


@probe(m.InitProducerIdRequest)
def probe_init_producer_id(peer: Peer, version: int) -> dict:
    I = m.InitProducerIdRequest
    out = {}
    for case, txn in (("idempotent", None), ("transactional", f"diff-{uuid.uuid4().hex[:8]}")):
        for _ in range(50):  # a fresh Apache Kafka loads its producer id state first
            r = peer.ask(I(transactional_id=txn, transaction_timeout_ms=60_000, producer_id=-1, producer_epoch=-1),
                         version)
            if r.error_code != ErrorCode.COORDINATOR_LOAD_IN_PROGRESS:
                break
            time.sleep(0.1)
        out[case] = (error_name(r.error_code), r.producer_id >= 0, r.producer_epoch)
    return out

