"""The `.lock` file that makes a log directory one process's own (Kafka's FileLock).

A node locks every log directory and its metadata log directory before it reads, formats or
recovers anything in them, and holds the locks for as long as it runs: a second node started on
the same directories (a second `make run`) stops at once instead of recovering, electing and
writing under the first. The lock is `fcntl.flock`, exclusive and non-blocking, on a file
descriptor kept open: the kernel drops it when the process ends, however it ends.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

LOCK_FILE = ".lock"


class DirLocked(Exception):
    """A directory is in use by another process (or cannot be locked), as one line naming it."""


class DirLocks:
    """Locks on `dirs`, taken in order by `acquire`; all or none are held.

    Directories that do not exist are created. `release(undo=True)` (after a start that failed)
    also removes the lock files and directories that `acquire` created, leaving the disk as it was.
    """

    def __init__(self) -> None:
        self._held: list[tuple[Path, int, bool]] = []  # (lock file, fd, file created here)
        self._created_dirs: list[Path] = []

    @classmethod
    def acquire(cls, dirs: Iterable[str | Path]) -> DirLocks:
        locks = cls()
        try:
            for d in dict.fromkeys(Path(d) for d in dirs):
                locks._lock(d)
        except BaseException:
            locks.release(undo=True)
            raise
        return locks

    def _lock(self, d: Path) -> None:
        missing = []
        for p in (d, *d.parents):
            if p.exists():
                break
            missing.append(p)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DirLocked(f"cannot create log directory {d}: {e.strerror}") from None
        self._created_dirs += reversed(missing)
        path = d / LOCK_FILE
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            created = True
        except FileExistsError:
            fd, created = os.open(path, os.O_RDWR), False
        except OSError as e:
            raise DirLocked(f"cannot create {path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DirLocked(f"{d} is in use by another process (it holds {path}); stop that broker "
                            "or give this one other log.dirs") from None
        self._held.append((path, fd, created))

    def release(self, *, undo: bool = False) -> None:
        """Unlock (idempotent). With `undo`, remove what `acquire` created, if still empty."""
        for path, fd, created in reversed(self._held):
            if undo and created:
                path.unlink(missing_ok=True)
            os.close(fd)
        self._held.clear()
        if undo:
            for d in reversed(self._created_dirs):
                try:
                    d.rmdir()
                except OSError:  # not empty: something else lives there now
                    pass
        self._created_dirs.clear()
