"""The schema model: Kafka's message specs as typed Python objects.

Reads the JSON files under `protocol_specs/` (already stripped of prose by the import tool) and
answers the questions the code generator asks: which fields exist in a version, which are tagged,
nullable or flexible, what their defaults are. Nothing here encodes or decodes bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_VERSION = 0x7FFF

PRIMITIVES = {"int8", "int16", "int32", "int64", "uint16", "float64", "bool", "uuid", "string", "bytes", "records"}
FIXED_WIDTH = {"int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint16": 2, "float64": 8, "bool": 1, "uuid": 16}


@dataclass(frozen=True)
class Versions:
    """An inclusive version range; `Versions.NONE` is empty."""

    lo: int
    hi: int

    @classmethod
    def parse(cls, text: str | None, default: Versions | None = None) -> Versions:
        if text is None:
            if default is None:
                raise ValueError("missing version range")
            return default
        text = str(text).strip()
        if text == "none":
            return NONE
        if text.endswith("+"):
            return cls(int(text[:-1]), MAX_VERSION)
        if "-" in text:
            lo, hi = text.split("-")
            return cls(int(lo), int(hi))
        return cls(int(text), int(text))

    def __contains__(self, version: int) -> bool:
        return self.lo <= version <= self.hi

    @property
    def empty(self) -> bool:
        return self.lo > self.hi

    def intersect(self, other: Versions) -> Versions:
        return Versions(max(self.lo, other.lo), min(self.hi, other.hi))

    def __str__(self) -> str:
        if self.empty:
            return "none"
        if self.hi == MAX_VERSION:
            return f"{self.lo}+"
        return str(self.lo) if self.lo == self.hi else f"{self.lo}-{self.hi}"


NONE = Versions(0, -1)


def snake(name: str) -> str:
    """Kafka's CamelCase field names as Python identifiers: `PartitionIndex` -> `partition_index`."""
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


@dataclass
class FieldType:
    """`int32`, `string`, `[]int32`, `[]SomeStruct`, `SomeStruct`."""

    name: str  # the element type for arrays
    is_array: bool = False

    @classmethod
    def parse(cls, text: str) -> FieldType:
        text = text.strip()
        if text.startswith("[]"):
            return cls(text[2:], True)
        return cls(text, False)

    @property
    def is_struct(self) -> bool:
        return self.name not in PRIMITIVES

    @property
    def is_primitive(self) -> bool:
        return self.name in PRIMITIVES

    def __str__(self) -> str:
        return ("[]" if self.is_array else "") + self.name


@dataclass
class FieldSpec:
    name: str
    type: FieldType
    versions: Versions
    nullable_versions: Versions = NONE
    tagged_versions: Versions = NONE
    tag: int | None = None
    default: object = None  # the raw JSON default, interpreted by `default_value`
    map_key: bool = False
    ignorable: bool = False
    entity_type: str | None = None
    flexible_versions: Versions | None = None  # a per-field override (RequestHeader.ClientId)
    zero_copy: bool = False  # bytes decoded as a view into the buffer, not a copy
    fields: list[FieldSpec] = field(default_factory=list)

    @property
    def py_name(self) -> str:
        return snake(self.name)

    def present(self, version: int) -> bool:
        return version in self.versions

    def tagged(self, version: int) -> bool:
        return version in self.tagged_versions

    def nullable(self, version: int) -> bool:
        return version in self.nullable_versions

    @property
    def ever_nullable(self) -> bool:
        return not self.nullable_versions.empty

    def default_repr(self) -> str:
        """The default as a Python expression (evaluated fresh each time for mutable values)."""
        t, d = self.type, self.default
        if t.is_array:
            return "None" if _is_null(d) else "[]"
        if t.is_struct:
            return "None" if _is_null(d) or self.ever_nullable else f"{t.name}()"
        if _is_null(d):
            if not self.ever_nullable:
                raise ValueError(f"field {self.name}: null default for a non-nullable field")
            return "None"
        n = t.name
        if n in ("int8", "int16", "int32", "int64", "uint16"):
            if d is None or d == "":
                return "0"
            return str(int(str(d), 0))
        if n == "float64":
            return repr(float(d)) if d is not None else "0.0"
        if n == "bool":
            return "True" if str(d).lower() == "true" else "False"
        if n == "string":
            return repr(d if d is not None else "")
        if n == "uuid":
            return "ZERO_UUID"
        if n == "bytes":
            return "b''"
        if n == "records":
            return "None"
        raise ValueError(f"field {self.name}: no default for type {n}")


