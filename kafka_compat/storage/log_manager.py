"""All partition logs of a broker across its log directories (Kafka's LogManager).

Per log directory: partition directories `<topic>-<partition>/`, the checkpoint files
recovery-point-offset-checkpoint, log-start-offset-checkpoint, replication-offset-checkpoint (high
watermarks) and cleaner-offset-checkpoint, and `.kafka_cleanshutdown` while stopped cleanly.

The marker is written by `close()` after every log is flushed and every checkpoint written, and
removed as soon as the logs are open, so any later crash counts as unclean and the next start
re-validates data written after the recovery points.

Maintenance is pull-based: the broker calls `run_retention`, `flush_due`, `delete_expired_files`,
`remove_expired_producers` and `checkpoint` periodically from a trio task, and `clean_once` through
`trio.to_thread` (it holds no lock while it reads and writes; logs keep taking appends and reads
meanwhile).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from kafka_compat.storage import checkpoint, cleaner
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log import Log, parse_dir_name, wall_clock_ms
from kafka_compat.storage.producer_state import ProducerStateConfig

log = structlog.get_logger("kafka_compat.storage")

CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
METADATA_TOPIC = "__cluster_metadata"
DELETE_SUFFIX = "-delete"


class LogManager:
    """Open every partition found in `log_dirs` (recovering as needed) and manage them.

    `config_for(topic)` gives a topic's LogConfig (its overrides on top of the broker defaults);
    topics it does not know get `default_config`. `fsync_on_append` is the broker-level
    `log.fsync.on.append` option: every append is synced (`Log.sync`) before it is acknowledged.
    `producer_config` holds the broker's producer settings (producer.id.expiration.ms,
    transaction.partition.verification.enable). Raises OSError if a log directory cannot be read
    or created.
    """

    def __init__(self, log_dirs: Iterable[str | Path], default_config: LogConfig | None = None, *,
                 config_for: Callable[[str], LogConfig | None] | None = None, fsync_on_append: bool = False,
                 clock: Callable[[], int] = wall_clock_ms, producer_config: ProducerStateConfig | None = None):
        self.log_dirs = [Path(d) for d in log_dirs]
        if not self.log_dirs:
            raise ValueError("at least one log directory is needed")
        self.default_config = default_config or LogConfig()
        self._config_for = config_for or (lambda topic: None)
        self.fsync_on_append = fsync_on_append
        self.clock = clock
        self.producer_config = producer_config
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, int], Log] = {}
        self._pending_dir_deletes: list[tuple[int, Path]] = []
        self._cleaning: set[tuple[str, int]] = set()
        for d in self.log_dirs:
            d.mkdir(parents=True, exist_ok=True)
            self._load_dir(d)

    def _config(self, topic: str) -> LogConfig:
        return self._config_for(topic) or self.default_config

    def _load_dir(self, d: Path) -> None:
        marker = d / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        recovery = checkpoint.read_offsets(d / checkpoint.RECOVERY_POINT)
        starts = checkpoint.read_offsets(d / checkpoint.LOG_START_OFFSET)
        hws = checkpoint.read_offsets(d / checkpoint.HIGH_WATERMARK)
        cleaned = checkpoint.read_offsets(d / checkpoint.CLEANER_OFFSET)
        loaded = 0
        for entry in sorted(os.listdir(d)):
            path = d / entry
            if not path.is_dir():
                continue
            if entry.endswith(DELETE_SUFFIX):
                shutil.rmtree(path, ignore_errors=True)  # a deletion the last run did not finish
                continue
            try:
                tp = parse_dir_name(entry)
            except ValueError:
                continue  # not ours (-future, -stray, or foreign directories)
            if tp[0] == METADATA_TOPIC:
                continue  # the metadata quorum's log, which the quorum opens itself
            lg = Log(path, self._config(tp[0]), recovery_point=recovery.get(tp, 0), log_start_offset=starts.get(tp, 0),
                     high_watermark=hws.get(tp, 0), clean_shutdown=clean, fsync_on_append=self.fsync_on_append,
                     clock=self.clock, producer_config=self.producer_config)
            lg.clean_offset = cleaned.get(tp, 0)
            self._logs[tp] = lg
            loaded += 1
        # One line a directory; a log that lost data in recovery has said so on its own line.
        log.info("logs_loaded", dir=str(d), logs=loaded, clean_shutdown=clean)
        if clean:
            marker.unlink()
            checkpoint.fsync_dir(d)

    # --- partitions --------------------------------------------------------------------------

    def get(self, topic: str, partition: int) -> Log | None:
        return self._logs.get((topic, partition))

    def logs(self) -> list[Log]:
        with self._lock:
            return list(self._logs.values())

    def create(self, topic: str, partition: int, config: LogConfig | None = None) -> Log:
        """The partition's log, created empty (in the log directory holding the fewest logs) if
        it does not exist. An existing log is returned as is."""
        with self._lock:
            existing = self._logs.get((topic, partition))
            if existing is not None:
                return existing
            d = self.log_dirs[0] if len(self.log_dirs) == 1 else self._emptiest_dir()
            lg = Log(d / f"{topic}-{partition}", config or self._config(topic), clean_shutdown=True,
                     fsync_on_append=self.fsync_on_append, clock=self.clock, producer_config=self.producer_config)
            self._logs[(topic, partition)] = lg
            log.debug("log_created", topic=topic, partition=partition, dir=str(d))
            return lg

    def _emptiest_dir(self) -> Path:
        """The log directory holding the fewest logs. A pass over every log: only with several
        directories (with one, creating 1,000 partitions would make a million passes)."""
        counts = {d: 0 for d in self.log_dirs}
        for lg in self._logs.values():
            counts[lg.dir.parent] = counts.get(lg.dir.parent, 0) + 1
        return min(self.log_dirs, key=lambda x: counts.get(x, 0))

    def delete(self, topic: str, partition: int) -> bool:
        """Close the log and rename its directory `<topic>-<partition>.<uuid>-delete`; the files
        are removed by `delete_expired_files` after file.delete.delay.ms (open FileSlices keep
        reading meanwhile). False if there was no such log."""
        with self._lock:
            lg = self._logs.pop((topic, partition), None)
        if lg is None:
            return False
        lg.close()
        target = lg.dir.with_name(f"{lg.dir.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
        os.replace(lg.dir, target)
        checkpoint.fsync_dir(target.parent)
        with self._lock:
            self._pending_dir_deletes.append((self.clock() + lg.config.file_delete_delay_ms, target))
        log.info("log_deleted", topic=topic, partition=partition, renamed_to=target.name)
        return True

    def update_config(self, topic: str, config: LogConfig | None = None) -> None:
        """A topic's config changed: apply it (or the current `config_for` answer) to its logs."""
        new = config or self._config(topic)
        for (t, _), lg in list(self._logs.items()):
            if t == topic:
                lg.update_config(new)

    # --- maintenance -------------------------------------------------------------------------

    def run_retention(self, now_ms: int) -> int:
        """Apply retention.ms / retention.bytes / log start offsets to every log; returns the number
        of segments deleted."""
        return sum(lg.delete_old_segments(now_ms) for lg in self.logs())

    def flush_due(self, now_ms: int) -> int:
        """fsync rolled segments and logs past flush.ms; returns how many logs flushed."""
        return sum(1 for lg in self.logs() if lg.flush_due(now_ms))

    def remove_expired_producers(self, now_ms: int) -> int:
        """Forget producers idle for producer.id.expiration.ms in every log (Kafka checks every
        producer.id.expiration.check.interval.ms); returns how many went."""
        return sum(lg.remove_expired_producers(now_ms) for lg in self.logs())

    def delete_expired_files(self, now_ms: int) -> int:
        """Remove retired segment files and deleted partition directories whose delay passed."""
        n = sum(lg.delete_expired_files(now_ms) for lg in self.logs())
        with self._lock:
            due = [p for t, p in self._pending_dir_deletes if t <= now_ms]
            self._pending_dir_deletes = [(t, p) for t, p in self._pending_dir_deletes if t > now_ms]
        for p in due:
            shutil.rmtree(p, ignore_errors=True)
        return n + len(due)

    def clean_once(self, now_ms: int) -> cleaner.CleanResult | None:
        """Compact the dirtiest compacted log that is due, if any (run it in a worker thread).
        A log is never cleaned by two threads at once."""
        candidates = []
        for lg in self.logs():
            key = (lg.topic, lg.partition)
            if key in self._cleaning:
                continue
            ratio = cleaner.needs_cleaning(lg, now_ms)
            if ratio is not None:
                candidates.append((ratio, key, lg))
        for _, key, lg in sorted(candidates, key=lambda c: -c[0]):
            with self._lock:
                if key in self._cleaning or self._logs.get(key) is not lg:
                    continue
                self._cleaning.add(key)
            try:
                return cleaner.clean(lg, now_ms)
            finally:
                with self._lock:
                    self._cleaning.discard(key)
        return None

    def checkpoint(self) -> None:
        """Write every log directory's recovery points, log start offsets, high watermarks and
        cleaner offsets (atomically, one file each)."""
        for d in self.log_dirs:
            logs = [lg for lg in self.logs() if lg.dir.parent == d]
            tp = [((lg.topic, lg.partition), lg) for lg in logs]
            checkpoint.write_offsets(d / checkpoint.RECOVERY_POINT, {k: lg.recovery_point for k, lg in tp})
            checkpoint.write_offsets(d / checkpoint.LOG_START_OFFSET, {k: lg.log_start_offset for k, lg in tp})
            checkpoint.write_offsets(d / checkpoint.HIGH_WATERMARK, {k: lg.high_watermark for k, lg in tp})
            checkpoint.write_offsets(d / checkpoint.CLEANER_OFFSET,
                                     {k: lg.clean_offset for k, lg in tp if lg.config.compact})

    def close(self) -> None:
        """Flush and close every log, write all checkpoints, then the clean-shutdown marker."""
        for lg in self.logs():
            lg.close()
        self.checkpoint()
        for d in self.log_dirs:
            checkpoint.write_atomically(d / CLEAN_SHUTDOWN_FILE, json.dumps({"version": 0, "brokerEpoch": -1}))
