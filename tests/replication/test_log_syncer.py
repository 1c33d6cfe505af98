"""log.fsync.on.append: appends are acknowledged once a log directory's worker thread synced them."""

import threading
import time
from types import SimpleNamespace

import trio

from kafka_compat.metadata.image import PartitionImage
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import Record, build_batch
from kafka_compat.replication.config import ReplicationConfig
from kafka_compat.replication.log_syncer import LogSyncer
from kafka_compat.replication.partition import Partition
from kafka_compat.replication.purgatory import Purgatory
from kafka_compat.storage import Log, LogConfig


class GatedLog(Log):
    """A log whose syncs are counted and, once done, wait for `gate` before they return."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.syncs = 0
        self.syncing = threading.Event()
        self.gate = threading.Event()

    def sync(self) -> int:
        synced = super().sync()
        self.syncs += 1
        self.syncing.set()
        self.gate.wait(10)
        return synced


def leader(tmp_path, purgatory: Purgatory, syncer: LogSyncer, log_class=Log) -> Partition:
    log = log_class(tmp_path / "t-0", LogConfig(), fsync_on_append=True)
    host = SimpleNamespace(config=ReplicationConfig(), broker_epoch=1, brokers={})
    p = Partition("t", 0, Uuid.random(), log, 1, lambda p: purgatory.notify(p.key), host, syncer.request)
    p.update(PartitionImage(0, (1,), (1,), 1, 0, 0), now_ms())
    return p


def now_ms() -> int:
    return int(time.time() * 1000)


def synced(p: Partition) -> None:
    p.synced(now_ms())


def append(p: Partition, value: bytes, acks: int) -> int:
    batch = build_batch([Record(value=value, timestamp=int(time.time() * 1000))])
    return p.append(bytearray(batch), acks, now_ms()).last_offset


async def wait_acknowledged(purgatory: Purgatory, p: Partition, acks: int, offset: int) -> None:
    deadline = trio.current_time() + 10
    while p.acknowledged_end(acks) <= offset:
        assert await purgatory.wait_any([p.key], deadline), f"offset {offset} never acknowledged for acks={acks}"


async def test_an_append_is_acknowledged_only_once_synced(tmp_path):
    purgatory = Purgatory()
    syncer = LogSyncer([tmp_path], synced)
    p = leader(tmp_path, purgatory, syncer)
    offset = append(p, b"a", acks=1)
    assert (p.acknowledged_end(1), p.acknowledged_end(-1), p.log.recovery_point) == (0, 0, 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        await wait_acknowledged(purgatory, p, 1, offset)
        assert p.acknowledged_end(-1) == p.log.recovery_point == p.log.log_end_offset == 1
        nursery.cancel_scope.cancel()


async def test_appends_made_while_a_sync_runs_share_the_next_one(tmp_path):
    purgatory = Purgatory()
    syncer = LogSyncer([tmp_path], synced)
    p = leader(tmp_path, purgatory, syncer, GatedLog)
    async with trio.open_nursery() as nursery:
        await nursery.start(syncer.run)
        append(p, b"first", acks=1)
        await trio.to_thread.run_sync(p.log.syncing.wait)
        # The first sync is held in its worker thread; the event loop goes on taking appends.
        last = [append(p, b"v%d" % i, acks=-1) for i in range(5)][-1]
        assert p.log.syncs == 1 and p.acknowledged_end(-1) == 1  # only "first" is on disk
        p.log.gate.set()
        await wait_acknowledged(purgatory, p, -1, last)
        assert p.log.syncs == 2 and p.log.recovery_point == 6
        nursery.cancel_scope.cancel()
