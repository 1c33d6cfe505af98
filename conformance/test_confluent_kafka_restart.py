"""confluent-kafka across a broker restart: records acknowledged with acks=all (idempotent producer)
are all there after a graceful stop (SIGTERM) and after a crash (SIGKILL right after the
acknowledgements), at the same offsets, and the restarted broker takes new records after them."""

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from conformance.support import TIMEOUT, check_partition_order, confluent_read, create_topic, sample_records

pytestmark = pytest.mark.timeout(90)


def _produce(bootstrap: str, topic: str, records) -> dict[int, list[int]]:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5,
                  "message.timeout.ms": int(TIMEOUT * 1000)})
    acked: dict[int, list[int]] = {}
    failed = []

    def report(err, msg):
        (failed.append(err) if err else acked.setdefault(msg.partition(), []).append(msg.offset()))

    for r in records:
        p.produce(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                  timestamp=r.timestamp, on_delivery=report)
    assert p.flush(TIMEOUT) == 0 and failed == []
    return acked


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_restart(broker_factory, unique, clean):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("cfk-restart"), partitions=2)
    records = sample_records(40, partitions=2)
    assert _produce(b.bootstrap, topic, records) == {0: list(range(20)), 1: list(range(20))}

    b.restart(clean=clean)

    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(topic, timeout=TIMEOUT).topics[topic]
    assert (sorted(md.partitions), md.error) == ([0, 1], None)
    check_partition_order(records, confluent_read(b.bootstrap, topic, {0: 0, 1: 0}, 40))

    more = sample_records(4, partitions=2, tag="after")
    assert _produce(b.bootstrap, topic, more) == {0: [20, 21], 1: [20, 21]}
    check_partition_order(more, confluent_read(b.bootstrap, topic, {0: 20, 1: 20}, 4), first_offsets={0: 20, 1: 20})
