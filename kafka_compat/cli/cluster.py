"""`kafka-compat cluster info`: what a cluster says about itself (DescribeCluster where the
brokers serve it, else Metadata)."""

from __future__ import annotations

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
