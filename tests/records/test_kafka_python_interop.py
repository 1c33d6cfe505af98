"""Cross-implementation: kafka-python's record builders and readers against ours, every magic and codec.

kafka-python's snappy and magic-0 lz4 paths need python-snappy and xxhash, which are not installed;
they are given thin adapters over cramjam and our xxh32 (itself checked against lz4's own frame
checksums in test_compression), so kafka-python's xerial framing and KAFKA-3160 header code still run.
"""

import struct

import cramjam
import kafka.codec
import pytest
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from kafka_compat.records import compression as c
from kafka_compat.records.batch import check_crc, iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.control import build_marker_batch
from kafka_compat.records.legacy import build_message_set, down_convert, iter_legacy_records
from kafka_compat.records.record import Record, iter_records
from kafka_compat.records.validator import validate_records
from kafka_compat.storage.config import LogConfig

CODECS = [c.NONE, c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD]
NOW = 1_700_000_000_000


class _Snappy:
    @staticmethod
    def compress(data):
        return bytes(cramjam.snappy.compress_raw(bytes(data)))

    @staticmethod
    def decompress(data):
        return bytes(cramjam.snappy.decompress_raw(bytes(data)))


class _XXHash:
    class xxh32:
        def __init__(self, data):
            self.value = c.xxh32(bytes(data))

        def digest(self):
            return struct.pack(">I", self.value)


@pytest.fixture(autouse=True)
def kafka_python_codecs(monkeypatch):
    monkeypatch.setattr(kafka.codec, "snappy", _Snappy)
    monkeypatch.setattr(kafka.codec, "xxhash", _XXHash)


def their_records(magic, codec, n=4, headers=True):
    b = MemoryRecordsBuilder(magic, codec, 1 << 20, offset=0)
    for i in range(n):
        b.append(NOW + i, b"key%d" % i, b"value%d" % i * 20, [("h", b"x")] if magic == 2 and headers else None)
    b.close()
    return bytes(b.buffer())


def ours_from_any(data):
    if data[16] == 2:
        out = []
        for pos, h in iter_headers(data):
            check_crc(data, pos, h)
            out += [(r.offset, r.key, r.value, r.timestamp) for r in iter_records(data, pos, h)]
        return out
    return [(r.offset, r.key, r.value, r.timestamp) for _, r in iter_legacy_records(data, 1 << 20)]


def theirs_read(data):
    out = []
    for b in MemoryRecords(bytes(data)):
        for r in b:
            out.append((r.offset, r.key, r.value, r.timestamp))
    return out


CASES = [(m, k) for m in (0, 1, 2) for k in CODECS if not (k == c.ZSTD and m < 2)]


@pytest.mark.parametrize("magic,codec", CASES)
def test_kafka_python_batches_are_read_by_us(magic, codec):
    data = their_records(magic, codec)
    expected_ts = [-1] * 4 if magic == 0 else [NOW + i for i in range(4)]
    got = ours_from_any(data)
    # A producer's magic-1 wrapper offset is a placeholder (kafka-python writes 0, so the inner
    # relative offsets resolve below 0); the broker assigns real ones. Only the spacing matters.
    first = got[0][0]
    assert [(o - first, k, v, t) for o, k, v, t in got] == \
        [(i, b"key%d" % i, b"value%d" % i * 20, expected_ts[i]) for i in range(4)]


@pytest.mark.parametrize("magic,codec", CASES)
def test_kafka_python_produce_data_passes_validation(magic, codec):
    v = validate_records(their_records(magic, codec), LogConfig(), NOW)
    [(pos, h)] = v.batches
    assert h.magic == 2 and h.record_count == 4
    assert [r.value for r in iter_records(v.buffer, pos, h)] == [b"value%d" % i * 20 for i in range(4)]


@pytest.mark.parametrize("codec", CODECS)
def test_our_batches_are_read_by_kafka_python(codec):
    data = build_batch([Record(b"k%d" % i, b"v%d" % i, NOW + i, [("h", b"y")]) for i in range(5)], base_offset=30,
                       compression=codec, producer_id=9, producer_epoch=1, base_sequence=0)
    [batch] = list(MemoryRecords(bytes(data)))
    assert batch.validate_crc() and batch.producer_id == 9
    assert [(r.offset, r.key, r.value, r.timestamp, r.headers) for r in batch] == \
        [(30 + i, b"k%d" % i, b"v%d" % i, NOW + i, [("h", b"y")]) for i in range(5)]


def test_our_transaction_marker_is_read_by_kafka_python_as_a_control_record():
    [batch] = list(MemoryRecords(bytes(build_marker_batch(False, 3, 1, 7, NOW, base_offset=12))))
    [record] = list(batch)
    assert batch.is_control_batch and batch.is_transactional and record.abort


@pytest.mark.parametrize("magic,codec", [(m, k) for m in (0, 1) for k in (c.NONE, c.GZIP, c.SNAPPY, c.LZ4)])
def test_our_legacy_message_sets_are_read_by_kafka_python(magic, codec):
    data = build_message_set([Record(b"k%d" % i, b"v%d" % i, NOW + i, offset=50 + i) for i in range(3)], magic,
                             compression=codec)
    ts = [None] * 3 if magic == 0 else [NOW + i for i in range(3)]
    assert theirs_read(data) == [(50 + i, b"k%d" % i, b"v%d" % i, ts[i]) for i in range(3)]


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("codec", [c.NONE, c.GZIP, c.SNAPPY, c.LZ4])
def test_down_converted_fetch_data_is_read_by_kafka_python(magic, codec):
    data = build_batch([Record(b"k%d" % i, b"v%d" % i, NOW + i) for i in range(3)], base_offset=100, compression=codec)
    assert [o for o, *_ in theirs_read(down_convert(data, magic))] == [100, 101, 102]
