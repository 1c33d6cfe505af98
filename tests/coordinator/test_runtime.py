"""The trio runtime with real tasks, a mock clock and an in-memory `__consumer_offsets` log."""

from types import SimpleNamespace

import pytest
import trio
import trio.testing

from kafka_compat.coordinator.classic import ClassicState
from kafka_compat.coordinator.runtime import GroupCoordinatorRuntime, batch_records, records_to_batch
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import KafkaError
from kafka_compat.records import iter_headers
from tests.coordinator.helpers import START, E, commit_req, fetch_req, fetched, hb_req, join_req, sync_req

G = "group"
A = m.ApiKey


def ctx(api_key: int, version: int):
    """What the runtime reads of a handler's RequestContext."""
    return SimpleNamespace(api_key=api_key, api_version=version, client_id="rdkafka", client_host="10.1.2.3:40000",
                           listener="PLAINTEXT")


class Log:
    """An in-memory `__consumer_offsets`: appends can be held (gate) or fail."""

    def __init__(self):
        self.partitions: dict[int, list] = {}
        self.gate: trio.Event | None = None
        self.fail: KafkaError | None = None
        self.appends = 0

    async def append(self, partition, records):
        if self.gate is not None:
            await self.gate.wait()
        await trio.sleep(0.001)
        if self.fail is not None:
            raise self.fail
        self.appends += 1
        self.partitions.setdefault(partition, []).extend(records)

    def read(self, partition):
        return list(self.partitions.get(partition, []))


def make(log: Log, **config) -> GroupCoordinatorRuntime:
    cfg = {"group.initial.rebalance.delay.ms": 3000, **config}
    return GroupCoordinatorRuntime(cfg, append=log.append, read=log.read,
                                   locate=lambda p, listener: (1, "localhost", 9092),
                                   clock=lambda: START + int(trio.current_time() * 1000))


async def start(nursery, runtime, partitions=range(50)):
    await nursery.start(runtime.run)
    for p in partitions:
        runtime.on_partition_leader(p)
    await trio.testing.wait_all_tasks_blocked()


async def join(runtime, results: list, version=5):
    r = await runtime.handle(join_req(G), ctx(A.JOIN_GROUP, version))
    if r.error_code == E.MEMBER_ID_REQUIRED:
        r = await runtime.handle(join_req(G, r.member_id), ctx(A.JOIN_GROUP, version))
    results.append((trio.current_time(), r))


async def test_join_group_parks_until_the_rebalance_completes(autojump_clock):
    log = Log()
    runtime = make(log)
    async with trio.open_nursery() as nursery:
        await start(nursery, runtime)
        results = []
        nursery.start_soon(join, runtime, results)
        await trio.sleep(1)
        nursery.start_soon(join, runtime, results)
        await trio.testing.wait_all_tasks_blocked()
        assert results == []  # both parked in the initial rebalance delay
        await trio.sleep(10)
        assert len(results) == 2
        # The delay (3 s) was extended once because a member arrived during it.
        assert all(t == pytest.approx(6.0, abs=0.01) for t, _ in results)
        (_, r1), (_, r2) = results
        assert r1.generation_id == r2.generation_id == 1 and r1.leader == r2.leader
        leader = r1 if r1.members else r2
        follower = r2 if leader is r1 else r1
        got = []

        async def sync(r, assignments):
            got.append(await runtime.handle(sync_req(G, 1, r.member_id, assignments), ctx(A.SYNC_GROUP, 3)))

        nursery.start_soon(sync, follower, {})
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await sync(leader, {leader.member_id: b"L", follower.member_id: b"F"})
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(x.assignment for x in got) == [b"F", b"L"]
        g = runtime.machine.group(G)
        assert g.state is ClassicState.STABLE and g.members[leader.member_id].client_host == "/10.1.2.3"
        nursery.cancel_scope.cancel()


async def test_session_expiry_needs_no_requests(autojump_clock):
    log = Log()
    runtime = make(log, **{"group.initial.rebalance.delay.ms": 0})
    async with trio.open_nursery() as nursery:
        await start(nursery, runtime)
        results = []
        await join(runtime, results)
        (_, r) = results[0]
        await runtime.handle(sync_req(G, 1, r.member_id, {r.member_id: b"x"}), ctx(A.SYNC_GROUP, 3))
        await trio.sleep(9.9)
        assert runtime.machine.group(G).members
        await trio.sleep(0.2)  # the 10 s session expired: the timer task acted on its own
        assert not runtime.machine.group(G).members
        nursery.cancel_scope.cancel()


