"""KafkaJS's idempotent producer at acks=-1 on three real nodes (replication factor 3,
min.insync.replicas 2): while partition leaders are killed with -9 and restarted, and stopped
with SIGSTOP until fenced and then continued; and through a rolling restart of all three nodes by
SIGTERM (each moves its leaderships away first). Every acknowledged record is read back exactly
once, in order, at the offset it was acknowledged at, and no send failed."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from conformance.replication import (
    FAST,
    Faults,
    create_topic,
    judge,
    partition_state,
    report,
    wait_acks,
    wait_in_sync,
)
from conformance.support import NODE_DIR
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.ledger import Ledger

pytestmark = pytest.mark.timeout(120)
TOPIC, PARTITIONS = "kjs-faults", 3


class NodeProducer:
    """`node produce_stream.js` feeding the ledger from its lines until stdin is closed."""

    def __init__(self, bootstrap: str, ledger: Ledger):
        assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "KafkaJS is not installed: run `make test-deps`"
        self.ledger = ledger
        self.proc = subprocess.Popen(["node", str(NODE_DIR / "produce_stream.js"), bootstrap, TOPIC, str(PARTITIONS),
                                      "kjs"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=NODE_DIR)
        self.result: dict = {}
        self.reader = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        for line in self.proc.stdout:
            item = json.loads(line)
            if isinstance(item, list):
                partition, offset, v = item
                self.ledger.acknowledged(partition, offset, v.encode())
            else:
                self.result = item
                for error in item.get("errors", []) + ([item["error"]] if "error" in item else []):
                    self.ledger.failed(error)

    def __enter__(self) -> NodeProducer:
        self.reader.start()
        return self

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()  # the script stops sending; its last send completes
        try:
            self.proc.wait(60)
        finally:
            self.proc.kill()
            self.reader.join(10)
        assert self.result.get("ok"), self.result


def test_replication_acks_all_survives_kill_9_and_sigstop_of_leaders(tmp_path):
    with ClusterProcess(tmp_path, 3, overrides=FAST) as cluster:
        create_topic(cluster.bootstrap, TOPIC, PARTITIONS)
        wait_in_sync(cluster, TOPIC)
        ledger = Ledger()
        faults = Faults(cluster, TOPIC, lambda: wait_acks(ledger, 500))
        with NodeProducer(cluster.bootstrap, ledger):
            wait_acks(ledger, 500)
            faults.kill_leader(0)
            faults.pause_leader(1)
        verdict = judge(cluster, TOPIC, PARTITIONS, ledger)
    report("KafkaJS", verdict, faults.injected, ledger.errors)
    assert verdict.ok, verdict
    assert ledger.errors == [] and len(faults.injected) == 2 and verdict.acknowledged >= 2000


def test_replication_rolling_sigterm_restart_costs_the_idempotent_producer_nothing(tmp_path):
    # A session far beyond the test: only a controlled shutdown moves leaderships this fast.
    with ClusterProcess(tmp_path, 3, overrides={**FAST, "broker.session.timeout.ms": "60000"}) as cluster:
        create_topic(cluster.bootstrap, TOPIC, PARTITIONS)
        wait_in_sync(cluster, TOPIC)
        ledger = Ledger()
        restarts = []
        with NodeProducer(cluster.bootstrap, ledger):
            wait_acks(ledger, 500)
            for node in cluster.brokers:
                assert node.stop() == 0
                restarts.append(f"SIGTERM {node.id}")
                state = partition_state(cluster, TOPIC)
                assert all(p[0] not in (node.id, -1) and node.id not in p[2] for p in state.values()), state
                wait_acks(ledger, 500)
                node.start()
                wait_in_sync(cluster, TOPIC)
                wait_acks(ledger, 500)
        verdict = judge(cluster, TOPIC, PARTITIONS, ledger)
    report("KafkaJS rolling restart", verdict, restarts, ledger.errors)
    assert verdict.ok, verdict
    assert ledger.errors == [] and len(restarts) == 3
