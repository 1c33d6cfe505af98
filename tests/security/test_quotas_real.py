"""Client quotas through real clients (librdkafka) and the wire: a producer over its
`producer_byte_rate` or a consumer over its `consumer_byte_rate` (set with AlterClientQuotas, stored
in the metadata log) is held near the quota; `throttle_time_ms` tells it how long to back off and
its connection is muted that long (KIP-219); a throttled fetch answers no records."""

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from kafka.admin import KafkaAdminClient, NewPartitions

from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import Record, build_batch
from kafka_compat.testing.broker_process import BrokerProcess
from kafka_compat.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)
QUOTA = 200_000  # bytes per second


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    # Three 1 s samples (Kafka's quota.window.num): a fresh client's credit is two seconds' worth,
    # not ten, so that ten seconds show the quota rather than the first burst.
    with BrokerProcess(tmp_path_factory.mktemp("broker"), overrides={"quota.window.num": "3"}) as broker:
        yield broker


def set_quota(broker, client_id: str, key: str, value: float | None) -> None:
    A = m.AlterClientQuotasRequest
    with BrokerConnection.to(broker.bootstrap) as conn:
        r = conn.request(A(entries=[A.EntryData(
            entity=[A.EntityData(entity_type="client-id", entity_name=client_id)],
            ops=[A.OpData(key=key, value=value or 0.0, remove=value is None)])], validate_only=False))
    assert [e.error_code for e in r.entries] == [0], r


def test_a_producer_over_its_byte_rate_is_held_within_20_percent_of_the_quota(broker):
    set_quota(broker, "throttled", "producer_byte_rate", QUOTA)
    with BrokerConnection.to(broker.bootstrap) as conn:
        described = conn.request(m.DescribeClientQuotasRequest(components=[
            m.DescribeClientQuotasRequest.ComponentData(entity_type="client-id", match_type=0, match="throttled")]))
    assert [(v.key, v.value) for e in described.entries for v in e.values] == [("producer_byte_rate", QUOTA)]
    p = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "throttled", "linger.ms": 5,
                  "batch.size": 64 * 1024, "acks": 1})
    acked = []
    value = b"x" * 1000
    p.produce("quota-warmup", value)
    p.flush(30)
    start = time.monotonic()
    while time.monotonic() - start < 10:
        try:
            p.produce("quota", value, on_delivery=lambda err, msg: err is None and acked.append(time.monotonic()))
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.purge()  # what is still queued is beyond the ten seconds
    p.flush(10)
    in_window = [t for t in acked if t - start <= 10]
    rate = len(in_window) * len(value) / 10
    assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, f"{rate:.0f} B/s against a quota of {QUOTA}"


def fill(broker, topic: str, count: int, value: bytes) -> None:
    # small batches: a fetch capped at one quota window still ends at a batch boundary within it
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 5, "batch.num.messages": 5, "acks": 1})
    for _ in range(count):
        while True:
            try:
                p.produce(topic, value)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(30) == 0


def fetch(conn, topic: str, offset: int, partition_max_bytes: int = 1 << 24) -> m.FetchResponse:
    F = m.FetchRequest
    return conn.request(F(max_wait_ms=0, max_bytes=1 << 24, session_id=0, session_epoch=-1, topics=[F.FetchTopic(
        topic=topic, partitions=[F.FetchPartition(partition=0, fetch_offset=offset,
                                                  partition_max_bytes=partition_max_bytes)])]), 12)


