"""The HTTP endpoint's /metrics after a known workload by real clients, and the Grafana dashboard's
queries against what a broker exports."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from kafka_compat.testing import KafkaCluster

TOPIC, GROUP = "metered", "metered-group"
CONSUMED, UNCONSUMED, VALUE = 50, 10, b"v" * 100
DASHBOARD = Path(__file__).resolve().parents[2] / "ops" / "grafana" / "kafka-compat.json"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Scrape:
    def __init__(self, text: str):
        self.text = text
        self.samples = [s for f in text_string_to_metric_families(text) for s in f.samples]

    def value(self, name: str, **labels) -> float:
        found = self._matching(name, labels)
        assert len(found) == 1, f"{name}{labels}: {found}"
        return found[0]

    def total(self, name: str, **labels) -> float:
        return sum(self._matching(name, labels))

    def _matching(self, name: str, labels: dict) -> list[float]:
        return [s.value for s in self.samples
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    @property
    def names(self) -> set[str]:
        return {s.name for s in self.samples}


@pytest.fixture(scope="module")
def workload():
    """One broker; 60 records of 100 bytes produced by confluent-kafka, the first 50 consumed by a
    group that commits them; then its /metrics."""
    with KafkaCluster(config={"metrics.port": 0}) as cluster:
        cluster.create_topic(TOPIC, partitions=1)
        producer = Producer({"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 0})
        for _ in range(CONSUMED):
            producer.produce(TOPIC, VALUE)
        assert producer.flush(30) == 0
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": GROUP,
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        received = 0
        while received < CONSUMED:
            msg = consumer.poll(10)
            assert msg is not None and msg.error() is None
            received += 1
        consumer.commit(asynchronous=False)
        consumer.close()
        for _ in range(UNCONSUMED):
            producer.produce(TOPIC, VALUE)
        assert producer.flush(30) == 0
        url = cluster.metrics_urls[0]
        status, text = get(url + "/metrics")
        assert status == 200
        yield url, Scrape(text)


def test_messages_and_bytes_in_count_what_the_producer_sent(workload):
    _, scrape = workload
    assert scrape.value("kafka_server_brokertopicmetrics_messagesin_total", topic=TOPIC) == CONSUMED + UNCONSUMED
    # The batches are stored as they came: bytes in is the log's size, at least the values' bytes.
    bytes_in = scrape.value("kafka_server_brokertopicmetrics_bytesin_total", topic=TOPIC)
    assert bytes_in == scrape.value("kafka_log_log_size", topic=TOPIC, partition="0")
    assert bytes_in >= (CONSUMED + UNCONSUMED) * len(VALUE)
    assert scrape.value("kafka_server_brokertopicmetrics_bytesout_total", topic=TOPIC) >= CONSUMED * len(VALUE)
    assert scrape.value("kafka_server_brokertopicmetrics_failedproducerequests_total", topic=TOPIC) == 0
    assert scrape.value("kafka_log_log_logendoffset", topic=TOPIC, partition="0") == CONSUMED + UNCONSUMED
    assert scrape.value("kafka_log_log_numlogsegments", topic=TOPIC, partition="0") == 1


def test_request_counts_and_times_per_request_type(workload):
    _, scrape = workload
    for request in ("Produce", "Fetch", "OffsetCommit", "Metadata"):
        answered = scrape.total("kafka_network_requestmetrics_requests_total", request=request)
        assert answered >= 1, request
        for time in ("totaltimems", "requestqueuetimems", "localtimems", "remotetimems", "responsesendtimems"):
            assert scrape.value(f"kafka_network_requestmetrics_{time}_count", request=request) == answered
            assert scrape.value(f"kafka_network_requestmetrics_{time}_bucket", request=request, le="+Inf") == answered
    # linger.ms=0 and one partition: at least one Produce request per flush, at most one per record.
    produced = scrape.total("kafka_network_requestmetrics_requests_total", request="Produce")
    assert 2 <= produced <= CONSUMED + UNCONSUMED
    assert scrape.value("kafka_server_brokertopicmetrics_totalproducerequests_total", topic=TOPIC) == produced


def test_group_lag_is_what_the_group_has_not_committed(workload):
    _, scrape = workload
    key = {"consumergroup": GROUP, "topic": TOPIC, "partition": "0"}
    assert scrape.value("kafka_consumergroup_current_offset", **key) == CONSUMED
    assert scrape.value("kafka_consumergroup_lag", **key) == UNCONSUMED
    assert scrape.value("kafka_consumergroup_lag_sum", consumergroup=GROUP, topic=TOPIC) == UNCONSUMED


def test_group_lag_counts_an_open_transaction_as_kafka_exporter_does():
    """kafka-exporter measures lag to the newest offset (ListOffsets read_uncommitted: the high
    watermark), as kafka-consumer-groups.sh does: a read_committed group caught up to the last
    stable offset lags by the open transaction's records."""
    with KafkaCluster(config={"metrics.port": 0}) as cluster:
        b = cluster.bootstrap_servers
        cluster.create_topic("open-txn", partitions=1)
        txn = Producer({"bootstrap.servers": b, "transactional.id": "open"})
        txn.init_transactions(30)
        txn.begin_transaction()
        txn.produce("open-txn", b"committed", partition=0)
        txn.commit_transaction(30)  # offsets 0 and its marker 1
        txn.begin_transaction()
        for _ in range(3):
            txn.produce("open-txn", b"open", partition=0)
        assert txn.flush(30) == 0  # offsets 2-4, open
        consumer = Consumer({"bootstrap.servers": b, "group.id": "committed-reader", "enable.auto.commit": False,
                             "isolation.level": "read_committed"})
        consumer.assign([TopicPartition("open-txn", 0, 0)])
        msg = consumer.poll(10)
        assert msg is not None and msg.value() == b"committed"
        consumer.commit(offsets=[TopicPartition("open-txn", 0, 2)], asynchronous=False)  # the LSO
        consumer.close()
        _, text = get(cluster.metrics_urls[0] + "/metrics")
        key = {"consumergroup": "committed-reader", "topic": "open-txn", "partition": "0"}
        assert Scrape(text).value("kafka_consumergroup_lag", **key) == 3
        txn.abort_transaction(30)


