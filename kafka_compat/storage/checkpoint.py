"""Checkpoint files in Kafka's text format, written atomically.

Format: a version line (0), a count line, then one entry per line, fields separated by spaces.
Log-directory checkpoints (recovery-point-offset-checkpoint, log-start-offset-checkpoint,
replication-offset-checkpoint, cleaner-offset-checkpoint) hold "topic partition offset" entries;
a partition's leader-epoch-checkpoint holds "epoch start_offset" entries.

Writes go to `<name>.tmp`, are fsynced, renamed over the file, and the directory is fsynced, so a
crash leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import os
from pathlib import Path

RECOVERY_POINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET = "log-start-offset-checkpoint"
HIGH_WATERMARK = "replication-offset-checkpoint"
CLEANER_OFFSET = "cleaner-offset-checkpoint"
LEADER_EPOCH = "leader-epoch-checkpoint"
VERSION = 0


class CheckpointError(Exception):
    """A checkpoint file that does not parse; the caller decides (Kafka fails the log dir)."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text`: temp file, fsync, rename, fsync of the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = text.encode()
        while data:
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_entries(path: Path, entries: list[tuple]) -> None:
    lines = [str(VERSION), str(len(entries))] + [" ".join(str(f) for f in e) for e in entries]
    write_atomically(path, "\n".join(lines) + "\n")


def read_entries(path: Path, fields: int) -> list[list[str]]:
    """Entries of a checkpoint file as lists of strings; [] if the file does not exist."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    if len(lines) < 2 or lines[0].strip() != str(VERSION):
        raise CheckpointError(f"{path}: unknown checkpoint version or truncated file")
    try:
        count = int(lines[1])
    except ValueError:
        raise CheckpointError(f"{path}: bad entry count {lines[1]!r}") from None
    entries = [line.split() for line in lines[2:] if line.strip()]
    if count != len(entries) or any(len(e) != fields for e in entries):
        raise CheckpointError(f"{path}: expected {count} entries of {fields} fields")
    return entries


def read_offsets(path: Path) -> dict[tuple[str, int], int]:
    """A log-directory checkpoint: {(topic, partition): offset}."""
    try:
        return {(t, int(p)): int(o) for t, p, o in read_entries(path, 3)}
    except ValueError:
        raise CheckpointError(f"{path}: non-numeric partition or offset") from None


def write_offsets(path: Path, offsets: dict[tuple[str, int], int]) -> None:
    write_entries(path, [(t, p, o) for (t, p), o in sorted(offsets.items())])
