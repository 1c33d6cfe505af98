"""`kafka-compat txn ...`: list and describe transactions, abort a hanging one.

What `kafka-transactions.sh` does, over the wire: ListTransactions to every broker (each lists the
transactional ids it coordinates), DescribeTransactions at a transactional id's coordinator
(FindCoordinator with the transaction key type), and for `abort` DescribeProducers at a
partition's leader to find the open transaction, then WriteTxnMarkers with an ABORT marker for it
(Kafka's AbortTransaction: for a transaction its coordinator lost track of).
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from kafka_compat.cli.admin import BROKERS, connect, fail
from kafka_compat.cli.output import table
from kafka_compat.client import Cluster
from kafka_compat.client.blocking import BrokerUnreachable
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode

app = typer.Typer(help="List and describe transactions; abort a hanging one.", no_args_is_help=True)


@app.command("list")
def list_(brokers: str = BROKERS, state: list[str] = typer.Option([], "--state", help="Only these states."),
          producer_id: list[int] = typer.Option([], "--producer-id", help="Only these producer ids.")) -> None:
    """Every transactional id of the cluster with its coordinator, producer id and state."""
    rows, failed = [], False
    with connect(brokers) as cluster:
        for node in sorted(cluster.metadata().nodes):
            try:
                resp = cluster.request(m.ListTransactionsRequest(state_filters=state, producer_id_filters=producer_id,
                                                                 duration_filter=-1), node)
            except BrokerUnreachable as e:
                typer.echo(f"error: broker {node}: {e}", err=True)
                failed = True
                continue
            if resp.error_code:
                typer.echo(f"error: broker {node}: {ErrorCode(resp.error_code).name}", err=True)
                failed = True
            rows += [[t.transactional_id, node, t.producer_id, t.transaction_state] for t in resp.transaction_states]
    table(["transactional-id", "coordinator", "producer-id", "transaction-state"], sorted(rows))
    if failed:
        raise typer.Exit(1)


def _coordinator(cluster: Cluster, transactional_id: str) -> int:
    F = m.FindCoordinatorRequest
    r = cluster.request(F(key_type=1, coordinator_keys=[transactional_id]), version=4).coordinators[0]
    if r.error_code:
        fail(f"{transactional_id}: {ErrorCode(r.error_code).name}")
    return r.node_id


def _time(ms: int) -> str:
    return "-" if ms < 0 else datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


@app.command()
def describe(transactional_ids: list[str] = typer.Argument(..., help="Transactional ids to describe."),
             brokers: str = BROKERS) -> None:
    """Coordinator, producer id and epoch, state, timeout, start time and partitions of each."""
    rows = []
    with connect(brokers) as cluster:
        for txn_id in transactional_ids:
            node = _coordinator(cluster, txn_id)
            (t,) = cluster.request(m.DescribeTransactionsRequest(transactional_ids=[txn_id]), node).transaction_states
            if t.error_code:
                fail(f"{txn_id}: {ErrorCode(t.error_code).name}")
            partitions = ",".join(f"{tp.topic}-{p}" for tp in t.topics for p in tp.partitions) or "-"
            rows.append([txn_id, node, t.producer_id, t.producer_epoch, t.transaction_state,
                         t.transaction_timeout_ms, _time(t.transaction_start_time_ms), partitions])
    table(["transactional-id", "coordinator", "producer-id", "producer-epoch", "transaction-state",
           "transaction-timeout-ms", "current-transaction-start-time", "topic-partitions"], rows)


def _producers(cluster: Cluster, topic: str, partition: int) -> tuple[int, list]:
    leader = cluster.topic(topic, refresh=True).partitions[partition].leader
    if leader < 0:
        fail(f"{topic}-{partition}: {ErrorCode.LEADER_NOT_AVAILABLE.name}")
    D = m.DescribeProducersRequest
    (p,) = cluster.request(D(topics=[D.TopicRequest(name=topic, partition_indexes=[partition])]),
                           leader).topics[0].partitions
    if p.error_code:
        fail(f"{topic}-{partition}: {ErrorCode(p.error_code).name}")
    return leader, p.active_producers


@app.command("describe-producers")
def describe_producers(topic: str = typer.Option(..., "--topic"), partition: int = typer.Option(..., "--partition"),
                       brokers: str = BROKERS) -> None:
    """The active producers of a partition (DescribeProducers at its leader)."""
    with connect(brokers) as cluster:
        _, producers = _producers(cluster, topic, partition)
    table(["producer-id", "producer-epoch", "latest-coordinator-epoch", "last-sequence", "last-timestamp",
           "current-transaction-start-offset"],
          [[s.producer_id, s.producer_epoch, s.coordinator_epoch, s.last_sequence, _time(s.last_timestamp),
            s.current_txn_start_offset] for s in producers])


@app.command()
def abort(topic: str = typer.Option(..., "--topic"), partition: int = typer.Option(..., "--partition"),
          start_offset: int = typer.Option(..., "--start-offset",
                                           help="First offset of the transaction to abort (describe-producers)."),
          brokers: str = BROKERS) -> None:
    """Abort the open transaction that starts at --start-offset of a partition: an ABORT marker
    written by its leader (kafka-transactions.sh abort, for hanging transactions)."""
    with connect(brokers) as cluster:
        leader, producers = _producers(cluster, topic, partition)
        match = [s for s in producers if s.current_txn_start_offset == start_offset]
        if not match:
            fail(f"no open transaction starts at offset {start_offset} of {topic}-{partition}")
        s = match[0]
        W = m.WriteTxnMarkersRequest
        resp = cluster.request(W(markers=[W.WritableTxnMarker(
            producer_id=s.producer_id, producer_epoch=s.producer_epoch, transaction_result=False,
            coordinator_epoch=max(s.coordinator_epoch, 0),
            topics=[W.WritableTxnMarkerTopic(name=topic, partition_indexes=[partition])])]), leader)
        code = ErrorCode(resp.markers[0].topics[0].partitions[0].error_code)
    if code != ErrorCode.NONE:
        fail(f"{topic}-{partition}: {code.name}")
    typer.echo(f"aborted the transaction of producer {s.producer_id} (epoch {s.producer_epoch}) "
               f"at offset {start_offset} of {topic}-{partition}")
