"""kafka-python committed offsets (OffsetCommit/OffsetFetch, with metadata) survive a consumer
restart, a broker stop (SIGTERM) and a broker crash (SIGKILL) under a live group member, which goes
on consuming and committing (see `groups.committed_offsets_survive_restarts`)."""


import pytest
from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

from conformance.groups import committed_offsets_survive_restarts
from conformance.support import TIMEOUT, collect, create_topic

pytestmark = pytest.mark.timeout(90)


class Member:
    def __init__(self, bootstrap: str, topic: str, group: str):
        self.topic = topic
        self.c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                               auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=500,
                               fetch_max_wait_ms=100, request_timeout_ms=10_000, reconnect_backoff_max_ms=200)
        self.tps = {p: TopicPartition(topic, p) for p in (0, 1)}

    def consume(self, n: int) -> list:
        def poll(timeout_ms: int = 200) -> list:
            return [(tp.partition, m.offset, m.value.decode())
                    for tp, msgs in self.c.poll(timeout_ms=timeout_ms).items() for m in msgs]
        return collect(poll, n, "records", TIMEOUT) + poll(300)  # nothing more may come

    def commit(self, offsets: dict) -> None:
        self.c.commit({self.tps[p]: OffsetAndMetadata(off, meta, -1) for p, (off, meta) in offsets.items()})

    def committed(self) -> dict:
        out = {}
        for p, tp in self.tps.items():
            om = self.c.committed(tp, metadata=True)
            out[p] = (om.offset, om.metadata)
        return out

    def close(self) -> None:
        self.c.close()


def test_committed_offsets_survive_restarts(broker_factory, unique):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("kp-offsets"), partitions=2)
    group = unique("kp-offsets")
    committed_offsets_survive_restarts(b, topic, lambda: Member(b.bootstrap, topic, group))
