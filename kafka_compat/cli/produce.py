"""`kafka-compat produce TOPIC`: each line of stdin becomes a record.

Lines are gathered into one batch per partition and sent together, one Produce request per leader,
when a batch is full or stdin pauses (so piped files go in large batches and typed lines go at
once). Partitioning follows the Java producer: an explicit partition, else murmur2 of the key, else
a "sticky" partition for keyless records that changes after each send (KIP-480), chosen among the
partitions that have a leader. Records for a partition without one are not sent: each such
partition is named with its error and count, and the exit code is 1.
"""

from __future__ import annotations

import io
import os
import random
import select
import stat
import time
from collections.abc import Iterator
from enum import Enum
from typing import BinaryIO

import typer

from kafka_compat.cli.admin import BROKERS, COMMAND_CONFIG, connect, key_values, with_leader
from kafka_compat.cli.output import OUTPUT, Format, Progress, Section, progress, show
from kafka_compat.client import Cluster, error_code, partition_for_key
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.records import Record, build_batch
from kafka_compat.records import compression as codecs

LINGER = 0.05  # seconds of quiet on stdin after which what was read is sent
BATCH_BYTES = 256 << 10  # a partition's batch is sent at this many (uncompressed) bytes...
PENDING_BYTES = 4 << 20  # ...and everything once this much is waiting
RECORD_OVERHEAD = 16  # rough per-record framing, for the size estimates above


class Compression(str, Enum):
    none = "none"
    gzip = "gzip"
    snappy = "snappy"
    lz4 = "lz4"
    zstd = "zstd"


class Acks(str, Enum):
    all = "all"
    minus_one = "-1"
    one = "1"
    zero = "0"


