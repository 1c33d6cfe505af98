"""The trio driver: three nodes in one process over loopback TCP, and a Kafka client on the listener."""

import pytest
import trio

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.framing import FrameReader
from kafka_compat.protocol.messages import ApiKey
from kafka_compat.raft import wire
from kafka_compat.raft.config import Endpoint, QuorumConfig
from kafka_compat.raft.driver import RaftDriver
from kafka_compat.raft.node import NotLeaderError
from kafka_compat.raft.state_machine import KeyValueStateMachine
from kafka_compat.testing.broker_process import free_port


async def kafka_call(port, request, version, correlation_id=1):
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        await stream.send_all(b"".join(framing.request_frame(request, version, correlation_id, "test")))
        reader = FrameReader(1 << 24)
        while (frame := reader.next_frame()) is None:
            reader.feed(await stream.receive_some(65536))
        corr, response = framing.read_response(frame, request.API_KEY, version)
        assert corr == correlation_id
        return response


FAST = dict(cluster_id="driver-test", election_timeout_ms=300, fetch_timeout_ms=600)


@pytest.fixture
async def drivers(tmp_path, nursery):
    endpoints = {i: Endpoint("127.0.0.1", free_port()) for i in (1, 2, 3)}
    config = QuorumConfig(voters=frozenset(endpoints), endpoints=endpoints, **FAST)
    started = {}
    for i, ep in endpoints.items():
        d = RaftDriver(i, config, tmp_path / f"node-{i}", KeyValueStateMachine(), listen=(ep.host, ep.port))
        await nursery.start(d.run)
        started[i] = d
    return started


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
    versions = await kafka_call(leader.port, m.ApiVersionsRequest(client_software_name="t",
                                                                 client_software_version="1"), 3)
    served = {k.api_key: (k.min_version, k.max_version) for k in versions.api_keys}
    assert served[ApiKey.DESCRIBE_QUORUM] == (0, 2) and served[ApiKey.VOTE] == (0, 1)
    for version in (0, 1, 2):
        described = await kafka_call(leader.port, wire.describe_quorum_request(), version)
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
    config = QuorumConfig(voters=frozenset(drivers), endpoints={-2: Endpoint("127.0.0.1", follower.port)},
                          bootstrap=(-2,), **FAST)
    observer = RaftDriver(10, config, tmp_path / "observer", KeyValueStateMachine(), listen=("127.0.0.1", 0))
    await nursery.start(observer.run)
    await leader.propose([b"seen=yes"])
    with trio.fail_after(10):
        await observer.wait_for(lambda: observer.state_machine.data.get("seen") == "yes")
    assert observer.leader.leader_id == leader.id and observer.node.role == "follower"
    described = wire.partition_of(await leader.describe_quorum())
    assert [o.replica_id for o in described.observers] == [10]
