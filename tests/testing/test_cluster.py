"""`KafkaCluster`, as an application's tests use it: started in one line, used by a real client
(confluent-kafka) over real sockets, stopped cleanly."""

from __future__ import annotations

import logging
import os
import time

import pytest
import structlog
from confluent_kafka import Consumer, Producer

from kafka_compat.client import Cluster
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.messages import DescribeConfigsRequest
from kafka_compat.server.config import ConfigError
from kafka_compat.testing import KafkaCluster

pytestmark = pytest.mark.timeout(120)


def round_trip(bootstrap: str, topic: str, count: int = 10) -> list[bytes]:
    """Produce `count` keyed records with confluent-kafka, then read them back in a group."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, key=f"k{i}", value=f"v{i}")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "round-trip", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values, deadline = [], time.monotonic() + 30
    try:
        while len(values) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                values.append(msg.value())
    finally:
        consumer.close()
    return sorted(values)


def test_one_node_in_a_thread_serves_a_client_and_removes_its_data():
    with KafkaCluster() as cluster:
        data = cluster.data_dir
        assert cluster.create_topic("orders", 3, config={"retention.ms": 3_600_000}) == "orders"
        assert cluster.topics() == ["orders"]
        assert round_trip(cluster.bootstrap_servers, "orders") == sorted(f"v{i}".encode() for i in range(10))
        with cluster.admin() as admin:
            assert len(admin.topic("orders").partitions) == 3
        assert data.is_dir()
    assert not data.exists()
    with pytest.raises(RuntimeError, match="not running"):
        _ = cluster.bootstrap_servers


def test_three_nodes_in_threads_are_one_cluster_with_leaders_on_each_and_three_replicas():
    with KafkaCluster(3) as cluster:
        assert len(cluster.bootstrap_servers.split(",")) == 3
        cluster.create_topic("spread", 6)
        assert round_trip(cluster.bootstrap_servers, "spread", 30) == sorted(f"v{i}".encode() for i in range(30))
        with Cluster(cluster.bootstrap_servers) as admin:
            meta = admin.metadata(["spread", "__consumer_offsets"])
            assert sorted(meta.nodes) == [1, 2, 3]
            partitions = meta.topics["spread"].partitions.values()
            assert {p.leader for p in partitions} == {1, 2, 3}
            # Replicated by default, the group's offsets too: any one node may go.
            assert {len(p.replicas) for t in meta.topics.values() for p in t.partitions.values()} == {3}
            assert all(sorted(p.isr) == [1, 2, 3] for p in partitions)
            resp = admin.request(DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
                resource_type=2, resource_name="spread", configuration_keys=["min.insync.replicas"])]))
            assert [(c.name, c.value) for c in resp.results[0].configs] == [("min.insync.replicas", "2")]


def test_process_mode_runs_each_node_as_its_own_process():
    with KafkaCluster(mode="process") as cluster:
        (node,) = cluster._runner.nodes.values()
        assert node.alive and node.proc.pid != os.getpid()
        cluster.create_topic("isolated")
        assert round_trip(cluster.bootstrap_servers, "isolated", 3) == [b"v0", b"v1", b"v2"]
    assert node.proc.returncode == 0


def test_a_given_data_dir_is_kept_and_the_same_cluster_starts_on_it_again(tmp_path):
    with KafkaCluster(2, data_dir=tmp_path) as cluster:
        cluster.create_topic("kept", 2)
        round_trip(cluster.bootstrap_servers, "kept", 4)
        first_id = cluster.cluster_id
    assert all((tmp_path / f"node-{i}" / "data" / ".kafka_cleanshutdown").exists() for i in (1, 2))
    with KafkaCluster(2, data_dir=tmp_path) as again:
        assert again.cluster_id == first_id and again.topics() == ["kept"]
        with Cluster(again.bootstrap_servers) as admin:
            assert sum(high for _, high in admin.watermarks("kept", [0, 1]).values()) == 4


def test_topic_helpers_answer_with_kafka_errors():
    with KafkaCluster() as cluster:
        cluster.create_topic("twice")
        with pytest.raises(KafkaError) as exists:
            cluster.create_topic("twice")
        assert exists.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
        with pytest.raises(KafkaError) as bad:
            cluster.create_topic("bad", config={"retention.ms": "soon"})
        assert bad.value.code == ErrorCode.INVALID_CONFIG
        cluster.delete_topic("twice")
        assert cluster.topics() == []
        cluster.create_topic("twice", 2)  # the name is free again at once
        with pytest.raises(KafkaError) as missing:
            cluster.delete_topic("never")
        assert missing.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_broker_config_applies_to_every_node():
    with KafkaCluster(2, config={"num.partitions": 4, "log.retention.ms": 60_000}) as cluster:
        cluster.create_topic("defaulted")
        with Cluster(cluster.bootstrap_servers) as admin:
            assert len(admin.topic("defaulted").partitions) == 4
            for node in (1, 2):
                resp = admin.request(DescribeConfigsRequest(resources=[DescribeConfigsRequest.DescribeConfigsResource(
                    resource_type=4, resource_name=str(node), configuration_keys=["log.retention.ms"])]), node)
                assert [(c.name, c.value) for c in resp.results[0].configs] == [("log.retention.ms", "60000")]


def test_a_bad_config_key_is_one_line_before_anything_starts(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'no.such.key'"):
        KafkaCluster(config={"no.such.key": 1}, data_dir=tmp_path / "c").start()
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="unknown mode"):
        KafkaCluster(mode="docker")


def test_broker_events_go_to_the_logging_module_while_a_cluster_runs(caplog, capsys):
    # An application that never configured structlog (structlog.testing.capture_logs, which other
    # tests of this run use, leaves it marked configured).
    structlog.reset_defaults()
    with caplog.at_level(logging.INFO, logger="kafka_compat"), KafkaCluster() as cluster, KafkaCluster():
        bootstrap = cluster.bootstrap_servers
    ready = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ready: ")]
    assert len(ready) == 2 and f"PLAINTEXT://{bootstrap}" in ready[0] + ready[1]
    assert "ready: " not in capsys.readouterr().out
    assert not structlog.is_configured()  # the application's structlog is as it was
