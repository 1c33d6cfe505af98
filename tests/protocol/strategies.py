"""Hypothesis strategies for any generated message at any version, built from the schema model."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hypothesis import strategies as st

from kafka_compat.protocol import messages
from kafka_compat.protocol.codegen import attr
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.protocol.schema import FieldSpec, MessageSpec, load_specs

SPECS_DIR = Path(__file__).resolve().parents[2] / "protocol_specs"

INTS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}


@cache
def all_specs() -> tuple[MessageSpec, ...]:
    return tuple(load_specs(SPECS_DIR))


def spec_versions():
    """(spec, version) for every version of every spec: the whole codec surface."""
    for spec in all_specs():
        for v in range(spec.valid_versions.lo, spec.valid_versions.hi + 1):
            yield spec, v


def message_class(spec: MessageSpec):
    return getattr(messages, spec.name)


def primitive(name: str, nullable: bool):
    if name in INTS:
        bits = INTS[name]
        s = st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    elif name == "uint16":
        s = st.integers(0, 0xFFFF)
    elif name == "float64":
        s = st.floats(allow_nan=False)
    elif name == "bool":
        s = st.booleans()
    elif name == "string":
        s = st.text(max_size=12)
    elif name == "bytes":
        s = st.binary(max_size=24)
    elif name == "records":
        s = st.binary(max_size=64)
    elif name == "uuid":
        s = st.binary(min_size=16, max_size=16).map(Uuid)
    else:
        raise ValueError(name)
    return st.none() | s if nullable else s


def value(spec: MessageSpec, f: FieldSpec, version: int, cls):
    t = f.type
    if t.is_struct:
        elem = struct_of(spec, cls, t.name, version)
    else:
        elem = primitive(t.name, nullable=f.nullable(version) and not t.is_array)
    if t.is_array:
        s = st.lists(elem, max_size=3)
    else:
        s = elem
    if f.nullable(version) and (t.is_array or t.is_struct):
        s = st.none() | s
    return s


def unknown_tags(known: set[int]):
    tags = st.lists(st.integers(0, 40).filter(lambda t: t not in known), max_size=2, unique=True)
    return tags.flatmap(lambda ts: st.tuples(*[st.tuples(st.just(t), st.binary(max_size=6)) for t in sorted(ts)]))


def fields_strategy(spec: MessageSpec, fields: list[FieldSpec], version: int, cls, owner):
    kwargs = {}
    for f in fields:
        if f.present(version):
            kwargs[attr(f)] = value(spec, f, version, cls)
    if spec.flexible(version):
        known = {f.tag for f in fields if f.present(version) and f.tagged(version)}
        kwargs["_unknown_tags"] = st.none() | unknown_tags(known).map(lambda t: list(t) or None)
    return st.builds(owner, **kwargs)


def struct_of(spec: MessageSpec, cls, name: str, version: int):
    sspec = spec.structs()[name]
    return st.deferred(lambda: fields_strategy(spec, sspec.fields, version, cls, getattr(cls, name)))


def message(spec: MessageSpec, version: int):
    cls = message_class(spec)
    return fields_strategy(spec, spec.fields, version, cls, cls)
