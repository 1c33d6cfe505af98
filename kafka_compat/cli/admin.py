"""What the commands that talk to a cluster share: the brokers option, turning failures into one
line on stderr and a non-zero exit, key=value parsing, and plain tables.

The commands work against any Kafka-compatible cluster, so everything goes over the wire through
`kafka_compat.client.Cluster`; nothing here imports the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

import typer

from kafka_compat.client import BrokerUnreachable, Cluster, UnsupportedApi
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import DecodeError

BROKERS = typer.Option(
    "127.0.0.1:9092", "--brokers", "-b", envvar="KAFKA_COMPAT_BROKERS",
    help="Bootstrap brokers, host:port[,host:port...].")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def connect(brokers: str) -> Iterator[Cluster]:
    """A `Cluster` for the command's body; its failures become `error: ...` and exit code 1."""
    try:
        cluster = Cluster(brokers)
    except ValueError as e:  # a malformed address
        fail(str(e), 2)
    try:
        with cluster:
            yield cluster
    except (KafkaError, BrokerUnreachable, UnsupportedApi, DecodeError) as e:
        fail(str(e))


def with_leader(cluster: Cluster, topic: str, partitions: Iterable[int]) -> tuple[list[int], dict[int, KafkaError]]:
    """Split `partitions` of `topic` into those whose leader is known and answers, and the others
    with their error (LEADER_NOT_AVAILABLE, or NETWORK_EXCEPTION for a leader that does not answer),
    so that a command serves the first and reports the others, partition by partition."""
    meta = cluster.topic(topic, refresh=True)
    up, down = [], {}
    unreachable: dict[int, KafkaError | None] = {}
    for p in partitions:
        leader = meta.partitions[p].leader
        if leader < 0:
            down[p] = KafkaError(meta.partitions[p].error or ErrorCode.LEADER_NOT_AVAILABLE)
            continue
        if leader not in unreachable:
            try:
                cluster.connection(leader)
                unreachable[leader] = None
            except BrokerUnreachable as e:
                unreachable[leader] = KafkaError(ErrorCode.NETWORK_EXCEPTION, f"leader {leader}: {e}")
        if unreachable[leader] is None:
            up.append(p)
        else:
            down[p] = unreachable[leader]
    return up, down


def key_values(pairs: Sequence[str] | None, what: str) -> list[tuple[str, str]]:
    """['k=v', ...] -> [(k, v), ...]; a usage error (exit 2) for an entry without '='."""
    out = []
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint=what)
        out.append((key, value))
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, err: bool = False) -> None:
    """Left-aligned columns two spaces apart, upper-case headers (rpk's look)."""
    cells = [[str(h).upper() for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip(), err=err)
