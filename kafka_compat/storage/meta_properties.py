"""`meta.properties`: what formatting writes into every log directory (as `kafka-storage format`
does) and every start reads back: node.id, directory.id, cluster.id and the format version."""

from __future__ import annotations

from pathlib import Path

from kafka_compat import properties
from kafka_compat.storage.checkpoint import write_atomically

FILE_NAME = "meta.properties"


def read_meta_properties(log_dir: Path) -> dict[str, str] | None:
    """A log dir's `meta.properties`, or None if it is not formatted."""
    path = Path(log_dir) / FILE_NAME
    if not path.exists():
        return None
    return properties.read(path)


def write_meta_properties(log_dir: Path, node_id: int, cluster_id: str, directory_id: str) -> None:
    """Format a log dir (atomically), creating it if needed."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(log_dir / FILE_NAME,
                     f"#\nnode.id={node_id}\ndirectory.id={directory_id}\nversion=1\ncluster.id={cluster_id}\n")
