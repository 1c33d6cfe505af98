"""The quorum-state file: Kafka's JSON, written atomically (temp file, fsync, rename)."""

import json
import os

import pytest

from kafka_compat.raft.quorum_state import ElectionState, FileQuorumStateStore


def test_a_missing_file_means_a_first_start(tmp_path):
    assert FileQuorumStateStore(tmp_path / "quorum-state", [1, 2, 3]).read() is None


def test_written_state_reads_back(tmp_path):
    store = FileQuorumStateStore(tmp_path / "quorum-state", [3, 1, 2])
    store.write(ElectionState(epoch=7, leader_id=2, voted_id=2))
    assert FileQuorumStateStore(tmp_path / "quorum-state", [1, 2, 3]).read() == ElectionState(7, 2, 2)


def test_the_file_is_kafkas_json_line(tmp_path):
    store = FileQuorumStateStore(tmp_path / "quorum-state", [1, 2, 3])
    store.write(ElectionState(epoch=5, leader_id=-1, voted_id=3))
    text = (tmp_path / "quorum-state").read_text()
    assert text.count("\n") == 1
    assert json.loads(text) == {"clusterId": "", "leaderId": -1, "leaderEpoch": 5, "votedId": 3, "appliedOffset": 0,
                                "currentVoters": [{"voterId": 1}, {"voterId": 2}, {"voterId": 3}], "data_version": 0}


def test_a_write_replaces_the_file_by_rename_and_leaves_no_temp(tmp_path):
    path = tmp_path / "quorum-state"
    store = FileQuorumStateStore(path, [1])
    store.write(ElectionState(1))
    inode = os.stat(path).st_ino
    store.write(ElectionState(2, 1, 1))
    assert os.stat(path).st_ino != inode  # a new file took the name: readers never see half a write
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quorum-state"]


def test_a_leftover_temp_file_from_a_crash_is_ignored(tmp_path):
    path = tmp_path / "quorum-state"
    FileQuorumStateStore(path, [1]).write(ElectionState(3, -1, 1))
    (tmp_path / "quorum-state.tmp").write_text('{"leaderEpoch": 9, "da')  # torn write, never renamed
    assert FileQuorumStateStore(path, [1]).read() == ElectionState(3, -1, 1)
    FileQuorumStateStore(path, [1]).write(ElectionState(4))
    assert FileQuorumStateStore(path, [1]).read() == ElectionState(4)


@pytest.mark.parametrize("text", ["", "not json\n", '{"leaderEpoch": 3}\n', '{"data_version": 0}\n'])
def test_a_damaged_file_is_an_error_not_a_guess(tmp_path, text):
    path = tmp_path / "quorum-state"
    path.write_text(text)
    with pytest.raises(ValueError):
        FileQuorumStateStore(path, [1]).read()
