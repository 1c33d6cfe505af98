"""aiokafka and topic auto-creation (auto.create.topics.enable defaults to true): sending to a missing
topic creates it with the broker's defaults (one partition), and so does a metadata request naming
a missing topic (aiokafka's Metadata v1 has no opt-out)."""

import asyncio

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from conformance.support import TIMEOUT, aiokafka_read
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


async def scenario(bootstrap: str, sent_to: str, asked_for: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), TIMEOUT)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=int(TIMEOUT * 1000))
    await asyncio.wait_for(p.start(), TIMEOUT)
    try:
        before = await admin.list_topics()
        assert sent_to not in before and asked_for not in before
        md = await asyncio.wait_for(p.send_and_wait(sent_to, b"first", key=b"k"), TIMEOUT)
        assert (md.topic, md.partition, md.offset) == (sent_to, 0, 0)

        assert await asyncio.wait_for(p.partitions_for(asked_for), TIMEOUT) == {0}
        for name in (sent_to, asked_for):
            [desc] = await admin.describe_topics([name])
            assert (desc["error_code"], [q["partition"] for q in desc["partitions"]]) == (ErrorCode.NONE, [0])
    finally:
        await p.stop()
        await admin.close()


def test_produce_and_metadata_create_the_topic(broker, unique):
    sent_to, asked_for = unique("aio-auto"), unique("aio-auto-md")
    asyncio.run(scenario(broker.bootstrap, sent_to, asked_for))
    [got] = aiokafka_read(broker.bootstrap, sent_to, {0: 0}, 1)
    assert (got.key, got.value) == (b"k", b"first")
