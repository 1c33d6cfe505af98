"""Bad input over live sockets: the broker answers errors or closes that connection, never crashes,
and data produced before and after stays intact."""

import os
import random
import socket
import struct
import time

import pytest

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import Record, build_batch, iter_headers, iter_records
from kafka_compat.records import compression as codecs

P = m.ProduceRequest


def create(conn: BrokerConnection, name: str, **configs) -> None:
    C = m.CreateTopicsRequest
    resp = conn.request(C(timeout_ms=5000, topics=[C.CreatableTopic(
        name=name, num_partitions=1, replication_factor=1,
        configs=[C.CreatableTopicConfig(name=k.replace("_", "."), value=v) for k, v in configs.items()])]))
    assert resp.topics[0].error_code == ErrorCode.NONE, resp


def produce(conn: BrokerConnection, topic: str, data) -> m.ProduceResponse:
    return conn.request(P(acks=-1, timeout_ms=5000, topic_data=[P.TopicProduceData(
        name=topic, partition_data=[P.PartitionProduceData(index=0, records=data)])]))


def error_of(resp: m.ProduceResponse) -> int:
    return resp.responses[0].partition_responses[0].error_code


def values(conn: BrokerConnection, topic: str) -> list[bytes]:
    F = m.FetchRequest
    resp = conn.request(F(max_wait_ms=0, max_bytes=1 << 24, topics=[F.FetchTopic(topic=topic, partitions=[
        F.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 24)])]), 11)
    data = resp.responses[0].partitions[0].records
    data = bytes(data.read() if hasattr(data, "read") else data)
    return [r.value for pos, h in iter_headers(memoryview(data)) for r in iter_records(memoryview(data), pos, h)]


def batch(*vals: bytes, compression: int = codecs.NONE) -> bytearray:
    return build_batch([Record(key=b"k", value=v, timestamp=1700000000000) for v in vals], compression=compression)


