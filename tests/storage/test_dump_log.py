"""The dump-log command prints batches, records, index entries, producer snapshots and decoded
transaction log records."""

import struct

from typer.testing import CliRunner

from kafka_compat.cli.main import app
from kafka_compat.coordinator.transaction import records as transaction_log
from kafka_compat.coordinator.transaction.state import TxnState, TxnTransit
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import build_marker_batch
from kafka_compat.records.record import Record
from kafka_compat.records.validator import COORDINATOR, validate_records
from kafka_compat.storage import Log, LogConfig


def segment(tmp_path):
    log = Log(tmp_path / "t-0", LogConfig.from_dict({"index.interval.bytes": "1"}))
    for data in (build_batch([Record(b"key", b"hello", 5, [("h", b"1")])], compression=1),
                 build_batch([Record(b"key2", b"world", 6)]), build_marker_batch(True, 3, 0, 2, 7)):
        log.append(validate_records(data, log.config, 0, origin=COORDINATOR), 1)
    log.close()
    return tmp_path / "t-0" / "00000000000000000000.log"


def test_dump_log_prints_batches_and_records(tmp_path):
    out = CliRunner().invoke(app, ["dump-log", str(segment(tmp_path))])
    assert out.exit_code == 0, out.output
    assert "baseOffset: 0 lastOffset: 0 count: 1" in out.output and "compresscodec: gzip" in out.output
    assert "| offset: 1 CreateTime: 6 keySize: 4 valueSize: 5 headers: [] key: key2 payload: world" in out.output
    assert "headers: [h=1] key: key payload: hello" in out.output
    assert "endTxnMarker: COMMIT coordinatorEpoch: 2" in out.output and "isvalid: false" not in out.output


def test_dump_log_without_records_prints_headers_only(tmp_path):
    out = CliRunner().invoke(app, ["dump-log", "--no-records", str(segment(tmp_path))])
    assert out.exit_code == 0 and "| offset" not in out.output and out.output.count("baseOffset") == 3


def test_dump_log_flags_a_corrupt_batch(tmp_path):
    path = segment(tmp_path)
    data = bytearray(path.read_bytes())
    data[70] ^= 0xFF
    path.write_bytes(data)
    out = CliRunner().invoke(app, ["dump-log", str(path)])
    assert out.exit_code == 1 and "isvalid: false" in out.output


def test_dump_log_prints_index_entries(tmp_path):
    path = segment(tmp_path)
    out = CliRunner().invoke(app, ["dump-log", str(path.with_suffix(".index"))])
    assert out.exit_code == 0 and "offset: 1 position:" in out.output
    out = CliRunner().invoke(app, ["dump-log", str(path.with_suffix(".timeindex"))])
    assert out.exit_code == 0 and "timestamp: 7 offset: 2" in out.output


def test_dump_log_prints_txnindex_entries_and_producer_snapshots(tmp_path):
    log = Log(tmp_path / "t-0", LogConfig())
    guard = log.verification_guard(7, 0, 1)
    data = build_batch([Record(b"k", b"v", 5)], producer_id=7, producer_epoch=1, base_sequence=0, transactional=True)
    log.append(validate_records(data, log.config, 0), 0, verification_guard=guard)
    log.append_marker(7, 1, 4, False, 0, 6)
    log.close()
    d = tmp_path / "t-0"
    out = CliRunner().invoke(app, ["dump-log", str(d / "00000000000000000000.txnindex")])
    assert "version: 0 producerId: 7 firstOffset: 0 lastOffset: 1 lastStableOffset: 2" in out.output
    out = CliRunner().invoke(app, ["dump-log", str(d / "00000000000000000002.snapshot")])
    assert ("producerId: 7 producerEpoch: 1 coordinatorEpoch: 4 currentTxnFirstOffset: OptionalLong.empty "
            "lastTimestamp: 6 firstSequence: 0 lastSequence: 0 lastOffset: 0 offsetDelta: 0") in out.output


def test_dump_log_names_kraft_control_records(tmp_path):
    log = Log(tmp_path / "m-0", LogConfig())
    leader_change = build_batch([Record(struct.pack(">hh", 0, 2), b"\x00\x00", 5)], control=True)
    log.append(validate_records(leader_change, log.config, 0, origin=COORDINATOR), 0)
    log.close()
    out = CliRunner().invoke(app, ["dump-log", str(tmp_path / "m-0" / "00000000000000000000.log")])
    assert "controlType: LEADER_CHANGE(2)" in out.output and "endTxnMarker" not in out.output


def test_dump_log_decodes_the_transaction_log(tmp_path):
    log = Log(tmp_path / "__transaction_state-0", LogConfig())
    transit = TxnTransit(42, -1, -1, 3, -1, 60000, TxnState.ONGOING, frozenset({("t", 1), ("t", 0)}), 10, 20, 2)
    for key, value in (transaction_log.record("my-txn", transit, 1), transaction_log.tombstone("gone")):
        log.append(validate_records(build_batch([Record(key, value, 5)]), log.config, 0, origin=COORDINATOR), 0)
    log.close()
    out = CliRunner().invoke(app, ["dump-log", "--transaction-log-decoder",
                                   str(tmp_path / "__transaction_state-0" / "00000000000000000000.log")])
    assert out.exit_code == 0, out.output
    assert ("key: transaction_metadata::transactionalId=my-txn payload: producerId:42,producerEpoch:3,state=Ongoing,"
            "partitions=[t-0,t-1],txnLastUpdateTimestamp=20,txnTimeoutMs=60000") in out.output
    assert "key: transaction_metadata::transactionalId=gone payload: <DELETE>" in out.output
