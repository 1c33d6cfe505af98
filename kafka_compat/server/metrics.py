"""What a node exposes at `/metrics`, under the names Kafka operators' dashboards already use.

The names are those Prometheus' JMX exporter gives Kafka's MBeans with its Kafka rules
(`kafka.server:type=BrokerTopicMetrics,name=MessagesInPerSec,topic=t` ->
`kafka_server_brokertopicmetrics_messagesin_total{topic="t"}`), those of KRaft's raft-metrics
(`kafka_server_raft_metrics_*`), and kafka-exporter's for consumer groups
(`kafka_consumergroup_lag{consumergroup,topic,partition}`).

Two kinds of sources, so that the request path pays next to nothing:

- counters kept in plain ints on the node's trio thread: per topic (`TopicCounts`: one attribute
  increment per partition batch in Produce and Fetch), per request type (`RequestMetrics.observe`:
  one call per response written, from the connection, with the timestamps it took anyway);
- everything else is read at scrape time from the state that already exists: the ReplicaManager's
  partitions, the logs, the quorum, the metadata image, the group coordinator's committed offsets.

Both are read by `NodeCollector.collect`, which runs on the node's own trio thread (the HTTP
endpoint, `server.health`, serves scrapes there), so it sees each structure between two awaits:
no locks anywhere. Each node has its own registry: several nodes share a test process.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from functools import partial
from typing import TYPE_CHECKING

import structlog
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from kafka_compat.protocol import messages

if TYPE_CHECKING:
    from kafka_compat.metadata.image import MetadataImage
    from kafka_compat.server.broker import Broker
    from kafka_compat.server.connection import _Slot

log = structlog.get_logger("kafka_compat.request")

# Kafka's request names (ApiKeys.name: "Produce", "OffsetCommit"), as RequestMetrics labels them.
REQUEST_NAMES = {k.value: messages.request_class(k.value).__name__.removesuffix("Request") for k in messages.ApiKey}
# Upper bounds (ms) of the request time histograms: sub-millisecond to a long poll.
BUCKETS_MS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
# RequestMetrics' time MBeans, in the order `RequestMetrics.observe` fills them.
TIMES = ("totaltimems", "requestqueuetimems", "localtimems", "remotetimems", "responsesendtimems")
# Requests the group coordinator parks inside their handler until a rebalance completes: their local
# time includes that wait, so they are never "slow" (Kafka counts it as remote time).
_PARKED_IN_HANDLER = frozenset({messages.ApiKey.JOIN_GROUP.value, messages.ApiKey.SYNC_GROUP.value})
_TIME_DOCS = ("from the request read to its response written", "waiting for the connection's request queue",
              "in its handler", "parked until it could complete (acks=all, long-poll fetch)",
              "from its response built to it written (behind earlier responses, then the socket)")


class TopicCounts:
    """BrokerTopicMetrics' counters of one topic."""

    __slots__ = ("messages_in", "bytes_in", "bytes_out", "produce_requests", "fetch_requests", "failed_produce",
                 "failed_fetch")

    def __init__(self):
        self.messages_in = self.bytes_in = self.bytes_out = 0
        self.produce_requests = self.fetch_requests = self.failed_produce = self.failed_fetch = 0

    def produced(self, messages: int, size: int) -> None:
        """A partition batch appended by Produce."""
        self.produce_requests += 1
        self.messages_in += messages
        self.bytes_in += size

    def produce_failed(self) -> None:
        self.produce_requests += 1
        self.failed_produce += 1

    def fetched(self, size: int, failed: bool) -> None:
        """A partition of a Fetch response."""
        self.fetch_requests += 1
        self.bytes_out += size
        self.failed_fetch += failed


class _Histogram:
    __slots__ = ("counts", "sum")

    def __init__(self):
        self.counts = [0] * (len(BUCKETS_MS) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, ms: float) -> None:
        self.counts[bisect_left(BUCKETS_MS, ms)] += 1
        self.sum += ms

    def family_buckets(self) -> list[tuple[str, int]]:
        out, total = [], 0
        for bound, n in zip((*BUCKETS_MS, float("inf")), self.counts):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(float(bound)), total))
        return out


