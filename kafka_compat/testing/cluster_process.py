"""A multi-node kafka-compat cluster as real `kafka-compat start` processes on 127.0.0.1, for
end-to-end tests, the election benchmark and `kafka-compat cluster up`.

Node i (1..N) is a `BrokerProcess` with `node.id=i` and the roles it is given (combined
`broker,controller` by default): a controller listens on `CONTROLLER://127.0.0.1:<port>` and is
a voter in `controller.quorum.voters`; a broker listens on `PLAINTEXT://127.0.0.1:<port>`. All
nodes share one cluster id; `__consumer_offsets` gets min(3, brokers) replicas, as Kafka's
multi-node examples give it. The nodes start together (a quorum needs a majority before any broker
can register) and `close()` kills whatever is still running.

The queries here go over the wire with the project's own client: DescribeQuorum on a broker
(forwarded to the leader), DescribeQuorum on a controller listener (its own Raft view), and
Metadata plus ApiVersions (the image's offset) for comparing what nodes know.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.raft import wire
from kafka_compat.testing.broker_process import BrokerProcess, free_port
from kafka_compat.testing.waiting import wait_until

COMBINED = "broker,controller"


def node_settings(node_id: int, roles: str, broker_port: int | None, controller_port: int | None) -> dict[str, str]:
    """The keys that make node `node_id` one node of a cluster on 127.0.0.1: its id and roles, a
    PLAINTEXT listener for a broker (port 0: any free port) and a CONTROLLER listener for a voter."""
    listeners = []
    if broker_port is not None:
        listeners.append(f"PLAINTEXT://127.0.0.1:{broker_port}")
    if controller_port is not None:
        listeners.append(f"CONTROLLER://127.0.0.1:{controller_port}")
    return {
        "node.id": str(node_id), "process.roles": roles, "listeners": ",".join(listeners),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}" if broker_port is not None else "",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    }


class ClusterNode(BrokerProcess):
    def __init__(self, node_id: int, roles: str, data_dir: Path, broker_port: int | None, controller_port: int | None,
                 overrides: dict[str, str], cluster_id: str, log_format: str):
        self.id = node_id
        self.roles = roles
        self.broker_port, self.controller_port = broker_port, controller_port
        settings = {**node_settings(node_id, roles, broker_port, controller_port), **overrides}
        # A controller-only node answers ApiVersions on its controller listener: that is its port.
        super().__init__(data_dir, broker_port or controller_port, settings, cluster_id=cluster_id,
                         log_format=log_format)

    @property
    def is_broker(self) -> bool:
        return "broker" in self.roles


class ClusterProcess:
    """`nodes` combined nodes, or the roles given per node id (`{1: "controller", 2: "broker"}`).
    `ports`: fixed broker/controller ports as {node id: (broker port, controller port)};
    `node_overrides`: settings of single nodes ({1: {"broker.rack": "a"}}), over `overrides`."""

    def __init__(self, base_dir: Path, nodes: int = 3, *, roles: dict[int, str] | None = None,
                 overrides: dict[str, str] | None = None, ports: dict[int, tuple[int, int]] | None = None,
                 cluster_id: str | None = None, log_format: str = "json",
                 node_overrides: dict[int, dict[str, str]] | None = None):
        roles = roles or {i: COMBINED for i in range(1, nodes + 1)}
        self.cluster_id = cluster_id or str(Uuid.random())
        ports = ports or {i: (free_port(), free_port()) for i in roles}
        controller_ports = {i: ports[i][1] for i, r in roles.items() if "controller" in r}
        voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in sorted(controller_ports.items()))
        brokers = sum("broker" in r for r in roles.values())
        common = {"controller.quorum.voters": voters, "offsets.topic.replication.factor": str(min(3, brokers)),
                  "transaction.state.log.replication.factor": str(min(3, brokers)),
                  "transaction.state.log.min.isr": str(min(2, brokers)), **(overrides or {})}
        self.nodes = {
            i: ClusterNode(i, r, Path(base_dir) / f"node-{i}", ports[i][0] if "broker" in r else None,
                           controller_ports.get(i), {**common, "log.dirs": str(Path(base_dir) / f"node-{i}" / "data"),
                                                     **(node_overrides or {}).get(i, {})},
                           self.cluster_id, log_format)
            for i, r in sorted(roles.items())}

    def __getitem__(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id]

    @property
    def brokers(self) -> list[ClusterNode]:
        return [n for n in self.nodes.values() if n.is_broker]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.brokers)

    def start(self, timeout: float = 60.0, on_ready: Callable[[ClusterNode], None] | None = None) -> ClusterProcess:
        """Launch every node, then wait for each to be ready (`on_ready(node)` as each is)."""
        for n in self.nodes.values():
            n.launch()
        for n in self.nodes.values():
            n.wait_ready(timeout)
            if on_ready is not None:
                on_ready(n)
        return self

    def stop(self, timeout: float = 15.0) -> dict[int, int]:
        """SIGTERM every node at once (one by one, the last ones would each wait for a quorum that
        is gone) and wait; returns the exit codes."""
        running = [n for n in self.nodes.values() if n.proc is not None and n.proc.poll() is None]
        for n in running:
            if n.paused:
                n.resume()
            n.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes = {}
        for n in self.nodes.values():
            if n.proc is None:
                continue
            try:
                codes[n.id] = n.proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                n.kill()
                codes[n.id] = n.proc.returncode
        return codes

    def close(self) -> None:
        for n in self.nodes.values():
            if n.paused:
                n.resume()
            n.kill()

    def __enter__(self) -> ClusterProcess:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    # -- asking the nodes --------------------------------------------------------------------

    @staticmethod
    def _ask(port: int, request, version: int | None = None, timeout: float = 5.0):
        with BrokerConnection("127.0.0.1", port, client_id="cluster-process", timeout=timeout) as conn:
            return conn.request(request, version)

    def describe_quorum(self, node_id: int, timeout: float = 5.0) -> m.DescribeQuorumResponse:
        """DescribeQuorum through node `node_id`'s broker listener (answered by the leader)."""
        return self._ask(self.nodes[node_id].broker_port, wire.describe_quorum_request(), 2, timeout)

    def raft_view(self, node_id: int, timeout: float = 2.0) -> tuple[int, int] | None:
        """(leader id, epoch) as node `node_id`'s own Raft replica sees them (DescribeQuorum on its
        controller listener), or None if it does not answer."""
        try:
            resp = self._ask(self.nodes[node_id].controller_port, wire.describe_quorum_request(), 2, timeout)
        except (BrokerUnreachable, OSError):
            return None
        p = resp.topics[0].partitions[0]
        return p.leader_id, p.leader_epoch

    def wait_for_leader(self, among=None, *, newer_than: int = 0, timeout: float = 30.0,
                        poll: float = 0.02) -> tuple[int, int]:
        """(leader id, epoch) once every live controller in `among` names the same leader in the
        same epoch, above `newer_than`."""
        ids, views = [], []

        def agreed():
            ids[:] = among if among is not None else [i for i, n in self.nodes.items()
                                                      if n.alive and n.controller_port is not None]
            views[:] = [self.raft_view(i, timeout=0.5) for i in ids]
            if all(views) and len(set(views)) == 1 and views[0][0] in self.nodes and views[0][1] > newer_than:
                return views[0]
            return None
        return wait_until(agreed, lambda: f"a leader newer than epoch {newer_than} agreed by {ids} (saw {views})",
                          timeout, poll)

    def metadata_view(self, node_id: int) -> dict:
        """What node `node_id`'s broker says about the cluster: live brokers, topics with their
        ids and partitions (leader, leader epoch, replicas, ISR), and its image's offset."""
        with BrokerConnection("127.0.0.1", self.nodes[node_id].broker_port, client_id="cluster-process") as conn:
            meta = conn.request(m.MetadataRequest(topics=None, allow_auto_topic_creation=False), 12)
            versions = conn.request(m.ApiVersionsRequest(client_software_name="cluster-process",
                                                         client_software_version="1"), 3)
        return {
            "brokers": sorted((b.node_id, b.host, b.port) for b in meta.brokers),
            "topics": {t.name: (str(t.topic_id),
                                {p.partition_index: (p.leader_id, p.leader_epoch, tuple(p.replica_nodes),
                                                     tuple(p.isr_nodes))
                                 for p in t.partitions})
                       for t in meta.topics if t.error_code == ErrorCode.NONE},
            "offset": versions.finalized_features_epoch,
        }

    def wait_for_same_metadata(self, ids=None, timeout: float = 20.0, poll: float = 0.1) -> dict:
        """The metadata view once every broker in `ids` (default: all live brokers) has the same."""
        ids_now, views = [], []

        def same():
            ids_now[:] = ids if ids is not None else [n.id for n in self.brokers if n.alive]
            try:
                views[:] = [self.metadata_view(i) for i in ids_now]
            except (BrokerUnreachable, OSError) as e:
                views[:] = [repr(e)]
                return None
            return views[0] if all(v == views[0] for v in views) else None
        return wait_until(same, lambda: f"the same metadata on brokers {ids_now} (saw {views})", timeout, poll)
