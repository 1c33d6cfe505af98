"""Import Kafka's JSON schemas into the project's own `protocol_specs/`.

Kafka publishes its wire and record formats as commented JSON files spread over several source
folders, and ships each folder as resources inside one of its jars (kafka-clients holds the wire
protocol under `common/message/`; kafka-metadata, kafka-raft, kafka-group-coordinator and
kafka-transaction-coordinator the record schemas). This tool copies the facts the code generator
needs (names, types, versions, tags, defaults, ...) and drops the prose (`about` texts and
comments), so upgrading to a newer Kafka release is: point this at the release's jars (or its
source tree), run `make specs`, implement the new fields.
"""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka_compat.protocol.schema import MAX_VERSION, NONE, FieldSpec, MessageSpec, Versions, parse_message


@dataclass(frozen=True)
class Location:
    """Where Kafka keeps one of our folders: in a source tree, in a flat copy of the schema folders,
    and in a release's jars (the artifact and the resource folder inside it)."""

    tree: str
    flat: str
    artifact: str
    resources: str


SOURCES = {
    "message": Location("clients/src/main/resources/common/message", "message", "kafka-clients", "common/message"),
    "metadata": Location("metadata/src/main/resources/common/metadata", "metadata", "kafka-metadata",
                         "common/metadata"),
    "raft": Location("raft/src/main/resources/common/message", "raft", "kafka-raft", "common/message"),
    "group-coordinator-records": Location("group-coordinator/src/main/resources/common/message",
                                          "group-coordinator-records", "kafka-group-coordinator", "common/message"),
    "transaction-coordinator": Location("transaction-coordinator/src/main/resources/common/message",
                                        "transaction-coordinator", "kafka-transaction-coordinator", "common/message"),
}
ARTIFACTS = {loc.artifact: ours for ours, loc in SOURCES.items()}
JAR_NAME = re.compile(r"(?P<artifact>.+?)-(?P<version>\d[^/]*)\.jar$")

# From raft's folder only the quorum state file is ours; the rest of it duplicates message/.
ONLY = {"raft": {"QuorumStateData"}}

MESSAGE_KEYS = ("apiKey", "type", "name", "validVersions", "flexibleVersions", "deprecatedVersions",
                "latestVersionUnstable", "listeners", "fields", "commonStructs")
FIELD_KEYS = ("name", "type", "versions", "nullableVersions", "taggedVersions", "tag", "default", "mapKey",
              "ignorable", "entityType", "flexibleVersions", "zeroCopy", "fields")
STRUCT_KEYS = ("name", "versions", "fields")


class SpecImportError(Exception):
    """A source folder is missing or a schema cannot be read; the message says which."""


def strip_comments(text: str) -> str:
    """Remove `//` and `/* */` comments outside JSON strings (Kafka's files are commented JSON)."""
    out = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\":
                out.append(text[i + 1 : i + 2])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _keep(obj: dict, keys: tuple[str, ...]) -> dict:
    out = {}
    for k in keys:
        if k not in obj:
            continue
        v = obj[k]
        if k == "fields":
            v = [_keep(f, FIELD_KEYS) for f in v]
        elif k == "commonStructs":
            v = [_keep(s, STRUCT_KEYS) for s in v]
        out[k] = v
    unknown = set(obj) - set(keys) - {"about"}
    if unknown:
        raise SpecImportError(f"{obj.get('name')}: unknown schema keys {sorted(unknown)}; "
                              "teach specs_import about them")
    return out


# -- versions Kafka dropped -------------------------------------------------------------------------
# Kafka 4 removed the oldest versions of many requests (KIP-896), and with them the fields that only
# those versions had. kafka-compat keeps serving them for old clients, so a re-import keeps the
# versions the previous import had below the new release's lowest: a version's layout never changes
# between releases, so the union of the two schemas describes both. Every version is checked to
# lay out exactly as in the schema it came from.

_RANGE_KEYS = ("versions", "nullableVersions", "taggedVersions")


