"""Consumer lag while a transaction is open, as Kafka reports it: a read_committed consumer (confluent-
kafka) caught up to the last stable offset has no lag by its own measure (librdkafka's consumer_lag
is the LSO, which Fetch carries, minus the committed offset), while kafka-consumer-groups.sh and
`kafka-compat group describe` measure to the log end (ListOffsets latest, read_uncommitted: the
high watermark) and count the open transaction's records, as `kafka-compat cluster status` does.
ListOffsets answers the LSO to read_committed. Run it against Apache Kafka with CONFORMANCE_BROKER=apache-kafka."""

import json
import os
import subprocess

import pytest
from confluent_kafka import Consumer, Producer

from conformance.support import TIMEOUT, create_topic
from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.testing.broker_process import CLI
from kafka_compat.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)

PLAIN, OPEN = 3, 2  # records before the transaction, and in it


def latest(bootstrap: str, topic: str, isolation: int) -> int:
    L = m.ListOffsetsRequest
    with BrokerConnection.to(bootstrap) as conn:
        resp = conn.request(L(replica_id=-1, isolation_level=isolation, topics=[L.ListOffsetsTopic(
            name=topic, partitions=[L.ListOffsetsPartition(partition_index=0, timestamp=-1)])]), 5)
    return resp.topics[0].partitions[0].offset


def kafka_compat(bootstrap: str, *args: str):
    """The JSON output of a `kafka-compat` command against `bootstrap`."""
    out = subprocess.run([CLI, *args, "--output", "json"], capture_output=True, timeout=60, check=True,
                         env={**os.environ, "KAFKA_COMPAT_BROKERS": bootstrap})
    return json.loads(out.stdout)


def test_lag_of_a_read_committed_consumer_caught_up_to_an_open_transaction(broker, java, unique):
    b, topic, group = broker.bootstrap, create_topic(broker.bootstrap, unique("lag")), unique("lag-group")
    plain = Producer({"bootstrap.servers": b})
    for i in range(PLAIN):
        plain.produce(topic, value=b"plain-%d" % i, partition=0)
    assert plain.flush(TIMEOUT) == 0
    txn = Producer({"bootstrap.servers": b, "transactional.id": unique("lag-txn")})
    txn.init_transactions(TIMEOUT)
    txn.begin_transaction()
    for i in range(OPEN):
        txn.produce(topic, value=b"open-%d" % i, partition=0)
    assert txn.flush(TIMEOUT) == 0  # written, not committed: the LSO stays at the transaction's start
    assert (latest(b, topic, 1), latest(b, topic, 0)) == (PLAIN, PLAIN + OPEN)

    stats: list[dict] = []
    c = Consumer({"bootstrap.servers": b, "group.id": group, "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False, "statistics.interval.ms": 100,
                  "stats_cb": lambda s: stats.append(json.loads(s)["topics"].get(topic, {}).get("partitions", {})
                                                     .get("0", {}))})
    try:
        c.subscribe([topic])
        got = []
        wait_until(lambda: got.extend(msg.value() for msg in [c.poll(0.2)] if msg is not None and not msg.error())
                   or len(got) == PLAIN, "the committed records", timeout=TIMEOUT)
        c.commit(asynchronous=False)

        def caught_up() -> bool:
            c.poll(0.1)
            s = stats[-1] if stats else {}
            return s.get("committed_offset") == PLAIN and s.get("hi_offset") == PLAIN + OPEN
        wait_until(caught_up, "the consumer's statistics after its commit", timeout=TIMEOUT)
        s = stats[-1]
        assert (s["ls_offset"], s["consumer_lag"]) == (PLAIN, 0)  # its own lag: to the last stable offset
        assert got == [b"plain-%d" % i for i in range(PLAIN)]

        out = java.tool("kafka-consumer-groups", "--bootstrap-server", b, "--describe", "--group", group).stdout
        lines = [ln.split() for ln in out.splitlines() if ln.strip()]
        row = dict(zip(lines[0], next(ln for ln in lines[1:] if ln[1] == topic)))
        assert (row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"]) == (str(PLAIN), str(PLAIN + OPEN), str(OPEN))

        (doc,) = kafka_compat(b, "group", "describe", group)
        assert doc["summary"]["total_lag"] == OPEN
        (part,) = doc["partitions"]
        assert (part["current_offset"], part["log_end_offset"], part["lag"]) == (PLAIN, PLAIN + OPEN, OPEN)
        lagging = {g["group"]: g for g in kafka_compat(b, "cluster", "status")["lagging_groups"]}
        assert (lagging[group]["total_lag"], lagging[group]["partitions_lagging"]) == (OPEN, 1)
    finally:
        c.close()
        txn.abort_transaction(TIMEOUT)
