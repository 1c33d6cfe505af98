"""The dump-log command prints batches, records and index entries."""

from typer.testing import CliRunner

from kafka_compat.cli.main import app
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
