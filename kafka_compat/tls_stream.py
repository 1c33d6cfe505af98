"""TLS over a trio socket: a stream around `ssl.SSLObject` and two memory BIOs, built for Kafka's traffic.

    tls = TlsStream(socket_stream, context, server_side=True)   # a client: server_hostname=host
    await tls.do_handshake()            # refused: trio.BrokenResourceError, the ssl error its __cause__
    n = await tls.receive_into(view)    # decrypted straight into `view`; 0 once the peer sent close_notify
    await tls.send_all(data)            # one encrypt, one socket send

Why not `trio.SSLStream`: its `receive_some` decrypts one TLS record (16 KiB at most) per call into a
new bytes object and passes through trio's scheduler each time, so a 1 MiB produce request cost ~64
round trips and a copy per record more. Here each wait for the socket reads up to 1 MiB into a
reused buffer, and every whole record then buffered is decrypted straight into the caller's buffer
(the frame being received) before the call returns. It never waits for the socket while a whole
record is buffered: the peer, having sent its request, would wait for our answer, and we for it.

Errors are trio's, so callers treat both streams alike: an ssl error (a refused handshake, a corrupt
record, the end of the stream without close_notify) raises trio.BrokenResourceError from it, a
closed stream trio.ClosedResourceError. A refused handshake first sends the peer the alert OpenSSL
made (best effort, briefly), as Kafka's SslTransportLayer does, so that the peer learns why (a Java
client without the certificate a listener requires gets an SslAuthenticationException, not a
timeout). What OpenSSL writes while reading (a TLS 1.3 key update's answer) is sent before the
read returns. Whatever an SSL call writes is taken from the outgoing BIO before anything is awaited
and sent through one FIFO lock: bytes reach the wire in the order they were made, and a receive
never waits to send a writer's bytes (with both peers sending more than the sockets hold, that
would stop both from reading). One task receives at a time.
"""

from __future__ import annotations

import ssl
import threading

import trio

from kafka_compat.net import LOWAT_MAX, read_into

RECEIVE_BYTES = LOWAT_MAX  # per socket read: as much as a wait may have asked for
MAX_RECORD = 5 + (1 << 14) + 2048  # a TLS 1.2 or 1.3 record on the wire: header, fragment, expansion
ALERT_SEND_S = 1.0  # how long a refused handshake may spend telling the peer why
_local = threading.local()  # each thread's receive buffer: a read is copied into the BIO before any await


def _receive_buffer() -> memoryview:
    try:
        return _local.view
    except AttributeError:
        _local.view = view = memoryview(bytearray(RECEIVE_BYTES))
        return view


class TlsStream(trio.abc.Stream):
    def __init__(self, transport: trio.SocketStream, context: ssl.SSLContext, *, server_side: bool = False,
                 server_hostname: str | None = None):
        self.transport = transport
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._send_lock, self._handshake_lock = trio.StrictFIFOLock(), trio.Lock()
        self._handshook = self._eof = self._broken = self._closed = False

    def getpeercert(self, binary_form: bool = False):
        return self._ssl.getpeercert(binary_form)

    def version(self) -> str | None:
        return self._ssl.version()

    def cipher(self) -> tuple[str, str, int] | None:
        return self._ssl.cipher()

    async def do_handshake(self) -> None:
        """Complete the handshake (at once if it is done). A refusal leaves the stream broken."""
        self._check()
        if self._handshook:
            return
        async with self._handshake_lock:  # a sender and a receiver may both start it
            while not self._handshook:
                self._check()
                try:
                    self._ssl.do_handshake()
                    self._handshook = True
                except ssl.SSLWantReadError:
                    await self._flush()
                    await self._fill()
                except ssl.SSLError as e:
                    self._broken = True
                    await self._send_alert()
                    raise trio.BrokenResourceError(f"TLS handshake failed: {e}") from e
            await self._flush()  # the last flight (and TLS 1.3 session tickets, on the server)

    async def receive_into(self, view: memoryview, coming: int = 0) -> int:
        """Decrypt every whole record buffered into `view` (waiting for the socket only while none is);
        how many bytes, 0 once the peer closed with close_notify. `coming`: plaintext bytes certain to
        arrive (the rest of the frame `view` is part of), so that a wait can be for many records."""
        await self.do_handshake()
        if self._eof:
            return 0
        read, size, n = self._ssl.read, len(view), 0
        while True:
            try:
                while n < size:
                    got = read(size - n, view[n:])
                    if not got:  # the peer's close_notify
                        self._eof = True
                        break
                    n += got
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                self._broken = True
                raise trio.BrokenResourceError(f"TLS receive failed: {e}") from e
            if self._outgoing.pending:
                await self._flush()
            if n or self._eof:
                return n
            await self._fill(coming)

    async def receive_some(self, max_bytes: int | None = None) -> bytearray:
        data = bytearray(max_bytes or RECEIVE_BYTES)
        del data[await self.receive_into(memoryview(data)):]
        return data

    async def send_all(self, data) -> None:
        await self.do_handshake()
        if not len(data):
            await trio.lowlevel.checkpoint()
            return
        try:
            self._ssl.write(data)
        except ssl.SSLError as e:
            self._broken = True
            raise trio.BrokenResourceError(f"TLS send failed: {e}") from e
        await self._flush()

    async def wait_send_all_might_not_block(self) -> None:
        await self.transport.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Send close_notify (without waiting for the peer's), then close the socket."""
        if self._closed:
            await trio.lowlevel.checkpoint()
            return
        self._closed = True
        try:
            if self._handshook and not self._broken:
                try:
                    self._ssl.unwrap()
                except ssl.SSLError:  # SSLWantReadError: the peer's close_notify is not awaited
                    pass
                try:
                    await self._flush()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        finally:
            await self.transport.aclose()

    def _check(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("the TLS stream is closed")
        if self._broken:
            raise trio.BrokenResourceError("the TLS stream is broken")

    async def _fill(self, coming: int = 0) -> None:
        """Wait for the socket, then move what it holds (up to RECEIVE_BYTES) into the incoming BIO.
        Of `coming` plaintext bytes, the ciphertext already here may hold all but what is still due:
        the incoming BIO's bytes and one partial record that OpenSSL has taken from it."""
        buf = _receive_buffer()
        try:
            n = await read_into(self.transport.socket, buf, coming - self._incoming.pending - MAX_RECORD)
        except trio.BrokenResourceError:
            self._broken = True
            raise
        if n:
            self._incoming.write(buf[:n])
        else:
            self._incoming.write_eof()  # the next read: close_notify seen, or SSLEOFError (truncated)

    async def _send_alert(self) -> None:
        """Send what a failed handshake left in the outgoing BIO (its alert), if the socket takes it soon."""
        data = self._outgoing.read()
        if not data:
            return
        with trio.move_on_after(ALERT_SEND_S):
            async with self._send_lock:
                try:
                    await self.transport.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the peer is gone: it will not hear why

    async def _flush(self) -> None:
        """Send what the SSL call just made wrote to the outgoing BIO. Taken out before the first await,
        so each task sends only its own bytes (a receive never waits behind a send for the peer to read)
        and the FIFO lock keeps them in the order they were made."""
        data = self._outgoing.read()
        if not data:
            return
        async with self._send_lock:
            try:
                await self.transport.send_all(data)
            except BaseException:
                self._broken = True  # an unknown part was sent: the record stream is cut
                raise
