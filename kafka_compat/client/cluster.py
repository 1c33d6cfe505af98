"""A whole cluster from a bootstrap list, over blocking connections (`BrokerConnection`).

`Cluster` learns brokers and partition leaders from Metadata, sends Produce, Fetch and ListOffsets
to each partition's leader (retrying after a metadata refresh when leadership moved), admin
requests to any broker, and group offset requests to the group's coordinator. Failures surface as
`KafkaError` (a Kafka error code, by name), `BrokerUnreachable` or `UnsupportedApi`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kafka_compat.client.blocking import BrokerConnection, BrokerUnreachable, UnsupportedApi, error_code, split_address
from kafka_compat.client.security import ClientSecurity
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message, Uuid

EARLIEST = -2  # ListOffsets timestamps that mean "log start" and "high watermark"
LATEST = -1


@dataclass(frozen=True)
class Node:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True)
class PartitionMeta:
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int]
    offline: list[int]
    error: ErrorCode


@dataclass(frozen=True)
class TopicMeta:
    name: str
    topic_id: Uuid
    internal: bool
    partitions: dict[int, PartitionMeta]
    error: ErrorCode


@dataclass(frozen=True)
class ClusterMeta:
    cluster_id: str | None
    controller_id: int
    nodes: dict[int, Node]
    topics: dict[str, TopicMeta]


def _cluster_meta(resp: m.MetadataResponse) -> ClusterMeta:
    nodes = {b.node_id: Node(b.node_id, b.host, b.port, b.rack) for b in resp.brokers}
    topics = {}
    for t in resp.topics:
        parts = {p.partition_index: PartitionMeta(p.partition_index, p.leader_id, p.leader_epoch, list(p.replica_nodes),
                                                  list(p.isr_nodes), list(p.offline_replicas), error_code(p.error_code))
                 for p in t.partitions}
        topics[t.name] = TopicMeta(t.name, t.topic_id, t.is_internal, dict(sorted(parts.items())),
                                   error_code(t.error_code))
    return ClusterMeta(resp.cluster_id, resp.controller_id, nodes, topics)


# Partition errors that mean "ask the (new) leader": refresh metadata and send again. Nothing was
# written or read, so resending is safe.
LEADER_MOVED = frozenset({
    ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.UNKNOWN_LEADER_EPOCH, ErrorCode.REPLICA_NOT_AVAILABLE,
})
COORDINATOR_MOVED = frozenset({ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE,
                               ErrorCode.COORDINATOR_LOAD_IN_PROGRESS})


class Cluster:
    """Connections to the brokers of one cluster, opened on first use and kept until `close()`.

    `bootstrap` is a comma-separated list of host:port; the first that answers is used to learn
    the rest. Leader-routed calls retry `retries` times, with exponential back-off from `backoff`
    seconds, then raise the last error.
    """

    def __init__(self, bootstrap: str, *, client_id: str = "kafka-compat", timeout: float = 30.0,
                 retries: int = 6, backoff: float = 0.05, security: ClientSecurity | None = None):
        self.bootstrap = [split_address(a) for a in bootstrap.split(",") if a.strip()]
        if not self.bootstrap:
            raise ValueError("no broker addresses given")
        self.client_id, self.timeout, self.retries, self.backoff = client_id, timeout, retries, backoff
        self.security = security  # TLS and SASL on every connection (`--command-config`)
        self.nodes: dict[int, Node] = {}
        self.topics: dict[str, TopicMeta] = {}
        self._conns: dict[int | None, BrokerConnection] = {}  # None: the bootstrap connection
        self._coordinators: dict[str, int] = {}

    # connections

    def _open(self, host: str, port: int) -> BrokerConnection:
        return BrokerConnection(host, port, client_id=self.client_id, timeout=self.timeout, security=self.security)

    def connection(self, node_id: int | None = None) -> BrokerConnection:
        """A connection to broker `node_id`, or to any broker for None."""
        if node_id is None and self._conns:
            return next(iter(self._conns.values()))
        if node_id in self._conns:
            return self._conns[node_id]
        if node_id is None:
            errors = []
            for host, port in self.bootstrap:
                try:
                    conn = self._conns[None] = self._open(host, port)
                    return conn
                except BrokerUnreachable as e:
                    errors.append(e)
            if len(errors) == 1:
                raise errors[0]
            raise BrokerUnreachable("cannot connect to any bootstrap broker: " + "; ".join(map(str, errors)))
        if node_id not in self.nodes:
            self.metadata([])
        node = self.nodes.get(node_id)
        if node is None:
            raise BrokerUnreachable(f"broker {node_id} is not in the cluster's metadata")
        conn = self._conns[node_id] = self._open(node.host, node.port)
        return conn

    def _drop(self, conn: BrokerConnection) -> None:
        for key, c in list(self._conns.items()):
            if c is conn:
                del self._conns[key]
        conn.close()

    @contextmanager
    def _using(self, conn: BrokerConnection) -> Iterator[BrokerConnection]:
        """Drop `conn` if what is done with it breaks off: a connection that failed, timed out or
        was interrupted mid-request is in an unknown state. The next call reconnects."""
        try:
            yield conn
        except UnsupportedApi:
            raise
        except BaseException:
            self._drop(conn)
            raise

    def request(self, msg: Message, node_id: int | None = None, version: int | None = None) -> Message:
        """Send `msg` to broker `node_id` (any broker for None) and return the response. Failures
        are raised, not retried: admin requests may have taken effect."""
        with self._using(self.connection(node_id)) as conn:
            return conn.request(msg, version)

    def version(self, cls: type[Message], node_id: int | None = None) -> int:
        with self._using(self.connection(node_id)) as conn:
            return conn.version_for(cls)

    def supports(self, cls: type[Message]) -> bool:
        try:
            self.version(cls)
            return True
        except UnsupportedApi:
            return False

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _sleep(self, attempt: int) -> None:
        time.sleep(min(self.backoff * 2 ** attempt, 2.0))

    # metadata

    def metadata(self, topics: list[str] | None = None, *, auto_create: bool = False) -> ClusterMeta:
        """Metadata for `topics` (all topics for None, none for []); updates the cached brokers
        and topics."""
        version = self.version(m.MetadataRequest)
        wanted = None if topics is None else [m.MetadataRequest.MetadataRequestTopic(name=t) for t in topics]
        if wanted is None and version == 0:
            wanted = []  # v0 spells "all topics" as an empty list
        req = m.MetadataRequest(topics=wanted)
        if version >= 4:  # before v4 the broker's setting alone decides
            req.allow_auto_topic_creation = auto_create
        resp = self.request(req, version=version)
        meta = _cluster_meta(resp)
        self.nodes = meta.nodes
        self.topics.update(meta.topics)
        return meta

    def topic(self, name: str, *, refresh: bool = False, auto_create: bool = False) -> TopicMeta:
        """A topic's metadata; waits out LEADER_NOT_AVAILABLE (a topic being created), raises
        KafkaError for other topic errors."""
        for attempt in range(self.retries + 1):
            if refresh or attempt or name not in self.topics:
                self.metadata([name], auto_create=auto_create)
            t = self.topics.get(name)
            code = t.error if t else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if code == ErrorCode.NONE:
                return t
            if code != ErrorCode.LEADER_NOT_AVAILABLE or attempt == self.retries:
                self.topics.pop(name, None)
                raise KafkaError(code, f"topic {name!r}")
            self._sleep(attempt)
        raise AssertionError("unreachable")

    # leader-routed data requests

    def _routed(self, topic: str, items: dict[int, object],
                send: Callable[[int, dict], dict[int, object]]) -> dict[int, object]:
        """Group `items` (partition -> request part) by leader, call `send(leader, part_items)` for
        each leader, and resend the partitions whose answer has a LEADER_MOVED error after a
        metadata refresh. Returns partition -> answer (whose error_code the caller checks)."""
        answers: dict[int, object] = {}
        pending = dict(items)
        for attempt in range(self.retries + 1):
            retry: dict[int, object] = {}
            by_leader: dict[int, dict] = {}
            last: Exception = KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"topic {topic!r}")
            try:
                meta = self.topic(topic, refresh=attempt > 0)
            except BrokerUnreachable as e:
                retry, last = dict(pending), e
            else:
                for p, item in pending.items():
                    if p not in meta.partitions:
                        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"topic {topic!r} has no partition {p}")
                    by_leader.setdefault(meta.partitions[p].leader, {})[p] = item
            for leader, part_items in by_leader.items():
                if leader < 0:
                    retry.update(part_items)
                    continue
                try:
                    got = send(leader, part_items)
                except BrokerUnreachable as e:
                    retry.update(part_items)
                    last = e
                    continue
                for p, answer in got.items():
                    code = error_code(answer.error_code)
                    if code in LEADER_MOVED:
                        retry[p] = part_items[p]
                        last = KafkaError(code, f"{topic}[{p}]")
                    else:
                        answers[p] = answer
            if not retry:
                return answers
            if attempt == self.retries:
                raise last
            pending = retry
            self._sleep(attempt)
        raise AssertionError("unreachable")

    def produce(self, topic: str, batches: dict[int, bytes], *, acks: int = -1,
                timeout_ms: int = 30_000) -> dict[int, m.ProduceResponse.PartitionProduceResponse]:
        """Send one record batch per partition; returns each partition's answer (none for acks=0)."""
        P = m.ProduceRequest

        def send(leader: int, parts: dict[int, bytes]) -> dict:
            req = P(acks=acks, timeout_ms=timeout_ms, topic_data=[P.TopicProduceData(
                name=topic, partition_data=[P.PartitionProduceData(index=p, records=b) for p, b in parts.items()])])
            if acks == 0:  # the broker sends no response
                with self._using(self.connection(leader)) as conn:
                    conn.send(req, conn.version_for(P))
                return {}
            resp = self.request(req, leader)
            return {r.index: r for t in resp.responses for r in t.partition_responses}

        return self._routed(topic, batches, send)

    def fetch(self, topic: str, offsets: dict[int, int], *, max_wait_ms: int = 500, min_bytes: int = 1,
              partition_max_bytes: int = 1 << 20) -> dict[int, m.FetchResponse.PartitionData]:
        """Fetch from each partition's offset (read_uncommitted); returns each partition's answer."""
        F = m.FetchRequest

        def send(leader: int, parts: dict[int, int]) -> dict:
            version = self.version(F, leader)
            # v13+ names topics by id only.
            ident = dict(topic_id=self.topics[topic].topic_id) if version >= 13 else dict(topic=topic)
            # No fetch session (epoch -1), read_uncommitted, the response's size capped per partition.
            req = F(max_wait_ms=max_wait_ms, min_bytes=min_bytes, topics=[F.FetchTopic(**ident, partitions=[
                        F.FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=partition_max_bytes)
                        for p, o in parts.items()])])
            resp = self.request(req, leader, version)
            if resp.error_code:
                raise KafkaError(error_code(resp.error_code), "fetch")
            return {p.partition_index: p for t in resp.responses for p in t.partitions}

        return self._routed(topic, offsets, send)

    def list_offsets(self, topic: str, timestamps: dict[int, int]) -> dict[int, int]:
        """Partition -> the first offset at or after each timestamp (EARLIEST, LATEST, or ms since
        the epoch; -1 when no record is that recent)."""
        L = m.ListOffsetsRequest

        def send(leader: int, parts: dict[int, int]) -> dict:
            # replica_id -1: a consumer, which sees offsets up to the high watermark.
            req = L(replica_id=-1, isolation_level=0, topics=[L.ListOffsetsTopic(name=topic, partitions=[
                L.ListOffsetsPartition(partition_index=p, timestamp=ts) for p, ts in parts.items()])])
            return {p.partition_index: p for t in self.request(req, leader).topics for p in t.partitions}

        out = {}
        for p, answer in self._routed(topic, timestamps, send).items():
            if answer.error_code:
                raise KafkaError(error_code(answer.error_code), f"listing offsets of {topic}[{p}]")
            out[p] = answer.offset
        return out

    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Partition -> (log start offset, high watermark)."""
        partitions = list(partitions)
        low = self.list_offsets(topic, {p: EARLIEST for p in partitions})
        high = self.list_offsets(topic, {p: LATEST for p in partitions})
        return {p: (low[p], high[p]) for p in partitions}

    # group offsets (a "simple" consumer: no membership, generation -1)

    def coordinator(self, group: str, *, refresh: bool = False) -> int:
        """The node id of `group`'s coordinator (FindCoordinator)."""
        if not refresh and group in self._coordinators:
            return self._coordinators[group]
        F = m.FindCoordinatorRequest
        for attempt in range(self.retries + 1):
            version = self.version(F)
            # v4+ batches keys; an encoder refuses a field the version lacks, so set one or the other.
            req = F(key_type=0, coordinator_keys=[group]) if version >= 4 else F(key=group)
            resp = self.request(req, version=version)
            c = resp.coordinators[0] if version >= 4 else resp
            code = error_code(c.error_code)
            if code == ErrorCode.NONE:
                self.nodes.setdefault(c.node_id, Node(c.node_id, c.host, c.port))
                self._coordinators[group] = c.node_id
                return c.node_id
            if code not in COORDINATOR_MOVED or attempt == self.retries:
                raise KafkaError(code, c.error_message or f"finding the coordinator of group {group!r}")
            self._sleep(attempt)
        raise AssertionError("unreachable")

    def _to_coordinator(self, group: str, call: Callable[[int], ErrorCode]) -> None:
        """Run `call(coordinator)` (which returns an error code, NONE when done), finding the
        coordinator again while it moves."""
        for attempt in range(self.retries + 1):
            code = call(self.coordinator(group, refresh=attempt > 0))
            if code not in COORDINATOR_MOVED:
                return
            self._sleep(attempt)
        raise KafkaError(code, f"group {group!r}")

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int]:
        """Partition -> committed offset, for the partitions that have one (OffsetFetch)."""
        O = m.OffsetFetchRequest
        partitions = list(partitions)
        out: dict[int, int] = {}

        def call(node: int) -> ErrorCode:
            version = self.version(O, node)
            if version >= 8:
                req = O(groups=[O.OffsetFetchRequestGroup(group_id=group, topics=[
                    O.OffsetFetchRequestTopics(name=topic, partition_indexes=partitions)])])
            else:
                req = O(group_id=group, topics=[O.OffsetFetchRequestTopic(name=topic, partition_indexes=partitions)])
            resp = self.request(req, node, version)
            answer = resp.groups[0] if version >= 8 else resp
            code = error_code(answer.error_code)
            for t in answer.topics:
                for p in t.partitions:
                    if p.error_code:
                        code = error_code(p.error_code)
                    elif p.committed_offset >= 0:
                        out[p.partition_index] = p.committed_offset
            if code not in (ErrorCode.NONE, *COORDINATOR_MOVED):
                raise KafkaError(code, f"fetching the offsets of group {group!r}")
            return code

        self._to_coordinator(group, call)
        return out

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        """Commit offsets for `group` as a simple consumer (OffsetCommit, generation -1)."""
        C = m.OffsetCommitRequest

        def call(node: int) -> ErrorCode:
            req = C(group_id=group, generation_id_or_member_epoch=-1, member_id="", topics=[C.OffsetCommitRequestTopic(
                name=topic, partitions=[C.OffsetCommitRequestPartition(partition_index=p, committed_offset=o)
                                        for p, o in offsets.items()])])
            codes = {error_code(p.error_code) for t in self.request(req, node).topics for p in t.partitions}
            code = next((c for c in codes if c != ErrorCode.NONE), ErrorCode.NONE)
            if code not in (ErrorCode.NONE, *COORDINATOR_MOVED):
                raise KafkaError(code, f"committing offsets for group {group!r}")
            return code

        self._to_coordinator(group, call)


    def group_offsets(self, group: str) -> dict[tuple[str, int], int]:
        """(topic, partition) -> committed offset, for every partition `group` has committed
        (OffsetFetch with null topics, v2+)."""
        O = m.OffsetFetchRequest
        out: dict[tuple[str, int], int] = {}

        def call(node: int) -> ErrorCode:
            version = self.version(O, node)
            if version < 2:
                raise UnsupportedApi("OffsetFetch for all of a group's topics needs v2 or later")
            req = O(groups=[O.OffsetFetchRequestGroup(group_id=group, topics=None)]) if version >= 8 \
                else O(group_id=group, topics=None)
            resp = self.request(req, node, version)
            answer = resp.groups[0] if version >= 8 else resp
            code = error_code(answer.error_code)
            if code == ErrorCode.NONE:
                out.update({(t.name, p.partition_index): p.committed_offset for t in answer.topics
                            for p in t.partitions if not p.error_code and p.committed_offset >= 0})
            elif code not in COORDINATOR_MOVED:
                raise KafkaError(code, f"fetching the offsets of group {group!r}")
            return code

        self._to_coordinator(group, call)
        return out

    # group administration

    def list_groups(self) -> tuple[list[m.ListGroupsResponse.ListedGroup], list[str]]:
        """Every group of the cluster: ListGroups to each broker, which lists those it coordinates;
        and what could not be listed, a line each: brokers that failed to answer, and
        `__consumer_offsets` partitions without a leader (their groups have no coordinator now)."""
        groups, missed = [], []
        meta = self.metadata(["__consumer_offsets"])
        for node in sorted(meta.nodes):
            try:
                resp = self.request(m.ListGroupsRequest(), node)
            except BrokerUnreachable as e:
                missed.append(f"broker {node}: {e}")
                continue
            if resp.error_code:
                missed.append(f"broker {node}: {error_code(resp.error_code).name}")
            groups += resp.groups
        offsets = meta.topics.get("__consumer_offsets")
        leaderless = sorted(p for p, s in offsets.partitions.items() if s.leader < 0) if offsets else []
        if leaderless:
            missed.append(f"__consumer_offsets partitions {','.join(map(str, leaderless))}: "
                          f"{ErrorCode.LEADER_NOT_AVAILABLE.name}")
        return sorted(groups, key=lambda g: g.group_id), missed

    def _group_answer(self, group: str, request: Message, pick: Callable[[Message], Message], what: str,
                      also: ErrorCode = ErrorCode.NONE) -> Message:
        """Send `request` to `group`'s coordinator (again while it moves) and return the part of
        the response that `pick` selects, whose error code must be NONE (or `also`)."""
        found = []

        def call(node: int) -> ErrorCode:
            part = pick(self.request(request, node))
            code = error_code(part.error_code)
            if code in (ErrorCode.NONE, also):
                found.append(part)
            elif code not in COORDINATOR_MOVED:
                raise KafkaError(code, getattr(part, "error_message", None) or f"{what} group {group!r}")
            return code

        self._to_coordinator(group, call)
        return found[0]

    def describe_group(self, group: str) -> m.DescribeGroupsResponse.DescribedGroup:
        """A classic group's state and members (DescribeGroups); unknown groups and KIP-848 consumer
        groups answer Dead (from v6 with GROUP_ID_NOT_FOUND)."""
        return self._group_answer(group, m.DescribeGroupsRequest(groups=[group]), lambda r: r.groups[0], "describing",
                                  also=ErrorCode.GROUP_ID_NOT_FOUND)

    def describe_consumer_group(self, group: str) -> m.ConsumerGroupDescribeResponse.DescribedGroup:
        """A KIP-848 consumer group's members and assignments (ConsumerGroupDescribe)."""
        return self._group_answer(group, m.ConsumerGroupDescribeRequest(group_ids=[group]), lambda r: r.groups[0],
                                  "describing")

    def delete_group(self, group: str) -> None:
        """Delete an empty group and its offsets (DeleteGroups)."""
        self._group_answer(group, m.DeleteGroupsRequest(groups_names=[group]), lambda r: r.results[0], "deleting")

    # replica administration (AlterPartitionReassignments, ListPartitionReassignments, ElectLeaders):
    # the controller's business, forwarded there by whichever broker gets them.

    def reassign(self, moves: dict[tuple[str, int], list[int] | None], *,
                 timeout_ms: int = 30_000) -> dict[tuple[str, int], KafkaError | None]:
        """Start moving each (topic, partition) to its replica list, or cancel its move for None;
        returns each partition's error (None: accepted)."""
        A = m.AlterPartitionReassignmentsRequest
        by_topic: dict[str, list] = {}
        for (topic, p), replicas in moves.items():
            by_topic.setdefault(topic, []).append(A.ReassignablePartition(partition_index=p, replicas=replicas))
        resp = self.request(A(timeout_ms=timeout_ms, topics=[A.ReassignableTopic(name=t, partitions=ps)
                                                             for t, ps in by_topic.items()]))
        if resp.error_code:
            raise KafkaError(error_code(resp.error_code), resp.error_message or "AlterPartitionReassignments")
        return {(t.name, p.partition_index): _error(p) for t in resp.responses for p in t.partitions}

    def reassignments(self, partitions: Iterable[tuple[str, int]] | None = None, *, timeout_ms: int = 30_000
                      ) -> dict[tuple[str, int], m.ListPartitionReassignmentsResponse.OngoingPartitionReassignment]:
        """The moves under way among `partitions` (every partition for None): (topic, partition) ->
        its replicas, adding_replicas and removing_replicas."""
        L = m.ListPartitionReassignmentsRequest
        topics = None if partitions is None else [L.ListPartitionReassignmentsTopics(name=t, partition_indexes=ps)
                                                  for t, ps in _by_topic(partitions).items()]
        resp = self.request(L(timeout_ms=timeout_ms, topics=topics))
        if resp.error_code:
            raise KafkaError(error_code(resp.error_code), resp.error_message or "ListPartitionReassignments")
        return {(t.name, p.partition_index): p for t in resp.topics for p in t.partitions}

    def elect_leaders(self, election_type: int, partitions: Iterable[tuple[str, int]] | None = None, *,
                      timeout_ms: int = 30_000) -> dict[tuple[str, int], KafkaError | None]:
        """Elect leaders (0: preferred, 1: unclean) of `partitions` (every partition for None);
        returns each partition's error (None: elected; ELECTION_NOT_NEEDED: it already had it)."""
        E = m.ElectLeadersRequest
        wanted = None if partitions is None else [E.TopicPartitions(topic=t, partitions=ps)
                                                  for t, ps in _by_topic(partitions).items()]
        version = self.version(E)
        if election_type and version < 1:
            raise UnsupportedApi(f"this broker's ElectLeaders (v{version}) has preferred elections only")
        resp = self.request(E(election_type=election_type, topic_partitions=wanted, timeout_ms=timeout_ms),
                            version=version)
        if resp.error_code:
            raise KafkaError(error_code(resp.error_code), "ElectLeaders")
        return {(r.topic, p.partition_id): _error(p) for r in resp.replica_election_results for p in r.partition_result}


def _error(part) -> KafkaError | None:
    """A response part's error, None for NONE."""
    return KafkaError(error_code(part.error_code), part.error_message) if part.error_code else None


def _by_topic(partitions: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for topic, p in partitions:
        out.setdefault(topic, []).append(p)
    return out