def test_replicas_controller_and_quorum_of_a_single_node(workload):
    _, scrape = workload
    partitions = scrape.value("kafka_server_replicamanager_partitioncount")
    assert partitions == 1 + scrape.value("kafka_topic_partitions", topic="__consumer_offsets")
    assert scrape.value("kafka_server_replicamanager_leadercount") == partitions
    assert scrape.value("kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert scrape.value("kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert scrape.value("kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert scrape.value("kafka_controller_kafkacontroller_fencedbrokercount") == 0
    assert scrape.value("kafka_server_raft_metrics_current_state", state="leader") == 1
    assert scrape.value("kafka_server_raft_metrics_current_leader") == 1
    assert scrape.value("kafka_server_raft_metrics_high_watermark") > 0
    assert scrape.value("kafka_server_raft_metrics_commit_lag") == 0
    assert scrape.value("kafka_server_socket_server_metrics_connection_creation_total", listener="PLAINTEXT") >= 2
    assert scrape.value("process_cpu_seconds_total") > 0


def test_health_of_a_serving_broker(workload):
    url, _ = workload
    assert get(url + "/health/live") == (200, "live\n")
    assert get(url + "/health/ready") == (200, "ready\n")
    assert get(url + "/nothing")[0] == 404


def dashboard_metric_names(dashboard: dict) -> set[str]:
    """The metric names in every PromQL expression of the dashboard's panels."""
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    return {n for e in exprs for n in re.findall(r"\b((?:kafka|process|python)_[a-z0-9_]+)", e)}


def test_every_dashboard_query_names_an_exported_metric(workload):
    _, scrape = workload
    dashboard = json.loads(DASHBOARD.read_text())
    missing = dashboard_metric_names(dashboard) - scrape.names
    assert not missing, f"the dashboard queries metrics the broker does not export: {sorted(missing)}"
