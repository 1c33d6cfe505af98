"""The connection and the request pipeline on trio memory streams, with the autojump clock: response
order under pipelining, late and slow work, slow consumers, and clients that go away mid-request.
(The same code over real sockets: test_bad_input, test_broker_behaviour, test_api_coverage.)"""

import socket

import pytest
import structlog
import trio
import trio.testing

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.framing import FrameBuffer
from kafka_compat.protocol.primitives import join
from kafka_compat.server.connection import Connection, RequestCount
from kafka_compat.server.handlers import CONTROLLER, CloseConnection, Deferred, Handler, handles
from kafka_compat.server.pipeline import RequestPipeline, apis

A = m.ApiKey
METADATA_VERSION = 12


class Client:
    """The client's end: request frames out, response frames in."""

    def __init__(self, stream: trio.abc.Stream):
        self.stream = stream
        self.frames = FrameBuffer(1 << 20)
        self.correlation_id = 0

    async def send(self, *requests, version: int = METADATA_VERSION) -> None:
        parts = []
        for request in requests:
            self.correlation_id += 1
            parts += framing.request_frame(request, version, self.correlation_id, "test")
        await self.stream.send_all(join(parts))

    async def receive(self, api_key: int = A.METADATA, version: int = METADATA_VERSION):
        """The next response: (correlation id, response), or None once the server closed."""
        while (frame := self.frames.next_frame()) is None:
            data = await self.stream.receive_some(len(self.frames.space()))
            if not data:
                return None
            self.frames.feed(data)
        return framing.read_response(frame, api_key, version)


def named(name: str) -> m.MetadataRequest:
    return m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name=name)])


class Handlers:
    """A Metadata handler whose behaviour each request names in its topic: "now:<id>" answers at
    once, "later:<id>:<seconds>" answers after that long (a Deferred), "fail", "crash" and "close"
    raise KafkaError, a crash and CloseConnection. The response's cluster id is the request's id."""

    def __init__(self):
        self.handled: list[tuple[str, float]] = []  # (request, when its handler ran)

    async def metadata(self, ctx, request: m.MetadataRequest):
        what = request.topics[0].name
        self.handled.append((what, trio.current_time()))
        kind, _, rest = what.partition(":")
        if kind == "fail":
            raise KafkaError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "no")
        if kind == "crash":
            raise RuntimeError("a bug")
        if kind == "close":
            raise CloseConnection
        if kind == "later":
            ident, _, seconds = rest.partition(":")

            async def answer():
                await trio.sleep(float(seconds))
                return m.MetadataResponse(cluster_id=ident)
            return Deferred(answer)
        return m.MetadataResponse(cluster_id=rest)

    async def list_groups(self, ctx, request: m.ListGroupsRequest):
        """ListGroups answers can carry an error code (Metadata's cannot): the state filter says
        what to do, as the topic does for Metadata."""
        await self.metadata(ctx, named(request.states_filter[0]))
        return m.ListGroupsResponse(groups=[])

    def table(self) -> dict[int, Handler]:
        return {A.METADATA: Handler(A.METADATA, 0, METADATA_VERSION, self.metadata),
                A.LIST_GROUPS: Handler(A.LIST_GROUPS, 4, 4, self.list_groups)}


async def serve(nursery, handlers: dict, *, stream_pair=trio.testing.memory_stream_pair, max_queued: int = 500,
                requests: RequestCount | None = None) -> tuple[Client, trio.Event]:
    """A connection serving `handlers` on one end of `stream_pair`; returns the client's end and an
    event set when the connection has ended."""
    client_stream, server_stream = stream_pair()
    pipeline = RequestPipeline(None, handlers, "TEST", "127.0.0.1:1")
    connection = Connection(server_stream, pipeline, "127.0.0.1:1", max_request_bytes=1 << 20,
                            max_queued=max_queued, requests=requests)
    ended = trio.Event()

    async def run():
        await connection.run()
        ended.set()
    nursery.start_soon(run)
    return Client(client_stream), ended


