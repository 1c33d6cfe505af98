"""Every API the broker advertises answers at every version it advertises (honest ranges)."""

import pytest

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.handlers import BROKER
from kafka_compat.server.pipeline import apis

# Minimal valid fields where the schema default would not make a valid request.
FIXUPS = {
    m.ApiKey.PRODUCE: dict(acks=1, timeout_ms=1000),
    m.ApiKey.API_VERSIONS: dict(client_software_name="sweep", client_software_version="1.0"),
}


def advertised():
    return [(k, v) for k, h in sorted(apis(BROKER).items()) for v in range(h.min_version, h.max_version + 1)]


def test_api_versions_lists_exactly_the_registered_handlers(broker):
    with BrokerConnection.to(broker.bootstrap) as conn:
        listed = conn.versions()
    assert listed == {k: (h.min_version, h.max_version) for k, h in apis(BROKER).items()}


@pytest.mark.parametrize(("api_key", "version"),
                         [pytest.param(k, v, id=f"{m.ApiKey(k).name}-v{v}") for k, v in advertised()])
def test_every_advertised_version_answers(broker, api_key, version):
    request = m.request_class(api_key)(**FIXUPS.get(api_key, {}))
    with BrokerConnection.to(broker.bootstrap, client_id="sweep") as conn:
        response = conn.request(request, version)
    assert type(response) is m.response_class(api_key)


def test_unknown_api_version_gets_a_v0_answer_listing_what_is_served(broker):
    with BrokerConnection.to(broker.bootstrap) as conn:
        conn.send(m.ApiVersionsRequest(), 4)
        # Pretend to be a client from the future: version 99 of ApiVersions.
        import struct

        from kafka_compat.protocol import framing

        frame = struct.pack(">hhih", m.ApiKey.API_VERSIONS, 99, 7, -1)
        conn.sock.sendall(framing.SIZE.pack(len(frame)) + frame)
        conn.receive(m.ApiKey.API_VERSIONS, 4)
        cid, resp = conn.receive(m.ApiKey.API_VERSIONS, 0)
    assert cid == 7 and resp.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert any(k.api_key == m.ApiKey.FETCH for k in resp.api_keys)


