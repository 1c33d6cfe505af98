"""KafkaJS and a record above the topic's max.message.bytes: KafkaJS has no client-side size limit,
so the broker is the one refusing, with MESSAGE_TOO_LARGE (a non-retriable KafkaJSProtocolError);
nothing is stored, the same record goes to a topic without the limit, and one that fits goes through."""

import os

import pytest

from conformance.support import Rec, confluent_read, create_topic, log_dirs_of, records_json, run_node, stored_batches
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)


def test_record_above_topic_limit_is_refused_by_the_broker(broker, unique):
    small = create_topic(broker.bootstrap, unique("kjs-small"), configs={"max.message.bytes": "10000"})
    roomy = create_topic(broker.bootstrap, unique("kjs-roomy"))
    big = [Rec(0, b"k", os.urandom(10_000).hex().encode(), (), None)]  # 20000 bytes

    ok = run_node("produce.js", broker.bootstrap, roomy, input=records_json(big))
    assert ok["acks"] == [[{"partition": 0, "errorCode": ErrorCode.NONE, "baseOffset": 0}]]

    refused = run_node("produce.js", broker.bootstrap, small, input=records_json(big), check=False)
    assert refused["ok"] is False
    assert (refused["error"]["type"], refused["error"]["code"], refused["error"]["retriable"]) == \
        ("MESSAGE_TOO_LARGE", 10, False)
    assert stored_batches(log_dirs_of(broker), small, 0) == []

    fits = [Rec(0, b"k", os.urandom(2_500).hex().encode(), (), None)]
    ok = run_node("produce.js", broker.bootstrap, small, input=records_json(fits))
    assert ok["acks"] == [[{"partition": 0, "errorCode": ErrorCode.NONE, "baseOffset": 0}]]
    [got] = confluent_read(broker.bootstrap, small, {0: 0}, 1)
    assert got.value == fits[0].value
