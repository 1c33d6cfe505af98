"""aiokafka committed offsets survive a consumer restart, a broker stop (SIGTERM) and a broker crash
(SIGKILL) under a live group member, which goes on consuming and committing (see
`groups.committed_offsets_survive_restarts`; aiokafka's `committed()` returns no metadata). The
consumer runs on an event loop of its own, in a thread, so it heartbeats between the steps."""

import asyncio
import threading

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from conformance.groups import committed_offsets_survive_restarts
from conformance.support import TIMEOUT, collect_async, create_topic

pytestmark = pytest.mark.timeout(90)


class Member:
    returns_metadata = False

    def __init__(self, bootstrap: str, topic: str, group: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.tps = {p: TopicPartition(topic, p) for p in (0, 1)}
        self.c = self._run(self._start(bootstrap, topic, group))

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT + 5)

    async def _start(self, bootstrap, topic, group) -> AIOKafkaConsumer:
        c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                             fetch_max_wait_ms=100, request_timeout_ms=10_000, retry_backoff_ms=100)
        await c.start()
        return c

    async def _consume(self, n: int) -> list:
        async def poll() -> list:
            return [(tp.partition, m.offset, m.value.decode())
                    for tp, msgs in (await self.c.getmany(timeout_ms=200)).items() for m in msgs]
        out = await collect_async(poll, n, "records", TIMEOUT)
        for tp, msgs in (await self.c.getmany(timeout_ms=300)).items():
            out += [(tp.partition, m.offset, m.value.decode()) for m in msgs]  # nothing more may come
        return out

    def consume(self, n: int) -> list:
        return self._run(self._consume(n))

    def commit(self, offsets: dict) -> None:
        self._run(self.c.commit({self.tps[p]: OffsetAndMetadata(off, meta) for p, (off, meta) in offsets.items()}))

    def committed(self) -> dict:
        return {p: (self._run(self.c.committed(tp)), None) for p, tp in self.tps.items()}

    def close(self) -> None:
        try:
            self._run(self.c.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(TIMEOUT)
            self.loop.close()


def test_committed_offsets_survive_restarts(broker_factory, unique):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("aio-offsets"), partitions=2)
    group = unique("aio-offsets")
    committed_offsets_survive_restarts(b, topic, lambda: Member(b.bootstrap, topic, group))
