"""The pytest plugin as an application's test suite meets it: a test file of its own, run by pytest
in a subprocess (the plugin comes through the installed entry point), with the ini options and the
marker that shape `kafka_cluster`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

APP_TESTS = '''
import os
from pathlib import Path

import pytest
from confluent_kafka import Producer

from kafka_compat.client import Cluster

SEEN = Path(os.environ["SEEN"])


def seen(test, cluster, *more):
    with SEEN.open("a") as f:
        f.write(" ".join(map(str, [test, cluster.mode, cluster.bootstrap_servers, *more])) + "\\n")


def test_first(kafka_cluster, kafka_bootstrap, kafka_topic):
    topic = kafka_topic(partitions=2, config={"retention.ms": 60000})
    assert kafka_bootstrap == kafka_cluster.bootstrap_servers
    assert kafka_cluster.topics() == [topic]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, b"hello")
    assert producer.flush(30) == 0
    seen("first", kafka_cluster)


def test_second_sees_no_topic_of_the_first(kafka_cluster, kafka_topic):
    assert kafka_cluster.topics() == []
    with Cluster(kafka_cluster.bootstrap_servers) as admin:
        partitions = len(admin.topic(kafka_topic()).partitions)  # the broker's num.partitions
    seen("second", kafka_cluster, partitions)


@pytest.mark.kafka_cluster(nodes=2, config={"num.partitions": 3})
def test_a_marked_test_gets_a_cluster_of_its_own(kafka_cluster, kafka_topic):
    with Cluster(kafka_cluster.bootstrap_servers) as admin:
        assert sorted(admin.metadata([]).nodes) == [1, 2]
        assert len(admin.topic(kafka_topic()).partitions) == 3
    seen("marked", kafka_cluster)
'''


def run_app_tests(tmp_path: Path, *options: str) -> list[list[str]]:
    """Run APP_TESTS with pytest (ini `options` as -o key=value); every test must pass. Returns
    the (test, mode, bootstrap) lines the tests wrote."""
    (tmp_path / "test_app.py").write_text(APP_TESTS)
    seen = tmp_path / "seen.txt"
    seen.unlink(missing_ok=True)
    args = [a for o in options for a in ("-o", o)]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, "test_app.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=150,
                       env={"SEEN": str(seen), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "3 passed" in r.stdout, r.stdout[-4000:] + r.stderr[-2000:]
    return [line.split() for line in seen.read_text().splitlines()]


def test_tests_share_one_cluster_and_a_marked_test_gets_its_own(tmp_path):
    (first, mode, shared), second, marked = run_app_tests(tmp_path)
    assert mode == "thread" and second == ["second", "thread", shared, "1"]
    assert marked[2] != shared and len(marked[2].split(",")) == 2


def test_scope_mode_and_broker_config_from_the_ini_options(tmp_path):
    first, second, marked = run_app_tests(tmp_path, "kafka_cluster_scope=function", "kafka_cluster_mode=process",
                                          "kafka_cluster_config=num.partitions=2")
    assert first[1] == second[1] == marked[1] == "process"
    assert len({first[2], second[2], marked[2]}) == 3
    assert second[3] == "2"


def test_an_unknown_scope_is_a_usage_error(tmp_path):
    (tmp_path / "test_app.py").write_text("def test_x(kafka_cluster):\n    pass\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                        "kafka_cluster_scope=forever", "test_app.py"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and "kafka_cluster_scope = 'forever'" in r.stdout + r.stderr
