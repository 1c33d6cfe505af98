"""TxnOffsetCommit at the group coordinator: offsets that wait for their transaction's marker,
UNSTABLE_OFFSET_COMMIT for require_stable fetches, and replay of transactional batches and
markers from `__consumer_offsets`."""

from kafka_compat.coordinator.config import GroupConfig
from kafka_compat.coordinator.machine import Append, Client, Load
from kafka_compat.protocol import messages as m
from tests.coordinator.helpers import E, Harness, commit_req, fetch_req, fetched
from tests.coordinator.test_classic import stable

PID, EPOCH = 4000, 3


class LogHarness(Harness):
    """Keeps every append as the batch it is (transactional ones and markers too) and loads from
    them, as the driver reads `__consumer_offsets` back."""

    def __init__(self, *args, **kw):
        self.batches: dict[int, list[Append]] = {}
        super().__init__(GroupConfig(offsets_topic_num_partitions=3, group_initial_rebalance_delay_ms=0), *args, **kw)

    def store(self, job: Append) -> None:
        super().store(job)
        self.batches.setdefault(job.partition, []).append(job)

    def load(self, job: Load) -> None:
        for b in self.batches.get(job.partition, []):
            if b.marker is not None:
                assert self.c.load_marker(job.partition, job.epoch, b.producer_id, b.marker.commit)
            else:
                assert self.c.load_records(job.partition, job.epoch, b.records, b.producer_id)
        assert self.c.finish_load(job.partition, job.epoch, self.now)

    def restart(self) -> None:
        """The coordinator loads every partition again from what was written."""
        for p in range(self.config.offsets_topic_num_partitions):
            self.c.begin_load(p, self.now)
        self.drain()

    def txn_commit(self, group, offsets, *, pid=PID, epoch=EPOCH, generation=-1, member_id="", version=3):
        T = m.TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
        P = m.TxnOffsetCommitRequest.TxnOffsetCommitRequestPartition
        topics: dict[str, list] = {}
        for (topic, p), off in offsets.items():
            topics.setdefault(topic, []).append(P(partition_index=p, committed_offset=off, committed_metadata=""))
        request = m.TxnOffsetCommitRequest(
            transactional_id="tx", group_id=group, producer_id=pid, producer_epoch=epoch,
            generation_id_or_member_epoch=generation, member_id=member_id,
            topics=[T(name=t, partitions=ps) for t, ps in topics.items()])
        # Not in the machine's table until the broker serves TxnOffsetCommit: called directly.
        token = ("txn-commit", len(self.done))
        response = self.c.offsets.txn_commit(token, request, version, Client())
        self.drain()
        response = response if response is not None else self.done.pop(token)
        response.encode(version)
        return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}

    def marker(self, group, commit, *, pid=PID, epoch=EPOCH, coordinator_epoch=1):
        token = ("marker", len(self.done))
        error = self.c.complete_transaction(token, self.c.partition_for(group), pid, epoch, coordinator_epoch, commit,
                                            self.now)
        self.drain()
        return error if error is not None else self.done.pop(token)

    def offsets(self, group, parts, *, require_stable=False):
        return fetched(self.send("offset_fetch", fetch_req(group, parts, require_stable=require_stable), 7))


def test_transactional_offsets_become_visible_with_the_commit_marker():
    h = LogHarness()
    assert h.txn_commit("g", {("t", 0): 42}) == {("t", 0): E.NONE}
    assert h.offsets("g", {"t": [0]}) == {("t", 0): (-1, "", E.NONE)}
    assert h.marker("g", True) == E.NONE
    assert h.offsets("g", {"t": [0]}) == {("t", 0): (42, "", E.NONE)}


def test_require_stable_fetch_answers_unstable_offset_commit_while_a_transaction_is_open():
    h = LogHarness()
    h.txn_commit("g", {("t", 0): 42})
    assert h.offsets("g", {"t": [0, 1]}, require_stable=True) == {
        ("t", 0): (-1, "", E.UNSTABLE_OFFSET_COMMIT), ("t", 1): (-1, "", E.NONE)}
    h.marker("g", False)
    assert h.offsets("g", {"t": [0]}, require_stable=True) == {("t", 0): (-1, "", E.NONE)}


def test_abort_marker_drops_the_transactional_offsets():
    h = LogHarness()
    h.send("offset_commit", commit_req("g", {("t", 0): 5}), 7)
    h.txn_commit("g", {("t", 0): 42})
    h.marker("g", False)
    assert h.offsets("g", {"t": [0]}) == {("t", 0): (5, "", E.NONE)}


