"""Import Kafka's JSON schemas into the project's own `protocol_specs/`.

Kafka publishes its wire and record formats as commented JSON files spread over several source
folders. This tool copies the facts the code generator needs (names, types, versions, tags,
defaults, ...) and drops the prose (`about` texts and comments), so upgrading to a newer Kafka
release is: point this at the new source tree, run `make specs`, implement the new fields.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

# Our folder -> where Kafka keeps it, in a source tree and in a flat copy of the schema folders.
SOURCES = {
    "message": ("clients/src/main/resources/common/message", "message"),
    "metadata": ("metadata/src/main/resources/common/metadata", "metadata"),
    "raft": ("raft/src/main/resources/common/message", "raft"),
    "group-coordinator-records": ("group-coordinator/src/main/resources/common/message", "group-coordinator-records"),
    "transaction-coordinator": ("transaction-coordinator/src/main/resources/common/message", "transaction-coordinator"),
}

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


def find_folder(src: Path, ours: str) -> Path | None:
    for rel in SOURCES[ours]:
        p = src / rel
        if p.is_dir():
            return p
    return None


def import_specs(src: Path, dest: Path) -> dict[str, int]:
    """Replace `dest` with the facts from Kafka's schemas under `src`; return counts per folder.

    `src` is a Kafka source tree or a flat copy of its schema folders. The destination is
    written to a temporary sibling first and swapped in, so a failed import leaves it as it was.
    """
    src, dest = Path(src), Path(dest)
    folders = {ours: find_folder(src, ours) for ours in SOURCES}
    missing = [k for k, v in folders.items() if v is None]
    if missing:
        raise SpecImportError(f"{src}: no schema folder for {', '.join(missing)} "
                              f"(looked for {[SOURCES[m] for m in missing]})")
    tmp = dest.with_name(dest.name + ".importing")
    shutil.rmtree(tmp, ignore_errors=True)
    counts = {}
    for ours, folder in folders.items():
        (tmp / ours).mkdir(parents=True)
        n = 0
        for path in sorted(folder.glob("*.json")):
            if ours in ONLY and path.stem not in ONLY[ours]:
                continue
            try:
                obj = json.loads(strip_comments(path.read_text()))
            except json.JSONDecodeError as e:
                raise SpecImportError(f"{path}: not JSON after stripping comments: {e}") from None
            kept = _keep(obj, MESSAGE_KEYS)
            (tmp / ours / path.name).write_text(json.dumps(kept, indent=1) + "\n")
            n += 1
        counts[ours] = n
    for name in ("LICENSE", "NOTICE"):
        for p in (src / name, src.parent / name):
            if p.is_file():
                shutil.copyfile(p, tmp / name)
                break
    (tmp / "README.md").write_text(
        "# protocol_specs\n\n"
        "Written by `kafka-compat specs import` (`make specs-import`) from Apache Kafka's JSON schemas\n"
        "(Apache License 2.0, see LICENSE and NOTICE): names, types, versions, tags and defaults only,\n"
        "no prose. Do not edit by hand; re-import instead. `make specs` generates the codecs from it.\n"
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