def keep_dropped_versions(old: dict, new: dict) -> dict:
    """`new` (a request, response or header schema) with the versions below its lowest that `old`
    had; `new` itself when it dropped none (or dropped the whole API, as Kafka 4 did the ZooKeeper
    era's inter-broker requests)."""
    old_valid, new_valid = Versions.parse(old["validVersions"]), Versions.parse(new["validVersions"])
    if new_valid.empty or old_valid.empty or old_valid.lo >= new_valid.lo:
        return new
    dropped = Versions(old_valid.lo, new_valid.lo - 1)
    merged = dict(new, validVersions=str(Versions(old_valid.lo, new_valid.hi)),
                  deprecatedVersions=new.get("deprecatedVersions", old.get("deprecatedVersions")))
    merged["fields"] = _merge_fields(old.get("fields", []), new.get("fields", []), dropped, new_valid.lo)
    if "commonStructs" in old or "commonStructs" in new:
        olds = {c["name"]: c for c in old.get("commonStructs", [])}
        news = [dict(c, fields=_merge_fields(olds[c["name"]]["fields"], c["fields"], dropped, new_valid.lo))
                if c["name"] in olds else c for c in new.get("commonStructs", [])]
        kept = {c["name"] for c in news}
        merged["commonStructs"] = news + [c for c in old.get("commonStructs", []) if c["name"] not in kept]
    merged = {k: merged[k] for k in MESSAGE_KEYS if merged.get(k) is not None}
    _check_layouts(merged, old, new, dropped)
    return merged


def _merge_fields(old: list[dict], new: list[dict], dropped: Versions, new_lo: int) -> list[dict]:
    """The new fields (with their ranges widened to what the old ones had in the dropped versions),
    and each field only the old schema has put back after the field it followed."""
    olds = {f["name"]: f for f in old}
    out = []
    for f in new:
        o = olds.get(f["name"])
        if o is not None:
            f = dict(f, **{k: _union(o.get(k), f.get(k), dropped, new_lo) for k in _RANGE_KEYS
                           if o.get(k) != f.get(k) and (k in o or k in f)})
            f = {k: v for k, v in f.items() if v is not None}
            if "fields" in o or "fields" in f:
                f["fields"] = _merge_fields(o.get("fields", []), f.get("fields", []), dropped, new_lo)
        out.append(f)
    names = {f["name"] for f in new}
    for i, f in enumerate(old):
        if f["name"] in names:
            continue
        before = next((g["name"] for g in reversed(old[:i]) if any(h["name"] == g["name"] for h in out)), None)
        at = 0 if before is None else next(j for j, h in enumerate(out) if h["name"] == before) + 1
        out.insert(at, f)
    return out


def _union(old: str | None, new: str | None, dropped: Versions, new_lo: int) -> str | None:
    """A range that is `old` over the dropped versions and `new` from `new_lo` on."""
    below = Versions.parse(old, NONE).intersect(dropped)
    above = Versions.parse(new, NONE).intersect(Versions(new_lo, MAX_VERSION))
    if below.empty or above.empty:
        merged = above if below.empty else below
    elif below.hi + 1 == above.lo:
        merged = Versions(below.lo, above.hi)
    else:
        raise SpecImportError(f"ranges {old} and {new} do not join over the dropped versions {dropped}")
    return None if merged.empty else str(merged)


def _check_layouts(merged: dict, old: dict, new: dict, dropped: Versions) -> None:
    m, o, n = (parse_message(x) for x in (merged, old, new))
    for v in range(m.valid_versions.lo, m.valid_versions.hi + 1):
        want = o if v in dropped else n
        if _layout(m, v) != _layout(want, v):
            raise SpecImportError(f"{m.name} v{v}: keeping the versions Kafka dropped changes its layout; "
                                  "teach specs_import to merge this schema")


def _layout(spec: MessageSpec, v: int) -> tuple:
    """What decides the bytes of version `v`: each field present (name, type, nullable, tagged with
    its tag and default, per-field flexibility) in order, nested structs included."""
    structs = {c.name: c.fields for c in spec.common_structs}

    def walk(fields: list[FieldSpec]) -> tuple:
        return tuple((f.name, str(f.type), f.nullable(v), f.tag if f.tagged(v) else None,
                      f.default if f.tagged(v) else None,
                      f.flexible_versions is not None and v in f.flexible_versions,
                      walk(f.fields or (structs.get(f.type.name, []) if f.type.is_struct else [])))
                     for f in fields if f.present(v))

    return spec.flexible(v), walk(spec.fields)


