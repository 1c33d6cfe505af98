"""The broker's own behaviour over the wire: durability across restarts, long polling, acks=0,
idle connections, fetch sessions."""

import socket
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import Record, build_batch, iter_headers, iter_records

P, F = m.ProduceRequest, m.FetchRequest


def create(conn, name, partitions=1, **configs):
    C = m.CreateTopicsRequest
    resp = conn.request(C(timeout_ms=5000, topics=[C.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=1,
        configs=[C.CreatableTopicConfig(name=k.replace("_", "."), value=v) for k, v in configs.items()])]))
    assert resp.topics[0].error_code == ErrorCode.NONE, resp
    md = conn.request(m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name=name)]))
    return md.topics[0].topic_id


def produce(conn, topic, *values, partition=0, acks=-1):
    batch = build_batch([Record(key=None, value=v, timestamp=1700000000000 + i) for i, v in enumerate(values)])
    req = P(acks=acks, timeout_ms=5000, topic_data=[P.TopicProduceData(name=topic, partition_data=[
        P.PartitionProduceData(index=partition, records=batch)])])
    if acks == 0:
        conn.send(req, 9)
        return None
    resp = conn.request(req, 9)
    part = resp.responses[0].partition_responses[0]
    assert part.error_code == ErrorCode.NONE, part
    return part.base_offset


def fetch_values(conn, topic, offset=0, partitions=(0,), max_wait_ms=0, min_bytes=0):
    resp = conn.request(F(max_wait_ms=max_wait_ms, min_bytes=min_bytes, max_bytes=1 << 20, topics=[F.FetchTopic(
        topic=topic, partitions=[F.FetchPartition(partition=p, fetch_offset=offset, partition_max_bytes=1 << 20)
                                 for p in partitions])]), 11)
    out = []
    for part in resp.responses[0].partitions:
        assert part.error_code == ErrorCode.NONE, part
        data = memoryview(part.records.read() if hasattr(part.records, "read") else bytes(part.records))
        out += [r.value for pos, h in iter_headers(data) for r in iter_records(data, pos, h) if r.offset >= offset]
    return out


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_topics_and_acknowledged_data_survive_a_restart(broker_factory, clean):
    proc = broker_factory()
    with BrokerConnection.to(proc.bootstrap) as c:
        create(c, "kept", 2, retention_ms="86400000")
        for i in range(20):
            produce(c, "kept", b"v%d" % i, partition=i % 2)
    proc.restart(clean=clean)
    with BrokerConnection.to(proc.bootstrap) as c:
        md = c.request(m.MetadataRequest(topics=None))
        assert [t.name for t in md.topics] == ["kept"] and len(md.topics[0].partitions) == 2
        got = fetch_values(c, "kept", partitions=(0, 1))
        assert sorted(got) == sorted(b"v%d" % i for i in range(20))
        cfg = c.request(m.DescribeConfigsRequest(resources=[m.DescribeConfigsRequest.DescribeConfigsResource(
            resource_type=2, resource_name="kept", configuration_keys=["retention.ms"])]))
        assert cfg.results[0].configs[0].value == "86400000"
        assert produce(c, "kept", b"after") == 10  # offsets continue where they were


def test_with_fsync_on_append_real_clients_are_acknowledged_and_their_data_survives_a_kill(broker_factory):
    proc = broker_factory({"log.fsync.on.append": "true"})
    with BrokerConnection.to(proc.bootstrap) as c:
        create(c, "synced")
    delivered = []
    for acks in ("1", "all"):
        producer = Producer({"bootstrap.servers": proc.bootstrap, "acks": acks})
        for i in range(5):
            producer.produce("synced", b"%s-%d" % (acks.encode(), i),
                             on_delivery=lambda err, msg: delivered.append(err or msg.offset()))
        assert producer.flush(30) == 0
    assert delivered == list(range(10))
    group = {"bootstrap.servers": proc.bootstrap, "group.id": "synced-group", "enable.auto.commit": False}
    consumer = Consumer(group)
    consumer.assign([TopicPartition("synced", 0, 0)])
    consumer.commit(offsets=[TopicPartition("synced", 0, 7)], asynchronous=False)
    consumer.close()
    proc.restart(clean=False)
    with BrokerConnection.to(proc.bootstrap) as c:
        assert fetch_values(c, "synced") == [b"1-%d" % i for i in range(5)] + [b"all-%d" % i for i in range(5)]
    consumer = Consumer(group)
    [committed] = consumer.committed([TopicPartition("synced", 0)], timeout=30)
    consumer.close()
    assert committed.offset == 7


def test_clean_shutdown_leaves_the_clean_marker_and_exit_code_zero(broker_factory):
    proc = broker_factory()
    with BrokerConnection.to(proc.bootstrap) as c:
        create(c, "t")
        produce(c, "t", b"x")
    assert proc.stop() == 0
    assert (proc.data_dir / "logs" / ".kafka_cleanshutdown").exists()
    assert "broker_stopped" in proc.log_path.read_text()


