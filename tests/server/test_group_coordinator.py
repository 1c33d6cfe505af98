"""The group coordinator's driver on a real `__consumer_offsets` (a replica manager over log files),
with real tasks and trio's autojump clock; leadership and ISR change through metadata images."""

import functools
from types import SimpleNamespace

import pytest
import trio
import trio.testing

from kafka_compat.coordinator import GroupConfig
from kafka_compat.coordinator.classic import ClassicState
from kafka_compat.metadata.image import TOPIC_RESOURCE, MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import Record, build_batch, build_plain_batch, iter_headers, iter_records
from kafka_compat.replication.replica_manager import ReplicaManager
from kafka_compat.server.group_coordinator import OFFSETS_TOPIC, GroupCoordinatorDriver
from kafka_compat.server.handlers.groups import COORDINATOR_APIS
from kafka_compat.server.txn_verification import verification_guard
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager
from tests.coordinator.helpers import START, E, commit_req, fetch_req, fetched, hb_req, join_req, sync_req

G = "group"
A = m.ApiKey
TOPIC_ID = Uuid(b"\x01" * 16)
T_ID = Uuid(b"\x03" * 16)
PARTITIONS = 5


def ctx(api_key: int, version: int):
    """What the driver reads of a handler's RequestContext."""
    return SimpleNamespace(api_key=api_key, api_version=version, client_id="rdkafka", client_host="10.1.2.3",
                           listener="PLAINTEXT")


def offsets_topic(isr=(1,), **configs) -> MetadataImage:
    """Broker 1 leading every partition of `__consumer_offsets` (replicas 1 and 2); topic "t" for
    the commits."""
    R = m.RegisterBrokerRecord
    records = [R(broker_id=1, incarnation_id=Uuid(b"\x02" * 16), broker_epoch=1, fenced=False, end_points=[
                   R.BrokerEndpoint(name="PLAINTEXT", host="localhost", port=9092, security_protocol=0)]),
               m.TopicRecord(name=OFFSETS_TOPIC, topic_id=TOPIC_ID), m.TopicRecord(name="t", topic_id=T_ID)]
    records += [m.ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=OFFSETS_TOPIC, name=k, value=v)
                for k, v in {"cleanup.policy": "compact", **configs}.items()]
    records += [m.PartitionRecord(partition_id=p, topic_id=TOPIC_ID, replicas=[1, 2], isr=list(isr), leader=1,
                                  leader_epoch=0, partition_epoch=0) for p in range(PARTITIONS)]
    records += [m.PartitionRecord(partition_id=p, topic_id=T_ID, replicas=[2], isr=[2], leader=2, leader_epoch=0,
                                  partition_epoch=0) for p in range(2)]
    return MetadataImage("cluster").apply(records, 1)


def changed(image: MetadataImage, partition: int, **change) -> MetadataImage:
    """The image after a PartitionChangeRecord (isr=[...], leader=n) for one partition."""
    return image.apply([m.PartitionChangeRecord(partition_id=partition, topic_id=TOPIC_ID, **change)],
                       image.offset + 1)


class Node:
    """Broker 1's replicas and its coordinator, fed the same metadata images as in a broker."""

    def __init__(self, tmp_path, image: MetadataImage, replicas: ReplicaManager | None = None, verify=None,
                 **config):
        self.image = image
        if replicas is None:
            replicas = ReplicaManager(1, LogManager([tmp_path]), lambda _: LogConfig())
            replicas.apply_image(None, image)
        self.replicas = replicas
        cfg = {"group.initial.rebalance.delay.ms": 3000, "offsets.topic.num.partitions": PARTITIONS, **config}
        self.driver = GroupCoordinatorDriver(GroupConfig.from_broker(cfg), replicas, 1,
                                             clock=lambda: START + int(trio.current_time() * 1000), verify=verify)

    async def start(self, nursery) -> GroupCoordinatorDriver:
        await nursery.start(self.driver.run)
        self.driver.follow(None, self.image)
        await trio.testing.wait_all_tasks_blocked()  # loaded
        return self.driver

    def publish(self, image: MetadataImage, *, to_coordinator: bool = True) -> None:
        """A new metadata image, to the replicas and then (unless told) to the coordinator."""
        old, self.image = self.image, image
        self.replicas.apply_image(old, image)
        if to_coordinator:
            self.driver.follow(old, image)

    def partition_of(self, group: str) -> int:
        return self.driver.machine.partition_for(group)


