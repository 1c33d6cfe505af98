"""The metadata log as a one-voter quorum: `__cluster_metadata-0` on local disk.

Every change to what the cluster knows is a batch of metadata records appended here, fsynced, and
only then applied to the MetadataImage that handlers read. On start the whole log is replayed.
With one voter, "committed" means "on this node's disk"; the Raft quorum replaces this class with
the same surface (`write`, `image`, `add_listener`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

import structlog
import trio

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.records import decode_record, encode_record
from kafka_compat.protocol.primitives import Message
from kafka_compat.records import Record, build_batch, iter_headers, iter_records
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log import Log

log = structlog.get_logger("kafka_compat.metadata")

from kafka_compat.storage.log_manager import METADATA_TOPIC
Listener = Callable[[MetadataImage, MetadataImage], None]


class SingleVoterQuorum:
    """Owns the metadata log of a single-node cluster. `write` is the only way in."""

    def __init__(self, directory: Path, cluster_id: str, epoch: int = 1):
        self.dir = Path(directory) / f"{METADATA_TOPIC}-0"
        self.log = Log(self.dir, LogConfig.from_dict({"segment.bytes": str(64 << 20)}))
        self.epoch = epoch
        self.image = MetadataImage(cluster_id=cluster_id)
        self._listeners: list[Listener] = []
        self._lock = trio.Lock()
        self._replay()

    def _replay(self) -> None:
        data = self.log.read_bytes(self.log.log_start_offset, 1 << 62) if self.log.log_end_offset else b""
        view = memoryview(data)
        records, last = [], -1
        for pos, header in iter_headers(view):
            if header.is_control:
                continue
            for r in iter_records(view, pos, header):
                records.append(decode_record(r.value)[0])
            last = header.last_offset
        if records:
            self.image = self.image.apply(records, last)
            log.info("metadata_replayed", records=len(records), offset=last, topics=len(self.image.topics))
        self.log.high_watermark = self.log.log_end_offset

    def add_listener(self, listener: Listener) -> None:
        """Called with (old image, new image) after each applied write, in the writer's task."""
        self._listeners.append(listener)

    @property
    def lock(self) -> trio.Lock:
        """Held while deciding records from the current image and writing them, so that two
        admin requests cannot both pass their checks against the same image."""
        return self._lock

    async def write(self, records: Iterable[Message]) -> int:
        """Append `records` as one batch, make it durable, apply it; return its last offset."""
        records = list(records)
        if not records:
            return self.image.offset
        base = self.log.log_end_offset
        batch = build_batch([Record(value=encode_record(r)) for r in records], base_offset=base,
                            partition_leader_epoch=self.epoch)
        info = self.log.append_as_follower(batch)
        await trio.to_thread.run_sync(self.log.flush)
        self.log.high_watermark = info.last_offset + 1
        old, self.image = self.image, self.image.apply(records, info.last_offset)
        for listener in self._listeners:
            listener(old, self.image)
        return info.last_offset

    def close(self) -> None:
        self.log.close()


def read_meta_properties(log_dir: Path) -> dict[str, str] | None:
    """A log dir's `meta.properties` (node.id, cluster.id, directory.id, version), or None."""
    path = Path(log_dir) / "meta.properties"
    if not path.exists():
        return None
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def write_meta_properties(log_dir: Path, node_id: int, cluster_id: str, directory_id: str) -> None:
    """Format a log dir the way `kafka-storage format` does (atomically)."""
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    tmp = log_dir / "meta.properties.tmp"
    tmp.write_text(f"#\nnode.id={node_id}\ndirectory.id={directory_id}\nversion=1\ncluster.id={cluster_id}\n")
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, log_dir / "meta.properties")
