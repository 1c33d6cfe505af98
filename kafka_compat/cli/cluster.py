"""`kafka-compat cluster info`: what a cluster says about itself (DescribeCluster where the
brokers serve it, else Metadata). `kafka-compat cluster up`: a local multi-node cluster of
combined broker+controller processes on 127.0.0.1, for development."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import typer

from kafka_compat.cli.admin import BROKERS, connect, table
from kafka_compat.client import error_code
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import KafkaError

app = typer.Typer(help="Inspect the cluster.", no_args_is_help=True)


@app.command()
def info(brokers: str = BROKERS) -> None:
    """Cluster id, controller, brokers (endpoints and racks) and topic count."""
    with connect(brokers) as cluster:
        meta = cluster.metadata(None)
        cluster_id, controller = meta.cluster_id, meta.controller_id
        nodes = [(n.node_id, n.host, n.port, n.rack) for n in meta.nodes.values()]
        if cluster.supports(m.DescribeClusterRequest):
            resp = cluster.request(m.DescribeClusterRequest())
            if resp.error_code:
                raise KafkaError(error_code(resp.error_code), resp.error_message or "DescribeCluster")
            cluster_id, controller = resp.cluster_id, resp.controller_id
            nodes = [(b.broker_id, b.host, b.port, b.rack) for b in resp.brokers]
    internal = sum(t.internal for t in meta.topics.values())
    typer.echo("CLUSTER")
    table(["id", "controller", "brokers", "topics"],
          [[cluster_id or "-", controller, len(nodes), f"{len(meta.topics) - internal} (+{internal} internal)"]])
    typer.echo("\nBROKERS")
    table(["id", "host", "port", "rack"],
          [[f"{i}*" if i == controller else i, host, port, rack or "-"] for i, host, port, rack in sorted(nodes)])


@app.command()
def up(
    nodes: int = typer.Option(3, "--nodes", "-n", min=1, help="How many broker+controller nodes."),
    data_dir: Path = typer.Option(Path("cluster-data"), "--dir", "-d",
                                  help="Each node's data and log under DIR/node-<id>."),
    port: int = typer.Option(9092, "--port", "-p",
                             help="Node i listens for clients on PORT+2(i-1) and for the quorum on the next port."),
    override: list[str] | None = typer.Option(None, "--override", "-o", help="key=value for every node. Repeatable."),
) -> None:
    """Start a local cluster (one process per node, sharing a Raft metadata quorum); Ctrl-C stops it.
    Data directories are kept, so the same command starts the same cluster again. Topics get
    min(3, N) replicas and, from three nodes on, min.insync.replicas=2 (--override changes them)."""
    from kafka_compat.storage.meta_properties import read_meta_properties
    from kafka_compat.testing.cluster_process import COMBINED, ClusterProcess

    settings = replication_defaults(nodes)
    for item in override or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not key=value", param_hint="--override")
        settings[key] = value
    existing = read_meta_properties(data_dir / "node-1" / "data")
    ports = {i: (port + 2 * (i - 1), port + 2 * (i - 1) + 1) for i in range(1, nodes + 1)}
    for i, pair in ports.items():  # before any node starts: a taken port would answer for a node
        for p, what in zip(pair, ("clients", "controller")):
            if not _port_free(p):
                typer.echo(f"error: port {p} (node {i}, {what}) is already in use; stop what holds it or choose "
                           "another --port", err=True)
                raise typer.Exit(2)
    cluster = ClusterProcess(data_dir, roles={i: COMBINED for i in ports}, overrides=settings, ports=ports,
                             cluster_id=existing["cluster.id"] if existing else None, log_format="console")
    typer.echo(f"Starting {nodes} nodes of cluster {cluster.cluster_id} under {data_dir}/ ...")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops every node, as Ctrl-C does
    try:
        try:
            cluster.start(timeout=120)
        except RuntimeError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(1) from None
        for n in cluster.nodes.values():
            typer.echo(f"  node {n.id}: clients 127.0.0.1:{n.broker_port}, controller 127.0.0.1:{n.controller_port}, "
                       f"log {n.log_path}")
        typer.echo(f"Bootstrap servers: {cluster.bootstrap}")
        typer.echo("Ctrl-C stops the cluster.", err=True)
        while True:
            time.sleep(0.5)
            for n in cluster.nodes.values():
                if n.proc is not None and n.proc.poll() is not None and not getattr(n, "reported", False):
                    n.reported = True
                    typer.echo(f"node {n.id} exited with {n.proc.returncode}; see {n.log_path}", err=True)
    except KeyboardInterrupt:
        typer.echo("Stopping ...", err=True)
        cluster.stop()
    finally:
        cluster.close()


def replication_defaults(nodes: int) -> dict[str, str]:
    """What Kafka's multi-node examples set: min(3, N) replicas for every topic, internal ones
    included, and from three nodes on, acks=all answered once two replicas have a record (so one
    node may fail without losing it or stopping writes)."""
    rf = str(min(3, nodes))
    defaults = {"default.replication.factor": rf, "offsets.topic.replication.factor": rf,
                "transaction.state.log.replication.factor": rf}
    if nodes >= 3:
        defaults["min.insync.replicas"] = "2"
    return defaults


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
