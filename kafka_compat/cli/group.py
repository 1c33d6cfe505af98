"""`kafka-compat group ...`: list, describe (with lag), delete consumer groups and reset their offsets.

What `kafka-consumer-groups.sh` does, over the wire: ListGroups to every broker, DescribeGroups or
ConsumerGroupDescribe and OffsetFetch at the group's coordinator, ListOffsets for the log end
offsets that lag is measured against, OffsetCommit (as a simple consumer) for a reset.
"""

from __future__ import annotations

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, explain, fail, with_leader
from kafka_compat.cli.output import OUTPUT, Format, Section, as_json, emit_json, progress, show
from kafka_compat.client import LATEST, Cluster
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import KafkaError
from kafka_compat.protocol.primitives import DecodeError

app = typer.Typer(help="List, describe and delete consumer groups; reset their offsets.", no_args_is_help=True)

INACTIVE = ("Empty", "Dead")


@app.command("list")
def list_(brokers: str = BROKERS, command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """Every group in the cluster, with its state and type (ListGroups); then, one line each, the
    coordinators that could not be reached (exit code 1: the list is incomplete)."""
    with connect(brokers, command_config) as cluster:
        groups, missed = cluster.list_groups()
    show(output, Section(None, ["group", "state", "type", "protocol-type"],
                         [[g.group_id, g.group_state or None, g.group_type or None, g.protocol_type or None]
                          for g in groups]))
    for line in missed:
        typer.echo(f"error: {line}; groups coordinated there are not listed", err=True)
    if missed:
        raise typer.Exit(1)


def _assignment(data: bytes) -> list[tuple[str, int]]:
    """The partitions of a classic consumer's assignment (ConsumerProtocolAssignment: an int16
    version, then fields whose version-0 prefix every version shares)."""
    if len(data) < 2:
        return []
    try:
        a, _ = m.ConsumerProtocolAssignment.decode_prefix(bytes(data), 0, 2)
    except DecodeError:
        return []
    return [(tp.topic, p) for tp in a.assigned_partitions for p in tp.partitions]


def _members(cluster: Cluster, group: str) -> tuple[str, str | None, list[tuple[str, str, str, list[tuple[str, int]]]]]:
    """(state, protocol, [(member id, client id, host, [(topic, partition)])])."""
    d = cluster.describe_group(group)
    if d.group_state != "Dead" or not cluster.supports(m.ConsumerGroupDescribeRequest):
        consumer = d.protocol_type in ("consumer", "")
        return d.group_state, d.protocol_data or None, [
            (mb.member_id, mb.client_id, mb.client_host, _assignment(mb.member_assignment) if consumer else [])
            for mb in d.members]
    try:  # Dead to DescribeGroups: it may be a KIP-848 consumer group
        c = cluster.describe_consumer_group(group)
    except KafkaError:
        return d.group_state, None, []
    return c.group_state, c.assignor_name or None, [
        (mb.member_id, mb.client_id, mb.client_host,
         [(tp.topic_name, p) for tp in mb.assignment.topic_partitions for p in tp.partitions])
        for mb in c.members]


def lags(cluster: Cluster, group: str, partitions) -> tuple[dict, dict, dict]:
    """(committed, log end offsets, lags) by (topic, partition) for `group`'s committed offsets and
    `partitions`; partitions without a leader have no end and no lag, as those of a deleted topic."""
    committed = cluster.group_offsets(group)
    wanted = sorted(set(committed) | set(partitions))
    ends: dict[tuple[str, int], int] = {}
    for topic in sorted({t for t, _ in wanted}):
        try:
            up, _ = with_leader(cluster, topic, [p for t, p in wanted if t == topic])
            found = cluster.list_offsets(topic, dict.fromkeys(up, LATEST))
            ends.update({(topic, p): o for p, o in found.items()})
        except KafkaError:
            pass
    return committed, ends, {tp: ends[tp] - committed[tp] for tp in wanted if tp in committed and tp in ends}


@app.command()
def describe(groups: list[str] = typer.Argument(..., help="Groups to describe."), brokers: str = BROKERS,
             command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """State, members and, per partition, the committed offset, log end offset and lag."""
    described = []
    with connect(brokers, command_config) as cluster:
        for group in groups:
            state, protocol, members = _members(cluster, group)
            owner = {tp: mb for mb in members for tp in mb[3]}
            committed, ends, lag = lags(cluster, group, owner)
            rows = []
            for tp in sorted(set(committed) | set(owner)):
                member_id, client_id, host, _ = owner.get(tp, (None, None, None, None))
                rows.append([tp[0], tp[1], committed.get(tp), ends.get(tp), lag.get(tp), member_id, client_id, host])
            for member_id, client_id, host, assigned in members:
                if not assigned:
                    rows.append([None, None, None, None, None, member_id, client_id, host])
            described.append([
                Section(None, ["group", "coordinator", "state", "protocol", "members", "total-lag"],
                        [[group, cluster.coordinator(group), state, protocol, len(members), sum(lag.values())]],
                        one=True, key="summary"),
                Section(None, ["topic", "partition", "current-offset", "log-end-offset", "lag", "member-id",
                               "client-id", "host"], rows, key="partitions")])
    if output == Format.json:
        emit_json([as_json(sections) for sections in described])
        return
    for n, (summary, partitions) in enumerate(described):
        if n:
            typer.echo("")
        show(output, summary, *([partitions] if partitions.rows else []))


@app.command()
def delete(groups: list[str] = typer.Argument(..., help="Groups to delete."), brokers: str = BROKERS,
           command_config: str = COMMAND_CONFIG, output: Format = OUTPUT) -> None:
    """Delete empty groups and their committed offsets (DeleteGroups)."""
    deleted = []
    with connect(brokers, command_config) as cluster:
        for group in groups:
            try:
                cluster.delete_group(group)
                deleted.append(group)
                if output == Format.text:
                    typer.echo(f"deleted {group}")
            except KafkaError as e:
                typer.echo(f"error: {explain(e)}", err=True)
    if output == Format.json:
        show(output, Section(None, ["group", "status"], [[g, "deleted"] for g in deleted]))
    if len(deleted) < len(groups):
        raise typer.Exit(1)


def _topic_partitions(cluster: Cluster, spec: str) -> tuple[str, list[int]]:
    """'topic' (every partition) or 'topic:0,2'."""
    topic, _, parts = spec.partition(":")
    known = sorted(cluster.topic(topic).partitions)
    if not parts:
        return topic, known
    try:
        chosen = sorted({int(p) for p in parts.split(",")})
    except ValueError:
        raise typer.BadParameter(f"{spec!r}: partitions are numbers, as in topic:0,1", param_hint="--topic") from None
    missing = [p for p in chosen if p not in known]
    if missing:
        fail(f"topic {topic!r} has no partition {missing[0]}")
    return topic, chosen


@app.command("reset-offsets")
def reset_offsets(
    group: str = typer.Argument(..., help="The group, which must have no active members."),
    topics: list[str] = typer.Option(..., "--topic", "-t", help="topic or topic:p,p,... Repeatable."),
    to_earliest: bool = typer.Option(False, "--to-earliest", help="To each partition's log start offset."),
    to_latest: bool = typer.Option(False, "--to-latest", help="To each partition's log end offset."),
    to_offset: int | None = typer.Option(None, "--to-offset", help="To this offset (kept within the log)."),
    to_timestamp: int | None = typer.Option(None, "--to-timestamp",
                                               help="To the first record at or after this time (ms since the epoch)."),
    shift_by: int | None = typer.Option(None, "--shift-by", help="Move the committed offsets by N (may be < 0)."),
    execute: bool = typer.Option(False, "--execute", help="Commit the new offsets; without it, only show them."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Set a group's committed offsets (OffsetCommit), as kafka-consumer-groups --reset-offsets does."""
    chosen = [to_earliest, to_latest, to_offset is not None, to_timestamp is not None, shift_by is not None]
    if sum(chosen) != 1:
        fail("give exactly one of --to-earliest, --to-latest, --to-offset, --to-timestamp, --shift-by", 2)
    with connect(brokers, command_config) as cluster:
        state, _, _ = _members(cluster, group)
        if state not in INACTIVE:
            fail(f"assignments can only be reset if the group {group!r} is inactive, but the current state is {state}")
        committed = cluster.group_offsets(group) if shift_by is not None else {}
        plan: dict[str, dict[int, int]] = {}
        specs = [_topic_partitions(cluster, spec) for spec in topics]
        count = sum(len(partitions) for _, partitions in specs)
        with progress(f"{group}: partitions reset", count * (2 if execute else 1)) as bar:
            for topic, partitions in specs:
                bounds = cluster.watermarks(topic, partitions)
                if to_timestamp is not None:
                    found = cluster.list_offsets(topic, {p: to_timestamp for p in partitions})
                new = {}
                for p in partitions:
                    low, high = bounds[p]
                    if to_earliest:
                        target = low
                    elif to_latest:
                        target = high
                    elif to_offset is not None:
                        target = to_offset
                    elif to_timestamp is not None:
                        target = found[p] if found[p] >= 0 else high  # nothing at or after it: the end
                    else:
                        target = committed.get((topic, p), low) + shift_by
                    new[p] = min(max(target, low), high)
                plan.setdefault(topic, {}).update(new)
                bar.advance(len(new))
            if execute:
                for topic, offsets in plan.items():
                    cluster.commit(group, topic, offsets)
                    bar.advance(len(offsets))
    show(output, Section(None, ["group", "topic", "partition", "new-offset"],
                         [[group, topic, p, o] for topic, offsets in plan.items() for p, o in sorted(offsets.items())]))
    if not execute:
        typer.echo("dry run: nothing committed (add --execute)", err=True)

