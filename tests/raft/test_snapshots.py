"""Snapshots (KIP-630): the file format, the store, and a follower catching up through one."""

import pytest

from kafka_compat.protocol import messages as m
from kafka_compat.raft import control, snapshots
from kafka_compat.raft.config import QuorumConfig
from kafka_compat.raft.log import OffsetAndEpoch, split_batches
from kafka_compat.raft.node import RaftNode
from kafka_compat.raft.ready import RESET_LOG, TRIM_LOG, SnapshotWrite, persist
from kafka_compat.raft.snapshots import FileSnapshotStore, MemorySnapshotStore
from kafka_compat.records.batch import read_header
from kafka_compat.records.record import iter_records

from .cluster import Cluster, log_with, requests

SID = OffsetAndEpoch(1234, 5)


def test_file_name_is_offset_and_epoch_zero_padded():
    assert snapshots.file_name(SID) == "00000000000000001234-0000000005.checkpoint"
    assert snapshots.parse_file_name("00000000000000001234-0000000005.checkpoint") == SID
    assert snapshots.parse_file_name("00000000000000001234-0000000005.checkpoint.part") is None


def test_a_snapshot_is_framed_by_header_and_footer_control_records():
    values = [b"k%d=v" % i for i in range(2500)]
    data = snapshots.build(SID, values, last_timestamp=42)
    batches = split_batches(data)
    first, last = (list(iter_records(b.data, 0, read_header(b.data))) for b in (batches[0], batches[-1]))
    assert read_header(batches[0].data).is_control and read_header(batches[-1].data).is_control
    assert control.parse(first[0]) == m.SnapshotHeaderRecord(version=0, last_contained_log_timestamp=42)
    assert control.parse(last[0]) == m.SnapshotFooterRecord(version=0)
    assert all(b.epoch == SID.epoch for b in batches)
    assert snapshots.read_values(data) == values


def test_a_snapshot_without_its_footer_is_refused():
    data = snapshots.build(SID, [b"a=1"], 0)
    without_footer = b"".join(b.data for b in split_batches(data)[:-1])
    with pytest.raises(ValueError):
        snapshots.read_values(without_footer)


def test_file_store_writes_whole_snapshots_and_forgets_partial_ones(tmp_path):
    store = FileSnapshotStore(tmp_path)
    store.write(OffsetAndEpoch(10, 1), b"old")
    store.write(SID, b"snapshot-bytes")
    (tmp_path / "00000000000000009999-0000000009.checkpoint.part").write_bytes(b"torn")
    again = FileSnapshotStore(tmp_path)
    assert again.ids() == [OffsetAndEpoch(10, 1), SID] and again.latest() == SID
    assert again.read(SID, 9, 100) == b"bytes" and again.size(SID) == 14
    assert again.read(SID) == b"snapshot-bytes"  # the whole file, however large max_bytes is
    assert not list(tmp_path.glob("*.part"))
    again.delete_before(SID)
    assert again.ids() == [SID] and sorted(p.name for p in tmp_path.iterdir()) == [snapshots.file_name(SID)]


def snapshot_now(c, node_id):
    mb = c.members[node_id]
    end, values = mb.sm.snapshot()
    sid = mb.node.create_snapshot(end, values, c.now)
    c.flush(node_id)
    return sid


def test_a_follower_behind_the_log_start_fetches_the_snapshot():
    c = Cluster(voters=(1, 2, 3), snapshot_chunk_bytes=64)
    c.elect(1)
    c.isolate(3)
    for i in range(10):
        c.propose(f"key{i}=value{i}")
        c.run(20)
    sid = snapshot_now(c, 1)
    leader_log = c.members[1].log
    assert leader_log.start_offset == sid.offset > c[3].log.end_offset
    c.propose("after=snapshot")
    c.run(100)
    c.heal()
    c.run(4000)
    assert c.members[3].sm.data == c.members[1].sm.data and c.members[3].sm.data["after"] == "snapshot"
    assert c.members[3].snapshots.latest() == sid
    readies = c.members[3].readies
    fetches = [o for rd in readies for o in rd.messages if isinstance(o.message, m.FetchSnapshotRequest)]
    assert len(fetches) > 1  # 64-byte chunks
    # The last chunk leaves the snapshot to the Ready: stored, then the log reset to it; nothing
    # is fetched from the old log meanwhile, and the state machine loads it in the next Ready.
    [i] = [i for i, rd in enumerate(readies) if rd.snapshot_write is not None]
    assert readies[i].snapshot_write[::2] == (sid, RESET_LOG) and readies[i].flush
    assert readies[i].log_end_offset == sid.offset
    assert not requests(readies[i], m.FetchRequest) and readies[i + 1].snapshot == sid


def test_a_snapshot_is_stored_by_the_ready_and_only_then_the_log_trimmed():
    c = Cluster(voters=(1,))
    c.run_until(lambda: c.leader() is not None)
    for i in range(5):
        c.propose(f"k{i}={i}")
    mb = c.members[1]
    end, values = mb.sm.snapshot()
    sid = mb.node.create_snapshot(end, values, c.now)
    assert mb.snapshots.latest() is None and mb.log.start_offset == 0  # the node wrote nothing
    rd = mb.node.ready()
    assert rd.snapshot_write == SnapshotWrite(sid, snapshots.build(sid, values, c.now), TRIM_LOG) and rd.flush
    persist(rd, mb.store, mb.log, mb.snapshots)
    mb.node.advance(rd)
    assert mb.snapshots.latest() == sid and mb.log.start_offset == sid.offset == end
    assert snapshots.read_values(mb.snapshots.read(sid)) == values


def test_a_restarted_node_loads_its_latest_snapshot_first():
    c = Cluster(voters=(1,))
    c.run_until(lambda: c.leader() is not None)
    for i in range(5):
        c.propose(f"k{i}={i}")
    sid = snapshot_now(c, 1)
    c.propose("k9=9")
    c.stop(1)
    before = len(c.members[1].readies)
    c.start(1)
    assert c.members[1].readies[before].snapshot == sid
    c.run_until(lambda: c.members[1].sm.data.get("k9") == "9")
    assert c.members[1].sm.data == {**{f"k{i}": str(i) for i in range(5)}, "k9": "9"}


def test_a_snapshot_cannot_cover_uncommitted_offsets():
    c = Cluster(voters=(1, 2, 3))
    leader = c.elect(1)
    c.isolate(2)
    c.isolate(3)
    c.propose("a=1")
    with pytest.raises(ValueError):
        leader.create_snapshot(leader.log.end_offset, [], c.now)


def test_a_restart_discards_a_log_that_does_not_hold_the_snapshots_last_entry():
    # A crash after a fetched snapshot was stored but before the log reset reached the disk:
    # the log still holds another history below the snapshot (Raft's InstallSnapshot rule).
    stale = log_with(1, 1, 1, 1)
    store = MemorySnapshotStore()
    sid = OffsetAndEpoch(2, 2)
    store.write(sid, snapshots.build(sid, [b"a=1"], 0))
    node = RaftNode(1, QuorumConfig(voters=frozenset({1, 2, 3})), stale, store, None, 0)
    assert (stale.start_offset, stale.end) == (2, sid)
    assert node.ready().snapshot == sid
    # A log that does hold it is kept.
    agreeing = log_with(1, 2, 2)
    RaftNode(1, QuorumConfig(voters=frozenset({1, 2, 3})), agreeing, store, None, 0)
    assert agreeing.end_offset == 3
