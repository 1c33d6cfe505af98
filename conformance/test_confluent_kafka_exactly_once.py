"""Exactly once with confluent-kafka: a consume-transform-produce loop (conformance/eos_loop.py)
that commits its input offsets with send_offsets_to_transaction is killed -9 mid-run and
restarted; read_committed readers of its output see exactly one output record per input record.
On one node, then on three (replication factor 3, min.insync.replicas 2) with the broker of the
transaction coordinator killed as well."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conformance.support import TIMEOUT, create_topic
from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

INPUTS = 400
PARTITIONS = 2


class Loop:
    def __init__(self, bootstrap: str, source: str, sink: str, group: str, txn_id: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "conformance.eos_loop", bootstrap, source, sink, group,
                                      txn_id, "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.committed = 0

    def wait_committed(self, at_least: int) -> None:
        for line in self.proc.stdout:
            report = json.loads(line)
            self.committed = report.get("committed", self.committed)
            if self.committed >= at_least:
                return
        raise AssertionError(f"the loop ended after {self.committed} records, exit {self.proc.wait()}: "
                             f"{self.proc.stderr.read()[-2000:]}")

    def wait_idle(self) -> None:
        for line in self.proc.stdout:
            if json.loads(line).get("idle"):
                assert self.proc.wait(TIMEOUT) == 0
                return
        raise AssertionError(f"the loop exited {self.proc.wait()} before it was done: "
                             f"{self.proc.stderr.read()[-2000:]}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def produce_inputs(bootstrap: str, topic: str) -> list[bytes]:
    values = [f"in-{i}".encode() for i in range(INPUTS)]
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % PARTITIONS)
    assert p.flush(TIMEOUT) == 0
    return values


def committed_outputs(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.monotonic_ns()}",
                  "isolation.level": "read_committed", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got, quiet_since, deadline = [], time.monotonic(), time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 3:
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append((msg.key(), msg.value()))
                quiet_since = time.monotonic()
    finally:
        c.close()
    return got


def check_exactly_once(bootstrap: str, sink: str, inputs: list[bytes]) -> None:
    out = committed_outputs(bootstrap, sink)
    assert len(out) == len(inputs), f"{len(out)} outputs for {len(inputs)} inputs"
    assert sorted(v for _, v in out) == sorted(b"out:" + v for v in inputs)
    assert len({k for k, _ in out}) == len(inputs)


def run_killed_loop(bootstrap: str, unique) -> None:
    source = create_topic(bootstrap, unique("eos-in"), partitions=PARTITIONS)
    sink = create_topic(bootstrap, unique("eos-out"), partitions=PARTITIONS)
    inputs = produce_inputs(bootstrap, source)
    group, txn_id = unique("eos-group"), unique("eos-txn")
    first = Loop(bootstrap, source, sink, group, txn_id)
    first.wait_committed(INPUTS // 3)
    first.kill()  # mid-run: a transaction is open, records of it written
    second = Loop(bootstrap, source, sink, group, txn_id)
    second.wait_idle()
    check_exactly_once(bootstrap, sink, inputs)


def test_a_killed_loop_produces_each_output_once(broker, unique):
    run_killed_loop(broker.bootstrap, unique)


def replicated_topic(bootstrap: str, name: str) -> str:
    """A topic with three replicas (min.insync.replicas 2 from the brokers' default)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=3)],
                                  request_timeout=TIMEOUT)
    futures[name].result(TIMEOUT)
    return name


def transaction_coordinator(bootstrap: str, txn_id: str) -> int:
    F = m.FindCoordinatorRequest
    with BrokerConnection.to(bootstrap.split(",")[0]) as conn:
        def found():
            r = conn.request(F(key_type=1, coordinator_keys=[txn_id]), 4).coordinators[0]
            return r.node_id if r.error_code == ErrorCode.NONE else None
        wait_until(lambda: found() is not None, "a transaction coordinator", timeout=30)
        return found()


def test_exactly_once_survives_the_loop_and_the_coordinators_broker_killed(tmp_path, unique):
    fast = {"broker.heartbeat.interval.ms": "250", "broker.session.timeout.ms": "2000",
            "controller.quorum.fetch.timeout.ms": "1000", "controller.quorum.election.timeout.ms": "500",
            "replica.lag.time.max.ms": "2000", "default.replication.factor": "3", "min.insync.replicas": "2",
            "offsets.topic.num.partitions": "3", "transaction.state.log.num.partitions": "3"}
    with ClusterProcess(tmp_path, 3, overrides=fast) as cluster:
        killed = []

        def kill_coordinator(txn_id: str) -> None:
            victim = transaction_coordinator(cluster.bootstrap, txn_id)
            cluster[victim].kill()
            killed.append(victim)

        def live() -> str:
            return ",".join(n.bootstrap for n in cluster.brokers if n.id not in killed)

        source = replicated_topic(cluster.bootstrap, unique("eos-in"))
        sink = replicated_topic(cluster.bootstrap, unique("eos-out"))
        inputs = produce_inputs(cluster.bootstrap, source)
        group, txn_id = unique("eos-group"), unique("eos-txn")
        first = Loop(cluster.bootstrap, source, sink, group, txn_id)
        first.wait_committed(INPUTS // 3)
        first.kill()
        kill_coordinator(txn_id)
        second = Loop(live(), source, sink, group, txn_id)
        second.wait_idle()
        check_exactly_once(live(), sink, inputs)