def test_a_fetch_over_the_consumer_byte_rate_answers_no_records_and_its_bytes_do_not_count(broker):
    set_quota(broker, "greedy", "consumer_byte_rate", 10_000)  # 20 kB in the two seconds a fresh client has
    fill(broker, "greedy-topic", 200, b"y" * 1000)
    with BrokerConnection.to(broker.bootstrap, client_id="greedy") as conn:
        one = fetch(conn, "greedy-topic", 0, partition_max_bytes=1)  # one batch of 5 kB
        assert one.throttle_time_ms == 0 and 0 < len(one.responses[0].partitions[0].records) < 10_000
        big = fetch(conn, "greedy-topic", 5)
        assert big.throttle_time_ms > 0 and big.error_code == ErrorCode.NONE
        assert big.responses == []  # Kafka's throttled fetch: nothing read is sent
        answered = time.monotonic()
        # the unsent bytes were taken back: with them 5 kB more would still be over the quota
        again = fetch(conn, "greedy-topic", 5, partition_max_bytes=1)
        assert time.monotonic() - answered >= big.throttle_time_ms / 1000 * 0.9  # the channel was muted
        assert again.throttle_time_ms == 0 and len(again.responses[0].partitions[0].records) > 0


def test_a_throttled_fetch_in_a_session_keeps_the_session_and_moves_its_epoch(broker):
    set_quota(broker, "session-reader", "consumer_byte_rate", 10_000)
    fill(broker, "session-topic", 100, b"s" * 1000)
    F = m.FetchRequest
    with BrokerConnection.to(broker.bootstrap, client_id="session-reader") as conn:
        md = conn.request(m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name="session-topic")]))
        tid = md.topics[0].topic_id

        def fetch_in_session(session_id: int, epoch: int, offset: int, partition_max_bytes: int):
            return conn.request(F(max_wait_ms=0, max_bytes=1 << 24, session_id=session_id, session_epoch=epoch,
                                  topics=[F.FetchTopic(topic_id=tid, partitions=[F.FetchPartition(
                                      partition=0, fetch_offset=offset, partition_max_bytes=partition_max_bytes)])]),
                                13)

        full = fetch_in_session(0, 0, 0, 1)  # one batch of 5 kB opens the session
        assert full.session_id != 0 and full.throttle_time_ms == 0
        throttled = fetch_in_session(full.session_id, 1, 5, 1 << 24)
        assert throttled.error_code == ErrorCode.NONE and throttled.throttle_time_ms > 0
        assert throttled.session_id == full.session_id and throttled.responses == []
        # the throttled fetch used epoch 1: the next is 2, and the partition comes back with its records
        after = fetch_in_session(full.session_id, 2, 5, 1)
        assert after.error_code == ErrorCode.NONE and after.throttle_time_ms == 0
        assert [p.partition_index for t in after.responses for p in t.partitions] == [0]
        assert len(after.responses[0].partitions[0].records) > 0


def test_a_consumer_over_its_byte_rate_is_held_within_20_percent_of_the_quota(broker):
    set_quota(broker, "slow-reader", "consumer_byte_rate", QUOTA)
    value = b"z" * 1000
    fill(broker, "consumer-quota", 16 * QUOTA // len(value), value)  # more than 15 s at the quota
    # A throttled fetch is answered empty and waits out a throttle that counted its bytes, which it
    # then did not get: each throttle loses up to one fetch's worth (on Kafka too), so fetches
    # are kept small beside the quota.
    c = Consumer({"bootstrap.servers": broker.bootstrap, "client.id": "slow-reader", "group.id": "slow-reader",
                  "enable.auto.commit": False, "max.partition.fetch.bytes": 16 * 1024})
    try:
        c.assign([TopicPartition("consumer-quota", 0, OFFSET_BEGINNING)])
        start, received = time.monotonic(), []
        while time.monotonic() - start < 13:
            msg = c.poll(0.1)
            if msg is not None:
                assert msg.error() is None, msg.error()
                received.append(time.monotonic())
    finally:
        c.close()
    # the first three seconds spend a fresh client's credit; the next ten show the quota
    rate = len([t for t in received if 3 < t - start <= 13]) * len(value) / 10
    assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, f"{rate:.0f} B/s against a quota of {QUOTA}"


def test_acks_0_produce_bytes_count_against_the_producer_byte_rate_and_mute_the_channel(broker):
    set_quota(broker, "fire-and-forget", "producer_byte_rate", 50_000)  # 100 kB of credit for a fresh client
    create_topic(broker, "acks-0", 1)
    P = m.ProduceRequest
    batch = build_batch([Record(key=None, value=b"a" * 1000, timestamp=1700000000000 + i) for i in range(300)])
    throttles = []
    p = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "fire-and-forget", "acks": 1,
                  "throttle_cb": lambda event: throttles.append(event.throttle_time)})
    p.produce("acks-0", b"b")  # connected before the acks=0 bytes come
    assert p.flush(30) == 0
    with BrokerConnection.to(broker.bootstrap, client_id="fire-and-forget") as conn:
        conn.send(P(acks=0, timeout_ms=5000, topic_data=[P.TopicProduceData(name="acks-0", partition_data=[
            P.PartitionProduceData(index=0, records=batch)])]), 9)  # 300 kB: no response to carry the throttle
        sent = time.monotonic()
        # the bytes counted for the client id: its producer (acks=1, another connection) is told to back off
        wait_until(lambda: p.produce("acks-0", b"b") or p.flush(30) == 0 and throttles, "a throttled producer")
        assert throttles[0] > 0
        conn.request(m.MetadataRequest(topics=[]))  # the channel was muted: read once the throttle is served
        assert time.monotonic() - sent >= 2.0  # (300 kB / 2 s - 50 kB/s) / 50 kB/s * 2 s = 4 s