def test_plain_commit_after_the_transactional_one_is_kept():
    h = LogHarness()
    h.txn_commit("g", {("t", 0): 42})
    h.send("offset_commit", commit_req("g", {("t", 0): 50}), 7)
    h.marker("g", True)
    assert h.offsets("g", {"t": [0]}) == {("t", 0): (50, "", E.NONE)}


def test_transactional_commit_after_a_plain_one_is_kept():
    h = LogHarness()
    h.send("offset_commit", commit_req("g", {("t", 0): 5}), 7)
    h.txn_commit("g", {("t", 0): 42})
    h.marker("g", True)
    assert h.offsets("g", {"t": [0]}) == {("t", 0): (42, "", E.NONE)}


def test_offsets_are_written_as_a_transactional_batch_and_the_marker_after_them():
    h = LogHarness()
    h.txn_commit("g", {("t", 0): 42})
    h.marker("g", True, coordinator_epoch=7)
    offsets_batch, marker = h.batches[h.c.partition_for("g")]
    assert (offsets_batch.producer_id, offsets_batch.producer_epoch, offsets_batch.marker) == (PID, EPOCH, None)
    assert (marker.producer_id, marker.records, marker.marker) == (PID, [], (True, 7))


def test_restart_replays_committed_and_still_open_transactions():
    h = LogHarness()
    h.txn_commit("g", {("t", 0): 42}, pid=1)
    h.marker("g", True, pid=1)
    h.txn_commit("g", {("t", 1): 7}, pid=2)
    h.restart()
    assert h.offsets("g", {"t": [0, 1]}, require_stable=True) == {
        ("t", 0): (42, "", E.NONE), ("t", 1): (-1, "", E.UNSTABLE_OFFSET_COMMIT)}
    h.marker("g", True, pid=2)
    assert h.offsets("g", {"t": [1]}) == {("t", 1): (7, "", E.NONE)}


def test_refused_marker_changes_nothing():
    h = LogHarness(auto_append=False)
    h.auto_append = True
    h.txn_commit("g", {("t", 0): 42})
    h.auto_append = False
    token = "m"
    assert h.c.complete_transaction(token, h.c.partition_for("g"), PID, EPOCH - 1, 1, True, h.now) is None
    h.drain()
    h.release(E.INVALID_PRODUCER_EPOCH)  # the log refuses a marker from an older producer epoch
    assert h.done.pop(token) == E.INVALID_PRODUCER_EPOCH
    assert h.offsets("g", {"t": [0]}, require_stable=True)[("t", 0)][2] == E.UNSTABLE_OFFSET_COMMIT


def test_marker_for_a_partition_led_elsewhere_is_not_coordinator():
    h = LogHarness(partitions=[0])
    gid = next(g for g in ("a", "b", "c", "d", "e") if h.c.partition_for(g) != 0)
    assert h.marker(gid, True) == E.NOT_COORDINATOR


def test_member_of_a_stable_group_commits_with_its_generation():
    h = LogHarness()
    (member,), _, generation = stable(h, 1, gid="grp")
    assert h.txn_commit("grp", {("t", 0): 1}, generation=generation, member_id=member) == {("t", 0): E.NONE}
    assert h.txn_commit("grp", {("t", 0): 1}, generation=generation + 1, member_id=member) == \
        {("t", 0): E.ILLEGAL_GENERATION}
    assert h.txn_commit("grp", {("t", 0): 1}, generation=generation, member_id="stranger") == \
        {("t", 0): E.UNKNOWN_MEMBER_ID}


def test_old_clients_commit_without_member_or_generation_to_a_busy_group():
    h = LogHarness()
    stable(h, 1, gid="grp")
    assert h.txn_commit("grp", {("t", 0): 1}, version=2) == {("t", 0): E.NONE}


def test_unknown_group_with_a_generation_is_illegal_generation():
    assert LogHarness().txn_commit("nobody", {("t", 0): 1}, generation=3, member_id="m") == \
        {("t", 0): E.ILLEGAL_GENERATION}


def test_offsets_waiting_for_a_transaction_do_not_expire():
    h = LogHarness()
    h.txn_commit("g", {("t", 0): 42})
    h.advance(h.config.offsets_retention_ms + h.config.offsets_retention_check_interval_ms)
    h.marker("g", True)
    assert h.offsets("g", {"t": [0]}) == {("t", 0): (42, "", E.NONE)}