class Source:
    """One place schemas come from: a release's jar, a source tree or a flat copy of the schema
    folders. `folders` maps each of our folders it holds to a reader of its (name, text) files."""

    def __init__(self, path: Path):
        self.path = path
        self.folders: dict[str, Callable[[], Iterable[tuple[str, str]]]] = {}
        if path.is_file() and path.suffix == ".jar":
            match = JAR_NAME.match(path.name)
            ours = ARTIFACTS.get(match["artifact"]) if match else None
            if ours is None:
                raise SpecImportError(f"{path}: not one of the jars that hold Kafka's schemas "
                                      f"({', '.join(sorted(ARTIFACTS))})")
            self.folders[ours] = lambda: self._jar_files(SOURCES[ours].resources)
        elif path.is_dir():
            for ours, loc in SOURCES.items():
                folder = next((path / rel for rel in (loc.tree, loc.flat) if (path / rel).is_dir()), None)
                if folder is not None:
                    self.folders[ours] = lambda folder=folder: ((p.name, p.read_text())
                                                                for p in sorted(folder.glob("*.json")))
        else:
            raise SpecImportError(f"{path}: neither a Kafka jar nor a folder")
        if not self.folders:
            raise SpecImportError(f"{path}: no schema folder in it (looked for "
                                  f"{[loc.tree for loc in SOURCES.values()]} and {list(SOURCES)})")

    def _jar_files(self, resources: str) -> Iterator[tuple[str, str]]:
        with zipfile.ZipFile(self.path) as jar:
            names = sorted(n for n in jar.namelist() if n.startswith(resources + "/") and n.endswith(".json")
                           and "/" not in n[len(resources) + 1:])
            for name in names:
                yield name.rsplit("/", 1)[1], jar.read(name).decode()

    def legal_file(self, name: str) -> bytes | None:
        """LICENSE or NOTICE: at a jar's root, or in or beside a folder."""
        if self.path.is_file():
            with zipfile.ZipFile(self.path) as jar:
                return jar.read(name) if name in jar.namelist() else None
        for p in (self.path / name, self.path.parent / name):
            if p.is_file():
                return p.read_bytes()
        return None


def import_specs(sources: Path | Iterable[Path], dest: Path) -> dict[str, int | None]:
    """Replace the folders of `dest` that `sources` hold with the facts from their schemas; return
    the count of schemas per folder (None: not in the sources, kept as it was).

    A source is a Kafka jar (kafka-clients, kafka-metadata, kafka-raft, kafka-group-coordinator,
    kafka-transaction-coordinator), a source tree or a flat copy of its schema folders; give the
    jars of one release together so that protocol_specs/ follows that release. The destination is
    written to a temporary sibling first and swapped in, so a failed import leaves it as it was.
    """
    sources = [Source(Path(p)) for p in ([sources] if isinstance(sources, str | Path) else sources)]
    dest = Path(dest)
    found: dict[str, Source] = {}
    for src in sources:
        for ours in src.folders:
            if ours in found:
                raise SpecImportError(f"{ours} is in both {found[ours].path} and {src.path}")
            found[ours] = src
    tmp = dest.with_name(dest.name + ".importing")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    counts: dict[str, int | None] = {}
    for ours in SOURCES:
        if ours not in found:
            if (dest / ours).is_dir():
                shutil.copytree(dest / ours, tmp / ours)
            counts[ours] = None
            continue
        (tmp / ours).mkdir()
        n = 0
        for name, text in found[ours].folders[ours]():
            if ours in ONLY and Path(name).stem not in ONLY[ours]:
                continue
            try:
                obj = json.loads(strip_comments(text))
            except json.JSONDecodeError as e:
                raise SpecImportError(f"{found[ours].path}: {name}: not JSON after stripping comments: {e}") from None
            kept = _keep(obj, MESSAGE_KEYS)
            previous = dest / ours / name
            if ours == "message" and kept["type"] in ("request", "response", "header") and previous.is_file():
                kept = keep_dropped_versions(json.loads(previous.read_text()), kept)
            (tmp / ours / name).write_text(json.dumps(kept, indent=1) + "\n")
            n += 1
        counts[ours] = n
    for name in ("LICENSE", "NOTICE"):
        text = next((t for t in (s.legal_file(name) for s in sources) if t is not None), None)
        if text is not None:
            (tmp / name).write_bytes(text)
        elif (dest / name).is_file():
            shutil.copyfile(dest / name, tmp / name)
    imported = "".join(f"- {ours}/: {found[ours].path.name}\n" if ours in found
                       else f"- {ours}/: kept from the previous import\n" for ours in SOURCES)
    (tmp / "README.md").write_text(
        "# protocol_specs\n\n"
        "Written by `kafka-compat specs import` (`make specs-import`) from Apache Kafka's JSON schemas\n"
        "(Apache License 2.0, see LICENSE and NOTICE): names, types, versions, tags and defaults only,\n"
        "no prose. Do not edit by hand; re-import instead. `make specs` generates the codecs from it.\n\n"
        "Imported from:\n\n" + imported
    )
    if dest.exists():
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old)
    else:
        tmp.rename(dest)
    return counts
