"""The Raft log: epochs, divergence arithmetic, durability, and the same contract on disk."""

import pytest

from kafka_compat.raft.file_log import DIR_NAME, FileLog
from kafka_compat.raft.log import MemoryLog, OffsetAndEpoch, split_batches
from kafka_compat.raft.snapshots import FileSnapshotStore
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record


def batch(offset, epoch, n=1):
    return split_batches(build_batch([Record(None, b"v%d" % (offset + i)) for i in range(n)], base_offset=offset,
                                     partition_leader_epoch=epoch))


def fill(lg, *epochs):
    for epoch in epochs:
        lg.append(batch(lg.end_offset, epoch))
    return lg


@pytest.fixture(params=["memory", "file"])
def new_log(request, tmp_path):
    def make(snapshots=None):
        if request.param == "memory":
            return MemoryLog()
        return FileLog(tmp_path / DIR_NAME, snapshots or FileSnapshotStore(tmp_path / DIR_NAME))
    return make


def test_epoch_entries_and_last_epoch(new_log):
    lg = fill(new_log(), 1, 1, 3, 3, 4)
    assert lg.epoch_entries() == [(1, 0), (3, 2), (4, 4)]
    assert lg.end == OffsetAndEpoch(5, 4)
    assert [lg.epoch_of(o) for o in range(5)] == [1, 1, 3, 3, 4]


def test_end_offset_for_epoch_is_where_the_next_epoch_starts(new_log):
    lg = fill(new_log(), 1, 1, 3, 3, 4)
    assert lg.end_offset_for_epoch(1) == OffsetAndEpoch(2, 1)
    assert lg.end_offset_for_epoch(2) == OffsetAndEpoch(2, 1)  # epoch 2 never written here: epoch 1 is the answer
    assert lg.end_offset_for_epoch(4) == OffsetAndEpoch(5, 4)
    assert lg.end_offset_for_epoch(9) == OffsetAndEpoch(5, 4)


def test_truncate_to_end_offset_of_a_shared_epoch(new_log):
    lg = fill(new_log(), 1, 1, 1, 2)
    assert lg.truncate_to_end_offset(OffsetAndEpoch(2, 1)) == 2  # the leader's epoch 1 ended at 2
    assert lg.end == OffsetAndEpoch(2, 1)


def test_truncate_to_end_offset_of_an_epoch_we_never_had(new_log):
    lg = fill(new_log(), 1, 1, 2, 2)
    # The leader's answer names epoch 3, which this log lacks: cut back to the end of our epoch 2 at most.
    assert lg.truncate_to_end_offset(OffsetAndEpoch(3, 3)) == 4
    lg2 = fill(MemoryLog(), 1, 1, 4)
    assert lg2.truncate_to_end_offset(OffsetAndEpoch(2, 3)) == 2  # our largest epoch below 3 is 1, ending at 2


def test_read_returns_whole_batches_at_least_one(new_log):
    lg = new_log()
    for epoch in (1, 1, 1):
        lg.append(batch(lg.end_offset, epoch, n=3))
    one = split_batches(lg.read(4, 1))
    assert [b.base_offset for b in one] == [3]
    assert [b.base_offset for b in split_batches(lg.read(0, 1 << 20))] == [0, 3, 6]
    assert [b.base_offset for b in lg.batches(3, 9)] == [3, 6]


def test_append_must_continue_the_log(new_log):
    lg = fill(new_log(), 1)
    with pytest.raises(ValueError):
        lg.append(batch(5, 1))


def test_trim_and_reset_move_the_start(new_log):
    lg = fill(new_log(), 1, 1, 2, 2)
    lg.trim_before(OffsetAndEpoch(2, 1))
    assert (lg.start_offset, lg.start_epoch, lg.end_offset) == (2, 1, 4)
    assert lg.end_offset_for_epoch(1) == OffsetAndEpoch(2, 1)
    lg.reset(OffsetAndEpoch(10, 3))
    assert (lg.start_offset, lg.end, lg.epoch_entries()) == (10, OffsetAndEpoch(10, 3), [])
    assert lg.end_offset_for_epoch(2) == OffsetAndEpoch(-1, -1)
    lg.append(batch(10, 4))
    assert lg.end == OffsetAndEpoch(11, 4)


def test_memory_log_crash_loses_what_was_not_flushed():
    lg = fill(MemoryLog(), 1, 1)
    lg.flush()
    fill(lg, 1, 1)
    assert lg.crash().end_offset == 2
    assert lg.crash(keep_unflushed=1).end_offset == 3  # a disk may have kept some of the tail


def test_memory_log_crash_after_truncation_restores_the_flushed_image():
    lg = fill(MemoryLog(), 1, 1, 1)
    lg.flush()
    lg.truncate_to(1)
    fill(lg, 2)
    restored = lg.crash(keep_unflushed=5)
    assert [b.epoch for b in restored.batches(0, 10)] == [1, 1, 1]


def test_file_log_reopens_with_its_batches_and_epochs(tmp_path):
    snapshots = FileSnapshotStore(tmp_path / DIR_NAME)
    lg = fill(FileLog(tmp_path / DIR_NAME, snapshots), 1, 1, 2)
    lg.flush()
    lg.close()
    again = FileLog(tmp_path / DIR_NAME, snapshots)
    assert again.end == OffsetAndEpoch(3, 2)
    assert again.epoch_entries() == [(1, 0), (2, 2)]
    assert (tmp_path / DIR_NAME / "00000000000000000000.log").exists()


def test_file_log_starts_at_its_snapshot_after_a_restart(tmp_path):
    snapshots = FileSnapshotStore(tmp_path / DIR_NAME)
    lg = fill(FileLog(tmp_path / DIR_NAME, snapshots), 1, 1, 2, 2)
    snapshots.write(OffsetAndEpoch(2, 1), b"")
    lg.trim_before(OffsetAndEpoch(2, 1))
    lg.flush()
    lg.close()
    again = FileLog(tmp_path / DIR_NAME, snapshots)
    assert (again.start_offset, again.start_epoch, again.end_offset) == (2, 1, 4)