async def test_pipelined_responses_come_back_in_request_order_while_the_work_overlaps(nursery, autojump_clock):
    h = Handlers()
    client, _ = await serve(nursery, h.table())
    start = trio.current_time()
    await client.send(named("later:a:3"), named("later:b:1"), named("now:c"), named("later:d:2"))
    got = [await client.receive() for _ in range(4)]
    assert [cid for cid, _ in got] == [1, 2, 3, 4]
    assert [r.cluster_id for _, r in got] == ["a", "b", "c", "d"]
    assert trio.current_time() - start == pytest.approx(3)  # the slowest, not the sum


async def test_a_deferred_that_completes_late_holds_back_the_responses_behind_it_not_the_reading(
        nursery, autojump_clock):
    h = Handlers()
    client, _ = await serve(nursery, h.table())
    start = trio.current_time()
    await client.send(named("later:slow:5"), named("now:quick"))
    await client.receive()
    assert trio.current_time() - start == pytest.approx(5)
    _, quick = await client.receive()
    assert quick.cluster_id == "quick"
    assert [when - start for _, when in h.handled] == [0, 0]  # the second was served while the first waited


async def test_a_slow_consumer_stops_the_reading_at_queued_max_requests(nursery, autojump_clock):
    h = Handlers()
    client, _ = await serve(nursery, h.table(), stream_pair=trio.testing.lockstep_stream_pair, max_queued=2)
    await client.send(*[named(f"now:{i}") for i in range(10)])
    await trio.testing.wait_all_tasks_blocked()
    # The writer holds one burst (at most max_queued + 1 responses) it cannot write, the queue
    # max_queued more; the other requests wait, unread by a handler.
    assert len(h.handled) <= 2 * 2 + 1
    got = [await client.receive() for _ in range(10)]
    assert [r.cluster_id for _, r in got] == [str(i) for i in range(10)]
    assert len(h.handled) == 10


def socket_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    """Two ends of a real socket: responses are written by the reader when nothing is ahead of them."""
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def test_on_a_socket_responses_come_back_whole_and_in_order_however_they_are_written(nursery):
    h = Handlers()
    client, _ = await serve(nursery, h.table(), stream_pair=socket_pair)
    big = "x" * 300_000  # more than a socket buffer: the reader's write is partial, the writer sends the rest
    expected = [f"{i}" for i in range(20)] + [f"0{big}", "d", f"1{big}", f"2{big}", "e"]
    await client.send(*[named(f"now:{i}") for i in range(20)], named(f"now:0{big}"),  # a burst, a big one,
                      named("later:d:0"), named(f"now:1{big}"), named(f"now:2{big}"), named("now:e"))  # a Deferred
    got = [await client.receive() for _ in expected]
    assert [cid for cid, _ in got] == list(range(1, len(expected) + 1))
    assert [r.cluster_id for _, r in got] == expected


def tcp_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
    return (trio.SocketStream(trio.socket.from_stdlib_socket(client)),
            trio.SocketStream(trio.socket.from_stdlib_socket(accepted)))


async def test_on_tcp_a_big_request_sent_in_small_pieces_and_a_small_one_after_it_are_both_answered(nursery):
    """The rest of a big frame is awaited in one wake-up (SO_RCVLOWAT): it must ask for no more than the
    client sends before it waits for its answer, and the next wait (for a 4-byte size) for one byte again."""
    client, _ = await serve(nursery, Handlers().table(), stream_pair=tcp_pair)
    big = "x" * 300_000
    frame = join(framing.request_frame(named(f"now:{big}"), METADATA_VERSION, 1, "test"))
    with trio.fail_after(10):
        for i in range(0, len(frame), 4096):
            await client.stream.send_all(frame[i:i + 4096])
            await trio.testing.wait_all_tasks_blocked()  # the server has seen this piece, or waits for more
        client.correlation_id = 1
        await client.send(named("now:small"))
        assert [(cid, r.cluster_id) for cid, r in [await client.receive(), await client.receive()]] == [
            (1, big), (2, "small")]