class RequestMetrics:
    """Per request type: Kafka's RequestsPerSec (by version) and its five time histograms; and
    the request log (`request.logger.apis`, slow requests over `request.logger.slow.ms`)."""

    def __init__(self, logged_apis: frozenset[int] = frozenset(), slow_ms: int = -1):
        self.requests: dict[tuple[int, int], int] = defaultdict(int)  # (api key, version) -> count
        self.times: dict[int, tuple[_Histogram, ...]] = {}
        self.logged_apis = logged_apis
        self.slow_ms = slow_ms if slow_ms >= 0 else float("inf")

    def observe(self, slot: _Slot, written: float, peer: str) -> None:
        """One request's response was written (`written`: perf_counter seconds); `slot` has the
        times it was read, taken off the queue, answered by its handler and completed."""
        api = slot.api_key
        self.requests[(api, slot.api_version)] += 1
        total = (written - slot.started) * 1000
        queue = (slot.dequeued - slot.started) * 1000
        local = (slot.served - slot.dequeued) * 1000
        remote = (slot.completed - slot.served) * 1000
        send = (written - slot.completed) * 1000
        hs = self.times.get(api)
        if hs is None:
            hs = self.times[api] = tuple(_Histogram() for _ in TIMES)
        hs[0].observe(total)
        hs[1].observe(queue)
        hs[2].observe(local)
        hs[3].observe(remote)
        hs[4].observe(send)
        if api in self.logged_apis:
            emit = partial(log.info, "request")
        elif total - remote >= self.slow_ms and api not in _PARKED_IN_HANDLER:
            emit = partial(log.warning, "slow_request")
        else:
            return
        emit(api=REQUEST_NAMES.get(api, api), version=slot.api_version, total_ms=round(total, 3),
             queue_ms=round(queue, 3), local_ms=round(local, 3), remote_ms=round(remote, 3), send_ms=round(send, 3),
             peer=peer)


