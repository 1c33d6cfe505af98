"""Java `.properties` files, as Kafka reads server.properties and meta.properties: `key=value` or
`key: value` lines, `#`/`!` comments, `\\` continuations."""

from __future__ import annotations

from pathlib import Path


def parse(text: str, source: str = "properties") -> dict[str, str]:
    """The key/value pairs of `text`; ValueError naming `source` for a line that is neither."""
    out: dict[str, str] = {}
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line[0] in "#!":
            continue
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep < 0:
            raise ValueError(f"{source}: line '{raw.strip()}' is not key=value")
        out[line[:sep].strip()] = line[sep + 1:].strip()
    return out


def read(path: Path) -> dict[str, str]:
    """`parse` of a file; OSError if it cannot be read."""
    return parse(Path(path).read_text(), str(path))
