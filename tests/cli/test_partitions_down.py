"""The commands on a 3-node cluster with one node killed: as Kafka's tools and kcat do, they read
and write the partitions that have a leader and report each other partition with its error, and
`group list` says which groups it could not reach instead of leaving them out."""

from __future__ import annotations

import os
import subprocess

import pytest

from kafka_compat.client import Cluster, partition_for_key
from kafka_compat.records import Record, build_batch
from kafka_compat.testing.broker_process import CLI
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

PARTITIONS = 6
GROUPS = [f"readers-{i}" for i in range(12)]


@pytest.fixture(scope="module")
def degraded(tmp_path_factory):
    """(cluster, bootstrap of the live nodes, partitions of `spread` whose leader is down, groups
    whose coordinator is down) once the killed node is fenced."""
    fast = {"broker.heartbeat.interval.ms": "250", "broker.session.timeout.ms": "2000",
            "controller.quorum.fetch.timeout.ms": "1000", "controller.quorum.election.timeout.ms": "500",
            "offsets.topic.num.partitions": "6", "offsets.topic.replication.factor": "1"}  # one replica each
    with ClusterProcess(tmp_path_factory.mktemp("degraded"), 3, overrides=fast) as cluster, \
            Cluster(cluster.bootstrap) as c:
        assert run("topic", "create", "spread", "-p", str(PARTITIONS), brokers=cluster.bootstrap).returncode == 0
        for p in range(PARTITIONS):
            c.produce("spread", {p: build_batch([Record(None, b"v%d" % p, 1_700_000_000_000)])})
        for g in GROUPS:
            c.commit(g, "spread", dict.fromkeys(range(PARTITIONS), 0))
        leaders = {p: s.leader for p, s in c.topic("spread", refresh=True).partitions.items()}
        coordinators = {g: c.coordinator(g) for g in GROUPS}
        victim = 3
        down = sorted(p for p, leader in leaders.items() if leader == victim)
        assert down and len(down) < PARTITIONS, leaders
        cluster[victim].kill()
        live = ",".join(n.bootstrap for n in cluster.brokers if n.id != victim)
        with Cluster(live) as fresh:
            wait_until(lambda: all(fresh.metadata(["spread"]).topics["spread"].partitions[p].leader < 0 for p in down),
                       "the killed node's partitions to lose their leader", timeout=30)
        yield cluster, live, down, sorted(g for g, n in coordinators.items() if n == victim)


def run(*args: str, brokers: str, input: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], input=input, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KAFKA_COMPAT_BROKERS": brokers})


def test_consume_reads_the_partitions_with_a_leader_and_reports_each_other(degraded):
    _, live, down, _ = degraded
    r = run("consume", "spread", "-f", "%p %v", brokers=live)
    assert r.returncode == 1
    up = [p for p in range(PARTITIONS) if p not in down]
    assert sorted(r.stdout.splitlines()) == sorted(f"{p} v{p}" for p in up)
    assert sorted(r.stderr.splitlines()) == sorted(f"error: spread[{p}]: LEADER_NOT_AVAILABLE (not read)" for p in down)


def test_produce_writes_the_partitions_with_a_leader_and_reports_each_other(degraded):
    _, live, down, _ = degraded
    keys = [f"k{i}" for i in range(40)]
    lost = {p: [k for k in keys if partition_for_key(k.encode(), PARTITIONS) == p] for p in down}
    r = run("produce", "spread", "-K", ":", input="".join(f"{k}:x\n" for k in keys), brokers=live)
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert sorted(errors) == sorted(f"error: spread[{p}]: LEADER_NOT_AVAILABLE ({len(lost[p])} records not produced)"
                                    for p in down if lost[p])
    assert f"Produced {len(keys) - sum(map(len, lost.values()))} records" in r.stderr
    keyless = run("produce", "spread", input="a\nb\nc\n", brokers=live)  # go to partitions with a leader
    assert keyless.returncode == 0 and "Produced 3 records" in keyless.stderr, keyless.stderr


def test_topic_describe_keeps_the_watermarks_of_partitions_with_a_leader(degraded):
    _, live, down, _ = degraded
    r = run("topic", "describe", "spread", brokers=live)
    assert r.returncode == 0, r.stderr
    rows = {int(line.split()[0]): line.split() for line in r.stdout.split("\nPARTITIONS\n")[1].splitlines()[1:]}
    for p in range(PARTITIONS):
        if p in down:
            assert rows[p][1] == "-1" and rows[p][5:7] == ["-", "-"] and rows[p][-1] == "LEADER_NOT_AVAILABLE"
        else:
            assert int(rows[p][6]) >= 1, rows[p]


def test_group_list_reports_the_coordinators_it_could_not_reach(degraded):
    _, live, _, lost_groups = degraded
    assert lost_groups
    r = run("group", "list", brokers=live)
    assert r.returncode == 1
    listed = {line.split()[0] for line in r.stdout.splitlines()[1:]}
    assert listed == set(GROUPS) - set(lost_groups)
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: ") and "__consumer_offsets" in line and "LEADER_NOT_AVAILABLE" in line


def test_group_describe_shows_the_lag_of_partitions_with_a_leader(degraded):
    _, live, down, lost_groups = degraded
    group = next(g for g in GROUPS if g not in lost_groups)
    r = run("group", "describe", group, brokers=live)
    assert r.returncode == 0, r.stderr
    rows = {int(line.split()[1]): line.split() for line in r.stdout.split("\n\n")[1].splitlines()[1:]}
    assert sorted(rows) == list(range(PARTITIONS))
    for p, row in rows.items():
        if p in down:
            assert row[3:5] == ["-", "-"], row
        else:
            assert int(row[3]) >= 1 and int(row[4]) == int(row[3]) - int(row[2]), row