@pytest.fixture
def limited(tmp_path):
    with BrokerProcess(tmp_path, overrides={"max.connections.per.ip": "4"}) as broker:
        yield broker


def test_connections_over_max_connections_per_ip_are_closed_and_a_freed_slot_is_reused(limited):
    broker = limited
    conns = [BrokerConnection.to(broker.bootstrap) for _ in range(4)]
    try:
        assert all(c.versions() for c in conns)
        extra = BrokerConnection.to(broker.bootstrap, timeout=5)
        with pytest.raises(BrokerUnreachable):
            extra.versions()
        extra.close()
        conns.pop().close()
        wait_until(lambda: _answers(broker), "a freed connection slot")
    finally:
        for c in conns:
            c.close()


def _alter_broker(broker, key: str, value: str) -> None:
    """`key` set on broker 1 (per broker, dynamic) through librdkafka's IncrementalAlterConfigs."""
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ConfigResource.Type.BROKER, "1", incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(30)


def test_a_dynamic_max_connections_per_ip_refuses_new_connections_and_keeps_open_ones(tmp_path):
    with BrokerProcess(tmp_path) as broker:
        conns = [BrokerConnection.to(broker.bootstrap) for _ in range(4)]
        try:
            assert all(c.versions() for c in conns) and _answers(broker)
            _alter_broker(broker, "max.connections.per.ip", "2")
            wait_until(lambda: not _answers(broker), "new connections refused over the lowered limit")
            assert all(c.versions() for c in conns)  # the four open ones, over the limit, are kept
            # raised through one of them: librdkafka could not connect now
            A = m.IncrementalAlterConfigsRequest
            r = conns[0].request(A(resources=[A.AlterConfigsResource(resource_type=4, resource_name="1", configs=[
                A.AlterableConfig(name="max.connections.per.ip", config_operation=0, value="100")])]))
            assert [x.error_code for x in r.responses] == [ErrorCode.NONE]
            wait_until(lambda: _answers(broker), "new connections admitted under the raised limit")
        finally:
            for c in conns:
                c.close()


def test_a_malformed_max_connections_per_ip_overrides_is_refused_with_invalid_config(broker):
    with pytest.raises(KafkaException) as refused:
        _alter_broker(broker, "max.connections.per.ip.overrides", "127.0.0.1=3")
    assert refused.value.args[0].code() == ErrorCode.INVALID_CONFIG
    assert _answers(broker)


def _answers(broker) -> bool:
    try:
        with BrokerConnection.to(broker.bootstrap, timeout=5) as c:
            return bool(c.versions())
    except BrokerUnreachable:
        return False


