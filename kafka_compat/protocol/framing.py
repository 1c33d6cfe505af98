"""Frames and headers: the 4-byte size prefix, request headers v0-v2, response headers v0-v1.

Sans-I/O. `FrameBuffer` turns received bytes into whole frames (enforcing a maximum size before
anything is allocated for the frame); `read_request` splits a request frame into its header and the
offset of its body; `response_frame`/`request_frame` put a message on the wire as a list of
buffers with its size prefix, ready for a gather write.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kafka_compat.protocol import messages
from kafka_compat.protocol.messages import ApiKey, RequestHeader, ResponseHeader
from kafka_compat.protocol.primitives import DecodeError, Message

SIZE = struct.Struct(">i")
# The first fields of every request header version: api key, api version, correlation id.
API_PREFIX = struct.Struct(">hhi")


class FrameTooLarge(Exception):
    """A peer announced a frame bigger than allowed (or a negative size)."""

    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")


def request_header_version(api_key: int, api_version: int) -> int:
    """v2 for flexible versions, else v1; ControlledShutdown v0 alone used header v0."""
    if api_key == ApiKey.CONTROLLED_SHUTDOWN and api_version == 0:
        return 0
    return 2 if messages.request_class(api_key).flexible(api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """v1 for flexible versions, else v0; ApiVersions always answers with v0 so that a client
    that does not yet know the broker's versions can read the answer."""
    if api_key == ApiKey.API_VERSIONS:
        return 0
    return 1 if messages.response_class(api_key).flexible(api_version) else 0


class FrameBuffer:
    """Reassembles size-prefixed frames from a byte stream, received in place.

    The caller receives into `space()` (a socket's `recv_into`) and reports how much arrived with
    `received(n)`. Bytes land in one reused buffer; a frame too big for it is received straight
    into its own bytearray, so a large frame is copied once, from the kernel. Each frame comes out
    as a bytearray of its own: writable, so that produce data can be patched in place (offsets,
    leader epochs) without another copy, and safe to keep while more is received.
    """

    __slots__ = ("max_frame", "_buf", "_view", "_start", "_end", "_frame", "_got")

    def __init__(self, max_frame: int, size: int = 32 * 1024):
        self.max_frame = max_frame
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # unread bytes: _buf[_start:_end]
        self._frame: bytearray | None = None  # a big frame being received in place
        self._got = 0  # bytes of it received

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed out in a frame."""
        return self._got if self._frame is not None else self._end - self._start

    def space(self) -> memoryview:
        """Where the next received bytes go (never empty)."""
        if self._frame is not None:
            return memoryview(self._frame)[self._got:]
        if self._start == self._end:
            self._start = self._end = 0
        elif len(self._buf) - self._end < len(self._buf) // 4:  # move the unread tail to the front
            n = self._end - self._start
            self._view[:n] = self._view[self._start:self._end]
            self._start, self._end = 0, n
        return self._view[self._end:]

    def coming(self) -> int:
        """Bytes of the big frame being received still to arrive (0 when none is): the peer sends them
        before it waits for an answer."""
        return len(self._frame) - self._got if self._frame is not None else 0

    def received(self, n: int) -> None:
        if self._frame is not None:
            self._got += n
        else:
            self._end += n

    def feed(self, data) -> None:
        """Copy `data` in (at most `len(space())` bytes): for streams that cannot receive into a buffer."""
        n = len(data)
        self.space()[:n] = data
        self.received(n)

    def next_frame(self) -> bytearray | None:
        """The next whole frame body (without its size), or None until more data arrives.

        Raises FrameTooLarge as soon as a size above the limit is read, before buffering it."""
        frame = self._frame
        if frame is not None:
            if self._got < len(frame):
                return None
            self._frame = None
            return frame
        available = self._end - self._start
        if available < 4:
            return None
        (size,) = SIZE.unpack_from(self._buf, self._start)
        if size < 0 or size > self.max_frame:
            raise FrameTooLarge(size, self.max_frame)
        begin = self._start + 4
        if available - 4 >= size:
            self._start = begin + size
            return self._buf[begin:begin + size]
        if size > len(self._buf) // 4:  # receive the rest of it in place
            self._frame = frame = bytearray(size)
            self._got = available - 4
            frame[:self._got] = self._view[begin:self._end]
            self._start = self._end = 0
        return None


@dataclass(slots=True)
class RequestFrame:
    """A request frame whose header is read and whose body is not (yet)."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header: RequestHeader | None  # None while the API or version is not one we can decode
    body_offset: int
    frame: bytes | bytearray

    def decode_body(self, cls: type[Message]) -> Message:
        """The request body. Bytes after it are ignored, as Kafka ignores them: librdkafka's
        all-topics Metadata request (v9+) carries three (an unshrunk 4-byte count placeholder)."""
        body, end = cls.decode_prefix(self.frame, self.api_version, self.body_offset)
        if end > len(self.frame):
            raise DecodeError("a length runs past the end of the frame", len(self.frame), cls.NAME, self.api_version)
        return body


def peek_request(frame: bytes) -> tuple[int, int, int]:
    """(api key, api version, correlation id): present at the start of every header version."""
    if len(frame) < API_PREFIX.size:
        raise DecodeError("frame shorter than a request header", len(frame), "RequestHeader")
    return API_PREFIX.unpack_from(frame, 0)


def read_request(frame: bytes) -> RequestFrame:
    """Read the request header. For an API key or version the codecs do not know, only the
    fields every header version starts with are read (`header` is None), so that the caller can
    still answer or log with the correlation id."""
    api_key, api_version, correlation_id = peek_request(frame)
    cls = messages.REQUESTS.get(api_key)
    if cls is None:
        return RequestFrame(api_key, api_version, correlation_id, None, None, len(frame), frame)
    lo, hi = messages.request_class(api_key).VALID_VERSIONS
    if not lo <= api_version <= hi:
        return RequestFrame(api_key, api_version, correlation_id, None, None, len(frame), frame)
    hv = request_header_version(api_key, api_version)
    header, end = RequestHeader.decode_prefix(frame, hv, 0)
    if end > len(frame):
        raise DecodeError("request header runs past the end of the frame", len(frame), "RequestHeader", hv)
    return RequestFrame(api_key, api_version, correlation_id, header.client_id, header, end, frame)


def _framed(parts: list) -> list:
    size = 0
    for p in parts:
        size += len(p)
    parts.insert(0, SIZE.pack(size))
    return parts


def response_frame(response: Message, api_version: int, correlation_id: int) -> list:
    """Size prefix + response header + body, as a list of buffers (records are not copied)."""
    hv = response_header_version(response.API_KEY, api_version)
    parts = ResponseHeader(correlation_id=correlation_id).encode_parts(hv)
    parts += response.encode_parts(api_version)
    return _framed(parts)


def request_frame(request: Message, api_version: int, correlation_id: int, client_id: str | None) -> list:
    """Size prefix + request header + body, as a list of buffers."""
    hv = request_header_version(request.API_KEY, api_version)
    header = RequestHeader(request_api_key=request.API_KEY, request_api_version=api_version,
                           correlation_id=correlation_id, client_id=client_id)
    parts = header.encode_parts(hv)
    parts += request.encode_parts(api_version)
    return _framed(parts)


def read_response(frame: bytes, api_key: int, api_version: int) -> tuple[int, Message]:
    """(correlation id, response) from a response frame body."""
    hv = response_header_version(api_key, api_version)
    header, end = ResponseHeader.decode_prefix(frame, hv, 0)
    return header.correlation_id, messages.response_class(api_key).decode(frame, api_version, end)
