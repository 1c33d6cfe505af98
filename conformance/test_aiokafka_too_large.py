"""aiokafka and a record above the topic's max.message.bytes: the broker refuses it with
MESSAGE_TOO_LARGE (MessageSizeTooLargeError; the client's own max_request_size is set far higher,
and the same record goes through to a topic without the limit), stores nothing, takes what fits."""

import asyncio
import os

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from conformance.support import TIMEOUT, aiokafka_read, create_topic, log_dirs_of, stored_batches
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


async def scenario(bootstrap: str, small: str, roomy: str, logs) -> bytes:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=1_000_000, linger_ms=0,
                         request_timeout_ms=int(TIMEOUT * 1000))
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        big = os.urandom(20_000)
        assert (await asyncio.wait_for(p.send_and_wait(roomy, big, key=b"k", partition=0), TIMEOUT)).offset == 0
        with pytest.raises(MessageSizeTooLargeError) as e:
            await asyncio.wait_for(p.send_and_wait(small, big, key=b"k", partition=0), TIMEOUT)
        assert e.value.errno == ErrorCode.MESSAGE_TOO_LARGE
        assert stored_batches(logs, small, 0) == []
        fits = os.urandom(5_000)
        assert (await asyncio.wait_for(p.send_and_wait(small, fits, key=b"k", partition=0), TIMEOUT)).offset == 0
        return fits
    finally:
        await p.stop()


def test_record_above_topic_limit_is_refused_by_the_broker(broker, unique):
    small = create_topic(broker.bootstrap, unique("aio-small"), configs={"max.message.bytes": "10000"})
    roomy = create_topic(broker.bootstrap, unique("aio-roomy"))
    fits = asyncio.run(scenario(broker.bootstrap, small, roomy, log_dirs_of(broker)))
    [got] = aiokafka_read(broker.bootstrap, small, {0: 0}, 1)
    assert (got.offset, got.key, got.value) == (0, b"k", fits)
