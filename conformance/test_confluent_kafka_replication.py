"""confluent-kafka's (librdkafka's) idempotent producer at acks=all on three real nodes
(replication factor 3, min.insync.replicas 2) while partition leaders are killed with -9 and
restarted, and stopped with SIGSTOP until fenced and then continued: every acknowledged record is
read back exactly once, in order, at the offset it was acknowledged at, and no delivery failed.
(tests/server/test_replication_faults.py has its kill -9 with lagging followers, its rolling
restart and its consumer group whose coordinator dies.)"""

from __future__ import annotations

import pytest

from conformance.replication import FAST, Faults, ProducerThread, create_topic, judge, report, wait_acks, wait_in_sync
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.ledger import Ledger

pytestmark = pytest.mark.timeout(120)


def test_replication_acks_all_survives_kill_9_and_sigstop_of_leaders(tmp_path):
    topic, partitions = "ck-faults", 3
    with ClusterProcess(tmp_path, 3, overrides=FAST) as cluster:
        create_topic(cluster.bootstrap, topic, partitions)
        wait_in_sync(cluster, topic)
        ledger = Ledger()
        faults = Faults(cluster, topic, lambda: wait_acks(ledger, 500))
        with ProducerThread(cluster.bootstrap, topic, partitions, ledger):
            wait_acks(ledger, 500)
            faults.pause_leader(0)
            faults.kill_leader(1)
        verdict = judge(cluster, topic, partitions, ledger)
    report("confluent-kafka", verdict, faults.injected, ledger.errors)
    assert verdict.ok, verdict
    assert ledger.errors == [] and len(faults.injected) == 2 and verdict.acknowledged >= 2000
