"""kafka-python's idempotent producer at acks=all on three real nodes (replication factor 3,
min.insync.replicas 2) while partition leaders are killed with -9 and restarted, and stopped with
SIGSTOP until they are fenced and then continued: every acknowledged record is read back exactly
once, in order, at the offset it was acknowledged at, and the producer saw no error."""

from __future__ import annotations

import threading

import pytest
from kafka import KafkaProducer

from conformance.replication import FAST, Faults, create_topic, judge, report, wait_acks, wait_in_sync
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.ledger import Ledger, value

pytestmark = pytest.mark.timeout(120)
IN_FLIGHT = 1000  # records sent and not yet answered, at most


class ProducerThread:
    """kafka-python sending `value("kp", n)` to partition n % partitions until stopped."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, ledger: Ledger):
        self.producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True,
                                      linger_ms=5, request_timeout_ms=10000, delivery_timeout_ms=120000)
        self.topic, self.partitions, self.ledger = topic, partitions, ledger
        self.window = threading.BoundedSemaphore(IN_FLIGHT)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            if not self.window.acquire(timeout=0.1):
                continue
            v = value("kp", n)
            future = self.producer.send(self.topic, value=v, partition=n % self.partitions)
            future.add_callback(self._acked, v)
            future.add_errback(self._failed)
            n += 1
        self.producer.flush(120)
        self.producer.close(30)

    def _acked(self, v: bytes, metadata) -> None:
        self.ledger.acknowledged(metadata.partition, metadata.offset, v)
        self.window.release()

    def _failed(self, error) -> None:
        self.ledger.failed(error)
        self.window.release()

    def __enter__(self) -> ProducerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()


def test_replication_acks_all_survives_kill_9_and_sigstop_of_leaders(tmp_path):
    topic, partitions = "kp-faults", 3
    with ClusterProcess(tmp_path, 3, overrides=FAST) as cluster:
        create_topic(cluster.bootstrap, topic, partitions)
        wait_in_sync(cluster, topic)
        ledger = Ledger()
        faults = Faults(cluster, topic, lambda: wait_acks(ledger, 300))
        with ProducerThread(cluster.bootstrap, topic, partitions, ledger):
            wait_acks(ledger, 300)
            faults.kill_leader(0)
            faults.pause_leader(1)
        verdict = judge(cluster, topic, partitions, ledger)
    report("kafka-python", verdict, faults.injected, ledger.errors)
    assert verdict.ok, verdict
    assert ledger.errors == [] and len(faults.injected) == 2 and verdict.acknowledged >= 1200
