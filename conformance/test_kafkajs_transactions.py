"""The transactional producer of KafkaJS: a committed transaction is read by its read_committed
consumer, an aborted one is not; read_uncommitted readers see both."""

import pytest

from conformance.support import create_topic, run_node
from conformance.test_confluent_kafka_transactions import read_all

pytestmark = pytest.mark.timeout(120)

COMMITTED = sorted(f"committed-{i}".encode() for i in range(5))
ABORTED = sorted(f"aborted-{i}".encode() for i in range(5))


def test_kafkajs_commit_and_abort(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kjs-txn"), partitions=2)
    out = run_node("transactions.js", broker.bootstrap, topic, unique("kjs-txn"))
    assert [v.encode() for v in out["values"]] == COMMITTED
    assert read_all(broker.bootstrap, topic, "read_uncommitted", expect=10) == sorted(COMMITTED + ABORTED)
