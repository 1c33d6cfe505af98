"""Kafka's compression codecs, with bounded decompression.

Codec ids are the low three bits of a batch's (or legacy wrapper message's) attributes. Every
decompressor here streams and stops as soon as the output would pass `max_size`, so a small batch
that inflates to gigabytes costs at most `max_size` bytes of memory before it is refused.

Wire formats, as Kafka's clients write them:
- gzip: a gzip stream (several members are read as one, like Java's GZIPInputStream).
- snappy: Java clients write the xerial framing (a 16-byte header, then length-prefixed raw snappy
  blocks of at most 32 KiB input); librdkafka writes one raw snappy block. Both are read. Writing
  uses xerial, for legacy message sets (as Kafka requires) and for v2 batches (as the Java client).
- lz4: the LZ4 frame format with independent blocks. Kafka before 0.10 (magic 0) computed the
  frame header checksum over the magic number too (KAFKA-3160); for magic 0 that checksum is
  ignored on read and written the same broken way, as Kafka does.
- zstd: a zstd frame.
"""

from __future__ import annotations

import io
import struct
import zlib

import cramjam
import lz4.frame
import zstandard

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records.errors import RecordsError, corrupt

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4
NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}
# The topic config compression.type spells "none" as "uncompressed"; "producer" is resolved by the caller.
BY_TOPIC_NAME = {"uncompressed": NONE, "none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_INT32 = struct.Struct(">i")
_CHUNK = 64 * 1024


def codec_name(codec: int) -> str:
    return NAMES.get(codec, f"unknown({codec})")


def check_codec(codec: int) -> None:
    if codec not in NAMES:
        raise RecordsError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def compress(codec: int, data, *, level: int | None = None, magic: int = 2) -> bytes:
    """Compress `data` (bytes-like) with `codec`; `level` None means the codec's Kafka default."""
    if codec == GZIP:
        # mtime=0 keeps output deterministic; level -1 is zlib's default, Kafka's too.
        return _gzip_compress(data, -1 if level is None else level)
    if codec == SNAPPY:
        return xerial_compress(data)
    if codec == LZ4:
        out = lz4.frame.compress(
            bytes(data), compression_level=0 if level is None else level, block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False, content_checksum=False, store_size=False)
        return _break_lz4_header_checksum(out) if magic == 0 else out
    if codec == ZSTD:
        return zstandard.ZstdCompressor(level=3 if level is None else level).compress(data)
    if codec == NONE:
        return bytes(data)
    raise RecordsError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def decompress(codec: int, data, max_size: int, *, magic: int = 2) -> bytes:
    """Decompress `data` to at most `max_size` bytes.

    Raises RecordsError MESSAGE_TOO_LARGE when the output would exceed `max_size` (no more than
    about `max_size` bytes are ever produced), CORRUPT_MESSAGE for undecodable input, and
    UNSUPPORTED_COMPRESSION_TYPE for an unknown codec.
    """
    try:
        if codec == GZIP:
            return _gzip_decompress(data, max_size)
        if codec == SNAPPY:
            return _snappy_decompress(data, max_size)
        if codec == LZ4:
            return _lz4_decompress(data, max_size, magic)
        if codec == ZSTD:
            return _zstd_decompress(data, max_size)
    except RecordsError:
        raise
    except Exception as e:  # each library has its own error types; all mean "not valid input"
        raise corrupt(f"cannot decompress {codec_name(codec)} data: {e}") from None
    if codec == NONE:
        if len(data) > max_size:
            raise _too_large(max_size)
        return bytes(data)
    raise RecordsError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, f"unknown compression codec {codec}")


def _too_large(max_size: int) -> RecordsError:
    return RecordsError(ErrorCode.MESSAGE_TOO_LARGE, f"compressed records inflate past {max_size} bytes")


def _gzip_compress(data, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _gzip_decompress(data, max_size: int) -> bytes:
    out = bytearray()
    rest = bytes(data)
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk = rest
        while True:
            out += d.decompress(chunk, max_size + 1 - len(out))
            if len(out) > max_size:
                raise _too_large(max_size)
            if d.eof:
                break
            chunk = d.unconsumed_tail
            if not chunk:
                raise corrupt("truncated gzip stream")
        rest = d.unused_data
    return bytes(out)


def xerial_compress(data) -> bytes:
    """Snappy in the xerial block framing that Java clients write."""
    view = memoryview(data)
    parts = [_XERIAL_HEADER]
    for i in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[i:i + _XERIAL_BLOCK]))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def _snappy_block(block, out: bytearray, max_size: int) -> None:
    # A raw snappy block starts with its uncompressed length, so the bound is checked before any work.
    if len(out) + cramjam.snappy.decompress_raw_len(block) > max_size:
        raise _too_large(max_size)
    out += cramjam.snappy.decompress_raw(block)