class NodeMetrics:
    """One node's counters and its Prometheus registry (`registry`, served at /metrics)."""

    def __init__(self, broker: Broker):
        config = broker.config
        names = {v.lower(): k for k, v in REQUEST_NAMES.items()}
        logged = frozenset(names[a.lower()] for a in config["request.logger.apis"])
        self.requests = RequestMetrics(logged, config["request.logger.slow.ms"])
        # Whether the connections report each request: for the endpoint, or for the request log.
        self.observing = config["metrics.port"] >= 0 or bool(logged) or config["request.logger.slow.ms"] >= 0
        self.topics: dict[str, TopicCounts] = {}
        self.connections: dict[str, int] = defaultdict(int)  # listener -> open connections
        self.connections_created: dict[str, int] = defaultdict(int)
        self.isr_shrinks = self.isr_expands = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(broker, self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._node_id = broker.node_id

    def topic(self, name: str) -> TopicCounts:
        counts = self.topics.get(name)
        if counts is None:
            counts = self.topics[name] = TopicCounts()
        return counts

    def follow_image(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """A metadata listener: counts ISR changes of the partitions this node leads (Kafka's
        IsrShrinksPerSec / IsrExpandsPerSec, counted by the leader), and drops the counters of
        topics that no longer exist (or never did: a produce to an unknown topic), as Kafka does."""
        if old is None or old.topics is new.topics:
            return
        for name in [t for t in self.topics if t not in new.topics]:
            del self.topics[name]
        me = self._node_id
        for name, topic in new.topics.items():
            before = old.topics.get(name)
            if before is None or before is topic:
                continue
            for index, p in topic.partitions.items():
                q = before.partitions.get(index)
                if q is None or q is p or p.leader != me or q.isr == p.isr:
                    continue
                if len(p.isr) < len(q.isr):
                    self.isr_shrinks += 1
                elif len(p.isr) > len(q.isr):
                    self.isr_expands += 1


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class NodeCollector:
    """Reads the node's state at scrape time (see the module docstring)."""

    def __init__(self, broker: Broker, metrics: NodeMetrics):
        self.broker = broker
        self.metrics = metrics

    def collect(self):
        b = self.broker
        yield from self._requests()
        yield from self._connections()
        yield from self._raft()
        if "controller" in b.config.roles:
            yield from self._controller()
        if b.is_broker:
            yield from self._topics()
            yield from self._replicas()
            yield from self._logs()
            yield from self._groups()
            yield from self._topic_offsets()

    def _requests(self):
        rm = self.metrics.requests
        requests = CounterMetricFamily("kafka_network_requestmetrics_requests",
                                       "Requests answered, by request type and version (Kafka's RequestsPerSec).",
                                       labels=["request", "version"])
        for (api, version), n in sorted(rm.requests.items()):
            requests.add_metric([REQUEST_NAMES.get(api, str(api)), str(version)], n)
        yield requests
        for i, (name, doc) in enumerate(zip(TIMES, _TIME_DOCS)):
            family = HistogramMetricFamily(f"kafka_network_requestmetrics_{name}",
                                           f"Milliseconds a request spent {doc}.", labels=["request"])
            for api, hs in sorted(rm.times.items()):
                family.add_metric([REQUEST_NAMES.get(api, str(api))], hs[i].family_buckets(), hs[i].sum)
            yield family

    def _connections(self):
        m = self.metrics
        count = GaugeMetricFamily("kafka_server_socket_server_metrics_connection_count",
                                  "Open connections, by listener.", labels=["listener"])
        created = CounterMetricFamily("kafka_server_socket_server_metrics_connection_creation",
                                      "Connections accepted, by listener.", labels=["listener"])
        for listener in sorted(m.connections_created):
            count.add_metric([listener], m.connections[listener])
            created.add_metric([listener], m.connections_created[listener])
        yield count
        yield created

    def _raft(self):
        q = self.broker.quorum
        node = q.driver.node
        state = node.role if node.is_voter or node.role == "leader" else "observer"
        prefix = "kafka_server_raft_metrics_"
        yield _gauge(prefix + "current_leader", "The quorum's leader as this node knows it (-1: none).", node.leader_id)
        yield _gauge(prefix + "current_epoch", "The quorum's epoch as this node knows it.", node.epoch)
        yield _gauge(prefix + "current_vote", "The voter this node voted for in the current epoch (-1: none).",
                     getattr(node.state, "voted_id", -1))
        yield _gauge(prefix + "high_watermark", "The metadata log's high watermark (committed up to here).",
                     node.high_watermark)
        yield _gauge(prefix + "log_end_offset", "The metadata log's end offset on this node.", node.log.end_offset)
        yield _gauge(prefix + "log_end_epoch", "The epoch of the metadata log's last batch.", node.log.last_epoch)
        states = GaugeMetricFamily(prefix + "current_state", "1 for this node's role in the quorum.",
                                   labels=["state"])
        for s in ("leader", "candidate", "prospective", "follower", "unattached", "resigned", "observer"):
            states.add_metric([s], 1 if s == state else 0)
        yield states
        yield _gauge("kafka_server_broker_metadata_metrics_last_applied_record_offset",
                     "The offset of the last metadata record applied to this node's image.", q.applied_offset)
        yield _gauge("kafka_server_raft_metrics_commit_lag",
                     "Committed metadata records not yet applied to this node's image.",
                     max(0, node.high_watermark - 1 - q.applied_offset))

    def _controller(self):
        """The active controller reports the cluster's figures, the others zero (as Kafka's
        controller metrics do, so that a sum over nodes counts each once)."""
        b = self.broker
        active = b.quorum.active
        image = b.metadata
        prefix = "kafka_controller_kafkacontroller_"
        offline = fenced = partitions = imbalance = 0
        if active:
            for topic in image.topics.values():
                for p in topic.partitions.values():
                    partitions += 1
                    offline += p.leader < 0
                    imbalance += p.leader >= 0 and p.leader != p.preferred_leader
            fenced = sum(1 for br in image.brokers.values() if br.fenced)
        yield _gauge(prefix + "activecontrollercount", "1 on the active controller.", int(active))
        yield _gauge(prefix + "offlinepartitionscount", "Partitions without a leader.", offline)
        yield _gauge(prefix + "fencedbrokercount", "Registered brokers the controller has fenced.", fenced)
        yield _gauge(prefix + "activebrokercount", "Registered brokers not fenced.",
                     len(image.brokers) - fenced if active else 0)
        yield _gauge(prefix + "globaltopiccount", "Topics in the cluster.", len(image.topics) if active else 0)
        yield _gauge(prefix + "globalpartitioncount", "Partitions in the cluster.", partitions)
        yield _gauge(prefix + "preferredreplicaimbalancecount", "Partitions not led by their preferred replica.",
                     imbalance)

    def _topics(self):
        prefix = "kafka_server_brokertopicmetrics_"
        fields = (("messagesin", "messages_in", "Records appended by Produce."),
                  ("bytesin", "bytes_in", "Bytes of record batches appended by Produce."),
                  ("bytesout", "bytes_out", "Bytes of records sent in Fetch responses."),
                  ("totalproducerequests", "produce_requests", "Partition batches in Produce requests."),
                  ("totalfetchrequests", "fetch_requests", "Partitions in Fetch responses."),
                  ("failedproducerequests", "failed_produce", "Partition batches Produce refused."),
                  ("failedfetchrequests", "failed_fetch", "Partitions answered with an error in Fetch responses."))
        topics = sorted(self.metrics.topics.items())
        for name, attr, doc in fields:
            family = CounterMetricFamily(prefix + name, doc + " By topic.", labels=["topic"])
            for topic, counts in topics:
                family.add_metric([topic], getattr(counts, attr))
            yield family

    def _replicas(self):
        b = self.broker
        image = b.metadata
        default_min_isr = b.config["min.insync.replicas"]
        count = leaders = under = under_min = at_min = 0
        for p in b.replicas:
            count += 1
            if p.leader != b.node_id:
                continue
            leaders += 1
            under += len(p.isr) < len(p.replicas)
            min_isr = int(image.topic_configs(p.topic).get("min.insync.replicas", default_min_isr))
            under_min += len(p.isr) < min_isr
            at_min += len(p.isr) == min_isr
        prefix = "kafka_server_replicamanager_"
        yield _gauge(prefix + "partitioncount", "Partition replicas on this broker.", count)
        yield _gauge(prefix + "leadercount", "Partitions this broker leads.", leaders)
        yield _gauge(prefix + "underreplicatedpartitions", "Led partitions whose ISR lacks some replica.", under)
        yield _gauge(prefix + "underminisrpartitions", "Led partitions whose ISR is below min.insync.replicas.",
                     under_min)
        yield _gauge(prefix + "atminisrpartitions", "Led partitions whose ISR is exactly min.insync.replicas.", at_min)
        yield CounterMetricFamily(prefix + "isrshrinks", "ISR shrinks of partitions this broker leads.",
                                  value=self.metrics.isr_shrinks)
        yield CounterMetricFamily(prefix + "isrexpands", "ISR expansions of partitions this broker leads.",
                                  value=self.metrics.isr_expands)

    def _logs(self):
        labels = ["topic", "partition"]
        size = GaugeMetricFamily("kafka_log_log_size", "Bytes of the partition's log on disk.", labels=labels)
        segments = GaugeMetricFamily("kafka_log_log_numlogsegments", "Segments of the partition's log.", labels=labels)
        start = GaugeMetricFamily("kafka_log_log_logstartoffset", "The partition log's start offset.", labels=labels)
        end = GaugeMetricFamily("kafka_log_log_logendoffset", "The partition log's end offset.", labels=labels)
        for p in self.broker.replicas:
            lg = p.log
            key = [p.topic, str(p.index)]
            size.add_metric(key, lg.size_in_bytes)
            segments.add_metric(key, len(lg.segments))
            start.add_metric(key, lg.log_start_offset)
            end.add_metric(key, lg.log_end_offset)
        yield from (size, segments, start, end)

    def _groups(self):
        """kafka-exporter's group families, for the groups this broker coordinates; lag where the
        partition has a replica here (its high watermark is what a consumer can reach)."""
        b = self.broker
        groups = b.groups
        offset_labels = ["consumergroup", "topic", "partition"]
        current = GaugeMetricFamily("kafka_consumergroup_current_offset", "The group's committed offset.",
                                    labels=offset_labels)
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "High watermark minus the group's committed offset.",
                                labels=offset_labels)
        current_sum = GaugeMetricFamily("kafka_consumergroup_current_offset_sum",
                                        "The group's committed offsets, summed over the topic's partitions.",
                                        labels=["consumergroup", "topic"])
        lag_sum = GaugeMetricFamily("kafka_consumergroup_lag_sum",
                                    "The group's lag, summed over the topic's partitions.",
                                    labels=["consumergroup", "topic"])
        members = GaugeMetricFamily("kafka_consumergroup_members", "Members of the group.", labels=["consumergroup"])
        shards = groups.machine.shards.values() if groups is not None else ()
        for shard in shards:
            for group_id, group in shard.groups.items():
                members.add_metric([group_id], len(group.members))
            committed = shard.committed
            for group_id in committed.groups():
                for topic, parts in committed.group(group_id).items():
                    offsets = lags = 0
                    for index, value in parts.items():
                        key = [group_id, topic, str(index)]
                        current.add_metric(key, value.offset)
                        offsets += value.offset
                        p = b.replicas.partitions.get((topic, index))
                        if p is not None:
                            lags += max(0, p.high_watermark - value.offset)
                            lag.add_metric(key, max(0, p.high_watermark - value.offset))
                    current_sum.add_metric([group_id, topic], offsets)
                    lag_sum.add_metric([group_id, topic], lags)
        yield from (current, lag, current_sum, lag_sum, members)

    def _topic_offsets(self):
        """kafka-exporter's topic families."""
        b = self.broker
        partitions = GaugeMetricFamily("kafka_topic_partitions", "Partitions of the topic.", labels=["topic"])
        for name, topic in sorted(b.metadata.topics.items()):
            partitions.add_metric([name], len(topic.partitions))
        newest = GaugeMetricFamily("kafka_topic_partition_current_offset",
                                   "The high watermark of partitions this broker leads.", labels=["topic", "partition"])
        oldest = GaugeMetricFamily("kafka_topic_partition_oldest_offset",
                                   "The log start offset of partitions this broker leads.",
                                   labels=["topic", "partition"])
        for p in b.replicas:
            if p.leader == b.node_id:
                newest.add_metric([p.topic, str(p.index)], p.high_watermark)
                oldest.add_metric([p.topic, str(p.index)], p.log.log_start_offset)
        yield from (partitions, newest, oldest)
