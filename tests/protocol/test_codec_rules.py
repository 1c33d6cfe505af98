"""The encoding rules of Kafka's protocol, one behaviour per test."""

import struct

import pytest

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import DecodeError, EncodeError, Uuid, join, read_uvarint, uvarint


def test_tagged_field_at_its_default_is_not_written():
    resp = m.ApiVersionsResponse(error_code=0, api_keys=[])
    data = resp.encode(3)
    assert data[-1] == 0  # empty tagged-field section: FinalizedFeaturesEpoch (-1) etc. left out
    resp.finalized_features_epoch = 7
    data = resp.encode(3)
    assert data[-1] != 0 or len(data) > len(m.ApiVersionsResponse().encode(3))
    assert m.ApiVersionsResponse.decode(data, 3).finalized_features_epoch == 7


def test_tagged_struct_at_its_default_is_not_written():
    P = m.FetchResponse.PartitionData
    plain = m.FetchResponse(responses=[
        m.FetchResponse.FetchableTopicResponse(topic_id=Uuid.random(), partitions=[P()])])
    diverging = m.FetchResponse(responses=[m.FetchResponse.FetchableTopicResponse(
        topic_id=plain.responses[0].topic_id,
        partitions=[P(diverging_epoch=m.FetchResponse.EpochEndOffset(epoch=3, end_offset=10))])])
    assert len(diverging.encode(13)) > len(plain.encode(13))
    back = m.FetchResponse.decode(diverging.encode(13), 13).responses[0].partitions[0]
    assert (back.diverging_epoch.epoch, back.diverging_epoch.end_offset) == (3, 10)
    plain_back = m.FetchResponse.decode(plain.encode(13), 13).responses[0].partitions[0]
    assert plain_back.diverging_epoch == m.FetchResponse.EpochEndOffset()


def test_unknown_tagged_fields_are_kept_and_written_back_unchanged():
    known = m.RequestHeader(request_api_key=18, request_api_version=3, correlation_id=1, client_id="c").encode(2)
    assert known[-1] == 0
    with_tags = known[:-1] + b"\x02" + b"\x05\x03abc" + b"\x09\x00"
    header = m.RequestHeader.decode(with_tags, 2)
    assert header._unknown_tags == [(5, b"abc"), (9, b"")]
    assert header.encode(2) == with_tags


def test_unknown_tagged_fields_survive_in_nested_structs():
    M = m.MetadataResponse
    part = M.MetadataResponsePartition(replica_nodes=[1, 2], isr_nodes=[1], _unknown_tags=[(7, b"seven"), (9, b"")])
    topic = M.MetadataResponseTopic(name="t", partitions=[part, M.MetadataResponsePartition()],
                                    _unknown_tags=[(3, b"x")])
    resp = M(topics=[topic])
    data = resp.encode(12)
    back = M.decode(data, 12)
    assert back.topics[0].partitions[0]._unknown_tags == [(7, b"seven"), (9, b"")]
    assert back.topics[0]._unknown_tags == [(3, b"x")]
    assert back == resp and back.encode(12) == data


def test_absent_non_ignorable_field_with_a_value_is_an_encode_error():
    resp = m.MetadataResponse(cluster_authorized_operations=5)  # versions 8-10, not ignorable
    with pytest.raises(EncodeError, match="ClusterAuthorizedOperations"):
        resp.encode(0)
    resp.encode(8)


def test_absent_ignorable_field_is_dropped_silently():
    resp = m.MetadataResponse(throttle_time_ms=50)  # versions 3+, ignorable
    assert m.MetadataResponse.decode(resp.encode(2), 2).throttle_time_ms == 0
    assert m.MetadataResponse.decode(resp.encode(3), 3).throttle_time_ms == 50


def test_absent_field_reads_as_its_default():
    req = m.ProduceRequest.decode(m.ProduceRequest(acks=1, timeout_ms=5).encode(2), 2)
    assert req.transactional_id is None  # versions 3+, default null
    assert m.FetchRequest.decode(m.FetchRequest().encode(3), 3).rack_id == ""


def test_null_where_the_version_forbids_it_is_an_encode_error():
    with pytest.raises(EncodeError):
        m.MetadataRequest(topics=None).encode(0)  # nullable from v1
    assert m.MetadataRequest.decode(m.MetadataRequest(topics=None).encode(1), 1).topics is None


def test_compact_and_classic_strings():
    h = m.FindCoordinatorRequest(key="group-é", key_type=0)
    assert b"\x00\x08group-\xc3\xa9" in h.encode(2)  # int16 length
    assert b"\x09group-\xc3\xa9" in h.encode(3)  # unsigned varint length + 1


def test_records_decode_to_a_view_of_the_input():
    blob = bytes(range(256)) * 64
    req = m.ProduceRequest(acks=-1, timeout_ms=1000, topic_data=[m.ProduceRequest.TopicProduceData(
        name="t", partition_data=[m.ProduceRequest.PartitionProduceData(index=0, records=blob)])])
    data = req.encode(9)
    records = m.ProduceRequest.decode(data, 9).topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records.obj is data and records == blob


def test_encode_parts_passes_records_through_without_copying():
    blob = bytearray(1 << 20)
    resp = m.FetchResponse(responses=[m.FetchResponse.FetchableTopicResponse(topic="t", partitions=[
        m.FetchResponse.PartitionData(records=blob)])])
    parts = resp.encode_parts(11)
    assert any(p is blob for p in parts)
    assert join(parts) == resp.encode(11)


