"""error_response: a request that fails as a whole gets the code where Kafka puts it."""

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.errors import error_response

A = m.ApiKey


def test_a_group_request_gets_the_code_on_every_partition():
    C = m.OffsetCommitRequest
    request = C(group_id="g", topics=[C.OffsetCommitRequestTopic(name="t", partitions=[
        C.OffsetCommitRequestPartition(partition_index=p) for p in (0, 1)])])
    response = error_response(A.OFFSET_COMMIT, request, 8, ErrorCode.COORDINATOR_NOT_AVAILABLE)
    assert [(p.partition_index, p.error_code) for p in response.topics[0].partitions] == \
        [(0, ErrorCode.COORDINATOR_NOT_AVAILABLE), (1, ErrorCode.COORDINATOR_NOT_AVAILABLE)]


def test_a_controller_request_gets_the_code_and_message_on_every_item():
    C = m.CreateTopicsRequest
    request = C(topics=[C.CreatableTopic(name=n, num_partitions=1, replication_factor=1) for n in ("a", "b")])
    response = error_response(A.CREATE_TOPICS, request, 7, ErrorCode.REQUEST_TIMED_OUT, "too slow")
    assert [(t.name, t.error_code, t.error_message) for t in response.topics] == \
        [("a", ErrorCode.REQUEST_TIMED_OUT, "too slow"), ("b", ErrorCode.REQUEST_TIMED_OUT, "too slow")]


def test_other_requests_get_the_top_level_field_or_no_response_without_one():
    response = error_response(A.DESCRIBE_CLUSTER, m.DescribeClusterRequest(), 1, ErrorCode.UNKNOWN_SERVER_ERROR, "x")
    assert (response.error_code, response.error_message) == (ErrorCode.UNKNOWN_SERVER_ERROR, "x")
    assert error_response(A.PRODUCE, None, 9, ErrorCode.UNSUPPORTED_VERSION) is None