def test_long_poll_fetch_returns_when_data_arrives(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c, BrokerConnection.to(broker.bootstrap) as p:
        create(c, topic)
        producer = threading.Timer(0.3, produce, (p, topic, b"late"))
        producer.start()
        t0 = time.monotonic()
        got = fetch_values(c, topic, max_wait_ms=10000, min_bytes=1)
        waited = time.monotonic() - t0
        producer.join()  # its answer may come after the fetch's: read it before the connection closes
    assert got == [b"late"] and 0.2 < waited < 5


def test_long_poll_fetch_times_out_empty(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        create(c, topic)
        t0 = time.monotonic()
        assert fetch_values(c, topic, max_wait_ms=300, min_bytes=1) == []
        assert 0.25 < time.monotonic() - t0 < 3


def test_acks_zero_gets_no_response_but_is_appended(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        create(c, topic)
        produce(c, topic, b"fire", acks=0)
        produce(c, topic, b"and-forget", acks=0)
        # The next response on this connection is the Metadata one: acks=0 produced nothing.
        assert c.request(m.MetadataRequest(topics=[])).brokers
        assert fetch_values(c, topic) == [b"fire", b"and-forget"]


def test_acks_zero_failure_closes_the_connection(broker, unique):
    with BrokerConnection.to(broker.bootstrap) as c:
        batch = build_batch([Record(value=b"x", timestamp=1)])
        c.send(P(acks=0, timeout_ms=100, topic_data=[P.TopicProduceData(name="__consumer_offsets", partition_data=[
            P.PartitionProduceData(index=0, records=batch)])]), 9)
        c.sock.settimeout(5)
        assert c.sock.recv(1) == b""


def test_idle_connections_are_closed(broker_factory):
    proc = broker_factory({"connections.max.idle.ms": "400"})
    with socket.create_connection(("127.0.0.1", proc.port)) as s:
        s.settimeout(5)
        t0 = time.monotonic()
        assert s.recv(1) == b""
        assert 0.3 < time.monotonic() - t0 < 4


def test_incremental_fetch_session_sends_only_changed_partitions(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        tid = create(c, topic, 3)
        for p in range(3):
            produce(c, topic, b"p%d" % p, partition=p)
        full = c.request(F(max_wait_ms=0, session_id=0, session_epoch=0, topics=[F.FetchTopic(
            topic=topic, topic_id=tid,
            partitions=[F.FetchPartition(partition=p, fetch_offset=1, partition_max_bytes=1 << 20)
                        for p in range(3)])]),
            13)
        assert full.error_code == ErrorCode.NONE and full.session_id != 0
        assert sorted(p.partition_index for p in full.responses[0].partitions) == [0, 1, 2]
        produce(c, topic, b"new", partition=1)
        inc = c.request(F(max_wait_ms=0, session_id=full.session_id, session_epoch=1, topics=[]), 13)
        assert inc.error_code == ErrorCode.NONE and [p.partition_index for p in inc.responses[0].partitions] == [1]
        # The consumer moves partition 1 past what it got; nothing else changed, so nothing comes back.
        quiet = c.request(F(max_wait_ms=0, session_id=full.session_id, session_epoch=2, topics=[F.FetchTopic(
            topic_id=tid, partitions=[F.FetchPartition(partition=1, fetch_offset=2, partition_max_bytes=1 << 20)])]),
            13)
        assert quiet.responses == []
        stale = c.request(F(max_wait_ms=0, session_id=full.session_id, session_epoch=2, topics=[]), 13)  # epoch reused
        assert stale.error_code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
        unknown = c.request(F(max_wait_ms=0, session_id=12345, session_epoch=1, topics=[]), 13)
        assert unknown.error_code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND


def test_fetch_returns_at_least_one_batch_bigger_than_the_limits(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        create(c, topic)
        produce(c, topic, b"x" * 50000)
        resp = c.request(F(max_wait_ms=0, max_bytes=100, topics=[F.FetchTopic(topic=topic, partitions=[
            F.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=100)])]), 11)
        assert len(resp.responses[0].partitions[0].records) > 50000


def test_fetch_above_the_log_end_is_offset_out_of_range(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        create(c, topic)
        resp = c.request(F(max_wait_ms=0, topics=[F.FetchTopic(topic=topic, partitions=[
            F.FetchPartition(partition=0, fetch_offset=5, partition_max_bytes=100)])]), 11)
        assert resp.responses[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_old_fetch_versions_get_down_converted_data(broker, unique):
    topic = unique()
    with BrokerConnection.to(broker.bootstrap) as c:
        create(c, topic)
        produce(c, topic, b"a", b"b")
        resp = c.request(F(max_wait_ms=0, max_bytes=1 << 20, topics=[F.FetchTopic(topic=topic, partitions=[
            F.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])]), 2)
        data = bytes(resp.responses[0].partitions[0].records)
        assert data[16] == 1  # magic byte of the first message: v2-v3 fetches get magic 1
        from kafka_compat.records import iter_legacy_records

        assert [r.value for _, r in iter_legacy_records(data, 1 << 20)] == [b"a", b"b"]
