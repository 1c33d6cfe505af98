from kafka_compat.protocol.errors import ErrorCode, KafkaError


def test_every_kafka_error_code_is_in_the_table():
    assert len(ErrorCode) == 129
    assert ErrorCode.UNKNOWN_SERVER_ERROR == -1 and ErrorCode.NONE == 0
    assert ErrorCode(6).name == "NOT_LEADER_OR_FOLLOWER"
    assert ErrorCode.by_name("INVALID_REGULAR_EXPRESSION") == 128


def test_retriable_flags_follow_kafka():
    assert ErrorCode.NOT_LEADER_OR_FOLLOWER.retriable and ErrorCode.COORDINATOR_LOAD_IN_PROGRESS.retriable
    assert not ErrorCode.REBALANCE_IN_PROGRESS.retriable and not ErrorCode.INVALID_CONFIG.retriable


def test_kafka_error_carries_its_code():
    e = KafkaError("TOPIC_ALREADY_EXISTS", "t exists")
    assert e.code == ErrorCode.TOPIC_ALREADY_EXISTS and "t exists" in str(e)
