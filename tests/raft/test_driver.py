"""The trio driver: three nodes in one process over loopback TCP (each served on its controller
listener by the request pipeline), and a Kafka client on that listener."""

import pytest
import trio

from kafka_compat.client.connection import Connection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.raft import wire
from kafka_compat.raft.config import Endpoint, QuorumConfig
from kafka_compat.raft.driver import RaftDriver
from kafka_compat.raft.node import NotLeaderError
from kafka_compat.testing.broker_process import free_port
from kafka_compat.testing.raft_peer import RaftPeer


async def kafka_call(port, request, version):
    conn = Connection(lambda: ("127.0.0.1", port), "test")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.run)
        try:
            return await conn.request(request, version)
        finally:
            conn.close()


FAST = dict(cluster_id="driver-test", election_timeout_ms=300, fetch_timeout_ms=600)


@pytest.fixture
async def drivers(tmp_path, nursery):
    endpoints = {i: Endpoint("127.0.0.1", free_port()) for i in (1, 2, 3)}
    config = QuorumConfig(voters=frozenset(endpoints), endpoints=endpoints, **FAST)
    started = {}
    for i, ep in endpoints.items():
        peer = await nursery.start(RaftPeer(i, config, tmp_path / f"node-{i}", listen=(ep.host, ep.port)).run)
        started[i] = peer.raft
    return started


def port_of(driver: RaftDriver) -> int:
    return driver.config.endpoints[driver.id].port


async def until(drivers, predicate, timeout: float = 10) -> None:
    """Wait until `predicate()` holds, checked whenever any of the drivers handled a Ready."""
    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            async def watch(d):
                await d.wait_for(predicate)
                nursery.cancel_scope.cancel()
            for d in drivers.values():
                nursery.start_soon(watch, d)


async def agreed_leader(drivers, newer_than: int = 0) -> RaftDriver:
    """The leader every driver names, in an epoch above `newer_than`."""
    def agreed():
        views = {d.leader for d in drivers.values()}
        return len(views) == 1 and (v := next(iter(views))).leader_id in drivers and v.epoch > newer_than
    await until(drivers, agreed)
    return drivers[next(iter(drivers.values())).leader.leader_id]


async def test_drivers_elect_a_leader_and_replicate_proposals(drivers):
    leader = await agreed_leader(drivers)
    with trio.fail_after(10):
        for i in range(5):
            await leader.propose([f"k{i}=v{i}".encode()])
        for d in drivers.values():
            await d.wait_for(lambda d=d: d.state_machine.data.get("k4") == "v4")
    assert all(d.state_machine.data == {f"k{i}": f"v{i}" for i in range(5)} for d in drivers.values())
    follower = next(d for d in drivers.values() if d is not leader)
    with pytest.raises(NotLeaderError) as e:
        await follower.propose([b"x=1"])
    assert e.value.leader_id == leader.id


async def test_the_listener_answers_kafka_clients(drivers):
    leader = await agreed_leader(drivers)
    versions = await kafka_call(port_of(leader), m.ApiVersionsRequest(client_software_name="t",
                                                                     client_software_version="1"), 3)
    served = {k.api_key: (k.min_version, k.max_version) for k in versions.api_keys}
    assert served[ApiKey.DESCRIBE_QUORUM] == (0, 2) and served[ApiKey.VOTE] == (0, 1)
    assert served[ApiKey.FETCH] == (13, 17) and ApiKey.PRODUCE not in served
    for version in (0, 1, 2):
        described = await kafka_call(port_of(leader), wire.describe_quorum_request(), version)
        p = wire.partition_of(described)
        assert (p.error_code, p.leader_id) == (ErrorCode.NONE, leader.id)
        assert sorted(v.replica_id for v in p.current_voters) == [1, 2, 3]
    assert [n.node_id for n in described.nodes] == [1, 2, 3]


async def test_graceful_resignation_moves_leadership(drivers):
    leader = await agreed_leader(drivers)
    epoch = leader.leader.epoch
    await leader.resign()
    new = await agreed_leader(drivers, newer_than=epoch)
    assert new is not leader


async def test_an_observer_finds_the_leader_through_a_bootstrap_server(drivers, tmp_path, nursery):
    leader = await agreed_leader(drivers)
    follower = next(d for d in drivers.values() if d is not leader)
    # It knows the voters' ids but not one address: only a bootstrap server (KIP-853).
    config = QuorumConfig(voters=frozenset(drivers), endpoints={-2: Endpoint("127.0.0.1", port_of(follower))},
                          bootstrap=(-2,), **FAST)
    observer = (await nursery.start(RaftPeer(10, config, tmp_path / "observer", listen=("127.0.0.1", 0)).run)).raft
    await leader.propose([b"seen=yes"])
    with trio.fail_after(10):
        await observer.wait_for(lambda: observer.state_machine.data.get("seen") == "yes")
    assert observer.leader.leader_id == leader.id and observer.node.role == "follower"
    described = wire.partition_of(await leader.describe_quorum())
    assert [o.replica_id for o in described.observers] == [10]