def closed_by_broker(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.fixture
def conn(broker):
    with BrokerConnection.to(broker.bootstrap) as c:
        yield c


def test_corrupt_crc_is_corrupt_message(conn, unique):
    topic = unique()
    create(conn, topic)
    data = batch(b"one")
    data[-1] ^= 0xFF
    assert error_of(produce(conn, topic, data)) == ErrorCode.CORRUPT_MESSAGE
    assert values(conn, topic) == []


def test_unknown_magic_is_corrupt_message(conn, unique):
    topic = unique()
    create(conn, topic)
    data = batch(b"one")
    data[16] = 7  # magic byte
    assert error_of(produce(conn, topic, data)) == ErrorCode.CORRUPT_MESSAGE


def test_lying_record_count_is_refused(conn, unique):
    topic = unique()
    create(conn, topic)
    data = batch(b"one", b"two")
    struct.pack_into(">i", data, 57, 1000)  # record count, covered by the CRC: re-sign it
    from kafka_compat.records.batch import crc_of

    struct.pack_into(">I", data, 17, crc_of(data, 0, len(data)))
    assert error_of(produce(conn, topic, data)) in (ErrorCode.CORRUPT_MESSAGE, ErrorCode.INVALID_RECORD)
    assert values(conn, topic) == []


def test_truncated_batch_is_corrupt_message(conn, unique):
    topic = unique()
    create(conn, topic)
    assert error_of(produce(conn, topic, batch(b"x" * 100)[:-10])) == ErrorCode.CORRUPT_MESSAGE


def test_batch_over_max_message_bytes_is_message_too_large(conn, unique):
    topic = unique()
    create(conn, topic, max_message_bytes="1000")
    assert error_of(produce(conn, topic, batch(os.urandom(2000)))) == ErrorCode.MESSAGE_TOO_LARGE
    assert error_of(produce(conn, topic, batch(b"small"))) == ErrorCode.NONE
    assert values(conn, topic) == [b"small"]


def test_compression_bomb_on_a_compacted_topic_is_refused_without_inflating(conn, unique):
    # Compacted topics need each record's key, so the broker must decompress: a record of 300 MiB
    # of zeros (a few KiB as zstd) must be refused, not inflated.
    topic = unique()
    create(conn, topic, cleanup_policy="compact")
    bomb = build_batch([Record(key=b"k", value=bytes(300 << 20), timestamp=1700000000000)], compression=codecs.ZSTD)
    assert len(bomb) < 64 << 10
    assert error_of(produce(conn, topic, bomb)) == ErrorCode.MESSAGE_TOO_LARGE


def test_a_batch_refused_for_some_of_its_records_names_them_kip_467(conn, unique):
    topic = unique()
    create(conn, topic, cleanup_policy="compact")
    keyless = build_batch([Record(key=b"a", value=b"1", timestamp=1700000000000),
                           Record(key=None, value=b"2", timestamp=1700000000000),
                           Record(key=b"c", value=b"3", timestamp=1700000000000),
                           Record(key=None, value=b"4", timestamp=1700000000000)])
    resp = conn.request(P(acks=-1, timeout_ms=5000, topic_data=[P.TopicProduceData(
        name=topic, partition_data=[P.PartitionProduceData(index=0, records=keyless)])]), 9)
    (result,) = resp.responses[0].partition_responses
    assert result.error_code == ErrorCode.INVALID_RECORD
    assert [(e.batch_index, e.batch_index_error_message) for e in result.record_errors] == [
        (i, f"Compacted topic cannot accept message without key in topic partition {topic}-0.") for i in (1, 3)]
    assert result.error_message.startswith("One or more records have been rejected due to 2 record errors")
    assert values(conn, topic) == []


def test_records_with_timestamps_out_of_the_topics_range_are_named_with_invalid_timestamp(conn, unique):
    topic = unique()
    create(conn, topic, message_timestamp_after_max_ms="60000")
    now = int(time.time() * 1000)
    data = build_batch([Record(key=b"k", value=b"now", timestamp=now),
                        Record(key=b"k", value=b"later", timestamp=now + 3_600_000)])
    resp = conn.request(P(acks=-1, timeout_ms=5000, topic_data=[P.TopicProduceData(
        name=topic, partition_data=[P.PartitionProduceData(index=0, records=data)])]), 11)
    (result,) = resp.responses[0].partition_responses
    assert result.error_code == ErrorCode.INVALID_TIMESTAMP
    assert [e.batch_index for e in result.record_errors] == [1]
    assert result.record_errors[0].batch_index_error_message.startswith(f"Timestamp {now + 3_600_000} of message")


def test_unknown_api_key_closes_only_that_connection(broker):
    with socket.create_connection(("127.0.0.1", broker.port)) as s:
        frame = struct.pack(">hhih", 999, 0, 1, -1)
        s.sendall(framing.SIZE.pack(len(frame)) + frame)
        assert closed_by_broker(s)
    with BrokerConnection.to(broker.bootstrap) as c:
        assert c.request(m.MetadataRequest(topics=[])).brokers


def test_request_larger_than_socket_request_max_bytes_is_refused_before_reading(broker_factory):
    proc = broker_factory({"socket.request.max.bytes": "10000"})
    with socket.create_connection(("127.0.0.1", proc.port)) as s:
        s.sendall(framing.SIZE.pack(50_000_000))  # announces 50 MB, sends nothing more
        assert closed_by_broker(s)
    with BrokerConnection.to(proc.bootstrap) as c:
        assert c.request(m.MetadataRequest(topics=[])).brokers


def test_malformed_body_closes_the_connection(broker):
    with socket.create_connection(("127.0.0.1", broker.port)) as s:
        # 3 topics, then nothing
        frame = struct.pack(">hhih", m.ApiKey.METADATA, 1, 5, -1) + struct.pack(">i", 3) + b"\x00"
        s.sendall(framing.SIZE.pack(len(frame)) + frame)
        assert closed_by_broker(s)


def test_random_and_mutated_frames_never_hurt_the_broker_or_its_data(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        create(c, topic)
        assert error_of(produce(c, topic, batch(b"before"))) == 0
    rng = random.Random(20261121)
    good = [bytes(f) for f in (
        b"".join(framing.request_frame(m.MetadataRequest(topics=None), 12, 1, "fuzz")),
        b"".join(framing.request_frame(P(acks=1, timeout_ms=100, topic_data=[P.TopicProduceData(
            name=topic, partition_data=[P.PartitionProduceData(index=0, records=batch(b"fuzz"))])]), 9, 2, "fuzz")),
        b"".join(framing.request_frame(m.ApiVersionsRequest(client_software_name="f", client_software_version="1"),
                                       3, 3, "fuzz")),
    )]
    for _i in range(150):
        base = bytearray(rng.choice(good))
        kind = rng.randrange(4)
        if kind == 0:
            for _ in range(rng.randint(1, 6)):
                j = rng.randrange(4, len(base))
                base[j] = rng.randrange(256)
        elif kind == 1:
            base = base[: rng.randrange(4, len(base))]
            struct.pack_into(">i", base, 0, len(base) - 4)
        elif kind == 2:
            base = bytearray(framing.SIZE.pack(rng.randint(0, 200))) + os.urandom(rng.randint(0, 200))
        else:
            j = rng.randrange(4, len(base))
            base[j:j] = os.urandom(rng.randint(1, 20))
            struct.pack_into(">i", base, 0, len(base) - 4)
        with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as s:
            try:
                s.sendall(bytes(base))
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            except (TimeoutError, ConnectionResetError, BrokenPipeError):
                pass
    assert broker.alive
    with BrokerConnection.to(broker.bootstrap) as c:
        assert error_of(produce(c, topic, batch(b"after"))) == 0
        got = values(c, topic)
    assert got[0] == b"before" and got[-1] == b"after"
    assert all(v in (b"before", b"after", b"fuzz") for v in got)
