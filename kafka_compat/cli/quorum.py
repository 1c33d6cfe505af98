"""`kafka-compat quorum describe`: the metadata quorum as its leader reports it (DescribeQuorum, which
any broker forwards to the leader), in the shape of Kafka's `kafka-metadata-quorum describe`."""

from __future__ import annotations

import time

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, fail
from kafka_compat.cli.output import OUTPUT, Format, Section, show
from kafka_compat.client import error_code
from kafka_compat.protocol import messages as m
from kafka_compat.raft import wire

app = typer.Typer(help="Inspect the metadata quorum.", no_args_is_help=True)


@app.command()
def describe(
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    status: bool = typer.Option(False, "--status", help="Only the summary (leader, epoch, high watermark, lags)."),
    replication: bool = typer.Option(False, "--replication", help="Only the table of voters and observers."),
    output: Format = OUTPUT,
) -> None:
    """Leader, epoch, high watermark, and each voter's and observer's log end offset and lag."""
    with connect(brokers, command_config) as cluster:
        cluster_id = cluster.metadata([]).cluster_id
        resp = cluster.request(wire.describe_quorum_request(), version=cluster.version(m.DescribeQuorumRequest))
    if resp.error_code:
        fail(f"DescribeQuorum: {error_code(resp.error_code).name} {resp.error_message or ''}".rstrip())
    p = resp.topics[0].partitions[0]
    if p.error_code:
        fail(f"DescribeQuorum: {error_code(p.error_code).name} (leader {p.leader_id}, epoch {p.leader_epoch})")
    sections = []
    if not replication or status:
        sections.append(summary(cluster_id, p))
    if not status or replication:
        sections.append(replicas(p, as_text=output == Format.text))
    show(output, *sections)


def summary(cluster_id: str | None, p) -> Section:
    """kafka-metadata-quorum's --status: the leader, its epoch and high watermark, how far the
    followers lag (records, and ms since each was last caught up), the voters and observers."""
    now = int(time.time() * 1000)
    followers = [v for v in p.current_voters if v.replica_id != p.leader_id]
    lags = [p.high_watermark - v.log_end_offset for v in followers]
    caught_up = [now - v.last_caught_up_timestamp for v in followers if v.last_caught_up_timestamp >= 0]
    fields = {"ClusterId": cluster_id, "LeaderId": p.leader_id, "LeaderEpoch": p.leader_epoch,
              "HighWatermark": p.high_watermark, "MaxFollowerLag": max(lags, default=0),
              "MaxFollowerLagTimeMs": max(caught_up, default=0),
              "CurrentVoters": [v.replica_id for v in p.current_voters],
              "CurrentObservers": [o.replica_id for o in p.observers]}
    return Section(None, list(fields), [list(fields.values())], one=True, fields=True, key="status")


def replicas(p, *, as_text: bool) -> Section:
    """kafka-metadata-quorum's --replication: each voter's and observer's log end offset, lag and
    last fetch; times read as 'N ms ago' in text and are timestamps (ms) in JSON."""
    now = int(time.time() * 1000)

    def when(t: int):
        if t < 0:
            return None
        return f"{max(now - t, 0)} ms ago" if as_text else t

    rows = [[r.replica_id, r.log_end_offset, max(p.high_watermark - r.log_end_offset, 0),
             when(r.last_fetch_timestamp), when(r.last_caught_up_timestamp),
             "Leader" if r.replica_id == p.leader_id else kind]
            for kind, group in (("Voter", p.current_voters), ("Observer", p.observers)) for r in group]
    return Section(None, ["NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp", "Status"],
                   rows, key="replication")
