"""`kafka-compat quorum describe`: the metadata quorum as its leader reports it (DescribeQuorum, which
any broker forwards to the leader), in the shape of Kafka's `kafka-metadata-quorum describe`."""

from __future__ import annotations

import time

import typer

from kafka_compat.cli.admin import BROKERS, connect, fail, table
from kafka_compat.client import error_code
from kafka_compat.protocol import messages as m
from kafka_compat.raft import wire

app = typer.Typer(help="Inspect the metadata quorum.", no_args_is_help=True)


@app.command()
def describe(
    brokers: str = BROKERS,
    status: bool = typer.Option(False, "--status", help="Only the summary (leader, epoch, high watermark, lags)."),
    replication: bool = typer.Option(False, "--replication", help="Only the table of voters and observers."),
) -> None:
    """Leader, epoch, high watermark, and each voter's and observer's log end offset and lag."""
    with connect(brokers) as cluster:
        cluster_id = cluster.metadata([]).cluster_id
        resp = cluster.request(wire.describe_quorum_request(), version=cluster.version(m.DescribeQuorumRequest))
    if resp.error_code:
        fail(f"DescribeQuorum: {error_code(resp.error_code).name} {resp.error_message or ''}".rstrip())
    p = resp.topics[0].partitions[0]
    if p.error_code:
        fail(f"DescribeQuorum: {error_code(p.error_code).name} (leader {p.leader_id}, epoch {p.leader_epoch})")
    now = int(time.time() * 1000)
    followers = [v for v in p.current_voters if v.replica_id != p.leader_id]
    if not replication or status:
        lags = [p.high_watermark - v.log_end_offset for v in followers]
        caught_up = [now - v.last_caught_up_timestamp for v in followers if v.last_caught_up_timestamp >= 0]
        for key, value in [
            ("ClusterId", cluster_id), ("LeaderId", p.leader_id), ("LeaderEpoch", p.leader_epoch),
            ("HighWatermark", p.high_watermark), ("MaxFollowerLag", max(lags, default=0)),
            ("MaxFollowerLagTimeMs", max(caught_up, default=0)),
            ("CurrentVoters", "[" + ",".join(str(v.replica_id) for v in p.current_voters) + "]"),
            ("CurrentObservers", "[" + ",".join(str(o.replica_id) for o in p.observers) + "]"),
        ]:
            typer.echo(f"{key + ':':<24}{value}")
    if not status or replication:
        if not replication:
            typer.echo()

        def ago(t: int) -> str:
            return "-" if t < 0 else f"{max(now - t, 0)} ms ago"

        rows = [[r.replica_id, r.log_end_offset, max(p.high_watermark - r.log_end_offset, 0),
                 ago(r.last_fetch_timestamp), ago(r.last_caught_up_timestamp), kind]
                for kind, replicas in (("Voter", p.current_voters), ("Observer", p.observers)) for r in replicas]
        for row in rows:
            if row[0] == p.leader_id:
                row[5] = "Leader"
        table(["NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"], rows)
