"""What the commands that talk to a cluster share: the brokers option, turning failures into one
line on stderr that says what to do and a non-zero exit, and key=value parsing.

The commands work against any Kafka-compatible cluster, so everything goes over the wire through
`kafka_compat.client.Cluster`; nothing here imports the server.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer

from kafka_compat import properties
from kafka_compat.client import BrokerUnreachable, Cluster, UnsupportedApi
from kafka_compat.client.security import ClientSecurity
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import DecodeError

BROKERS = typer.Option(
    "127.0.0.1:9092", "--brokers", "-b", envvar="KAFKA_COMPAT_BROKERS",
    help="Bootstrap brokers, host:port[,host:port...].")
COMMAND_CONFIG = typer.Option(
    None, "--command-config", envvar="KAFKA_COMPAT_COMMAND_CONFIG",
    help="A client properties file with Kafka's security settings (security.protocol, ssl.truststore.location, "
         "sasl.mechanism, sasl.jaas.config ...).")


# What to do about an error, said after it (the error's name and message say what happened).
HINTS = {
    ErrorCode.UNKNOWN_TOPIC_OR_PARTITION: "`kafka-compat topic list` shows the topics",
    ErrorCode.TOPIC_ALREADY_EXISTS: "choose another name, or delete it first (`kafka-compat topic delete`)",
    ErrorCode.INVALID_CONFIG: "`kafka-compat config keys` lists the keys, their types and defaults",
    ErrorCode.INVALID_PARTITIONS: "give a partition count of 1 or more",
    ErrorCode.INVALID_REPLICATION_FACTOR: "give a replication factor from 1 up to the number of brokers",
    ErrorCode.GROUP_ID_NOT_FOUND: "`kafka-compat group list` shows the groups",
    ErrorCode.NON_EMPTY_GROUP: "stop the group's consumers first",
    ErrorCode.LEADER_NOT_AVAILABLE: "retry once it has a leader; `kafka-compat cluster status` shows what is offline",
    ErrorCode.NOT_LEADER_OR_FOLLOWER: "retry: leadership moved",
    ErrorCode.COORDINATOR_NOT_AVAILABLE: "retry once the group's coordinator is up (`kafka-compat cluster status`)",
    ErrorCode.REQUEST_TIMED_OUT: "retry; `kafka-compat cluster status` shows whether the cluster is healthy",
}
UNREACHABLE_HINT = "is a broker running there? Give another address with -b host:port or KAFKA_COMPAT_BROKERS"


def explain(e: Exception) -> str:
    """The one line for a failure: what happened, then what to do where that is known."""
    if isinstance(e, BrokerUnreachable):
        return f"{e}; {UNREACHABLE_HINT}"
    if isinstance(e, UnsupportedApi):
        return f"{e}; this command needs a broker that serves it"
    hint = HINTS.get(e.code) if isinstance(e, KafkaError) else None
    return f"{e}; {hint}" if hint else str(e)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def connect(brokers: str, command_config: str | None = None) -> Iterator[Cluster]:
    """A `Cluster` for the command's body (secured as `command_config` says); its failures become
    one `error: ...` line and exit code 1."""
    try:
        security = None
        if command_config:
            security = ClientSecurity.from_properties(properties.read(Path(command_config)))
    except OSError as e:
        fail(f"cannot read {command_config}: {e.strerror}", 2)
    except ValueError as e:
        fail(f"{command_config}: {e}", 2)
    try:
        cluster = Cluster(brokers, security=security)
    except ValueError as e:  # a malformed address
        fail(f"{e}; give brokers as host:port[,host:port...]", 2)
    try:
        with cluster:
            yield cluster
    except (KafkaError, BrokerUnreachable, UnsupportedApi, DecodeError) as e:
        fail(explain(e))


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