def test_topic_creation_over_the_controller_mutation_rate_is_refused_with_throttling_quota_exceeded(broker):
    set_quota(broker, "mutator", "controller_mutation_rate", 1.0)
    C = m.CreateTopicsRequest

    def create(name: str, partitions: int):
        with BrokerConnection.to(broker.bootstrap, client_id="mutator") as conn:
            return conn.request(C(topics=[C.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)],
                                  timeout_ms=30000), 7)

    first = create("mutations-a", 30)  # within the credit of the window, leaving a debt
    assert [t.error_code for t in first.topics] == [0]
    second = create("mutations-b", 1)
    assert [t.error_code for t in second.topics] == [ErrorCode.THROTTLING_QUOTA_EXCEEDED]
    assert second.throttle_time_ms > 0


def test_the_controller_mutation_rate_admits_topics_of_one_request_until_it_is_exceeded(broker):
    """Kafka's strict quota decides topic by topic: admitted while the client is not in debt (the
    topic that puts it in debt included), the rest refused; the same in CreateTopics, CreatePartitions
    and DeleteTopics."""
    set_quota(broker, "one-by-one", "controller_mutation_rate", 1.0)  # a credit of 3 partitions
    C, P, D = m.CreateTopicsRequest, m.CreatePartitionsRequest, m.DeleteTopicsRequest
    with BrokerConnection.to(broker.bootstrap, client_id="one-by-one") as conn:
        created = conn.request(C(topics=[C.CreatableTopic(name=f"one-by-one-{n}", num_partitions=2,
                                                          replication_factor=1) for n in "abc"], timeout_ms=30000), 7)
        assert [(t.name, t.error_code) for t in created.topics] == [
            ("one-by-one-a", ErrorCode.NONE), ("one-by-one-b", ErrorCode.NONE),
            ("one-by-one-c", ErrorCode.THROTTLING_QUOTA_EXCEEDED)]
        assert created.throttle_time_ms > 0
    wait_until(lambda: _mutations_allowed(broker, "one-by-one"), "the debt paid back", timeout=30)
    with BrokerConnection.to(broker.bootstrap, client_id="one-by-one") as conn:
        grown = conn.request(P(topics=[P.CreatePartitionsTopic(name=f"one-by-one-{n}", count=4, assignments=None)
                                       for n in "ab"], timeout_ms=30000, validate_only=False), 3)
        assert [(r.name, r.error_code) for r in grown.results] == [
            ("one-by-one-a", ErrorCode.NONE), ("one-by-one-b", ErrorCode.THROTTLING_QUOTA_EXCEEDED)]
    wait_until(lambda: _mutations_allowed(broker, "one-by-one"), "the debt paid back", timeout=30)
    with BrokerConnection.to(broker.bootstrap, client_id="one-by-one") as conn:
        deleted = conn.request(D(topic_names=["one-by-one-a", "one-by-one-b"], timeout_ms=30000), 5)
        assert [(r.name, r.error_code) for r in deleted.responses] == [
            ("one-by-one-a", ErrorCode.NONE), ("one-by-one-b", ErrorCode.THROTTLING_QUOTA_EXCEEDED)]
        md = conn.request(m.MetadataRequest(topics=None))
    assert {t.name for t in md.topics} & {"one-by-one-a", "one-by-one-b", "one-by-one-c"} == {"one-by-one-b"}


def _mutations_allowed(broker, client_id: str) -> bool:
    """A validate-only CreateTopics of one partition is throttled only while the client is in debt."""
    C = m.CreateTopicsRequest
    with BrokerConnection.to(broker.bootstrap, client_id=client_id) as conn:
        r = conn.request(C(topics=[C.CreatableTopic(name="probe", num_partitions=1, replication_factor=1)],
                           timeout_ms=30000, validate_only=True), 7)
    return r.throttle_time_ms == 0


