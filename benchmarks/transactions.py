"""Transactions: confluent-kafka's transactional producer against kafka-compat and Apache Kafka, each
with its idempotent non-transactional producer as the peer in the same run.

On one broker (a 3-partition topic, 512-byte records, acks=all, linger.ms=5): records/s of an
idempotent producer for a bounded time (after an unmeasured warm-up), and its round trips/s
producing and flushing one record at a time; then records/s of a transactional producer committing
every 1, 10 and 100 records, with the commit latency (commit_transaction's duration) p50/p99 at 10
records per transaction; then records/s of a read_committed consumer reading every committed record
back. The target (issue 13): at 100 records per transaction, at least 0.7x the idempotent figure.

A transaction costs the client at least three sequential round trips (AddPartitionsToTxn, Produce,
EndTxn) plus librdkafka's own hand-offs between its threads, whatever the broker: the round trips
figure is the floor to read the transactional rates against. The same harness then measures Apache
Kafka (the release the conformance suite pins, started by conformance/peers/apache_kafka.py as
benchmarks/e2e.py does; `make test-deps` resolves its jars), so that the ratio reads against what
Kafka itself reaches. Kafka writes a transaction's markers after answering EndTxn, through its
marker channel (a WriteTxnMarkers request, to itself here), so the next AddPartitionsToTxn often
finds them pending and gets CONCURRENT_TRANSACTIONS, which librdkafka retries after 20 ms: that
backoff dominates its figure at one record per transaction. kafka-compat, coordinator and leader at
once, writes them straight to its log before the next request arrives. The brokers run one after the
other. Prints one JSON line: kafka-compat's figures at the top level, Apache Kafka's under
"apache_kafka".

Usage: python benchmarks/transactions.py [--seconds 5] [--no-apache-kafka] [--apache-kafka-heap 1g]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conformance.peers.apache_kafka import ApacheKafkaNode
from kafka_compat.testing.broker_process import BrokerProcess

PARTITIONS = 3
VALUE = b"x" * 512


def create(bootstrap: str, name: str) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[name].result(30)
    return name


def idempotent_rate(bootstrap: str, topic: str, seconds: float) -> tuple[float, int]:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    sent, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            while True:
                try:
                    p.produce(topic, value=VALUE)
                    break
                except BufferError:
                    p.poll(0.01)
        sent += 100
        p.poll(0)
    assert p.flush(60) == 0
    return sent / (time.perf_counter() - start), sent


def round_trip_rate(bootstrap: str, topic: str, seconds: float) -> float:
    """Produce-and-flush of one record at a time with the idempotent producer: the client's round
    trips per second to this broker (a transaction takes at least three)."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5})
    p.produce(topic, value=VALUE)
    assert p.flush(30) == 0
    trips, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        p.produce(topic, value=VALUE)
        assert p.flush(30) == 0
        trips += 1
    return trips / (time.perf_counter() - start)


def transactional_rate(bootstrap: str, topic: str, per_txn: int, seconds: float) -> tuple[float, list[float], int]:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"bench-{per_txn}", "linger.ms": 5})
    p.init_transactions(30)
    sent, commits, start = 0, [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        p.begin_transaction()
        for _ in range(per_txn):
            p.produce(topic, value=VALUE)
        t0 = time.perf_counter()
        p.commit_transaction(30)  # flushes, then EndTxn
        commits.append(time.perf_counter() - t0)
        sent += per_txn
    return sent / (time.perf_counter() - start), commits, sent


def read_committed_rate(bootstrap: str, topic: str, expect: int) -> float:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-reader", "isolation.level": "read_committed",
                  "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got, start = 0, time.perf_counter()
    while got < expect and time.perf_counter() - start < 120:
        got += sum(1 for m in c.consume(1000, 1.0) if m.error() is None)
    elapsed = time.perf_counter() - start
    c.close()
    assert got == expect, f"read {got} of {expect} committed records"
    return got / elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(bootstrap: str, seconds: float) -> dict:
    """Every figure of one broker (a fresh one: the topics are created here)."""
    idem_topic = create(bootstrap, "idempotent")
    idempotent_rate(bootstrap, idem_topic, min(seconds, 2.0))  # warm-up (a JVM's JIT), not measured
    idem, _ = idempotent_rate(bootstrap, idem_topic, seconds)
    trips = round_trip_rate(bootstrap, idem_topic, seconds)
    rates, committed = {}, 0
    txn_topic = create(bootstrap, "transactional")
    latencies: list[float] = []
    for per_txn in (1, 10, 100):
        rate, commits, sent = transactional_rate(bootstrap, txn_topic, per_txn, seconds)
        rates[per_txn] = rate
        committed += sent
        if per_txn == 10:
            latencies = commits
    consume = read_committed_rate(bootstrap, txn_topic, committed)
    return {
        "idempotent_records_per_s": round(idem),
        "idempotent_round_trips_per_s": round(trips),
        "transactional_records_per_s": {str(k): round(v) for k, v in rates.items()},
        "ratio_at_100_per_txn": round(rates[100] / idem, 3),
        "commit_latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "commit_latency_ms_p99": round(percentile(latencies, 0.99) * 1000, 2),
        "read_committed_records_per_s": round(consume),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-apache-kafka", action="store_true", help="measure kafka-compat alone")
    ap.add_argument("--apache-kafka-heap", default="1g", help="Apache Kafka's JVM heap (-Xms and -Xmx)")
    args = ap.parse_args()
    result = {"benchmark": "transactions", "client": "confluent-kafka", "record_bytes": len(VALUE),
              "target_ratio": 0.7}
    with tempfile.TemporaryDirectory() as d:
        broker = BrokerProcess(Path(d) / "kafka-compat", log_format="json").start()
        try:
            result.update(measure(broker.bootstrap, args.seconds))
        finally:
            broker.stop()
        if not args.no_apache_kafka:
            kafka = ApacheKafkaNode(Path(d) / "apache-kafka", heap=args.apache_kafka_heap).start(timeout=120)
            try:
                result["apache_kafka"] = measure(kafka.bootstrap, args.seconds)
            finally:
                kafka.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
