"""Storage speed: produce-path appends against plain os.write, reads, recovery, offset lookups.

Prints one JSON line: {"bench": "storage", ...} with
- append_mb_s / raw_write_mb_s / append_ratio_vs_raw: 64 KiB magic-2 batches through
  `validate_records` (header checks + CRC-32C) and `Log.append` (offsets patched in place, one
  pwrite, index entries), against os.write of the same bytes to a plain file, in the same run;
- read_mb_s: sequential `Log.read` of the log in 1 MiB fetches, each FileSlice read into bytes;
- recover_s: reopening a log of --recover-mib MiB after an unclean stop (no clean marker, recovery
  point 0): every batch re-read and CRC-checked, indexes rebuilt;
- offset_lookup_us: `Log.read` of one batch at random offsets (segment + index lookup + header scan).

Usage: python benchmarks/storage.py [--append-mib 256] [--recover-mib 1024] [--dir PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import structlog

from kafka_compat.records.batch import iter_headers
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.records.validator import validate_records
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log import Log


def make_batch() -> bytearray:
    """A ~64 KiB uncompressed batch of 1 KiB records, as a producer would send it."""
    rng = random.Random(7)
    records = [Record(b"key-%d" % i, rng.randbytes(1000), 1_700_000_000_000 + i) for i in range(64)]
    return build_batch(records)


def bench_interleaved(raw_path: Path, log: Log, config: LogConfig, batch: bytearray, n: int) -> tuple[float, float]:
    """(raw seconds, append seconds) for n batches each, alternating one raw write and one append so
    both see the same page-cache and writeback conditions (which swing throughput severalfold)."""
    fd = os.open(raw_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    raw = bytes(batch)
    # The request buffer is reused: Log.append patches only the base offset and leader epoch (outside
    # the CRC); zeroing the base offset again makes it what a producer sends.
    view = memoryview(batch)
    zero = bytes(8)
    now = 1_700_000_000_000
    clock = time.perf_counter
    raw_s = append_s = 0.0
    try:
        for _ in range(n):
            t0 = clock()
            os.write(fd, raw)
            t1 = clock()
            view[:8] = zero
            log.append(validate_records(view, config, now), 1)
            t2 = clock()
            raw_s += t1 - t0
            append_s += t2 - t1
    finally:
        os.close(fd)
    return raw_s, append_s


def fill(log: Log, config: LogConfig, batch: bytearray, n: int) -> None:
    view = memoryview(batch)
    for _ in range(n):
        view[:8] = bytes(8)
        log.append(validate_records(view, config, 0), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--append-mib", type=int, default=256)
    ap.add_argument("--recover-mib", type=int, default=1024)
    ap.add_argument("--lookups", type=int, default=2000)
    ap.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    root = Path(tempfile.mkdtemp(prefix="storage-bench-", dir=args.dir))
    try:
        batch = make_batch()
        config = LogConfig.from_dict({"segment.bytes": str(256 * 1024 * 1024)})
        n = args.append_mib * 1024 * 1024 // len(batch)
        log = Log(root / "bench-0", config)
        raw_s, append_s = bench_interleaved(root / "raw.bin", log, config, batch, n)
        (root / "raw.bin").unlink()
        mib = n * len(batch) / 2**20
        append_mb_s, raw_mb_s = mib / append_s, mib / raw_s

        # Grow the same log to the recovery size, then read it all.
        more = args.recover_mib * 1024 * 1024 // len(batch) - log.log_end_offset // 64
        if more > 0:
            fill(log, config, batch, more)
        end = log.log_end_offset
        t = time.perf_counter()
        offset, total = 0, 0
        while offset < end:
            slices = log.read(offset, 1024 * 1024)
            data = b"".join(s.read() for s in slices)
            total += len(data)
            offset = _next_offset(data)
        read_mb_s = total / 2**20 / (time.perf_counter() - t)

        rng = random.Random(1)
        targets = [rng.randrange(end) for _ in range(args.lookups)]
        t = time.perf_counter()
        for o in targets:
            log.read(o, 1)
        lookup_us = (time.perf_counter() - t) / len(targets) * 1e6

        # Unclean stop: no close(), no checkpoint; reopen with recovery point 0.
        size_mib = log.size_in_bytes / 2**20
        del log
        t = time.perf_counter()
        reopened = Log(root / "bench-0", config, recovery_point=0, clean_shutdown=False)
        recover_s = time.perf_counter() - t
        assert reopened.log_end_offset == end, (reopened.log_end_offset, end)
        reopened.close()
        print(json.dumps({
            "bench": "storage",
            "batch_bytes": len(batch),
            "append_mb_s": round(append_mb_s, 1),
            "raw_write_mb_s": round(raw_mb_s, 1),
            "append_ratio_vs_raw": round(append_mb_s / raw_mb_s, 3),
            "read_mb_s": round(read_mb_s, 1),
            "recover_mib": round(size_mib),
            "recover_s": round(recover_s, 3),
            "offset_lookup_us": round(lookup_us, 1),
        }))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _next_offset(data: bytes) -> int:
    """The offset after the last batch in `data` (whole batches, as Log.read returns)."""
    last = None
    for _, h in iter_headers(data):
        last = h
    return last.next_offset


if __name__ == "__main__":
    main()
