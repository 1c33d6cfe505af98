"""What the generated codecs stand on: errors, the Uuid type, varints, struct tables, base classes.

Generated code does no per-field interpretation at run time; it calls into this module only for
tables of `struct.Struct`s and the rare or bulky cases (long varints, tagged-field sections, long arrays).
"""

from __future__ import annotations

import base64
import os
import struct


class DecodeError(Exception):
    """Malformed bytes: truncated, a bad length, an over-long varint, invalid UTF-8, trailing data.

    The only exception generated decoders raise. `api` is the message name, `offset` the byte
    position (in the decoded buffer) where decoding failed.
    """

    def __init__(self, reason: str, offset: int | None = None, api: str | None = None, version: int | None = None):
        self.reason, self.offset, self.api, self.version = reason, offset, api, version
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.api} v{self.version}" if self.api is not None else "message"
        at = f" at byte {self.offset}" if self.offset is not None else ""
        return f"cannot decode {where}{at}: {self.reason}"


class EncodeError(Exception):
    """A value the requested version cannot carry (a non-default field the version lacks, a null in a
    non-nullable field, an integer out of range); Kafka raises UnsupportedVersionException here."""


class Uuid(bytes):
    """Kafka's 128-bit Uuid, printed as Kafka prints it (URL-safe base64, no padding)."""

    __slots__ = ()

    def __new__(cls, raw: bytes = bytes(16)):
        if len(raw) != 16:
            raise ValueError(f"a Uuid is 16 bytes, not {len(raw)}")
        return bytes.__new__(cls, raw)

    @classmethod
    def random(cls) -> Uuid:
        """A random Uuid that is neither zero nor Kafka's reserved metadata topic id (1)."""
        while True:
            u = cls(os.urandom(16))
            # Kafka never hands out ids whose string form starts with '-' (they read as CLI flags).
            if u not in (ZERO_UUID, METADATA_TOPIC_UUID) and u[0] >> 2 != 62:
                return u

    @classmethod
    def parse(cls, text: str) -> Uuid:
        return cls(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))

    def __str__(self) -> str:
        return base64.urlsafe_b64encode(self).rstrip(b"=").decode()

    def __repr__(self) -> str:
        return f"Uuid({str(self)!r})"


ZERO_UUID = Uuid()
METADATA_TOPIC_UUID = Uuid(bytes(15) + b"\x01")

# Precompiled Structs for the fixed-width reads generated code does one at a time.
INT8 = struct.Struct(">b")
INT16 = struct.Struct(">h")
INT32 = struct.Struct(">i")
INT64 = struct.Struct(">q")
UINT16 = struct.Struct(">H")
FLOAT64 = struct.Struct(">d")
BOOL = struct.Struct(">?")
UUID_ = struct.Struct(">16s")

_SMALL = 64


def _table(code: str) -> list[struct.Struct]:
    return [struct.Struct(f">{n}{code}") for n in range(_SMALL)]


# ARRAY[code][n] packs/unpacks n elements of a fixed-width type with one call; COMPACT_ARRAY[code][n]
# the same preceded by a one-byte compact count (n + 1).
ARRAY = {code: _table(code) for code in "bhiqHd?"}
COMPACT_ARRAY = {code: [struct.Struct(f">B{n}{code}") for n in range(_SMALL)] for code in "bhiqHd?"}


def array_struct(code: str, n: int) -> struct.Struct:
    return ARRAY[code][n] if n < _SMALL else struct.Struct(f">{n}{code}")


# The same tables as bound methods, which generated code calls without a method lookup:
# ARRAY_UNPACK[code][n] reads n elements; COMPACT_ARRAY_UNPACK[code][r] reads r - 1 elements, indexed by
# the raw compact count byte r (1..64) so the decoder needs no subtraction; COMPACT_ARRAY_PACK[code][n]
# writes the count byte n + 1 and n elements.
ARRAY_UNPACK = {code: [s.unpack_from for s in table] for code, table in ARRAY.items()}
COMPACT_ARRAY_UNPACK = {code: [None] + [s.unpack_from for s in table] for code, table in ARRAY.items()}
COMPACT_ARRAY_PACK = {code: [s.pack for s in table] for code, table in COMPACT_ARRAY.items()}


class PackShapes(dict):
    """`struct.Struct.pack` functions for a run of fields (fixed-width values, compact arrays of fixed-width
    values, compact strings) by the shape of the run: the lengths of its arrays (elements) and
    strings (bytes), an int for one, a tuple for several. Each is made on first use; a shape with a
    length over 126 (a multi-byte count) gets a slower packer that writes varints. Generated encoders
    write the run with one call: the fixed values in order, each array as its count + 1 then its
    elements (a string as its length + 1 then its bytes).

    `pieces` alternate fixed-width struct codes and element codes: ("hiii", "i", "", "i", "B")
    is four fixed values, an int32 array, another int32 array, one byte."""

    __slots__ = ("pieces",)
    LIMIT = 4096  # shapes kept; beyond, start over (a bound for adversarial variety)

    def __init__(self, *pieces: str):
        super().__init__()
        self.pieces = pieces

    def __missing__(self, key):
        lengths = key if type(key) is tuple else (key,)
        if len(self) >= self.LIMIT:
            self.clear()
        pieces = self.pieces
        if max(lengths) < 127:
            fmt = ">" + pieces[0] + "".join(f"B{n}{code}{fixed}"
                                            for n, code, fixed in zip(lengths, pieces[1::2], pieces[2::2]))
            pack = struct.Struct(fmt).pack
        else:
            pack = _long_packer(pieces, lengths)
        self[key] = pack
        return pack


