"""kafka-python across a broker restart: records acknowledged by an idempotent acks=all producer
are all there, at the same offsets, after a graceful stop (SIGTERM) and after a crash (SIGKILL
right after the acknowledgements); a new producer appends after them."""

import pytest
from kafka import KafkaProducer

from conformance.support import TIMEOUT, check_partition_order, create_topic, kafka_python_read, sample_records

pytestmark = pytest.mark.timeout(90)


def _produce(bootstrap: str, topic: str, records) -> list[tuple[int, int]]:
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, request_timeout_ms=int(TIMEOUT * 1000))
    try:
        futures = [p.send(topic, key=r.key, value=r.value, partition=r.partition, headers=list(r.headers),
                          timestamp_ms=r.timestamp) for r in records]
        return [(m.partition, m.offset) for m in (f.get(TIMEOUT) for f in futures)]
    finally:
        p.close(TIMEOUT)


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_restart(broker_factory, unique, clean):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("kp-restart"), partitions=2)
    records = sample_records(40, partitions=2)
    assert _produce(b.bootstrap, topic, records) == [(r.partition, i // 2) for i, r in enumerate(records)]

    b.restart(clean=clean)

    check_partition_order(records, kafka_python_read(b.bootstrap, topic, {0: 0, 1: 0}, 40))
    more = sample_records(4, partitions=2, tag="after")
    assert _produce(b.bootstrap, topic, more) == [(0, 20), (1, 20), (0, 21), (1, 21)]
    check_partition_order(more, kafka_python_read(b.bootstrap, topic, {0: 20, 1: 20}, 4), first_offsets={0: 20, 1: 20})
