"""Codecs: round trips, the wire variants Kafka clients write, and bounded decompression."""

import gzip
import os

import cramjam
import lz4.frame
import pytest
import zstandard

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression as c
from kafka_compat.records.errors import RecordsError

DATA = b"kafka compat " * 5000 + os.urandom(3000)


@pytest.mark.parametrize("codec", [c.NONE, c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD])
def test_round_trip(codec):
    assert c.decompress(codec, c.compress(codec, DATA), len(DATA)) == DATA


def test_snappy_writes_the_xerial_framing():
    assert c.compress(c.SNAPPY, DATA)[:8] == b"\x82SNAPPY\x00"


def test_raw_snappy_block_is_read():
    raw = bytes(cramjam.snappy.compress_raw(DATA))
    assert c.decompress(c.SNAPPY, raw, len(DATA)) == DATA


def test_multi_member_gzip_is_read_whole():
    data = gzip.compress(b"first ") + gzip.compress(b"second")
    assert c.decompress(c.GZIP, data, 100) == b"first second"


def test_lz4_with_kafka_3160_broken_header_checksum_reads_for_magic_0():
    broken = c.compress(c.LZ4, DATA, magic=0)
    assert broken != c.compress(c.LZ4, DATA)
    assert c.decompress(c.LZ4, broken, len(DATA), magic=0) == DATA
    with pytest.raises(RecordsError):
        c.decompress(c.LZ4, broken, len(DATA), magic=1)


@pytest.mark.parametrize("n", [0, 1, 5, 15, 16, 17, 31, 64, 100])
def test_xxh32_matches_lz4_content_checksum(n):
    data = os.urandom(n)
    frame = lz4.frame.compress(data, content_checksum=True, store_size=False)
    assert c.xxh32(data) == int.from_bytes(frame[-4:], "little")


@pytest.mark.parametrize("codec", [c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD])
def test_decompression_bomb_is_refused_with_message_too_large(codec):
    bomb = c.compress(codec, bytes(64 * 1024 * 1024))
    assert len(bomb) < 4 * 1024 * 1024
    with pytest.raises(RecordsError, match="inflate past 1048576") as e:
        c.decompress(codec, bomb, 1024 * 1024)
    assert e.value.code == ErrorCode.MESSAGE_TOO_LARGE


def test_zstd_frame_with_content_size_is_still_bounded():
    bomb = zstandard.ZstdCompressor(write_content_size=True).compress(bytes(32 * 1024 * 1024))
    with pytest.raises(RecordsError, match="inflate past"):
        c.decompress(c.ZSTD, bomb, 1000)


@pytest.mark.parametrize("codec", [c.GZIP, c.SNAPPY, c.LZ4, c.ZSTD])
def test_garbage_is_corrupt_message(codec):
    with pytest.raises(RecordsError) as e:
        c.decompress(codec, b"\x82SNAPPY\x00" + os.urandom(100) if codec == c.SNAPPY else os.urandom(100), 10000)
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


@pytest.mark.parametrize("codec", [c.GZIP, c.LZ4, c.ZSTD])
def test_truncated_stream_is_corrupt_message(codec):
    data = c.compress(codec, DATA)
    with pytest.raises(RecordsError) as e:
        c.decompress(codec, data[: len(data) // 2], len(DATA))
    assert e.value.code == ErrorCode.CORRUPT_MESSAGE


def test_unknown_codec_is_unsupported_compression_type():
    with pytest.raises(RecordsError) as e:
        c.decompress(6, b"x", 10)
    assert e.value.code == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
