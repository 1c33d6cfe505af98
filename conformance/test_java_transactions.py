"""The Java producer's transactions (kafka-clients of the pinned release): a committed transaction
is read by the Java consumer with isolation.level=read_committed, an aborted one is not (a
read_uncommitted Java consumer reads both)."""

import pytest

from conformance.support import create_topic

pytestmark = pytest.mark.timeout(120)


def values(tag: str) -> list[str]:
    return [f"{tag}-{i}" for i in range(6)]


def read(java, topic: str, isolation: str, count: int) -> list[str]:
    got = java.call("read", topic=topic, starts={"0": 0, "1": 0}, count=count, timeoutMs=5000,
                    config={"isolation.level": isolation})
    return sorted(r["value"] for r in got)


def test_java_transactions_commit_and_abort(broker, java, unique):
    topic = create_topic(broker.bootstrap, unique("java-txn"), partitions=2)
    done = java.call("transactions", topic=topic, partitions=2, config={"transactional.id": unique("java-txn")},
                     transactions=[{"values": values("committed"), "commit": True},
                                   {"values": values("aborted"), "commit": False}])
    assert done == 2
    assert java.call("admin.listTransactions") >= 1  # ListTransactions to every broker
    assert java.call("admin.describeProducers", partitions=[[topic, 0]]) == 1  # the partition described
    assert read(java, topic, "read_committed", 12) == values("committed")
    assert read(java, topic, "read_uncommitted", 12) == sorted(values("committed") + values("aborted"))


def test_kafka_streams_exactly_once_v2(broker, java, unique):
    """A Kafka Streams application with processing.guarantee=exactly_once_v2 (a transactional
    producer per thread, offsets committed in its transactions) turns every input record into one
    output record that read_committed readers see."""
    source = create_topic(broker.bootstrap, unique("streams-in"), partitions=2)
    sink = create_topic(broker.bootstrap, unique("streams-out"), partitions=2)
    words = [f"word-{i}" for i in range(20)]
    java.call("produce", topic=source, records=[{"partition": i % 2, "key": None, "value": w, "headers": []}
                                                for i, w in enumerate(words)])
    out = java.call("streams.upper", input=source, output=sink, count=20, partitions=2, timeoutMs=60000, config={
        "application.id": unique("eos-app"), "processing.guarantee": "exactly_once_v2",
        "commit.interval.ms": "100", "replication.factor": "1", "state.dir": str(broker.data_dir / "streams")})
    assert sorted(out) == sorted(w.upper() for w in words)
