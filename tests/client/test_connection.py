"""The outbound connection over loopback TCP, against the server's own connection and pipeline:
pipelined requests matched to their answers, losses failing what waits, reconnecting."""

import pytest
import trio

from kafka_compat.client.connection import Connection, ConnectionLost
from kafka_compat.protocol import messages as m
from kafka_compat.server.connection import Connection as ServerConnection
from kafka_compat.server.handlers import CloseConnection, Deferred, Handler
from kafka_compat.server.pipeline import RequestPipeline
from kafka_compat.server.socket_server import accept
from kafka_compat.testing.broker_process import free_port

A = m.ApiKey
VERSION = 12
pytestmark = pytest.mark.timeout(30)


def named(name: str) -> m.MetadataRequest:
    return m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name=name)])


async def metadata(ctx, request: m.MetadataRequest):
    """Answers with the topic name as cluster id; "slow:<s>:<name>" after s seconds; "drop" closes."""
    name = request.topics[0].name
    if name == "drop":
        raise CloseConnection
    if name.startswith("slow:"):
        _, seconds, name = name.split(":")

        async def later(name=name):
            await trio.sleep(float(seconds))
            return m.MetadataResponse(cluster_id=name)
        return Deferred(later)
    return m.MetadataResponse(cluster_id=name)


async def listen(nursery, port: int = 0, arrived: trio.Event | None = None) -> int:
    """A listener on 127.0.0.1 serving `metadata` (setting `arrived` as a request comes in); returns its port."""
    async def serve_metadata(ctx, request):
        if arrived is not None:
            arrived.set()
        return await metadata(ctx, request)
    handlers = {A.METADATA: Handler(A.METADATA, 0, VERSION, serve_metadata)}

    async def serve(stream, peer):
        await ServerConnection(stream, RequestPipeline(None, handlers, "TEST", peer), peer,
                               max_request_bytes=1 << 20).run()
    sockets = await trio.open_tcp_listeners(port, host="127.0.0.1")
    for sock in sockets:
        nursery.start_soon(accept, sock, serve, nursery)
    return sockets[0].socket.getsockname()[1]


def connect(nursery, port: int, **kw) -> Connection:
    conn = Connection(lambda: ("127.0.0.1", port), "test", **kw)
    nursery.start_soon(conn.run)
    return conn


async def test_pipelined_requests_are_each_answered_with_their_own_response(nursery):
    conn = connect(nursery, await listen(nursery))
    answers: dict[str, str] = {}
    async with trio.open_nursery() as callers:
        for name in ("slow:0.3:a", "b", "slow:0.1:c", "d"):
            async def call(name=name):
                answers[name] = (await conn.request(named(name), VERSION)).cluster_id
            callers.start_soon(call)
    assert answers == {"slow:0.3:a": "a", "b": "b", "slow:0.1:c": "c", "d": "d"}


async def test_submitted_requests_go_out_in_order_and_are_answered_in_order(nursery):
    conn = connect(nursery, await listen(nursery))
    done = trio.Event()
    got = []

    def answered(response):
        got.append(response.cluster_id)
        if len(got) == 20:
            done.set()
    for i in range(20):
        conn.submit(named(f"slow:0.01:{i}" if i % 3 == 0 else str(i)), VERSION, answered)
    await done.wait()
    assert got == [str(i) for i in range(20)]


async def test_a_lost_connection_fails_what_waits_on_it_and_the_next_request_reconnects(nursery):
    conn = connect(nursery, await listen(nursery))
    results = []
    all_done = trio.Event()

    def answered(result):
        results.append(result)
        if len(results) == 3:
            all_done.set()
    conn.submit(named("slow:0.5:late"), VERSION, answered)  # the server writes its answer after "drop"'s...
    conn.submit(named("drop"), VERSION, answered)  # ...never: it closes once the one before is answered
    conn.submit(named("after"), VERSION, answered)
    with trio.fail_after(10):
        await all_done.wait()
    assert results[0].cluster_id == "late"
    assert all(isinstance(r, ConnectionLost) for r in results[1:])
    assert (await conn.request(named("again"), VERSION)).cluster_id == "again"


async def test_requests_fail_while_nothing_listens_and_succeed_once_something_does(nursery):
    port = free_port()
    conn = connect(nursery, port, backoff_ms=(50, 200))
    with pytest.raises(ConnectionLost):
        await conn.request(named("x"), VERSION)
    await listen(nursery, port)
    with trio.fail_after(5):
        while True:
            try:
                response = await conn.request(named("x"), VERSION)
                break
            except ConnectionLost:  # submitted during a backoff: fails at its end
                await trio.sleep(0.01)
    assert response.cluster_id == "x"


async def test_closing_fails_the_requests_still_waiting(nursery):
    arrived = trio.Event()
    conn = connect(nursery, await listen(nursery, arrived=arrived))
    async with trio.open_nursery() as callers:
        async def call():
            with pytest.raises(ConnectionLost):
                await conn.request(named("slow:10:never"), VERSION)
        callers.start_soon(call)
        await arrived.wait()  # in flight: the broker has it and will not answer for 10 s
        conn.close()
