"""`kafka-compat consume TOPIC`: print records, from a chosen start, until the end or forever.

A plain fetch loop over the chosen partitions: Fetch from each partition's leader at its position,
print the records at or past the position (a compressed batch comes back whole), move on. Without
`--follow` it stops at the high watermarks read when it started. With `--group` it acts as a simple
consumer (no membership): it starts from the group's committed offsets (OffsetFetch) and commits
its positions (OffsetCommit, generation -1) as it goes. A partition without a leader (or whose
leader does not answer) is named on stderr with its error and the others are read; the exit code
is then 1.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import BinaryIO

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, fail, with_leader
from kafka_compat.cli.output import Progress, progress
from kafka_compat.client import EARLIEST, Cluster, UnsupportedApi, error_code, fetched_end, iter_fetched
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records import Record

FORMAT_HELP = ("'json' (one object a line) or a template: %t topic, %p partition, %o offset, %k key, %v (or %s) value, "
               "%K key length, %S value length, %T timestamp (ms), %h headers (k=v,...), %%; escapes \\n \\t \\r \\\\. "
               "A newline is added unless the template has one.")
Formatter = Callable[[str, int, Record], bytes]


def _text(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", "backslashreplace")


def json_line(topic: str, partition: int, r: Record) -> bytes:
    return json.dumps({
        "topic": topic, "partition": partition, "offset": r.offset, "timestamp": r.timestamp,
        "key": _text(r.key), "value": _text(r.value),
        "headers": [{"key": k, "value": _text(v)} for k, v in r.headers],
    }, ensure_ascii=False).encode() + b"\n"


FIELDS: dict[str, Callable[[str, int, Record], bytes]] = {
    "t": lambda t, p, r: t.encode(),
    "p": lambda t, p, r: str(p).encode(),
    "o": lambda t, p, r: str(r.offset).encode(),
    "k": lambda t, p, r: r.key or b"",
    "v": lambda t, p, r: r.value or b"",
    "s": lambda t, p, r: r.value or b"",
    "K": lambda t, p, r: str(-1 if r.key is None else len(r.key)).encode(),
    "S": lambda t, p, r: str(-1 if r.value is None else len(r.value)).encode(),
    "T": lambda t, p, r: str(r.timestamp).encode(),
    "h": lambda t, p, r: b",".join(k.encode() + b"=" + (v or b"") for k, v in r.headers),
}
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def compile_format(spec: str) -> Formatter:
    """'json' or a kcat-style template -> a function rendering one record as bytes."""
    if spec == "json":
        return json_line
    parts: list = []  # bytes literals and field functions
    literal, i = "", 0
    while i < len(spec):
        pair, step = spec[i:i + 2], 2
        if pair[0] == "%" and pair[1:] in FIELDS:
            parts += [literal.encode(), FIELDS[pair[1]]]
            literal = ""
        elif pair == "%%":
            literal += "%"
        elif pair[0] == "\\" and pair[1:] in ESCAPES:
            literal += ESCAPES[pair[1]]
        else:
            literal, step = literal + spec[i], 1
        i += step
    parts.append(literal.encode())
    if not any(type(x) is bytes and b"\n" in x for x in parts):
        parts.append(b"\n")
    return lambda t, p, r: b"".join(x if type(x) is bytes else x(t, p, r) for x in parts)


def parse_offset(value: str | None) -> tuple[str, int] | None:
    """beginning|end|N|-N -> ("beginning", 0), ("end", 0), ("at", N) or ("back", N)."""
    if value is None:
        return None
    aliases = {"beginning": "beginning", "start": "beginning", "oldest": "beginning", "end": "end", "newest": "end"}
    if value in aliases:
        return aliases[value], 0
    try:
        n = int(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected beginning, end, N or -N", param_hint="--offset") from None
    return ("back", -n) if n < 0 else ("at", n)


def start_positions(cluster: Cluster, topic: str, partitions: list[int], offset: tuple[str, int] | None,
                    timestamp: int | None, committed: dict[int, int]) -> tuple[dict[int, int], dict[int, int]]:
    """(start offset, high watermark now) per partition; explicit offsets are kept within the log."""
    marks = cluster.watermarks(topic, partitions)
    by_time = cluster.list_offsets(topic, {p: timestamp for p in partitions}) if timestamp is not None else {}
    starts, ends = {}, {}
    for p in partitions:
        low, high = marks[p]
        if timestamp is not None:
            start = by_time[p] if by_time[p] >= 0 else high  # every record is older: start at the end
        elif offset is None:
            start = committed.get(p, low)
        else:
            kind, n = offset
            start = {"beginning": low, "end": high, "at": n, "back": high - n}[kind]
        starts[p], ends[p] = min(max(start, low), high), high
    return starts, ends


def consume(
    topic: str = typer.Argument(..., help="The topic to read."),
    offset: str | None = typer.Option(
        None, "--offset", "-o", metavar="beginning|end|N|-N",
        help="Where to start: beginning, end, offset N, or -N for the last N records of each partition. "
             "Default: the group's committed offset with --group, else beginning."),
    timestamp: int | None = typer.Option(
        None, "--timestamp", min=0, help="Start at the first record at or after this time (ms since the epoch)."),
    partition: list[int] | None = typer.Option(
        None, "--partition", "-p", help="Read only this partition. Repeatable."),
    num: int | None = typer.Option(None, "--num", "-n", min=1, help="Stop after this many records."),
    follow: bool = typer.Option(
        False, "--follow/--no-follow", help="Keep waiting for new records instead of stopping at the end."),
    fmt: str = typer.Option("%v\\n", "--format", "-f", help=FORMAT_HELP),
    group: str | None = typer.Option(None, "--group", "-g", help="Start from and commit to this group's offsets."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
) -> None:
    """Print the records of TOPIC to stdout."""
    start_spec = parse_offset(offset)
    if timestamp is not None and offset is not None:
        fail("give --offset or --timestamp, not both", 2)
    render = compile_format(fmt)
    out = typer.get_binary_stream("stdout")
    with connect(brokers, command_config) as cluster:
        meta = cluster.topic(topic)
        partitions = sorted(set(partition)) if partition else list(meta.partitions)
        missing = [p for p in partitions if p not in meta.partitions]
        if missing:
            fail(f"UNKNOWN_TOPIC_OR_PARTITION: topic {topic!r} has no partition {missing[0]}")
        # As kcat does: read the partitions that have a leader, name each other one.
        partitions, down = with_leader(cluster, topic, partitions)
        for p, e in down.items():
            typer.echo(f"error: {topic}[{p}]: {e} (not read)", err=True)
        committed = _group_call(group, lambda: cluster.committed(group, topic, partitions)) if group else {}
        positions, ends = start_positions(cluster, topic, partitions, start_spec, timestamp, committed)
        # On a terminal, while the records go elsewhere: records of -n, else offsets up to the end.
        total = num if num is not None else None if follow else sum(ends[p] - positions[p] for p in positions)
        try:
            with progress(f"consuming {topic}", total, unit="records", output_on_stdout=True) as bar:
                _loop(cluster, topic, positions, ends, follow, num, render, out, group, bar)
        except BrokenPipeError:  # the reader went away (| head): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    if down:
        raise typer.Exit(1)


def _loop(cluster: Cluster, topic: str, positions: dict[int, int], ends: dict[int, int], follow: bool,
          num: int | None, render: Formatter, out: BinaryIO, group: str | None, bar: Progress) -> None:
    active = {p for p in positions if follow or positions[p] < ends[p]}
    committed = dict(positions)
    starts = dict(positions)
    printed = 0
    try:
        while active and printed != num:
            answers = cluster.fetch(topic, {p: positions[p] for p in sorted(active)})
            for p, answer in answers.items():
                code = error_code(answer.error_code)
                if code == ErrorCode.OFFSET_OUT_OF_RANGE:  # retention moved the log start past us
                    positions[p] = cluster.list_offsets(topic, {p: EARLIEST})[p]
                    typer.echo(f"warning: {topic}[{p}]: offset out of range, continuing at {positions[p]}", err=True)
                    continue
                if code:
                    raise KafkaError(code, f"fetching {topic}[{p}] at offset {positions[p]}")
                for r in iter_fetched(answer.records):
                    if r.offset < positions[p] or printed == num:
                        continue
                    out.write(render(topic, p, r))
                    printed += 1
                    positions[p] = r.offset + 1
                if printed != num:  # past control batches and compaction gaps too
                    positions[p] = max(positions[p], fetched_end(answer.records) or 0)
                if not follow and positions[p] >= ends[p]:
                    active.discard(p)
            out.flush()
            bar.update(completed=printed if num is not None or follow else
                       sum(positions[p] - starts[p] for p in positions))
            if group and positions != committed:
                _group_call(group, lambda: cluster.commit(group, topic, positions))
                committed = dict(positions)
    finally:
        if group and positions != committed:  # interrupted: keep what was printed
            _group_call(group, lambda: cluster.commit(group, topic, positions))


def _group_call(group: str, call):
    """Group offset requests are optional for a broker; say which one failed and why."""
    try:
        return call()
    except (KafkaError, UnsupportedApi) as e:
        fail(f"group {group!r}: {e}")