async def test_a_client_that_closes_mid_request_ends_the_connection_once_its_work_is_done(nursery, autojump_clock):
    h = Handlers()
    requests = RequestCount()
    client, ended = await serve(nursery, h.table(), requests=requests)
    start = trio.current_time()
    await client.send(named("later:a:2"))
    half = join(framing.request_frame(named("now:never"), METADATA_VERSION, 9, "test"))
    await client.stream.send_all(half[:len(half) // 2])
    await client.stream.aclose()
    await ended.wait()
    assert trio.current_time() - start == pytest.approx(2)  # the deferred work ran out, then it closed
    assert [what for what, _ in h.handled] == ["later:a:2"]
    assert requests.value == 0


async def test_closing_a_connection_writes_the_responses_before_it_and_none_after(nursery, autojump_clock):
    h = Handlers()
    client, ended = await serve(nursery, h.table())
    await client.send(named("later:a:1"), named("now:b"), named("close"), named("now:c"))
    got = [await client.receive() for _ in range(3)]
    assert [r.cluster_id for _, r in got[:2]] == ["a", "b"] and got[2] is None
    await ended.wait()
    assert "now:c" not in [what for what, _ in h.handled]


async def test_a_kafka_error_is_answered_with_its_code_and_a_crash_with_unknown_server_error(nursery, autojump_clock):
    h = Handlers()
    client, _ = await serve(nursery, h.table())
    await client.send(*[m.ListGroupsRequest(states_filter=[what]) for what in ("fail", "crash", "now:after")],
                      version=4)
    (_, failed), (_, crashed), (_, after) = [await client.receive(A.LIST_GROUPS, 4) for _ in range(3)]
    assert failed.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    assert crashed.error_code == ErrorCode.UNKNOWN_SERVER_ERROR
    assert after.error_code == ErrorCode.NONE  # the connection goes on


async def test_an_error_a_response_cannot_carry_closes_the_connection(nursery, autojump_clock):
    client, ended = await serve(nursery, Handlers().table())
    await client.send(named("fail"))  # Metadata responses have no top-level error code
    assert await client.receive() is None
    await ended.wait()


async def test_an_api_the_listener_does_not_serve_closes_the_connection(nursery, autojump_clock):
    client, ended = await serve(nursery, apis(CONTROLLER))  # Metadata is a broker listener's API
    await client.send(named("now:x"))
    assert await client.receive() is None
    await ended.wait()


async def test_a_frame_of_an_unknown_api_closes_the_connection_with_one_warning(nursery, autojump_clock):
    client, ended = await serve(nursery, Handlers().table())
    with structlog.testing.capture_logs() as logs:
        frame = framing.API_PREFIX.pack(999, 0, 1) + b"\xff\xff"
        await client.stream.send_all(framing.SIZE.pack(len(frame)) + frame)
        assert await client.receive() is None
        await ended.wait()
    assert [(e["event"], e["log_level"]) for e in logs if e["log_level"] != "debug"] == [("unknown_api", "warning")]


async def test_api_versions_at_an_unknown_version_lists_what_the_listener_serves(nursery, autojump_clock):
    h = Handlers()
    handlers = {**h.table(), A.API_VERSIONS: apis(CONTROLLER)[A.API_VERSIONS]}
    client, _ = await serve(nursery, handlers)
    frame = framing.API_PREFIX.pack(A.API_VERSIONS, 99, 7) + b"\xff\xff"
    await client.stream.send_all(framing.SIZE.pack(len(frame)) + frame)
    cid, response = await client.receive(A.API_VERSIONS, 0)
    assert cid == 7 and response.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert {k.api_key: (k.min_version, k.max_version) for k in response.api_keys} == {
        A.METADATA: (0, METADATA_VERSION), A.LIST_GROUPS: (4, 4), A.API_VERSIONS: (0, 4)}


def test_a_handler_cannot_claim_a_listener_kafka_does_not_serve_the_api_on():
    with pytest.raises(RuntimeError, match="PRODUCE is not served on controller listeners"):
        handles(A.PRODUCE, versions=(0, 11), listeners=(CONTROLLER,))(Handlers().metadata)
    with pytest.raises(RuntimeError, match="two handlers for METADATA"):
        handles(A.METADATA, versions=(0, 12))(Handlers().metadata)
