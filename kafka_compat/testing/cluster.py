"""`KafkaCluster`: a kafka-compat cluster that an application's tests start in one line.

    from kafka_compat.testing import KafkaCluster

    with KafkaCluster() as cluster:                      # one node, in this process
        cluster.create_topic("orders", partitions=3)
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers})

`nodes` broker+controller nodes share a Raft metadata quorum, on free ports of 127.0.0.1, with
their data in a temporary directory that `stop()` removes (a `data_dir` given is kept, and a
cluster started on it again is the same cluster, with its topics and records). Two modes:

- `thread` (the default): the nodes run in a background thread of this process, each a `Broker`
  on its own trio loop's nursery; ready in a fraction of a second.
- `process`: each node is a `kafka-compat start` process (its log in `<data_dir>/node-<id>/broker.log`),
  isolated from the tests' process: crashes, signals and the GIL stay apart.

Either way clients connect over real sockets to `bootstrap_servers`. `config` sets broker keys
(Kafka's names, as in server.properties) on every node; the test defaults are those of Kafka's
own test harness (no initial rebalance delay, 5 `__consumer_offsets` partitions). Several nodes
replicate as Kafka's multi-node examples do: topics, `__consumer_offsets` included, get min(3, N)
replicas, and from three nodes on `min.insync.replicas` is 2, so a test may stop or kill any one
node and lose no acknowledged record, committed offset or consumer group (`config` changes them). The topic
helpers go over the wire (CreateTopics, DeleteTopics) and return once every broker's metadata
agrees, so a client created next sees the topic at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from kafka_compat.client import BrokerUnreachable, Cluster, error_code
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.storage.meta_properties import read_meta_properties
from kafka_compat.testing.broker_process import TEST_DEFAULTS, free_port
from kafka_compat.testing.cluster_process import COMBINED, ClusterProcess, node_settings

MODES = ("thread", "process")
TIMEOUT_MS = 30_000


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def replicated_defaults(nodes: int) -> dict[str, str]:
    """min(3, N) replicas for every topic, internal ones included, and from three nodes on acks=all
    answered once two replicas have a record: one node may fail without losing it or stopping writes."""
    rf = str(min(3, nodes))
    defaults = {"default.replication.factor": rf, "offsets.topic.replication.factor": rf,
                "transaction.state.log.replication.factor": rf}
    if nodes >= 3:
        defaults["min.insync.replicas"] = "2"
    return defaults


class KafkaCluster:
    """`nodes` nodes (broker and controller each) in `mode` "thread" or "process"; `config`: broker
    keys for every node; `data_dir`: where the nodes keep their data (default: a temporary
    directory, removed on stop); `start_timeout`: seconds for every node to be ready."""

    def __init__(self, nodes: int = 1, *, mode: str = "thread", config: Mapping[str, object] | None = None,
                 data_dir: str | os.PathLike | None = None, start_timeout: float = 60.0):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use 'thread' or 'process'")
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, not {nodes}")
        self.nodes, self.mode, self.start_timeout = nodes, mode, start_timeout
        given = {k: _text(v) for k, v in (config or {}).items()}
        self.config = {**TEST_DEFAULTS, **replicated_defaults(nodes), **given}
        self._own_dir = data_dir is None
        self.data_dir: Path | None = None if data_dir is None else Path(data_dir)
        self.cluster_id: str | None = None
        self._runner = None  # InProcessNodes or ClusterProcess while running
        self._bootstrap: str | None = None

    # -- running -----------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        """host:port[,host:port...] of every broker: `bootstrap.servers` for any Kafka client."""
        if self._bootstrap is None:
            raise RuntimeError("the cluster is not running: call start() or use it in a with block")
        return self._bootstrap

    @property
    def metrics_urls(self) -> list[str]:
        """`http://127.0.0.1:<port>` of each node's HTTP endpoint (/metrics, /health/live,
        /health/ready), for a cluster in threads started with `metrics.port` set (0: any free port)."""
        if self.mode != "thread" or self._runner is None:
            raise RuntimeError("metrics_urls: only for a running cluster in threads")
        return [f"http://127.0.0.1:{b.listening['metrics']}" for b in self._runner.brokers if "metrics" in b.listening]

    @property
    def running(self) -> bool:
        return self._runner is not None

    def start(self) -> KafkaCluster:
        """Start every node and return once all are ready (a no-op if already running)."""
        if self._runner is not None:
            return self
        from kafka_compat.server.config import load_config

        load_config(env={}, overrides=[f"{k}={v}" for k, v in self.config.items()])  # a bad key: one line, now
        if self._own_dir:
            self.data_dir = Path(tempfile.mkdtemp(prefix="kafka-compat-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        formatted = read_meta_properties(self.data_dir / "node-1" / "data")  # a kept data_dir: the same cluster
        self.cluster_id = formatted["cluster.id"] if formatted else str(Uuid.random())
        try:
            self._runner, self._bootstrap = (self._threads() if self.mode == "thread" else self._processes())
        except BaseException:
            self._remove_data()
            raise
        return self

    def _threads(self):
        from kafka_compat.server.config import load_config
        from kafka_compat.testing.in_process import InProcessNodes

        # One node is a one-voter quorum with its controller in process; more need controller
        # listeners at ports known before any starts (the voters); brokers take any free port.
        controller_ports = {i: free_port() for i in range(1, self.nodes + 1)} if self.nodes > 1 else {}
        quorum = {"controller.quorum.voters": ",".join(f"{i}@127.0.0.1:{p}" for i, p in controller_ports.items())}
        configs = []
        for i in range(1, self.nodes + 1):
            settings = {**node_settings(i, COMBINED, 0, controller_ports.get(i)), **quorum,
                        "log.dirs": str(self.data_dir / f"node-{i}" / "data"), **self.config}
            configs.append(load_config(env={}, overrides=[f"{k}={v}" for k, v in settings.items()]))
        nodes = InProcessNodes(configs, self.cluster_id).start(self.start_timeout)
        return nodes, ",".join(f"127.0.0.1:{b.listening['PLAINTEXT']}" for b in nodes.brokers)

    def _processes(self):
        cluster = ClusterProcess(self.data_dir, self.nodes, overrides=self.config, cluster_id=self.cluster_id)
        try:
            cluster.start(self.start_timeout)
        except BaseException:
            cluster.close()
            raise
        return cluster, cluster.bootstrap

    def stop(self) -> None:
        """Stop every node gracefully and remove the temporary data; raise if a node failed."""
        runner, self._runner, self._bootstrap = self._runner, None, None
        if runner is None:
            return
        try:
            if isinstance(runner, ClusterProcess):
                codes = runner.stop()
                runner.close()
                failed = {i: c for i, c in codes.items() if c != 0}
                if failed:
                    node = runner[min(failed)]
                    raise RuntimeError(f"node {node.id} exited with {failed[node.id]}:\n{node.tail()}")
            else:
                runner.stop()
        finally:
            self._remove_data()

    def _remove_data(self) -> None:
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> KafkaCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self._bootstrap or "stopped"
        return f"KafkaCluster(nodes={self.nodes}, mode={self.mode!r}, {where})"

    # -- topics ------------------------------------------------------------------------------

    def admin(self) -> Cluster:
        """A wire client (`kafka_compat.client.Cluster`) connected to this cluster; close it after use."""
        return Cluster(self.bootstrap_servers, client_id="kafka-cluster-fixture")

    def create_topic(self, name: str, partitions: int | None = None, *, replication_factor: int | None = None,
                     config: Mapping[str, object] | None = None, timeout: float = 30.0) -> str:
        """Create a topic (CreateTopics; the broker's num.partitions and default.replication.factor
        where not given) and return its name once every broker knows a leader for each partition.
        Raises KafkaError (TOPIC_ALREADY_EXISTS, INVALID_CONFIG, ...) if the cluster refuses it."""
        C = m.CreateTopicsRequest
        configs = [C.CreatableTopicConfig(name=k, value=_text(v)) for k, v in (config or {}).items()]
        with self.admin() as admin:
            resp = admin.request(C(timeout_ms=TIMEOUT_MS, validate_only=False, topics=[C.CreatableTopic(
                name=name, num_partitions=-1 if partitions is None else partitions,
                replication_factor=-1 if replication_factor is None else replication_factor, configs=configs)]))
            (t,) = resp.topics
            if t.error_code:
                raise KafkaError(error_code(t.error_code), t.error_message or f"creating topic {name!r}")
            self._wait_for_brokers(
                admin, name, lambda topic: topic is not None and len(topic.partitions) == t.num_partitions
                and all(p.leader_id >= 0 for p in topic.partitions), timeout,
                f"topic {name!r} to have a leader for each partition on every broker")
        return name

    def delete_topic(self, name: str, *, timeout: float = 30.0) -> None:
        """Delete a topic (DeleteTopics) and return once no broker lists it."""
        D = m.DeleteTopicsRequest
        with self.admin() as admin:
            resp = admin.request(D(timeout_ms=TIMEOUT_MS, topics=[D.DeleteTopicState(name=name)]))
            (r,) = resp.responses
            if r.error_code:
                raise KafkaError(error_code(r.error_code), r.error_message or f"deleting topic {name!r}")
            self._wait_for_brokers(admin, name, lambda topic: topic is None, timeout, f"topic {name!r} to be gone")

    def topics(self) -> list[str]:
        """The names of the topics, internal ones (`__consumer_offsets`) left out."""
        with self.admin() as admin:
            return sorted(t.name for t in admin.metadata(None).topics.values() if not t.internal)

    @staticmethod
    def _wait_for_brokers(admin: Cluster, name: str, done, timeout: float, what: str) -> None:
        """Until `done(topic metadata or None)` holds on every broker."""
        deadline = time.monotonic() + timeout
        M = m.MetadataRequest
        while True:
            views = []
            for node in sorted(admin.metadata([]).nodes):
                try:
                    resp = admin.request(M(topics=[M.MetadataRequestTopic(name=name)],
                                           allow_auto_topic_creation=False), node)
                except BrokerUnreachable:
                    views.append(False)
                    continue
                found = [t for t in resp.topics if t.name == name and t.error_code == ErrorCode.NONE]
                views.append(done(found[0] if found else None))
            if all(views):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.02)
