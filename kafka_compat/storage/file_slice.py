"""Byte ranges of segment files, handed to the network layer for `os.sendfile`."""

from __future__ import annotations

import os
from pathlib import Path


class SegmentFile:
    """An open segment file descriptor, shared by its segment and every FileSlice cut from it.

    The descriptor is closed when the last holder lets go (reference counting), not when the
    segment is deleted: a fetch result taken before retention or compaction removed the segment
    stays readable, as the file's inode lives while the descriptor is open.
    """

    __slots__ = ("fd", "path", "__weakref__")

    def __init__(self, path: Path, create: bool = False):
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        self.fd = os.open(path, flags, 0o644)
        self.path = path

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def __del__(self, _close=os.close):
        fd, self.fd = getattr(self, "fd", -1), -1
        if fd >= 0:
            _close(fd)


class FileSlice:
    """`length` bytes of a segment file from `position`, aligned to whole batches.

    For the network layer: `os.sendfile(sock_fd, slice.fileno(), slice.position, len(slice))`, or
    `slice.read()` where sendfile does not apply (TLS, down-conversion, tests). Holding the slice
    keeps the file open. If the log was truncated below the slice meanwhile (a replica
    truncation), fewer bytes are there: `read()` returns what remains, as a short sendfile would.
    """

    __slots__ = ("file", "position", "length")

    def __init__(self, file: SegmentFile, position: int, length: int):
        self.file, self.position, self.length = file, position, length

    def fileno(self) -> int:
        return self.file.fd

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        """The slice's bytes (short only if the file was truncated under it)."""
        data = os.pread(self.file.fd, self.length, self.position)
        if len(data) == self.length or not data:
            return data
        parts = [data]
        got = len(data)
        while got < self.length:
            more = os.pread(self.file.fd, self.length - got, self.position + got)
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def __repr__(self) -> str:
        return f"FileSlice({self.file.path.name}, position={self.position}, length={self.length})"