async def join(driver, results: list, version=5):
    r = await driver.handle(join_req(G), ctx(A.JOIN_GROUP, version))
    if r.error_code == E.MEMBER_ID_REQUIRED:
        r = await driver.handle(join_req(G, r.member_id), ctx(A.JOIN_GROUP, version))
    results.append((trio.current_time(), r))


def test_the_broker_serves_exactly_the_apis_the_coordinator_decides():
    assert set(COORDINATOR_APIS) == set(GroupCoordinatorDriver(GroupConfig(), None, 1).machine.requests)


async def test_join_group_parks_until_the_rebalance_completes(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        results = []
        nursery.start_soon(join, driver, results)
        await trio.sleep(1)
        nursery.start_soon(join, driver, results)
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
            got.append(await driver.handle(sync_req(G, 1, r.member_id, assignments), ctx(A.SYNC_GROUP, 3)))

        nursery.start_soon(sync, follower, {})
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        await sync(leader, {leader.member_id: b"L", follower.member_id: b"F"})
        await trio.testing.wait_all_tasks_blocked()
        assert sorted(x.assignment for x in got) == [b"F", b"L"]
        g = driver.machine.group(G)
        assert g.state is ClassicState.STABLE and g.members[leader.member_id].client_host == "/10.1.2.3"
        nursery.cancel_scope.cancel()


async def test_session_expiry_needs_no_requests(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic(), **{"group.initial.rebalance.delay.ms": 0})
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        results = []
        await join(driver, results)
        (_, r) = results[0]
        await driver.handle(sync_req(G, 1, r.member_id, {r.member_id: b"x"}), ctx(A.SYNC_GROUP, 3))
        await trio.sleep(9.9)
        assert driver.machine.group(G).members
        await trio.sleep(0.2)  # the 10 s session expired: the timer task acted on its own
        assert not driver.machine.group(G).members
        nursery.cancel_scope.cancel()


async def test_a_commit_is_appended_and_answered_without_a_task_switch_when_the_leader_is_alone_in_the_isr(
        autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        with trio.testing.assert_no_checkpoints():
            r = await driver.handle(commit_req(G, {("t", 0): 42}), ctx(A.OFFSET_COMMIT, 8))
        assert r.topics[0].partitions[0].error_code == E.NONE
        log = node.replicas.get(OFFSETS_TOPIC, node.partition_of(G)).log
        assert log.high_watermark == log.log_end_offset == 1  # the commit, durable
        nursery.cancel_scope.cancel()


async def test_a_commit_is_answered_once_the_isr_has_it(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic(isr=(1, 2)))  # the follower never fetches: the high watermark stays
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        done = []

        async def commit():
            done.append(await driver.handle(commit_req(G, {("t", 0): 42}), ctx(A.OFFSET_COMMIT, 8)))

        nursery.start_soon(commit)
        await trio.sleep(1)
        assert done == []
        r = await driver.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == -1  # not durable yet: not visible
        node.publish(changed(node.image, node.partition_of(G), isr=[1]))  # the follower drops out
        await trio.testing.wait_all_tasks_blocked()
        assert done and done[0].topics[0].partitions[0].error_code == E.NONE
        r = await driver.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == 42
        nursery.cancel_scope.cancel()


async def test_a_commit_the_isr_does_not_get_in_time_is_answered_coordinator_not_available(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic(isr=(1, 2)), **{"offsets.commit.timeout.ms": 2000})
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        started = trio.current_time()
        r = await driver.handle(commit_req(G, {("t", 0): 42}), ctx(A.OFFSET_COMMIT, 8))
        assert r.topics[0].partitions[0].error_code == E.COORDINATOR_NOT_AVAILABLE
        assert trio.current_time() - started == pytest.approx(2.0, abs=0.01)
        nursery.cancel_scope.cancel()


async def test_a_failed_append_is_answered_and_the_partition_reloaded(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        await driver.handle(commit_req(G, {("t", 0): 1}), ctx(A.OFFSET_COMMIT, 8))
        p = node.partition_of(G)
        node.publish(changed(node.image, p, leader=2), to_coordinator=False)  # the coordinator hears of it late
        r = await driver.handle(commit_req(G, {("t", 0): 2}), ctx(A.OFFSET_COMMIT, 8))
        assert r.topics[0].partitions[0].error_code == E.NOT_COORDINATOR
        node.publish(changed(node.image, p, leader=1), to_coordinator=False)
        await trio.testing.wait_all_tasks_blocked()  # reloaded from the log, which has the first commit only
        r = await driver.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == 1
        nursery.cancel_scope.cancel()


async def test_a_restart_loads_the_log_and_answers_load_in_progress_meanwhile(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        await driver.handle(commit_req(G, {("t", 0): 7, ("t", 1): 8}), ctx(A.OFFSET_COMMIT, 8))
        nursery.cancel_scope.cancel()
    second = Node(tmp_path, node.image, node.replicas)
    async with trio.open_nursery() as nursery:
        await nursery.start(second.driver.run)
        second.driver.follow(None, node.image)  # the loads start
        r = await second.driver.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert r.error_code == E.COORDINATOR_LOAD_IN_PROGRESS
        await trio.testing.wait_all_tasks_blocked()
        r = await second.driver.handle(fetch_req(G, None), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r) == {("t", 0): (7, "", E.NONE), ("t", 1): (8, "", E.NONE)}
        nursery.cancel_scope.cancel()


async def test_wait_loaded_returns_once_every_partition_led_here_is_loaded(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    async with trio.open_nursery() as nursery:
        await nursery.start(node.driver.run)
        node.driver.follow(None, node.image)
        assert node.driver.machine.coordinator_error(G) == E.COORDINATOR_LOAD_IN_PROGRESS
        await node.driver.wait_loaded()
        assert all(node.driver.machine.is_loaded(p) for p in range(PARTITIONS))
        nursery.cancel_scope.cancel()


async def test_losing_the_partition_answers_parked_requests(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        results = []
        nursery.start_soon(join, driver, results)
        await trio.testing.wait_all_tasks_blocked()
        node.publish(changed(node.image, node.partition_of(G), leader=2))
        await trio.testing.wait_all_tasks_blocked()
        assert results[0][1].error_code == E.NOT_COORDINATOR
        r = await driver.handle(hb_req(G, 1, "m"), ctx(A.HEARTBEAT, 3))
        assert r.error_code == E.NOT_COORDINATOR
        nursery.cancel_scope.cancel()


async def test_stopping_answers_parked_requests_coordinator_not_available(autojump_clock, tmp_path):
    node = Node(tmp_path, offsets_topic())
    results = []
    async with trio.open_nursery() as outer:
        async with trio.open_nursery() as inner:
            driver = await node.start(inner)
            outer.start_soon(join, driver, results)
            await trio.testing.wait_all_tasks_blocked()
            inner.cancel_scope.cancel()
    assert results[0][1].error_code == E.COORDINATOR_NOT_AVAILABLE


class TransactionCoordinator:
    """The transaction coordinator as a partition leader sees it: AddPartitionsToTxn verify_only
    answered after a round trip of a second, from the partitions its transactions hold."""

    def __init__(self):
        self.added: set[tuple[str, int]] = set()
        self.asked = 0

    async def verify(self, transactional_id, producer_id, producer_epoch, topic, partition) -> E:
        self.asked += 1
        await trio.sleep(1)
        return E.NONE if (topic, partition) in self.added else E.TRANSACTION_ABORTABLE

    def verifying(self):
        return functools.partial(verification_guard, SimpleNamespace(transactions=self))


def txn_commit_req(offset: int, producer_epoch: int = 0):
    T = m.TxnOffsetCommitRequest
    return T(transactional_id="tx", group_id=G, producer_id=7, producer_epoch=producer_epoch, topics=[
        T.TxnOffsetCommitRequestTopic(name="t", partitions=[
            T.TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=offset)])])


async def test_a_txn_offset_commit_is_written_only_once_the_transaction_coordinator_confirms_the_partition(
        autojump_clock, tmp_path):
    coordinator = TransactionCoordinator()
    node = Node(tmp_path, offsets_topic(), verify=coordinator.verifying())
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        log = node.replicas.get(OFFSETS_TOPIC, node.partition_of(G)).log
        started = trio.current_time()
        r = await driver.handle(txn_commit_req(5), ctx(A.TXN_OFFSET_COMMIT, 3))
        assert r.topics[0].partitions[0].error_code == E.INVALID_TXN_STATE
        r = await driver.handle(txn_commit_req(5), ctx(A.TXN_OFFSET_COMMIT, 4))  # knows TRANSACTION_ABORTABLE
        assert r.topics[0].partitions[0].error_code == E.TRANSACTION_ABORTABLE
        assert trio.current_time() - started == pytest.approx(2.0, abs=0.01)  # each asked the coordinator
        assert log.log_end_offset == 0  # nothing written

        coordinator.added.add((OFFSETS_TOPIC, node.partition_of(G)))  # AddOffsetsToTxn
        r = await driver.handle(txn_commit_req(7), ctx(A.TXN_OFFSET_COMMIT, 4))
        assert r.topics[0].partitions[0].error_code == E.NONE
        assert [h.is_transactional for _, h in iter_headers(memoryview(log.read_bytes(0, 1 << 20)))] == [True]
        asked = coordinator.asked
        r = await driver.handle(txn_commit_req(8), ctx(A.TXN_OFFSET_COMMIT, 4))
        assert r.topics[0].partitions[0].error_code == E.NONE
        assert coordinator.asked == asked  # the transaction is ongoing on the partition: nothing to verify
        nursery.cancel_scope.cancel()


async def test_a_marker_written_while_a_txn_offset_commit_is_verified_makes_its_append_fail(autojump_clock, tmp_path):
    """The append carries the guard its verification started with: a marker that ended the
    producer's verification meanwhile (its previous transaction completing) leaves it stale."""
    coordinator = TransactionCoordinator()
    node = Node(tmp_path, offsets_topic(), verify=coordinator.verifying())
    coordinator.added.add((OFFSETS_TOPIC, node.partition_of(G)))
    async with trio.open_nursery() as nursery:
        driver = await node.start(nursery)
        done = []

        async def commit():
            done.append(await driver.handle(txn_commit_req(7), ctx(A.TXN_OFFSET_COMMIT, 4)))

        nursery.start_soon(commit)
        await trio.sleep(0.5)  # the coordinator has been asked
        assert await driver.complete_transaction(node.partition_of(G), 7, 0, 0, commit=False) == E.NONE
        await trio.sleep(1)
        assert done[0].topics[0].partitions[0].error_code == E.INVALID_TXN_STATE
        r = await driver.handle(fetch_req(G, {"t": [0]}), ctx(A.OFFSET_FETCH, 7))
        assert fetched(r)[("t", 0)][0] == -1
        nursery.cancel_scope.cancel()


def test_the_coordinator_writes_plain_batches_as_kafka_does():
    pairs = [(b"k1", b"v1"), (b"k2", None)]
    buf = build_plain_batch(pairs, 123)
    assert buf == build_batch([Record(k, v, 123) for k, v in pairs])  # the general builder's bytes
    ((position, header),) = list(iter_headers(buf))
    assert (header.magic, header.compression, header.producer_id, header.record_count) == (2, 0, -1, 2)
    assert [(r.key, r.value, r.timestamp) for r in iter_records(buf, position, header)] == \
        [(b"k1", b"v1", 123), (b"k2", None, 123)]
