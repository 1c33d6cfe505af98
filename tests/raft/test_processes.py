"""End to end: three Raft peer processes over loopback TCP, crashed and stopped for real."""

import time

import pytest

from kafka_compat.testing.raft_process import RaftQuorum
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(30)]


def committed_logs_agree(quorum, ids, timeout=10.0):
    """Every node in `ids` ends with the same committed log (same high watermark, same bytes)."""
    logs, statuses = [], []

    def agreed():
        logs[:] = [quorum[i].committed_log() for i in ids]
        statuses[:] = [quorum[i].status() for i in ids]
        return len({s["high_watermark"] for s in statuses}) == 1 and len({lg["digest"] for lg in logs}) == 1
    wait_until(agreed, lambda: f"the same committed log on {ids} (saw {statuses})", timeout, 0.05)
    return logs[0]


@pytest.fixture
def quorum(tmp_path):
    with RaftQuorum(tmp_path, voters=3) as q:
        yield q


def test_three_processes_elect_one_leader_and_commit(quorum):
    leader, epoch = quorum.wait_for_leader()
    assert quorum[leader].status()["role"] == "leader"
    for i in range(10):
        quorum.propose(f"k{i}={i}")
    log = committed_logs_agree(quorum, [1, 2, 3])
    assert [value for _, value in log["records"]] == [f"k{i}={i}" for i in range(10)]
    assert log["data"] == {f"k{i}": str(i) for i in range(10)}


def test_kill_9_the_leader_a_new_one_takes_over_and_the_old_one_catches_up(quorum):
    old, epoch = quorum.wait_for_leader()
    quorum.propose("before=1")
    quorum[old].kill()
    survivors = [i for i in (1, 2, 3) if i != old]
    new, new_epoch = quorum.wait_for_leader(survivors, newer_than=epoch)
    assert new != old
    for i in range(5):
        quorum.propose(f"during={i}")
    quorum[old].start()
    quorum.wait_for_leader([1, 2, 3], newer_than=epoch)
    quorum.propose("after=1")
    log = committed_logs_agree(quorum, [1, 2, 3])
    assert log["data"] == {"before": "1", "during": "4", "after": "1"}


def test_sigstop_the_leader_it_steps_down_and_the_rest_carry_on(quorum):
    old, epoch = quorum.wait_for_leader()
    quorum.propose("before=1")
    quorum[old].pause()
    try:
        survivors = [i for i in (1, 2, 3) if i != old]
        new, new_epoch = quorum.wait_for_leader(survivors, newer_than=epoch)
        for i in range(5):
            quorum.propose(f"while_stopped={i}")
    finally:
        quorum[old].resume()
    status = wait_until(lambda: (s := quorum[old].status()) and s["epoch"] >= new_epoch and s["role"] == "follower"
                        and s, f"the resumed node {old} to follow in epoch {new_epoch} or later", 10, 0.05)
    assert status["leader_id"] == new
    log = committed_logs_agree(quorum, [1, 2, 3])
    assert log["data"] == {"before": "1", "while_stopped": "4"}


def test_a_leader_stopped_with_sigterm_hands_over_without_a_fetch_timeout(quorum):
    old, epoch = quorum.wait_for_leader()
    quorum.propose("x=1")
    started = time.monotonic()
    assert quorum[old].stop() == 0
    survivors = [i for i in (1, 2, 3) if i != old]
    new, new_epoch = quorum.wait_for_leader(survivors, newer_than=epoch)
    assert new != old and time.monotonic() - started < 1.5  # controller.quorum.fetch.timeout.ms is 2 s
    quorum.propose("y=2")
    quorum[old].start()
    assert committed_logs_agree(quorum, [1, 2, 3])["data"] == {"x": "1", "y": "2"}
