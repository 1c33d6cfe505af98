"""`kafka-compat dump-log PATH`: print the batches and records of a segment file (or the entries
of a .index / .timeindex), like Kafka's kafka-dump-log.sh.

Read-only and off the hot path, so the layouts are declared with `construct` for readability.
"""

from __future__ import annotations

from pathlib import Path

import construct as c
import typer
from crc32c import crc32c

from kafka_compat.records import compression
from kafka_compat.records.batch import ATTRIBUTES_OFFSET, HEADER_SIZE, BatchHeader, read_header
from kafka_compat.records.control import parse_control_record
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.record import iter_records

BATCH_HEADER = c.Struct(
    "base_offset" / c.Int64sb,
    "batch_length" / c.Int32sb,
    "partition_leader_epoch" / c.Int32sb,
    "magic" / c.Int8sb,
    "crc" / c.Int32ub,
    "attributes" / c.BitStruct(
        c.Padding(9),
        "delete_horizon" / c.Flag,
        "control" / c.Flag,
        "transactional" / c.Flag,
        "log_append_time" / c.Flag,
        "compression" / c.BitsInteger(3),
    ),
    "last_offset_delta" / c.Int32sb,
    "base_timestamp" / c.Int64sb,
    "max_timestamp" / c.Int64sb,
    "producer_id" / c.Int64sb,
    "producer_epoch" / c.Int16sb,
    "base_sequence" / c.Int32sb,
    "record_count" / c.Int32sb,
)
OFFSET_INDEX_ENTRY = c.Struct("relative_offset" / c.Int32sb, "position" / c.Int32sb)
TIME_INDEX_ENTRY = c.Struct("timestamp" / c.Int64sb, "relative_offset" / c.Int32sb)


def _base_offset(path: Path) -> int:
    try:
        return int(path.name.split(".")[0])
    except ValueError:
        return 0


def _show(value: bytes | None, limit: int = 64) -> str:
    if value is None:
        return "null"
    text = value[:limit].decode("utf-8", "backslashreplace")
    return text + ("..." if len(value) > limit else "")


def dump_index(path: Path, layout: c.Struct) -> None:
    base = _base_offset(path)
    data = path.read_bytes()
    n = len(data) // layout.sizeof()
    for i in range(n):
        e = layout.parse(data[i * layout.sizeof():(i + 1) * layout.sizeof()])
        if "position" in e:
            typer.echo(f"offset: {base + e.relative_offset} position: {e.position}")
        else:
            typer.echo(f"timestamp: {e.timestamp} offset: {base + e.relative_offset}")
    if len(data) % layout.sizeof():
        typer.echo(f"{len(data) % layout.sizeof()} trailing bytes (a torn entry)")


def dump_segment(path: Path, records: bool) -> int:
    """Print every batch (and record); returns the number of problems found."""
    data = path.read_bytes()
    pos = problems = 0
    while pos < len(data):
        if len(data) - pos < HEADER_SIZE:
            typer.echo(f"position: {pos} truncated: {len(data) - pos} bytes after the last complete batch")
            return problems + 1
        parsed = BATCH_HEADER.parse(data[pos:pos + HEADER_SIZE])
        h: BatchHeader = read_header(data, pos)
        if parsed.batch_length < HEADER_SIZE - 12 or pos + h.size > len(data):
            typer.echo(f"position: {pos} invalid or truncated batch (length {parsed.batch_length})")
            return problems + 1
        crc_ok = crc32c(memoryview(data)[pos + ATTRIBUTES_OFFSET:pos + h.size]) == parsed.crc
        problems += not crc_ok
        a = parsed.attributes
        typer.echo(
            f"baseOffset: {parsed.base_offset} lastOffset: {h.last_offset} count: {parsed.record_count} "
            f"baseSequence: {parsed.base_sequence} lastSequence: {h.last_sequence} producerId: {parsed.producer_id} "
            f"producerEpoch: {parsed.producer_epoch} partitionLeaderEpoch: {parsed.partition_leader_epoch} "
            f"isTransactional: {str(a.transactional).lower()} isControl: {str(a.control).lower()} "
            f"deleteHorizonMs: {h.delete_horizon_ms if a.delete_horizon else 'none'} position: {pos} "
            f"{'LogAppendTime' if a.log_append_time else 'CreateTime'}: {parsed.max_timestamp} size: {h.size} "
            f"magic: {parsed.magic} compresscodec: {compression.codec_name(a.compression)} crc: {parsed.crc} "
            f"isvalid: {str(crc_ok).lower()}")
        if records and crc_ok:
            try:
                for r in iter_records(data, pos, h):
                    line = (f"| offset: {r.offset} "
                            f"{'LogAppendTime' if a.log_append_time else 'CreateTime'}: {r.timestamp} "
                            f"keySize: {-1 if r.key is None else len(r.key)} "
                            f"valueSize: {-1 if r.value is None else len(r.value)}")
                    if a.control:
                        cr = parse_control_record(r)
                        line += (f" endTxnMarker: {'COMMIT' if cr.is_commit else 'ABORT'} "
                                 f"coordinatorEpoch: {cr.coordinator_epoch}")
                    else:
                        headers = ", ".join(f"{k}={_show(v)}" for k, v in r.headers)
                        line += f" headers: [{headers}] key: {_show(r.key)} payload: {_show(r.value)}"
                    typer.echo(line)
            except RecordsError as e:
                typer.echo(f"| cannot decode records: {e}")
                problems += 1
        pos += h.size
    return problems


def dump_log(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .log segment, .index or .timeindex file."),
    records: bool = typer.Option(True, "--records/--no-records", help="Print each record, not only batch headers."),
) -> None:
    """Print the batches and records of a segment file (or the entries of an index file)."""
    typer.echo(f"Dumping {path}")
    if path.name.endswith(".timeindex"):
        dump_index(path, TIME_INDEX_ENTRY)
    elif path.name.endswith(".index"):
        dump_index(path, OFFSET_INDEX_ENTRY)
    elif dump_segment(path, records):
        raise typer.Exit(1)
