"""franz-go and a record above the topic's max.message.bytes: franz-go checks only its own batch limit
(ProducerBatchMaxBytes, 1 MB), so the broker is the one refusing, with MESSAGE_TOO_LARGE (kerr's
non-retriable MessageTooLarge, failing the record at once); nothing is stored, the same record goes
to a topic without the limit, and one that fits goes through."""

import os

import pytest

from conformance.golang import check_error, go_produce
from conformance.support import Rec, confluent_read, create_topic, log_dirs_of, stored_batches
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


def test_record_above_topic_limit_is_refused_by_the_broker(broker, unique):
    small = create_topic(broker.bootstrap, unique("fgo-small"), configs={"max.message.bytes": "10000"})
    roomy = create_topic(broker.bootstrap, unique("fgo-roomy"))
    big = [Rec(0, b"k", os.urandom(10_000).hex().encode(), (), None)]  # 20000 bytes, below the client's limit

    assert go_produce("franz-go", broker.bootstrap, roomy, big)["offsets"] == [[0, 0]]

    refused = go_produce("franz-go", broker.bootstrap, small, big, check=False)
    check_error(refused, ErrorCode.MESSAGE_TOO_LARGE)
    assert stored_batches(log_dirs_of(broker), small, 0) == []

    fits = [Rec(0, b"k", os.urandom(2_500).hex().encode(), (), None)]
    assert go_produce("franz-go", broker.bootstrap, small, fits)["offsets"] == [[0, 0]]
    [got] = confluent_read(broker.bootstrap, small, {0: 0}, 1)
    assert got.value == fits[0].value
