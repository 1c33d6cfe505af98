"""KafkaJS across a broker restart: records KafkaJS produced with acks=-1 (idempotent) are all there
after a graceful stop (SIGTERM) and after a crash (SIGKILL right after the acknowledgements), at the
same offsets (read by confluent-kafka), and KafkaJS appends after them."""

import pytest

from conformance.support import (
    check_partition_order,
    confluent_read,
    create_topic,
    records_json,
    run_node,
    sample_records,
)
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("clean", [True, False], ids=["sigterm", "sigkill"])
def test_acknowledged_records_survive_a_restart(broker_factory, unique, clean):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("kjs-restart"), partitions=2)
    records = sample_records(40, partitions=2)
    out = run_node("produce.js", b.bootstrap, topic, "--acks=-1", "--idempotent", "--chunk=10",
                   input=records_json(records))
    assert out["acks"] == [[{"partition": p, "errorCode": ErrorCode.NONE, "baseOffset": 5 * i} for p in (0, 1)]
                           for i in range(4)]

    b.restart(clean=clean)

    check_partition_order(records, confluent_read(b.bootstrap, topic, {0: 0, 1: 0}, 40))
    more = sample_records(4, partitions=2, tag="after")
    out = run_node("produce.js", b.bootstrap, topic, "--acks=-1", "--idempotent", input=records_json(more))
    assert out["acks"] == [[{"partition": p, "errorCode": ErrorCode.NONE, "baseOffset": 20} for p in (0, 1)]]
    check_partition_order(more, confluent_read(b.bootstrap, topic, {0: 20, 1: 20}, 4), first_offsets={0: 20, 1: 20})