async def test_commit_is_answered_only_after_its_append(autojump_clock):
    log = Log()
    runtime = make(log)
    async with trio.open_nursery() as nursery:
        await start(nursery, runtime)
        log.gate = trio.Event()
        done = []

        async def commit():
            done.append(await runtime.handle(commit_req(G, {("t", 0): 42}), ctx(A.OFFSET_COMMIT, 8)))

        nursery.start_soon(commit)
        await trio.sleep(5)
        assert done == []
        r = await runtime.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == -1  # not durable yet: not visible
        log.gate.set()
        await trio.sleep(1)  # the append's own I/O time passes
        assert done and done[0].topics[0].partitions[0].error_code == E.NONE
        r = await runtime.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == 42
        nursery.cancel_scope.cancel()


async def test_append_failure_is_answered_and_the_partition_reloaded(autojump_clock):
    log = Log()
    runtime = make(log)
    async with trio.open_nursery() as nursery:
        await start(nursery, runtime)
        await runtime.handle(commit_req(G, {("t", 0): 1}), ctx(A.OFFSET_COMMIT, 8))
        log.fail = KafkaError(E.NOT_LEADER_OR_FOLLOWER)
        r = await runtime.handle(commit_req(G, {("t", 0): 2}), ctx(A.OFFSET_COMMIT, 8))
        assert r.topics[0].partitions[0].error_code == E.NOT_COORDINATOR
        log.fail = None
        await trio.testing.wait_all_tasks_blocked()
        r = await runtime.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == 1
        nursery.cancel_scope.cancel()


async def test_restart_loads_the_log_and_answers_load_in_progress_meanwhile(autojump_clock):
    log = Log()
    first = make(log)
    async with trio.open_nursery() as nursery:
        await start(nursery, first)
        await first.handle(commit_req(G, {("t", 0): 7, ("t", 1): 8}), ctx(A.OFFSET_COMMIT, 8))
        nursery.cancel_scope.cancel()
    gate = trio.Event()

    async def slow_read(partition):
        await gate.wait()
        for pair in log.read(partition):
            yield pair

    second = GroupCoordinatorRuntime({}, append=log.append, read=slow_read,
                                     clock=lambda: START + int(trio.current_time() * 1000))
    async with trio.open_nursery() as nursery:
        await start(nursery, second)
        r = await second.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert r.error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        gate.set()
        await trio.testing.wait_all_tasks_blocked()
        r = await second.handle(fetch_req(G, None), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r) == {("t", 0): (7, "", E.NONE), ("t", 1): (8, "", E.NONE)}
        nursery.cancel_scope.cancel()


async def test_losing_the_partition_answers_parked_requests(autojump_clock):
    log = Log()
    runtime = make(log)
    async with trio.open_nursery() as nursery:
        await start(nursery, runtime)
        results = []
        nursery.start_soon(join, runtime, results)
        await trio.testing.wait_all_tasks_blocked()
        runtime.on_partition_lost(runtime.partition_for(G))
        await trio.testing.wait_all_tasks_blocked()
        assert results[0][1].error_code == E.NOT_COORDINATOR
        r = await runtime.handle(hb_req(G, 1, "m"), ctx(A.HEARTBEAT, 3))
        assert r.error_code == E.NOT_COORDINATOR
        nursery.cancel_scope.cancel()


async def test_stopping_answers_parked_requests_coordinator_not_available(autojump_clock):
    log = Log()
    runtime = make(log)
    results = []
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as inner:
            await start(inner, runtime)
            outer.start_soon(join, runtime, results)
            await trio.testing.wait_all_tasks_blocked()
            inner.cancel_scope.cancel()
    assert results[0][1].error_code == E.COORDINATOR_NOT_AVAILABLE


def test_batch_helpers_round_trip():
    pairs = [(b"k1", b"v1"), (b"k2", None)]
    buf = records_to_batch(pairs, timestamp_ms=123)
    ((_, header),) = list(iter_headers(buf))
    assert (header.magic, header.compression, header.producer_id, header.record_count) == (2, 0, -1, 2)
    assert list(batch_records(bytes(buf) + bytes(records_to_batch([(b"k3", b"v3")], 5, base_offset=2)))) == \
        pairs + [(b"k3", b"v3")]
