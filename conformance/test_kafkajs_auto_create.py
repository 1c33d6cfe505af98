"""KafkaJS and topic auto-creation (auto.create.topics.enable defaults to true): a producer sending
to a missing topic creates it (one partition, the broker default) and the record lands at offset 0;
the admin's metadata request for a missing topic (allow_auto_topic_creation=false) gets
UNKNOWN_TOPIC_OR_PARTITION and creates nothing."""

import pytest

from conformance.support import confluent_read, run_node
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)


def test_producer_creates_admin_does_not(broker, unique):
    sent_to, asked_for = unique("kjs-auto"), unique("kjs-no-auto")
    out = run_node("auto_create.js", broker.bootstrap, sent_to, asked_for)
    assert out["existedBefore"] is False
    assert out["acks"] == [{"partition": 0, "errorCode": ErrorCode.NONE, "baseOffset": 0}]
    assert out["created"] == [{"name": sent_to, "partitions": [0]}]
    assert out["askedError"]["type"] == "UNKNOWN_TOPIC_OR_PARTITION"
    assert out["listedAfter"] == {sent_to: True, asked_for: False}
    [got] = confluent_read(broker.bootstrap, sent_to, {0: 0}, 1)
    assert (got.key, got.value, got.headers) == (b"k", b"first", ())