def _long_packer(pieces: tuple, lengths: tuple):
    """A packer for a shape with multi-byte counts: the same arguments, written piece by piece."""
    steps = []  # (struct.Struct, values taken) for fixed pieces; (None, n) for a count then n values
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            if piece:
                fixed = struct.Struct(">" + piece)
                steps.append((fixed, len(fixed.unpack(bytes(fixed.size)))))
        else:
            n = lengths[i // 2]
            steps.append((None, 0))
            steps.append((struct.Struct(f">{n}{piece}"), 1 if piece == "s" else n))

    def pack(*args):
        out = bytearray()
        i = 0
        for st, take in steps:
            if st is None:
                out += uvarint(args[i])
                i += 1
            else:
                out += st.pack(*args[i:i + take])
                i += take
        return bytes(out)

    return pack


def read_array(buf, pos: int, code: str, compact: bool, nullable: bool) -> tuple[list | None, int]:
    """An array of fixed-width values with its count at `pos`: the rare cases generated decoders
    leave out of their fast path (null, long, negative or multi-byte counts)."""
    if compact:
        n, pos = read_uvarint(buf, pos)
        n -= 1
    else:
        n = INT32.unpack_from(buf, pos)[0]
        pos += 4
    if n < 0:
        if nullable and n == -1:
            return None, pos
        raise DecodeError("negative length" if nullable else "null or negative length in a non-nullable field", pos)
    end = pos + n * struct.calcsize(">" + code)
    if end > len(buf):
        raise DecodeError("array count past the end", pos)
    return [*array_struct(code, n).unpack_from(buf, pos)], end


def read_unknown_tags(buf, pos: int, obj) -> int:
    """Read a tagged-field section at `pos` whose tags the struct does not know; keep them on `obj`."""
    n, pos = read_uvarint(buf, pos)
    tags = []
    for _ in range(n):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        end = pos + size
        if end > len(buf):
            raise DecodeError("tagged field runs past the end", pos)
        tags.append((tag, bytes(buf[pos:end])))
        pos = end
    if tags:
        obj._unknown_tags = tags
    return pos


# One-byte unsigned varints, pre-built: the lengths of almost every compact string and array.
UVARINT1 = [bytes((i,)) for i in range(128)]
_UV2 = struct.Struct(">BB").pack
_UV3 = struct.Struct(">BBB").pack


def uvarint(value: int) -> bytes:
    """Unsigned varint (compact lengths, tags); negative values are an EncodeError.

    Unrolled to three bytes: record lengths (up to 2 MiB) take this path once per partition."""
    if value < 0x80:
        if value < 0:
            raise EncodeError(f"unsigned varint cannot hold {value}")
        return UVARINT1[value]
    if value < 0x4000:
        return _UV2(value & 0x7F | 0x80, value >> 7)
    if value < 0x200000:
        return _UV3(value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14)
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_uvarint(buf, pos: int) -> tuple[int, int]:
    """Read an unsigned 32-bit varint at `pos`; return (value, next position).

    Unrolled: record lengths (2-3 bytes) take this path once per partition on produce and fetch.
    A read past the end raises IndexError, which generated decoders report as truncation.
    """
    x = buf[pos]
    if x < 0x80:
        return x, pos + 1
    value = x & 0x7F
    x = buf[pos + 1]
    if x < 0x80:
        return value | x << 7, pos + 2
    value |= (x & 0x7F) << 7
    x = buf[pos + 2]
    if x < 0x80:
        return value | x << 14, pos + 3
    value |= (x & 0x7F) << 14
    x = buf[pos + 3]
    if x < 0x80:
        return value | x << 21, pos + 4
    value |= (x & 0x7F) << 21
    x = buf[pos + 4]
    if x > 0x0F:
        raise DecodeError("varint longer than 5 bytes or over 32 bits", pos)
    return value | x << 28, pos + 5


def write_tags(w, tags: list, unknown: list | None) -> None:
    """Write a tagged-field section: known (tag, bytes) pairs plus preserved unknown ones, by tag."""
    if unknown:
        tags = sorted(list(tags) + list(unknown), key=lambda t: t[0])
    w(uvarint(len(tags)))
    for tag, data in tags:
        w(uvarint(tag))
        w(uvarint(len(data)))
        w(data)


def join(parts: list) -> bytes:
    """Concatenate encoder output; parts that are not buffers (file slices) are read via `bytes()`."""
    try:
        return b"".join(parts)
    except TypeError:
        return b"".join(p if isinstance(p, (bytes, bytearray, memoryview)) else bytes(p) for p in parts)


class SchemaStruct:
    """Base of every generated data class (a struct of a Kafka schema: a message, or a struct
    nested in one): slots, equality by value, a readable repr.

    Decoders set only the fields they read. A field the decoded version lacks (or a tagged field
    that was not sent) is an unset slot until first read, which gives it its schema default.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _defaults: dict = {}  # field -> immutable default
    _factories: dict = {}  # field -> callable making a fresh mutable default (list, a struct class)
    _versions: dict = {}  # field -> (first, last) version that carries it

    @classmethod
    def has_field(cls, name: str, version: int) -> bool:
        lo, hi = cls._versions.get(name, (0, -1))
        return lo <= version <= hi

    def __getattr__(self, name: str):
        # Only reached when normal lookup failed: an unset slot, or a name that is no field.
        if name in self._defaults:
            value = self._defaults[name]
        elif name in self._factories:
            value = self._factories[name]()
        else:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}")
        setattr(self, name, value)
        return value

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields) and (
            (self._unknown_tags or None) == (other._unknown_tags or None)
        )

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({body})"


class Message(SchemaStruct):
    """Base of generated top-level messages: versioned encode/decode.

    `encode(version)` returns bytes; `encode_parts(version)` returns the buffers for a gather write:
    `records` values as given, so a large record blob is never copied, and one bytearray for each
    stretch before, between and after them. `decode(buf, version)` reads the whole buffer (bytes or bytearray; a
    memoryview is copied first): `records` values come out as memoryviews into it, not copies.
    """

    __slots__ = ()
    # Upper case so they never meet a field's snake_case name.
    NAME: str = ""
    API_KEY: int | None = None
    KIND: str = ""
    VALID_VERSIONS: tuple[int, int] = (0, 0)
    FLEXIBLE_VERSIONS: tuple[int, int] = (0, -1)
    DEPRECATED_VERSIONS: tuple[int, int] = (0, -1)
    LATEST_VERSION_UNSTABLE: bool = False
    LISTENERS: tuple[str, ...] = ()
    _encoders: dict = {}
    _decoders: dict = {}

    @classmethod
    def flexible(cls, version: int) -> bool:
        lo, hi = cls.FLEXIBLE_VERSIONS
        return lo <= version <= hi

    def encode_parts(self, version: int) -> list:
        try:
            enc = self._encoders[version]
        except KeyError:
            raise EncodeError(f"{self.NAME} has no version {version} (valid {self.VALID_VERSIONS})") from None
        parts: list = []
        try:
            enc(self, parts)
        except EncodeError as e:
            raise EncodeError(f"{self.NAME} v{version}: {e}") from None
        except (struct.error, AttributeError, TypeError, ValueError, OverflowError, UnicodeError) as e:
            raise EncodeError(f"{self.NAME} v{version}: bad field value: {e}") from None
        return parts

    def encode(self, version: int) -> bytes:
        return join(self.encode_parts(version))

    @classmethod
    def decode(cls, buf, version: int, offset: int = 0):
        """Decode `buf[offset:]` entirely; raise DecodeError for anything malformed or left over."""
        if type(buf) is memoryview:
            buf = buf.tobytes()  # decoders slice strings out of bytes; pass bytes to avoid this copy
        try:
            dec = cls._decoders[version]
        except KeyError:
            raise cls._no_version(version) from None
        try:
            obj, end = dec(buf, offset)  # not via decode_prefix: one call less on every request
        except DecodeError as e:
            raise cls._located(e, buf, version) from None
        if end != len(buf):
            # Every over-long length moves the position past the end, so this also catches those.
            reason = "a length runs past the end" if end > len(buf) else f"{len(buf) - end} trailing bytes"
            raise DecodeError(reason, min(end, len(buf)), cls.NAME, version)
        return obj

    @classmethod
    def decode_prefix(cls, buf: bytes, version: int, offset: int = 0):
        """Decode one message at `offset`; return (message, end offset). The end may lie past the
        buffer if a length was too long: callers must compare it with what they expected."""
        try:
            dec = cls._decoders[version]
        except KeyError:
            raise cls._no_version(version) from None
        try:
            return dec(buf, offset)
        except DecodeError as e:
            raise cls._located(e, buf, version) from None

    @classmethod
    def _no_version(cls, version: int) -> DecodeError:
        return DecodeError(f"no version {version} (valid {cls.VALID_VERSIONS})", None, cls.NAME, version)

    @classmethod
    def _located(cls, e: DecodeError, buf, version: int) -> DecodeError:
        e.api, e.version = cls.NAME, version
        if e.offset is not None and e.offset > len(buf):  # an over-long length ran past the end
            e.offset = len(buf)
        return e


def decode_failure(exc: Exception, pos: int) -> DecodeError:
    """Turn a low-level error raised inside a generated decoder into a DecodeError."""
    if isinstance(exc, DecodeError):
        return exc
    if isinstance(exc, (struct.error, IndexError)):
        return DecodeError("truncated", pos)
    if isinstance(exc, UnicodeDecodeError):
        return DecodeError("invalid UTF-8 in a string", pos)
    return DecodeError(f"{type(exc).__name__}: {exc}", pos)
