"""`kafka-compat cluster status` on a healthy broker: the overview, the quorum, and a group whose
committed offsets are behind (the unhealthy side is in test_partitions_down.py, with a node down)."""

from __future__ import annotations

import json

import pytest

from kafka_compat.client import Cluster
from kafka_compat.testing import KafkaCluster

pytestmark = pytest.mark.timeout(60)


def test_a_healthy_cluster_with_a_lagging_group(cli, broker, unique):
    topic, group = unique(), unique("g")
    assert cli("topic", "create", topic, "-p", "2").code == 0
    assert cli("produce", topic, "-p", "0", input="a\nb\nc\nd\ne\n").code == 0
    with Cluster(broker.bootstrap) as c:
        c.commit(group, topic, {0: 1})

    r = cli("cluster", "status", "--output", "json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    overview = doc["overview"]
    assert overview["healthy"] is True and overview["problems"] == []
    assert overview["brokers"] == [1] and overview["brokers_down"] == [] and overview["controller"] == 1
    assert overview["quorum_leader"] == 1 and overview["quorum_voters"] == [1]
    assert overview["offline_partitions"] == overview["under_replicated"] == 0
    assert doc["offline_partitions"] == doc["under_replicated_partitions"] == []
    assert [q["node_id"] for q in doc["quorum"]] == [1]
    lagging = {g["group"]: g for g in doc["lagging_groups"]}
    assert lagging[group] == {"group": group, "state": "Empty", "total_lag": 4, "partitions_lagging": 1,
                              "topics": [topic]}
    assert overview["lagging_groups"] == len(doc["lagging_groups"])

    text = cli("cluster", "status")
    assert text.code == 0
    assert text.stdout.splitlines()[:2] == ["Healthy:                yes", "Problems:               -"]
    section = text.stdout.split("\nLAGGING GROUPS\n")[1].splitlines()
    assert [group, "Empty", "4", "1", f"[{topic}]"] in [line.split() for line in section[1:]]
    assert "OFFLINE PARTITIONS" not in text.stdout  # nothing to show, nothing shown


def test_without_groups_no_lag_is_measured(cli):
    doc = json.loads(cli("cluster", "status", "--no-groups", "--output", "json").stdout)
    assert doc["overview"]["lagging_groups"] is None and "lagging_groups" not in doc


def test_three_healthy_nodes_and_their_voters(cli):
    with KafkaCluster(3) as cluster:
        cluster.create_topic("spread", 6)
        r = cli("cluster", "status", "--output", "json", brokers=cluster.bootstrap_servers)
    assert r.code == 0, r.stdout
    doc = json.loads(r.stdout)
    assert doc["overview"]["healthy"] is True and doc["overview"]["brokers"] == [1, 2, 3]
    assert doc["overview"]["quorum_voters"] == [1, 2, 3] and doc["overview"]["partitions"] >= 6
    assert sorted(v["node_id"] for v in doc["quorum"]) == [1, 2, 3]
    assert [v["status"] for v in doc["quorum"]].count("Leader") == 1