def test_a_client_over_its_request_percentage_is_throttled_and_another_client_is_not(broker):
    # 0.05% of the event loop over the window: a few milliseconds of handling in all, soon spent
    set_quota(broker, "busy", "request_percentage", 0.05)
    throttles = {"busy": [], "calm": []}

    def producer(client_id: str) -> Producer:
        return Producer({"bootstrap.servers": broker.bootstrap, "client.id": client_id, "linger.ms": 0, "acks": 1,
                         "throttle_cb": lambda event: event.throttle_time > 0 and throttles[client_id].append(event)})

    def produce_one(p: Producer, client_id: str) -> bool:
        p.produce("request-time", b"x")
        p.flush(30)
        p.poll(0)  # throttle events are served by poll
        return bool(throttles[client_id])

    busy, calm = producer("busy"), producer("calm")
    wait_until(lambda: produce_one(busy, "busy"), "the busy client throttled", timeout=60)
    assert 0 < throttles["busy"][0].throttle_time <= 1000  # a request-time throttle is at most one window
    for _ in range(50):
        produce_one(calm, "calm")
    assert throttles["calm"] == []


def create_topic(broker, name: str, partitions: int) -> None:
    C = m.CreateTopicsRequest
    with BrokerConnection.to(broker.bootstrap) as conn:
        r = conn.request(C(topics=[C.CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)],
                           timeout_ms=30000))
    assert [t.error_code for t in r.topics] == [0], r


def test_deletions_and_new_partitions_over_the_controller_mutation_rate_are_refused_at_new_versions(broker):
    set_quota(broker, "strict-mutator", "controller_mutation_rate", 1.0)  # 3 partitions of credit, then 17 s of debt
    for name, partitions in (("strict-a", 20), ("strict-b", 1), ("strict-c", 1)):
        create_topic(broker, name, partitions)

    def admin(call):  # a fresh client each time: kafka-python pauses a connection its broker throttled (KIP-219)
        client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="strict-mutator")
        try:
            return call(client)
        finally:
            client.close()

    deleted = admin(lambda a: a.delete_topics(["strict-a"], raise_errors=False))  # within the credit, into debt
    assert [t["error_code"] for t in deleted["topics"]] == [ErrorCode.NONE]
    refused = admin(lambda a: a.delete_topics(["strict-b"], raise_errors=False))
    assert [t["error_code"] for t in refused["topics"]] == [ErrorCode.THROTTLING_QUOTA_EXCEEDED]
    grown = admin(lambda a: a.create_partitions({"strict-c": NewPartitions(4)}, raise_errors=False))
    assert [t.error_code for t in grown.results] == [ErrorCode.THROTTLING_QUOTA_EXCEEDED]
    topics = admin(lambda a: a.list_topics())
    assert "strict-b" in topics and "strict-a" not in topics


def test_deletions_and_new_partitions_over_the_controller_mutation_rate_are_throttled_at_old_versions(broker):
    set_quota(broker, "old-mutator", "controller_mutation_rate", 1.0)
    for name, partitions in (("old-a", 8), ("old-b", 1), ("old-c", 1)):
        create_topic(broker, name, partitions)
    with BrokerConnection.to(broker.bootstrap, client_id="old-mutator") as conn:
        D, P = m.DeleteTopicsRequest, m.CreatePartitionsRequest
        first = conn.request(D(topic_names=["old-a"], timeout_ms=30000), 4)
        assert [r.error_code for r in first.responses] == [ErrorCode.NONE]
        assert first.throttle_time_ms > 0  # in debt: told to back off
        answered = time.monotonic()
        second = conn.request(D(topic_names=["old-b"], timeout_ms=30000), 4)
        assert time.monotonic() - answered >= first.throttle_time_ms / 1000 * 0.9  # the channel was muted
        assert [r.error_code for r in second.responses] == [ErrorCode.NONE] and second.throttle_time_ms > 0
        grown = conn.request(P(topics=[P.CreatePartitionsTopic(name="old-c", count=3, assignments=None)],
                               timeout_ms=30000, validate_only=False), 2)
        assert [r.error_code for r in grown.results] == [ErrorCode.NONE] and grown.throttle_time_ms > 0
