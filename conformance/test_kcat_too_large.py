"""kcat and a record above the topic's max.message.bytes: librdkafka's limit (message.max.bytes) is
set far above the topic's, so kcat sends it and the broker refuses it with MESSAGE_TOO_LARGE
("Delivery failed ... Broker: Message size too large", exit status 1); nothing is stored; a record
that fits goes through."""

import os

import pytest

from conformance.support import create_topic, kcat, kcat_read, log_dirs_of, stored_batches

pytestmark = pytest.mark.timeout(60)


def _send(bootstrap: str, topic: str, value: bytes):
    return kcat("-b", bootstrap, "-P", "-t", topic, "-p", "0", "-X", "message.max.bytes=1000000",
                "-X", "compression.codec=none", "-X", "message.send.max.retries=0", input=value + b"\n",
                check=False, quiet=False)


def test_record_above_topic_limit_is_refused_by_the_broker(broker, unique):
    small = create_topic(broker.bootstrap, unique("kcat-small"), configs={"max.message.bytes": "10000"})
    roomy = create_topic(broker.bootstrap, unique("kcat-roomy"))
    big = os.urandom(10_000).hex().encode()  # 20000 bytes on one line

    ok = _send(broker.bootstrap, roomy, big)
    assert ok.returncode == 0, ok.stderr

    refused = _send(broker.bootstrap, small, big)
    assert refused.returncode == 1
    assert b"Delivery failed for message: Broker: Message size too large" in refused.stderr, refused.stderr
    assert stored_batches(log_dirs_of(broker), small, 0) == []

    fits = os.urandom(2_500).hex().encode()
    ok = _send(broker.bootstrap, small, fits)
    assert ok.returncode == 0, ok.stderr
    [got] = kcat_read(broker.bootstrap, small, {0: 0}, 1)
    assert (got.offset, got.value) == (0, fits)