def _snappy_decompress(data, max_size: int) -> bytes:
    view = memoryview(data)
    out = bytearray()
    if len(view) >= 16 and view[:8] == _XERIAL_MAGIC:
        pos = 16
        while pos < len(view):
            if pos + 4 > len(view):
                raise corrupt("truncated xerial snappy block length")
            (n,) = _INT32.unpack_from(view, pos)
            pos += 4
            if n < 0 or pos + n > len(view):
                raise corrupt("truncated xerial snappy block")
            _snappy_block(bytes(view[pos:pos + n]), out, max_size)
            pos += n
    else:
        _snappy_block(bytes(view), out, max_size)
    return bytes(out)


def _lz4_decompress(data, max_size: int, magic: int) -> bytes:
    rest = bytes(data)
    if magic == 0:
        rest = _fix_lz4_header_checksum(rest)
    out = bytearray()
    while rest:
        d = lz4.frame.LZ4FrameDecompressor()
        chunk = rest
        while True:
            out += d.decompress(chunk, max_length=max_size + 1 - len(out))
            if len(out) > max_size:
                raise _too_large(max_size)
            if d.eof:
                break
            if d.needs_input:
                raise corrupt("truncated lz4 frame")
            chunk = b""
        rest = d.unused_data
    return bytes(out)


def _zstd_decompress(data, max_size: int) -> bytes:
    # The streaming reader bounds memory but returns a cut frame's output silently, so the frame
    # structure is walked first to refuse truncated input.
    _check_zstd_frames(bytes(data))
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(bytes(data)), read_across_frames=True) as r:
        out = bytearray()
        while True:
            chunk = r.read(min(_CHUNK, max_size + 1 - len(out)))
            if not chunk:
                return bytes(out)
            out += chunk
            if len(out) > max_size:
                raise _too_large(max_size)


def _check_zstd_frames(data: bytes) -> None:
    """Walk zstd frames (header, block headers, checksum) without decompressing; CORRUPT_MESSAGE
    if the input ends inside one or is not zstd at all."""
    pos, n = 0, len(data)
    while pos < n:
        if n - pos < 8:
            raise corrupt("truncated zstd frame")
        magic = int.from_bytes(data[pos:pos + 4], "little")
        if 0x184D2A50 <= magic <= 0x184D2A5F:  # a skippable frame
            pos += 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
            continue
        if magic != 0xFD2FB528:
            raise corrupt("not a zstd frame")
        fhd = data[pos + 4]
        single = fhd >> 5 & 1
        fcs = (single, 2, 4, 8)[fhd >> 6]  # frame content size field bytes
        pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
        while True:
            if pos + 3 > n:
                raise corrupt("truncated zstd block")
            bh = int.from_bytes(data[pos:pos + 3], "little")
            kind, size = bh >> 1 & 3, bh >> 3
            pos += 3 + (1 if kind == 1 else size)
            if kind == 3 or pos > n:
                raise corrupt("truncated or invalid zstd block")
            if bh & 1:
                break
        pos += 4 if fhd & 4 else 0
        if pos > n:
            raise corrupt("truncated zstd checksum")


# --- lz4 frame header checksum (KAFKA-3160) ---------------------------------------------------

def _lz4_descriptor_end(frame: bytes) -> int:
    """Index of the header checksum byte: after magic (4), FLG, BD and an optional content size."""
    if len(frame) < 7 or frame[:4] != b"\x04\x22\x4d\x18":
        raise corrupt("not an lz4 frame")
    return 6 + (8 if frame[4] & 0x08 else 0)


def _break_lz4_header_checksum(frame: bytes) -> bytes:
    hc = _lz4_descriptor_end(frame)
    return frame[:hc] + bytes([(xxh32(frame[:hc]) >> 8) & 0xFF]) + frame[hc + 1:]


def _fix_lz4_header_checksum(frame: bytes) -> bytes:
    hc = _lz4_descriptor_end(frame)
    return frame[:hc] + bytes([(xxh32(frame[4:hc]) >> 8) & 0xFF]) + frame[hc + 1:]


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M


def xxh32(data: bytes, seed: int = 0) -> int:
    """XXH32 (the lz4 frame checksum). Pure Python: only used on frame headers, a few bytes long."""
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M]
        while i + 16 <= n:
            for lane in range(4):
                (w,) = struct.unpack_from("<I", data, i)
                v[lane] = (_rotl((v[lane] + w * _P2) & _M, 13) * _P1) & _M
                i += 4
        h = _rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)
    else:
        h = seed + _P5
    h = (h + n) & _M
    while i + 4 <= n:
        (w,) = struct.unpack_from("<I", data, i)
        h = (_rotl((h + w * _P3) & _M, 17) * _P4) & _M
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * _P5) & _M, 11) * _P1) & _M
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M
    h ^= h >> 13
    h = (h * _P3) & _M
    return h ^ (h >> 16)
