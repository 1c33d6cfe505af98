"""TlsStream on real loopback sockets: against itself (TLS 1.2 and 1.3, client auth, small and large
frames in both directions at once), and against a hand-driven peer (an ssl.SSLObject whose records
are sent as we choose: a byte at a time, cut short, corrupted) and a plaintext one."""

import fcntl
import os
import socket
import ssl
import struct
import termios

import pytest
import trio
import trio.testing

from kafka_compat.cli.certs import dev_certs
from kafka_compat.net import receive_into
from kafka_compat.protocol.framing import SIZE, FrameBuffer
from kafka_compat.security.principal import SslPrincipalMapper, ssl_principal
from kafka_compat.security.tls import client_context, server_context
from kafka_compat.tls_stream import TlsStream

PASSWORD = "changeit"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return dev_certs(tmp_path_factory.mktemp("certs"), ["localhost", "127.0.0.1"], ["alice"], PASSWORD)


def server_ctx(certs, **more) -> ssl.SSLContext:
    return server_context({"ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs["broker.pem"]),
                           "ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs["ca.pem"]), **more})


def client_ctx(certs, **more) -> ssl.SSLContext:
    return client_context({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(certs["ca.pem"]), **more})


def alice(certs) -> dict:
    return {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(certs["alice.pem"])}


async def connected_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    client = await trio.open_tcp_stream("127.0.0.1", port)
    server = await listener.accept()
    await listener.aclose()
    return client, server


async def tls_pair(server_context_, client_context_) -> tuple[TlsStream, TlsStream]:
    """Both ends of a loopback connection after their handshakes."""
    client, server = await connected_pair()
    tls_client = TlsStream(client, client_context_, server_hostname="localhost")
    tls_server = TlsStream(server, server_context_, server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tls_server.do_handshake)
        nursery.start_soon(tls_client.do_handshake)
    return tls_client, tls_server


def frame(n: int) -> bytes:
    return SIZE.pack(n) + os.urandom(n)


async def next_frame(stream, buffer: FrameBuffer) -> bytearray | None:
    while (got := buffer.next_frame()) is None:
        if not await receive_into(stream, buffer):
            return None
    return got


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
async def test_small_and_large_frames_cross_in_both_directions_at_once(certs, version):
    client, server = await tls_pair(server_ctx(certs), client_ctx(certs, **{"ssl.enabled.protocols": version}))
    assert client.version() == server.version() == version
    sizes = [1, 100, 16 * 1024 - 5, 16 * 1024 + 7, 300_000, 3 * 1024 * 1024, 5, 64 * 1024]
    frames = [frame(n) for n in sizes]
    got: dict[str, list] = {"client": [], "server": []}

    async def send(stream):
        for f in frames:
            await stream.send_all(f)

    async def receive(stream, name):
        buffer = FrameBuffer(4 * 1024 * 1024)
        for _ in frames:
            got[name].append(bytes(await next_frame(stream, buffer)))

    async with trio.open_nursery() as nursery:
        for stream, name in ((client, "client"), (server, "server")):
            nursery.start_soon(send, stream)
            nursery.start_soon(receive, stream, name)
    assert got["client"] == got["server"] == [f[4:] for f in frames]
    await client.aclose()
    await server.aclose()


async def test_close_notify_ends_the_stream_cleanly(certs):
    client, server = await tls_pair(server_ctx(certs), client_ctx(certs))
    await client.send_all(b"last words")
    await client.aclose()
    assert await server.receive_some() == b"last words"
    assert await server.receive_some() == b""
    with pytest.raises(trio.ClosedResourceError):
        await client.send_all(b"more")
    await server.aclose()


async def test_required_client_auth_gives_the_server_the_client_certificate(certs):
    ctx = server_ctx(certs, **{"ssl.client.auth": "required"})
    client, server = await tls_pair(ctx, client_ctx(certs, **alice(certs)))
    assert ssl_principal(server.getpeercert(binary_form=True), SslPrincipalMapper()).startswith("User:CN=alice")
    await client.aclose()
    await server.aclose()


async def test_a_client_without_the_required_certificate_is_refused(certs):
    client_sock, server_sock = await connected_pair()
    client = TlsStream(client_sock, client_ctx(certs), server_hostname="localhost")
    server = TlsStream(server_sock, server_ctx(certs, **{"ssl.client.auth": "required"}), server_side=True)
    outcome = {}

    async def serve():
        with pytest.raises(trio.BrokenResourceError) as refused:
            await server.do_handshake()
        outcome["server"] = refused.value.__cause__
        await server.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        # TLS 1.3: the client's handshake is over before the server has read its (empty) certificate
        with pytest.raises(trio.BrokenResourceError) as told:
            await client.do_handshake()
            await client.receive_some()
    assert isinstance(outcome["server"], ssl.SSLError)
    # the server's alert reached the client: it knows why, not just that the connection ended
    assert "CERTIFICATE_REQUIRED" in str(told.value.__cause__)
    await client.aclose()


async def test_a_server_the_client_does_not_trust_is_refused_with_the_reason(certs, tmp_path):
    other = dev_certs(tmp_path / "other", ["localhost"], [], PASSWORD)
    client_sock, server_sock = await connected_pair()
    client = TlsStream(client_sock, client_ctx(certs), server_hostname="localhost")
    server = TlsStream(server_sock, server_context({"ssl.keystore.type": "PEM",
                                                     "ssl.keystore.location": str(other["broker.pem"])}),
                       server_side=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_refused, server)
        with pytest.raises(trio.BrokenResourceError) as refused:
            await client.do_handshake()
        with pytest.raises(trio.BrokenResourceError):
            await client.send_all(b"x")
        await client.aclose()  # the server, waiting for the client's next flight, sees the end
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)


async def _refused(stream: TlsStream) -> None:
    with pytest.raises(trio.BrokenResourceError):
        await stream.do_handshake()
    await stream.aclose()


class Peer:
    """A TLS client over a blocking socket whose records we put on the wire ourselves."""

    def __init__(self, port: int, ctx: ssl.SSLContext):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                self.incoming.write(self.sock.recv(65536))
        self.sock.sendall(self.outgoing.read())

    def records(self, data: bytes) -> bytes:
        self.tls.write(data)
        return self.outgoing.read()

    def read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            try:
                data += self.tls.read(n - len(data))
            except ssl.SSLWantReadError:
                self.incoming.write(self.sock.recv(65536))
        return data


async def served_peer(certs, drive) -> tuple[object, object]:
    """(what the server's frame reader got: a frame, None at the end, or the exception; what `drive`,
    run in a thread with a Peer, returned)."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    outcome = {}

    async def serve():
        stream = TlsStream(await listener.accept(), server_ctx(certs), server_side=True)
        try:
            await stream.do_handshake()
            outcome["server"] = await next_frame(stream, FrameBuffer(1024 * 1024))
            await stream.send_all(b"ok")
        except trio.BrokenResourceError as e:
            outcome["server"] = e
        finally:
            await stream.aclose()

    def run():
        peer = Peer(port, client_ctx(certs))
        try:
            return drive(peer)
        finally:  # end with a FIN, not a reset: unread session tickets would make the close a reset
            peer.sock.shutdown(socket.SHUT_WR)
            while peer.sock.recv(65536):
                pass
            peer.sock.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        outcome["peer"] = await trio.to_thread.run_sync(run)
    await listener.aclose()
    return outcome["server"], outcome["peer"]


async def test_a_peer_that_sends_one_byte_at_a_time_is_read_whole(certs):
    sent = frame(40_000)

    def drive(peer):
        for byte in peer.records(sent):
            peer.sock.sendall(bytes([byte]))
        return peer.read(2)

    got, answer = await served_peer(certs, drive)
    assert got == sent[4:] and answer == b"ok"


def unread(sock) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


async def test_the_rest_of_a_big_frame_cut_mid_record_is_awaited_for_no_more_than_comes(certs):
    """The wait for the rest of a big frame asks the kernel for as many bytes as are certain to come
    (SO_RCVLOWAT). The part of a record that OpenSSL has already taken from the incoming BIO does not
    come again: counted as coming, the wait asked for more than the peer sends, and both waited forever."""
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    port = listener.socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        connecting = nursery.start_soon
        peers: list[Peer] = []
        connecting(lambda: trio.to_thread.run_sync(lambda: peers.append(Peer(port, client_ctx(certs)))))
        server = TlsStream(await listener.accept(), server_ctx(certs), server_side=True)
        await server.do_handshake()
    await listener.aclose()
    peer, sent, buffer, got = peers[0], frame(100_000), FrameBuffer(1 << 20), []
    wire = peer.records(sent)  # 16 KiB records
    peer.sock.sendall(wire[:41_000])  # two whole records and half the third

    async def read():
        got.append(await next_frame(server, buffer))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()  # the reader waits for the rest of the frame
            assert buffer.coming() and not unread(server.transport.socket)
            peer.sock.sendall(wire[41_000:])
    assert got == [sent[4:]]
    peer.sock.close()
    await server.aclose()


async def test_a_connection_closed_mid_record_is_broken_not_ended(certs):
    def drive(peer):
        wire = peer.records(frame(1000))
        peer.sock.sendall(wire[:len(wire) // 2])

    got, _ = await served_peer(certs, drive)
    assert isinstance(got, trio.BrokenResourceError) and isinstance(got.__cause__, ssl.SSLEOFError)


async def test_a_corrupted_record_breaks_the_stream(certs):
    def drive(peer):
        wire = bytearray(peer.records(frame(1000)))
        wire[-20] ^= 0xFF
        peer.sock.sendall(wire)

    got, _ = await served_peer(certs, drive)
    assert isinstance(got, trio.BrokenResourceError) and isinstance(got.__cause__, ssl.SSLError)


async def test_a_plaintext_client_fails_the_handshake(certs):
    listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
    plain = await trio.open_tcp_stream("127.0.0.1", listener.socket.getsockname()[1])
    server = TlsStream(await listener.accept(), server_ctx(certs), server_side=True)
    await plain.send_all(SIZE.pack(10) + b"\x00\x12\x00\x03\x00\x00\x00\x01\x00\x00")  # ApiVersions, in clear
    with pytest.raises(trio.BrokenResourceError) as refused:
        await server.do_handshake()
    assert isinstance(refused.value.__cause__, ssl.SSLError)
    await server.aclose()
    await plain.aclose()
    await listener.aclose()
