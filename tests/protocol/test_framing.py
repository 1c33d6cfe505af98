"""Frames and headers: size prefixes, header versions, reassembly from arbitrary chunks."""

import os

import pytest

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import join


def receive(buffer: framing.FrameBuffer, wire: bytes, chunk: int) -> list[bytes]:
    """Frames out of `wire` received `chunk` bytes at a time (or less, where the buffer asks less)."""
    out, i = [], 0
    while i < len(wire):
        space = buffer.space()
        n = min(chunk, len(space), len(wire) - i)
        space[:n] = wire[i:i + n]
        buffer.received(n)
        i += n
        while (f := buffer.next_frame()) is not None:
            out.append(f)
    return out


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096, 1 << 20])
def test_frame_buffer_reassembles_frames_split_anywhere(chunk):
    frames = [os.urandom(n) for n in (0, 1, 10, 5000, 3, 200_000, 16_000, 70_000, 2)]
    wire = b"".join(framing.SIZE.pack(len(f)) + f for f in frames)
    buffer = framing.FrameBuffer(1 << 20, size=64 * 1024)
    got = receive(buffer, wire, chunk)
    assert got == frames and buffer.buffered == 0
    assert all(type(f) is bytearray for f in got)


def test_a_frame_bigger_than_the_buffer_is_received_in_place():
    frame = os.urandom(100_000)
    buffer = framing.FrameBuffer(1 << 20, size=4096)
    buffer.feed(framing.SIZE.pack(len(frame)) + frame[:100])
    assert buffer.next_frame() is None
    space = buffer.space()
    assert len(space) == buffer.coming() == len(frame) - 100  # the rest of the frame, straight into it
    space[:] = frame[100:]
    buffer.received(len(space))
    assert buffer.next_frame() == frame
    assert buffer.coming() == 0  # nothing is certain to come until the next big frame's size is read


def test_frames_handed_out_stay_intact_while_more_is_received():
    frames = [bytes([i]) * 3000 for i in range(50)]
    wire = b"".join(framing.SIZE.pack(len(f)) + f for f in frames)
    buffer = framing.FrameBuffer(1 << 20, size=8192)
    assert receive(buffer, wire, 5000) == frames


def test_frame_larger_than_the_limit_is_rejected_from_its_size_alone():
    for size in (101, -1):
        buffer = framing.FrameBuffer(100)
        buffer.feed(framing.SIZE.pack(size))
        with pytest.raises(framing.FrameTooLarge):
            buffer.next_frame()


def test_header_versions_follow_flexibility():
    assert framing.request_header_version(m.ApiKey.METADATA, 8) == 1
    assert framing.request_header_version(m.ApiKey.METADATA, 9) == 2
    assert framing.request_header_version(m.ApiKey.CONTROLLED_SHUTDOWN, 0) == 0
    assert framing.response_header_version(m.ApiKey.METADATA, 9) == 1
    assert framing.response_header_version(m.ApiKey.API_VERSIONS, 3) == 0  # always v0


def test_request_round_trip_through_a_frame():
    req = m.ListOffsetsRequest(replica_id=-1, topics=[m.ListOffsetsRequest.ListOffsetsTopic(name="t", partitions=[
        m.ListOffsetsRequest.ListOffsetsPartition(partition_index=2, timestamp=-2)])])
    wire = join(framing.request_frame(req, 7, correlation_id=42, client_id="tester"))
    buffer = framing.FrameBuffer(1 << 20)
    buffer.feed(wire)
    frame = buffer.next_frame()
    rf = framing.read_request(frame)
    assert (rf.api_key, rf.api_version, rf.correlation_id, rf.client_id) == (2, 7, 42, "tester")
    assert rf.decode_body(m.ListOffsetsRequest) == req


def test_response_round_trip_through_a_frame():
    resp = m.ApiVersionsResponse(error_code=35, api_keys=[
        m.ApiVersionsResponse.ApiVersion(api_key=18, min_version=0, max_version=4)])
    wire = join(framing.response_frame(resp, 3, correlation_id=9))
    assert framing.SIZE.unpack_from(wire)[0] == len(wire) - 4
    cid, back = framing.read_response(wire[4:], m.ApiKey.API_VERSIONS, 3)
    assert cid == 9 and back == resp


def test_unknown_api_or_version_keeps_the_correlation_id():
    frame = framing.API_PREFIX.pack(999, 0, 77) + b"\xff\xff"
    rf = framing.read_request(frame)
    assert (rf.api_key, rf.correlation_id, rf.header) == (999, 77, None)
    frame = framing.API_PREFIX.pack(m.ApiKey.API_VERSIONS, 99, 78) + b"\xff\xff"
    rf = framing.read_request(frame)
    assert (rf.api_version, rf.correlation_id, rf.header) == (99, 78, None)


def test_bytes_after_a_request_body_are_ignored_as_kafka_does():
    # librdkafka's all-topics Metadata v12: a 4-byte count placeholder of which only the first
    # byte (compact null) is meaningful, then AllowAutoTopicCreation=true, IncludeTopicAuthorizedOperations, tags.
    frame = bytes.fromhex("0003000c00000004000772646b61666b6100" + "00000000010000")
    rf = framing.read_request(frame)
    req = rf.decode_body(m.MetadataRequest)
    assert req.topics is None


def test_a_request_body_running_past_its_frame_is_malformed():
    from kafka_compat.protocol.primitives import DecodeError

    frame = bytes.fromhex("0003000c00000004000772646b61666b6100") + b"\x05ab"
    with pytest.raises(DecodeError):
        framing.read_request(frame).decode_body(m.MetadataRequest)
