"""confluent-kafka committed offsets (with metadata) survive a consumer restart, a broker stop
(SIGTERM) and a broker crash (SIGKILL) under a live group member, which goes on consuming and
committing (see `groups.committed_offsets_survive_restarts`), in a classic group and in a KIP-848
consumer group (OffsetCommit/OffsetFetch v9 with member epochs; the group is reloaded from
`__consumer_offsets` with its members, epochs and assignments)."""


import pytest
from confluent_kafka import Consumer, TopicPartition

from conformance.groups import SESSION_TIMEOUT_MS, committed_offsets_survive_restarts
from conformance.support import TIMEOUT, collect, create_topic

pytestmark = pytest.mark.timeout(90)


class Member:
    def __init__(self, bootstrap: str, topic: str, group: str, protocol: str):
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100, "reconnect.backoff.max.ms": 200,
                "group.protocol": protocol}
        if protocol == "classic":
            conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        self.topic = topic
        self.c = Consumer(conf)
        self.c.subscribe([topic])

    def consume(self, n: int) -> list:
        def poll() -> list:
            msgs = self.c.consume(100, 0.2)
            assert all(msg.error() is None for msg in msgs), [msg.error() for msg in msgs]
            return [(msg.partition(), msg.offset(), msg.value().decode()) for msg in msgs]
        out = collect(poll, n, "records", TIMEOUT)
        out += [(m.partition(), m.offset(), m.value().decode()) for m in self.c.consume(100, 0.3)]
        return out

    def commit(self, offsets: dict) -> None:
        self.c.commit(offsets=[TopicPartition(self.topic, p, off, metadata=meta) for p, (off, meta) in offsets.items()],
                      asynchronous=False)

    def committed(self) -> dict:
        tps = self.c.committed([TopicPartition(self.topic, p) for p in (0, 1)], timeout=TIMEOUT)
        assert all(tp.error is None for tp in tps), tps
        return {tp.partition: (tp.offset, tp.metadata) for tp in tps}

    def close(self) -> None:
        self.c.close()


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_committed_offsets_survive_restarts(broker_factory, unique, protocol):
    b = broker_factory({"group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
                        "group.consumer.heartbeat.interval.ms": "500"})
    topic = create_topic(b.bootstrap, unique("cfk-offsets"), partitions=2)
    group = unique("cfk-offsets")
    committed_offsets_survive_restarts(b, topic, lambda: Member(b.bootstrap, topic, group, protocol))