def read_lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """The lines of `stream` without their newline, and None whenever input pauses for LINGER."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):  # an in-memory stream (tests)
        for line in stream:
            yield line[:-1] if line.endswith(b"\n") else line
        return
    rest = b""
    while True:
        if not select.select([fd], [], [], LINGER)[0]:
            yield None
            select.select([fd], [], [])
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        *lines, rest = (rest + chunk).split(b"\n")
        yield from lines
    if rest:
        yield rest


class Producer:
    """Accumulates records per partition and sends them; keeps per-partition offsets for the summary."""

    def __init__(self, cluster: Cluster, topic: str, *, partition: int | None, codec: int, acks: int):
        self.cluster, self.topic, self.partition, self.codec, self.acks = cluster, topic, partition, codec, acks
        # Producers ask for auto-creation, as Kafka's do; the broker decides.
        self.num_partitions = len(cluster.topic(topic, auto_create=True).partitions)
        if partition is not None and not 0 <= partition < self.num_partitions:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                             f"topic {topic!r} has {self.num_partitions} partitions, no partition {partition}")
        self.up, self.down = with_leader(cluster, topic, range(self.num_partitions))
        self.lost: dict[int, int] = {}  # partition without a leader -> records not sent to it
        self.pending: dict[int, list[Record]] = {}
        self.sizes: dict[int, int] = {}
        self.pending_bytes = 0
        self.sticky: int | None = None
        self.sent: dict[int, list[int]] = {}  # partition -> [records, first offset, last offset]
        self.progress = Progress()  # moved to `read_bytes` after each send
        self.read_bytes = 0  # of input turned into records, counted by the caller

    def _choose(self, key: bytes | None) -> int:
        if self.partition is not None:
            return self.partition
        if key is not None:
            return partition_for_key(key, self.num_partitions)
        if self.sticky is None:
            self.sticky = random.choice(self.up) if self.up else random.randrange(self.num_partitions)
        return self.sticky

    def add(self, record: Record) -> None:
        p = self._choose(record.key)
        if p in self.down:
            self.lost[p] = self.lost.get(p, 0) + 1
            return
        self.pending.setdefault(p, []).append(record)
        size = RECORD_OVERHEAD + len(record.key or b"") + len(record.value or b"") + sum(
            len(k) + len(v or b"") for k, v in record.headers)
        self.sizes[p] = self.sizes.get(p, 0) + size
        self.pending_bytes += size
        if self.sizes[p] >= BATCH_BYTES or self.pending_bytes >= PENDING_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batches = {p: bytes(build_batch(recs, compression=self.codec)) for p, recs in self.pending.items()}
        answers = self.cluster.produce(self.topic, batches, acks=self.acks)
        for p, recs in self.pending.items():
            stats = self.sent.setdefault(p, [0, -1, -1])
            answer = answers.get(p)  # none with acks=0: no offsets to report
            if answer is not None:
                if answer.error_code:
                    raise KafkaError(error_code(answer.error_code),
                                     answer.error_message or f"producing to {self.topic}[{p}]")
                if stats[1] < 0:
                    stats[1] = answer.base_offset
                stats[2] = answer.base_offset + len(recs) - 1
            stats[0] += len(recs)
        self.pending.clear()
        self.sizes.clear()
        self.pending_bytes = 0
        self.sticky = None
        self.progress.update(completed=self.read_bytes)

    @property
    def count(self) -> int:
        return sum(s[0] for s in self.sent.values())


def produce(
    topic: str = typer.Argument(..., help="The topic to write to."),
    key_separator: str | None = typer.Option(
        None, "--key-separator", "-K", metavar="SEP",
        help="Split each line at the first SEP into key and value (a line without SEP gets a null key)."),
    header: list[str] | None = typer.Option(
        None, "--header", "-H", help="A header key=value for every record. Repeatable."),
    partition: int | None = typer.Option(
        None, "--partition", "-p", help="Write to this partition (default: by key, murmur2)."),
    compression: Compression = typer.Option(Compression.none, "--compression", "-z", help="Batch compression."),
    acks: Acks = typer.Option(
        Acks.all, "--acks", help="Acknowledgements to wait for: all (-1), 1 (the leader) or 0 (none)."),
    timestamp: int | None = typer.Option(
        None, "--timestamp", help="Record timestamp in ms since the epoch (default: now)."),
    brokers: str = BROKERS, command_config: str = COMMAND_CONFIG,
    output: Format = OUTPUT,
) -> None:
    """Produce the lines of stdin to TOPIC, one record a line; prints a summary to stderr (to
    stdout with --output json). A progress bar shows on a terminal while a file or pipe is read."""
    headers = [(k, v.encode()) for k, v in key_values(header, "--header")]
    sep = key_separator.encode() if key_separator else None
    codec = codecs.BY_TOPIC_NAME[compression.value]
    acks_n = -1 if acks == Acks.all else int(acks.value)
    interrupted = False
    stdin = typer.get_binary_stream("stdin")
    with connect(brokers, command_config) as cluster:
        producer = Producer(cluster, topic, partition=partition, codec=codec, acks=acks_n)
        with progress(f"producing to {topic}", _size(stdin), unit="bytes", when=not _interactive(stdin)) as bar:
            producer.progress = bar
            try:
                for line in read_lines(stdin):
                    if line is None:
                        producer.flush()
                        continue
                    producer.read_bytes += len(line) + 1
                    key, value = None, line
                    if sep is not None and sep in line:
                        key, value = line.split(sep, 1)
                    ts = timestamp if timestamp is not None else int(time.time() * 1000)
                    producer.add(Record(key=key, value=value, timestamp=ts, headers=headers))
            except KeyboardInterrupt:  # Ctrl-C: send what was read, then stop
                interrupted = True
            producer.flush()
    n = producer.count
    rows = [[p, count, first if first >= 0 else None, last if last >= 0 else None]
            for p, (count, first, last) in sorted(producer.sent.items())]
    columns = ["partition", "records", "first-offset", "last-offset"]
    if output == Format.json:
        show(output, Section("summary", ["topic", "records", "acks", "compression"],
                             [[topic, n, acks.value, compression.value]], one=True),
             Section("partitions", columns, rows))
    else:
        typer.echo(f"Produced {n} record{'s' * (n != 1)} to {topic} (acks={acks.value}, "
                   f"compression={compression.value})", err=True)
        if rows:
            show(output, Section(None, columns, rows), err=True)
    for p, count in sorted(producer.lost.items()):
        typer.echo(f"error: {topic}[{p}]: {producer.down[p]} ({count} record{'s' * (count != 1)} not produced)",
                   err=True)
    if interrupted:
        raise typer.Exit(130)
    if producer.lost:
        raise typer.Exit(1)


def _size(stream: BinaryIO) -> int | None:
    """The size of a regular file on stdin (a pipe has none)."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _interactive(stream: BinaryIO) -> bool:
    try:
        return os.isatty(stream.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        return False