def test_encode_parts_is_one_buffer_per_gap_between_record_sets():
    blobs = [bytes([i]) * (1000 + i) for i in range(5)]
    req = m.ProduceRequest(acks=-1, timeout_ms=1000, topic_data=[m.ProduceRequest.TopicProduceData(
        name="t", partition_data=[m.ProduceRequest.PartitionProduceData(index=i, records=blob)
                                  for i, blob in enumerate(blobs)])])
    parts = req.encode_parts(9)
    assert len(parts) == 2 * len(blobs) + 1 and [p for p in parts[1::2]] == blobs
    assert all(p is b for p, b in zip(parts[1::2], blobs))
    assert len(m.MetadataResponse(topics=[m.MetadataResponse.MetadataResponseTopic(name="t", partitions=[
        m.MetadataResponse.MetadataResponsePartition(replica_nodes=[1, 2])] * 50)]).encode_parts(12)) == 1


@pytest.mark.parametrize("size", [0, 1, 126, 127, 128, 16382, 16383, 16384,
                                  (1 << 21) - 2, (1 << 21) - 1, 1 << 21, 3 << 20])
@pytest.mark.parametrize("version", [8, 9])
def test_records_lengths_around_varint_boundaries(size, version):
    blob = bytes(range(256)) * (size // 256) + bytes(size % 256)
    P = m.ProduceRequest
    req = P(acks=1, timeout_ms=5, topic_data=[P.TopicProduceData(name="t", partition_data=[
        P.PartitionProduceData(index=7, records=blob), P.PartitionProduceData(index=8, records=None)])])
    data = req.encode(version)
    back = P.decode(data, version)
    assert back == req and back.encode(version) == data
    assert back.topic_data[0].partition_data[0].records == blob


@pytest.mark.parametrize("n", [0, 1, 62, 63, 64, 125, 126, 127, 128, 300])
def test_arrays_and_strings_of_any_length_in_one_run(n):
    # Fixed-width fields, int32 arrays and strings around the one-byte count limits, which generated
    # code writes with one pack up to 126 and by a slower path beyond.
    M = m.MetadataResponse
    resp = M(brokers=[M.MetadataResponseBroker(node_id=1, host="h" * n, port=9092)], topics=[M.MetadataResponseTopic(
        name="t", partitions=[M.MetadataResponsePartition(partition_index=3, replica_nodes=list(range(n)),
                                                          isr_nodes=list(range(-n, 0)),
                                                          offline_replicas=[n] * (n % 3))])])
    for version in (9, 12):
        data = resp.encode(version)
        back = M.decode(data, version)
        assert back == resp and back.encode(version) == data


@pytest.mark.parametrize("bad, reason", [
    (b"\x00\x03\x00", "truncated"),
    (b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xfe", "negative"),  # client id length -2
    (b"\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x05ab", "truncated|past the end"),
    (b"\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x02\xff\xfe\x00", "UTF-8"),
    (b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\xff\x01", "varint"),
    (b"\x00\x03\x00\x0c\x00\x00\x00\x01\xff\xff\x00\x00", "trailing"),
])
def test_malformed_input_raises_decode_error_with_api_version_and_offset(bad, reason):
    with pytest.raises(DecodeError, match=reason) as e:
        m.RequestHeader.decode(bad, 2)
    assert (e.value.api, e.value.version) == ("RequestHeader", 2)
    assert 0 <= e.value.offset <= len(bad)


def test_negative_array_count_is_rejected():
    bad = struct.pack(">ii", 0, -5)  # MetadataResponse v0: brokers count -5
    with pytest.raises(DecodeError, match="negative"):
        m.MetadataResponse.decode(bad, 0)


def test_array_count_larger_than_the_buffer_is_rejected_before_looping():
    bad = struct.pack(">i", 0x7FFFFFFF)
    with pytest.raises(DecodeError, match="past the end"):
        m.MetadataResponse.decode(bad, 0)


def test_unknown_version_is_an_error_both_ways():
    with pytest.raises(EncodeError):
        m.ApiVersionsRequest().encode(99)
    with pytest.raises(DecodeError):
        m.ApiVersionsRequest.decode(b"", 99)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16384, 1 << 21, (1 << 32) - 1])
def test_unsigned_varints(value):
    data = uvarint(value)
    assert read_uvarint(data + b"tail", 0) == (value, len(data))


def test_uuid_prints_as_kafka_does():
    u = Uuid(bytes(range(16)))
    assert str(u) == "AAECAwQFBgcICQoLDA0ODw"
    assert Uuid.parse(str(u)) == u
    assert str(Uuid.random())[0] != "-"


def test_versions_and_api_keys_come_from_the_specs():
    assert m.ApiKey.PRODUCE == 0 and m.ApiKey.OFFSET_FOR_LEADER_EPOCH == 23 and m.ApiKey.DESCRIBE_TOPIC_PARTITIONS == 75
    assert m.FetchRequest.VALID_VERSIONS == (0, 18) and m.FetchRequest.FLEXIBLE_VERSIONS == (12, 18)
    assert m.request_class(3) is m.MetadataRequest and m.response_class(3) is m.MetadataResponse
    assert m.metadata_record_class(2) is m.TopicRecord