def _is_null(d: object) -> bool:
    return d == "null"


@dataclass
class StructSpec:
    name: str
    versions: Versions
    fields: list[FieldSpec]


@dataclass
class MessageSpec:
    name: str
    type: str  # request, response, header, data, metadata
    valid_versions: Versions
    flexible_versions: Versions
    fields: list[FieldSpec]
    api_key: int | None = None
    deprecated_versions: Versions = NONE
    latest_version_unstable: bool = False
    listeners: list[str] = field(default_factory=list)
    common_structs: list[StructSpec] = field(default_factory=list)
    source: str = ""  # path relative to protocol_specs/

    def flexible(self, version: int) -> bool:
        return version in self.flexible_versions

    def structs(self) -> dict[str, StructSpec]:
        """Every struct type used by the message, by name, inner structs first."""
        out: dict[str, StructSpec] = {}
        common = {s.name: s for s in self.common_structs}

        def visit(fields: list[FieldSpec]) -> None:
            for f in fields:
                if not f.type.is_struct:
                    continue
                if f.fields:
                    spec = StructSpec(f.type.name, f.versions, f.fields)
                elif f.type.name in common:
                    spec = common[f.type.name]
                else:
                    raise ValueError(f"{self.name}: unknown struct type {f.type.name}")
                visit(spec.fields)
                if f.type.name not in out:
                    out[f.type.name] = spec

        for s in self.common_structs:
            visit(s.fields)
        visit(self.fields)
        return out


def _field(obj: dict) -> FieldSpec:
    # A tagged field may leave `versions` out: it exists exactly where it is tagged.
    tagged = Versions.parse(obj.get("taggedVersions"), NONE)
    versions = Versions.parse(obj.get("versions"), None if tagged.empty else tagged)
    return FieldSpec(
        name=obj["name"],
        type=FieldType.parse(obj["type"]),
        versions=versions,
        nullable_versions=Versions.parse(obj.get("nullableVersions"), NONE),
        tagged_versions=tagged,
        tag=int(obj["tag"]) if "tag" in obj else None,
        default="null" if "default" in obj and obj["default"] is None else obj.get("default"),
        map_key=bool(obj.get("mapKey", False)),
        ignorable=bool(obj.get("ignorable", False)),
        entity_type=obj.get("entityType"),
        flexible_versions=Versions.parse(obj["flexibleVersions"]) if "flexibleVersions" in obj else None,
        zero_copy=bool(obj.get("zeroCopy", False)),
        fields=[_field(f) for f in obj.get("fields", [])],
    )


def parse_message(obj: dict, source: str = "") -> MessageSpec:
    return MessageSpec(
        name=obj["name"],
        type=obj["type"],
        api_key=obj.get("apiKey"),
        valid_versions=Versions.parse(obj["validVersions"]),
        flexible_versions=Versions.parse(obj.get("flexibleVersions"), NONE),
        deprecated_versions=Versions.parse(obj.get("deprecatedVersions"), NONE),
        latest_version_unstable=bool(obj.get("latestVersionUnstable", False)),
        listeners=list(obj.get("listeners", [])),
        fields=[_field(f) for f in obj.get("fields", [])],
        common_structs=[
            StructSpec(s["name"], Versions.parse(s.get("versions"), Versions(0, MAX_VERSION)),
                       [_field(f) for f in s.get("fields", [])])
            for s in obj.get("commonStructs", [])
        ],
        source=source,
    )


def load_specs(root: Path) -> list[MessageSpec]:
    """Every spec under `root` (the project's protocol_specs/), sorted by path."""
    specs = []
    for path in sorted(root.rglob("*.json")):
        rel = path.relative_to(root).as_posix()
        specs.append(parse_message(json.loads(path.read_text()), rel))
    return specs