def rich_requests(topic: str, version: int, api_key: int):
    """A request naming a real topic/partition (and the broker), exercising per-item responses."""
    from kafka_compat.records import Record, build_batch, build_message_set

    K = m.ApiKey
    if api_key == K.PRODUCE:
        recs = [Record(key=b"k", value=b"v", timestamp=1700000000000, offset=0)]
        data = bytes(build_batch(recs)) if version >= 3 else build_message_set(recs, magic=0 if version < 2 else 1)
        P = m.ProduceRequest
        return P(acks=1, timeout_ms=1000, topic_data=[P.TopicProduceData(name=topic, partition_data=[
            P.PartitionProduceData(index=0, records=data)])])
    if api_key == K.FETCH:
        F = m.FetchRequest
        return F(max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, topics=[F.FetchTopic(
            topic=topic, topic_id=TOPIC_IDS[topic],
            partitions=[F.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])])
    if api_key == K.LIST_OFFSETS:
        L = m.ListOffsetsRequest
        return L(replica_id=-1, topics=[L.ListOffsetsTopic(name=topic, partitions=[
            L.ListOffsetsPartition(partition_index=0, timestamp=t, max_num_offsets=1) for t in (-2, -1, 0)])])
    if api_key == K.METADATA:
        return m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name=topic)])
    if api_key == K.OFFSET_FOR_LEADER_EPOCH:
        O = m.OffsetForLeaderEpochRequest
        return O(replica_id=-1, topics=[O.OffsetForLeaderTopic(topic=topic, partitions=[
            O.OffsetForLeaderPartition(partition=0, leader_epoch=0)])])
    if api_key == K.DESCRIBE_CONFIGS:
        D = m.DescribeConfigsRequest
        return D(include_synonyms=version >= 1,
                 resources=[D.DescribeConfigsResource(resource_type=2, resource_name=topic),
                            D.DescribeConfigsResource(resource_type=4, resource_name="1")])
    if api_key == K.DELETE_RECORDS:
        D = m.DeleteRecordsRequest
        return D(topics=[D.DeleteRecordsTopic(name=topic, partitions=[
            D.DeleteRecordsPartition(partition_index=0, offset=0)])])
    if api_key == K.DESCRIBE_LOG_DIRS:
        return m.DescribeLogDirsRequest(topics=None)
    if api_key == K.DESCRIBE_TOPIC_PARTITIONS:
        D = m.DescribeTopicPartitionsRequest
        return D(topics=[D.TopicRequest(name=topic)], response_partition_limit=10)
    if api_key == K.INCREMENTAL_ALTER_CONFIGS:
        I = m.IncrementalAlterConfigsRequest
        return I(resources=[I.AlterConfigsResource(resource_type=2, resource_name=topic, configs=[
            I.AlterableConfig(name="retention.ms", config_operation=0, value="3600000")])])
    if api_key == K.ALTER_CONFIGS:
        A = m.AlterConfigsRequest
        return A(resources=[A.AlterConfigsResource(resource_type=2, resource_name=topic, configs=[
            A.AlterableConfig(name="retention.ms", value="7200000")])])
    if api_key == K.CREATE_PARTITIONS:
        C = m.CreatePartitionsRequest
        return C(timeout_ms=1000, validate_only=True,
                 topics=[C.CreatePartitionsTopic(name=topic, count=3, assignments=None)])
    if api_key == K.CREATE_TOPICS:
        C = m.CreateTopicsRequest
        return C(timeout_ms=1000, validate_only=version >= 1, topics=[C.CreatableTopic(
            name=topic + "-new", num_partitions=2, replication_factor=1,
            configs=[C.CreatableTopicConfig(name="cleanup.policy", value="compact")])])
    return None


TOPIC_IDS: dict = {}
RICH_APIS = {m.ApiKey.PRODUCE, m.ApiKey.FETCH, m.ApiKey.LIST_OFFSETS, m.ApiKey.METADATA,
             m.ApiKey.OFFSET_FOR_LEADER_EPOCH, m.ApiKey.DESCRIBE_CONFIGS, m.ApiKey.DELETE_RECORDS,
             m.ApiKey.DESCRIBE_LOG_DIRS, m.ApiKey.DESCRIBE_TOPIC_PARTITIONS, m.ApiKey.INCREMENTAL_ALTER_CONFIGS,
             m.ApiKey.ALTER_CONFIGS, m.ApiKey.CREATE_PARTITIONS, m.ApiKey.CREATE_TOPICS}
RICH = [(k, v) for k, v in advertised() if k in RICH_APIS]


@pytest.fixture(scope="module")
def sweep_topic(broker):
    C = m.CreateTopicsRequest
    with BrokerConnection.to(broker.bootstrap) as conn:
        resp = conn.request(C(timeout_ms=5000, topics=[
            C.CreatableTopic(name="sweep-topic", num_partitions=2, replication_factor=1)]))
        assert resp.topics[0].error_code in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS)
        md = conn.request(m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name="sweep-topic")]))
        TOPIC_IDS["sweep-topic"] = md.topics[0].topic_id
    return "sweep-topic"


@pytest.mark.parametrize(("api_key", "version"), [pytest.param(k, v, id=f"{m.ApiKey(k).name}-v{v}") for k, v in RICH])
def test_every_advertised_version_answers_with_real_topics(broker, sweep_topic, api_key, version):
    request = rich_requests(sweep_topic, version, api_key)
    with BrokerConnection.to(broker.bootstrap, client_id="sweep") as conn:
        response = conn.request(request, version)
    assert type(response) is m.response_class(api_key)
    if api_key == m.ApiKey.PRODUCE:
        assert response.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    if api_key == m.ApiKey.FETCH:
        part = response.responses[0].partitions[0]
        assert part.error_code == ErrorCode.NONE and len(part.records) > 0
