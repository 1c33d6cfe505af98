"""Mutated and random bytes through every decoder raise only DecodeError (or decode cleanly).

`make test` runs a bounded count per (message, version); `make fuzz` sets FUZZ_ITERATIONS higher.
"""

import os
import random
import struct

import pytest

from kafka_compat.protocol.codegen import attr
from kafka_compat.protocol.primitives import DecodeError, Uuid

from .strategies import message_class, spec_versions

ITERATIONS = int(os.environ.get("FUZZ_ITERATIONS", "25"))


def sample(spec, fields, version, owner, cls, rng):
    """A deterministic, well-filled object (arrays of one or two elements, every field set)."""
    kwargs = {}
    for f in fields:
        if not f.present(version):
            continue
        t = f.type
        def one(t=t):
            if t.is_struct:
                return sample(spec, spec.structs()[t.name].fields, version, getattr(cls, t.name), cls, rng)
            return {"int8": lambda: rng.randint(-128, 127), "int16": lambda: rng.randint(-300, 300),
                    "int32": lambda: rng.randint(-70000, 70000), "int64": lambda: rng.randint(-1 << 40, 1 << 40),
                    "uint16": lambda: rng.randint(0, 65535), "float64": lambda: rng.random(),
                    "bool": lambda: rng.random() < 0.5, "string": lambda: rng.choice(["", "a", "topic-é", "x" * 200]),
                    "bytes": lambda: os.urandom(rng.randint(0, 8)), "records": lambda: os.urandom(rng.randint(0, 300)),
                    "uuid": lambda: Uuid(os.urandom(16))}[t.name]()
        kwargs[attr(f)] = [one() for _ in range(rng.randint(1, 2))] if t.is_array else one()
    return owner(**kwargs)


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    op = rng.randrange(6)
    if op == 0 and b:  # flip bits
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1:  # truncate
        del b[rng.randrange(len(b) + 1):]
    elif op == 2:  # insert junk
        i = rng.randrange(len(b) + 1)
        b[i:i] = os.urandom(rng.randint(1, 8))
    elif op == 3 and len(b) >= 4:  # a huge or negative length somewhere
        i = rng.randrange(len(b) - 3)
        b[i:i + 4] = struct.pack(">i", rng.choice([-2, -1, 0x7FFFFFFF, 0x10000]))
    elif op == 4 and b:  # an over-long varint
        i = rng.randrange(len(b))
        b[i:i + 1] = b"\xff\xff\xff\xff\xff\xff\x01"
    else:  # random bytes
        b = bytearray(os.urandom(rng.randint(0, 64)))
    return bytes(b)


@pytest.mark.parametrize(("spec", "version"), [pytest.param(s, v, id=f"{s.name}-v{v}") for s, v in spec_versions()])
def test_decoders_raise_only_decode_error(spec, version):
    rng = random.Random(f"{spec.name}/{version}")
    cls = message_class(spec)
    data = sample(spec, spec.fields, version, cls, cls, rng).encode(version)
    assert cls.decode(data, version).encode(version) == data
    for _ in range(ITERATIONS):
        bad = mutate(data, rng)
        try:
            cls.decode(bad, version)
        except DecodeError as e:
            assert e.api == spec.name and e.version == version
            assert e.offset is None or 0 <= e.offset <= len(bad)
