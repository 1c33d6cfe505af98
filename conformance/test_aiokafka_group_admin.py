"""aiokafka AIOKafkaAdminClient on consumer groups (all it has: list, describe, list committed
offsets) and consumer lag (latest offset minus committed offset, per partition) from the
consumer's end_offsets and the admin's OffsetFetch. One group is active (two member processes), one
stopped (its consumer committed and closed). aiokafka decodes DescribeGroups v3 responses with the
v2 schema (it drops each group's authorized operations), so it can only describe one group a call."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import OffsetAndMetadata

from conformance.groups import produce, python_member, wait_consumed_once, wait_split
from conformance.support import TIMEOUT, create_topic
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)
STOPPED_AT = {0: 3, 1: 10, 2: 0, 3: 7}  # what the stopped group committed, of 10 records a partition


def _assignment(data: bytes) -> list[tuple[str, list[int]]]:
    """A ConsumerProtocolAssignment (an int16 version, then fields whose v0 prefix all versions share)."""
    assignment, _ = m.ConsumerProtocolAssignment.decode_prefix(bytes(data), 0, 2)
    return [(tp.topic, list(tp.partitions)) for tp in assignment.assigned_partitions]


async def _stop_after_committing(bootstrap: str, topic: str, group: str) -> None:
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                         auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500)
    await asyncio.wait_for(c.start(), TIMEOUT)
    try:
        got = 0
        async with asyncio.timeout(TIMEOUT):
            while got < 40:
                got += sum(len(msgs) for msgs in (await c.getmany(timeout_ms=200)).values())
        await c.commit({TopicPartition(topic, p): OffsetAndMetadata(o, f"at-{o}") for p, o in STOPPED_AT.items()})
    finally:
        await c.stop()


async def scenario(bootstrap: str, topic: str, active: str, stopped: str, members) -> None:
    await _stop_after_committing(bootstrap, topic, stopped)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    ends = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), TIMEOUT)
    await asyncio.wait_for(ends.start(), TIMEOUT)
    tps = [TopicPartition(topic, p) for p in range(4)]
    try:
        listed = dict(await admin.list_consumer_groups())
        assert (listed[active], listed[stopped]) == ("consumer", "consumer")

        [response] = await admin.describe_consumer_groups([active])
        [(error, group, state, protocol_type, protocol, described)] = response.groups
        assert (error, group, state, protocol_type, protocol) == \
            (ErrorCode.NONE, active, "Stable", "consumer", "roundrobin")
        assert {mb[0]: (mb[1], mb[2], _assignment(mb[4])) for mb in described} == \
            {mb.member_id: (f"aio-{mb.name}", "/127.0.0.1", [(topic, mb.assigned)]) for mb in members}
        [response] = await admin.describe_consumer_groups([stopped])
        assert [tuple(g[:5]) + (g[5],) for g in response.groups] == [(0, stopped, "Empty", "consumer", "", [])]

        async def lag(group: str) -> dict:
            end = await ends.end_offsets(tps)
            committed = await admin.list_consumer_group_offsets(group)
            return {tp.partition: end[tp] - om.offset for tp, om in committed.items()}

        assert await lag(active) == {0: 0, 1: 0, 2: 0, 3: 0}
        assert await lag(stopped) == {p: 10 - o for p, o in STOPPED_AT.items()}
        committed = await admin.list_consumer_group_offsets(stopped, partitions=tps[:2])
        assert {tp.partition: (om.offset, om.metadata) for tp, om in committed.items()} == \
            {0: (3, "at-3"), 1: (10, "at-10")}
    finally:
        await ends.stop()
        await admin.close()


def test_group_admin(broker, unique):
    topic = create_topic(broker.bootstrap, unique("aio-gadmin"), partitions=4)
    active, stopped = unique("aio-active"), unique("aio-stopped")
    members = [python_member("aiokafka", broker.bootstrap, topic, active, n, client_id=f"aio-{n}") for n in "ab"]
    try:
        owners = wait_split(members, 4)
        sent = produce(broker.bootstrap, topic, 4, 10, "x")
        wait_consumed_once(members, sent, "x", owners)
        asyncio.run(scenario(broker.bootstrap, topic, active, stopped, members))
    finally:
        for mb in members:
            mb.kill()
