"""`kafka-compat dump-log PATH`: print the batches and records of a segment file (or the entries
of a .index / .timeindex / .txnindex, or the producers of a .snapshot), like Kafka's
kafka-dump-log.sh: transaction markers as `endTxnMarker: COMMIT coordinatorEpoch: N`, and with
`--transaction-log-decoder` the `__transaction_state` records as Kafka's decoder prints them.

Read-only; the batch header, index entry and snapshot layouts are storage's and records' own.
"""

from __future__ import annotations

import struct
from pathlib import Path

import typer

from kafka_compat.coordinator.transaction import records as transaction_log
from kafka_compat.records import compression
from kafka_compat.records.batch import DELETE_HORIZON_BIT, HEADER_SIZE, MIN_BATCH_LENGTH, crc_of, read_header
from kafka_compat.records.control import ABORT, COMMIT, parse_control_record
from kafka_compat.records.errors import RecordsError
from kafka_compat.records.record import iter_records
from kafka_compat.storage.index import OFFSET_ENTRY, TIME_ENTRY, TransactionIndex
from kafka_compat.storage.producer_state import CorruptSnapshotError, ProducerState

# Kafka's ControlRecordType ids: transaction markers, then KRaft's own control records.
CONTROL_TYPES = {ABORT: "ABORT", COMMIT: "COMMIT", 2: "LEADER_CHANGE", 3: "SNAPSHOT_HEADER", 4: "SNAPSHOT_FOOTER",
                 5: "KRAFT_VERSION", 6: "KRAFT_VOTERS"}


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


def dump_index(path: Path, entry: struct.Struct) -> None:
    base = _base_offset(path)
    data = path.read_bytes()
    whole = len(data) - len(data) % entry.size
    for a, b in entry.iter_unpack(data[:whole]):
        if entry is OFFSET_ENTRY:
            typer.echo(f"offset: {base + a} position: {b}")
        else:
            typer.echo(f"timestamp: {a} offset: {base + b}")
    if len(data) % entry.size:
        typer.echo(f"{len(data) % entry.size} trailing bytes (a torn entry)")


def dump_txn_index(path: Path) -> None:
    for e in TransactionIndex(path).entries:
        typer.echo(f"version: 0 producerId: {e.producer_id} firstOffset: {e.first_offset} lastOffset: {e.last_offset} "
                   f"lastStableOffset: {e.last_stable_offset}")


def _optional(value: int) -> str:
    return "OptionalLong.empty" if value < 0 else f"OptionalLong[{value}]"  # as Java prints it


def dump_producer_snapshot(path: Path) -> int:
    try:
        state = ProducerState.from_snapshot(path.read_bytes())
    except CorruptSnapshotError as e:
        typer.echo(str(e), err=True)
        return 1
    for pid, p in state.producers.items():
        line = (f"producerId: {pid} producerEpoch: {p.epoch} coordinatorEpoch: {p.coordinator_epoch} "
                f"currentTxnFirstOffset: {_optional(p.txn_first_offset)} lastTimestamp: {p.last_timestamp} ")
        if p.batches:
            b = p.batches[-1]
            line += (f"firstSequence: {b.first_seq} lastSequence: {b.last_seq} lastOffset: {b.last_offset} "
                     f"offsetDelta: {b.last_offset - b.first_offset} timestamp: {p.last_timestamp}")
        typer.echo(line)
    return 0


def dump_segment(path: Path, records: bool, transaction_log_decoder: bool = False) -> int:
    """Print every batch (and record); returns the number of problems found."""
    data = path.read_bytes()
    pos = problems = 0
    while pos < len(data):
        if len(data) - pos < HEADER_SIZE:
            typer.echo(f"position: {pos} truncated: {len(data) - pos} bytes after the last complete batch")
            return problems + 1
        h = read_header(data, pos)
        if h.batch_length < MIN_BATCH_LENGTH or pos + h.size > len(data):
            typer.echo(f"position: {pos} invalid or truncated batch (length {h.batch_length})")
            return problems + 1
        crc_ok = crc_of(data, pos, h.size) == h.crc
        problems += not crc_ok
        time_type = "LogAppendTime" if h.timestamp_type else "CreateTime"
        typer.echo(
            f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.record_count} "
            f"baseSequence: {h.base_sequence} lastSequence: {h.last_sequence} producerId: {h.producer_id} "
            f"producerEpoch: {h.producer_epoch} partitionLeaderEpoch: {h.partition_leader_epoch} "
            f"isTransactional: {str(h.is_transactional).lower()} isControl: {str(h.is_control).lower()} "
            f"deleteHorizonMs: {h.delete_horizon_ms if h.attributes & DELETE_HORIZON_BIT else 'none'} position: {pos} "
            f"{time_type}: {h.max_timestamp} size: {h.size} "
            f"magic: {h.magic} compresscodec: {compression.codec_name(h.compression)} crc: {h.crc} "
            f"isvalid: {str(crc_ok).lower()}")
        if records and crc_ok:
            try:
                for r in iter_records(data, pos, h):
                    line = (f"| offset: {r.offset} {time_type}: {r.timestamp} "
                            f"keySize: {-1 if r.key is None else len(r.key)} "
                            f"valueSize: {-1 if r.value is None else len(r.value)}")
                    if h.is_control:
                        cr = parse_control_record(r)
                        if cr.type in (ABORT, COMMIT):
                            line += f" endTxnMarker: {CONTROL_TYPES[cr.type]} coordinatorEpoch: {cr.coordinator_epoch}"
                        else:
                            line += f" controlType: {CONTROL_TYPES.get(cr.type, 'UNKNOWN')}({cr.type})"
                    elif transaction_log_decoder:
                        key, payload = transaction_log.format_record(r.key, r.value)
                        line += f" key: {key}" + (f" payload: {payload}" if payload is not None else "")
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
    path: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="A .log segment, .index, .timeindex or .txnindex file, or a .snapshot."),
    records: bool = typer.Option(True, "--records/--no-records", help="Print each record, not only batch headers."),
    transaction_log_decoder: bool = typer.Option(False, "--transaction-log-decoder",
                                                 help="Decode the records as __transaction_state records."),
) -> None:
    """Print the batches and records of a segment file (or the entries of an index file, or the
    producers of a producer state snapshot)."""
    typer.echo(f"Dumping {path}")
    if path.name.endswith(".timeindex"):
        dump_index(path, TIME_ENTRY)
    elif path.name.endswith(".index"):
        dump_index(path, OFFSET_ENTRY)
    elif path.name.endswith(".txnindex"):
        dump_txn_index(path)
    elif path.name.endswith(".snapshot"):
        if dump_producer_snapshot(path):
            raise typer.Exit(1)
    elif dump_segment(path, records, transaction_log_decoder):
        raise typer.Exit(1)
