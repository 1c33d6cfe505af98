"""`kafka-compat cluster info` and `cluster up`, and --help on every command."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from kafka_compat.client import Cluster
from kafka_compat.server.config import load_config
from kafka_compat.testing.broker_process import CLI, api_versions_ok, free_port_range
from kafka_compat.testing.waiting import wait_until


def test_cluster_info_through_the_executable(cli, broker):
    with Cluster(broker.bootstrap) as c:
        meta = c.metadata(None)
    r = cli("cluster", "info")
    assert r.code == 0, r.stderr
    summary, brokers = r.stdout.split("\n\n")
    row = summary.splitlines()[2].split()
    assert row[:3] == [meta.cluster_id, str(meta.controller_id), "1"]
    assert brokers.splitlines()[2].split() == [f"{meta.controller_id}*", "127.0.0.1", str(broker.port), "-"]


def test_cluster_info_of_an_unreachable_cluster(invoke):
    r = invoke("cluster", "info", brokers="127.0.0.1:1,127.0.0.1:2")
    assert r.code == 1
    assert r.stderr.strip() == ("error: cannot connect to any bootstrap broker: cannot connect to 127.0.0.1:1: "
                                "Connection refused; cannot connect to 127.0.0.1:2: Connection refused; is a broker "
                                "running there? Give another address with -b host:port or KAFKA_COMPAT_BROKERS")


@pytest.mark.parametrize("command", [
    [], ["topic"], ["topic", "create"], ["topic", "list"], ["topic", "describe"], ["topic", "delete"],
    ["topic", "alter-config"], ["topic", "add-partitions"], ["produce"], ["consume"], ["cluster"], ["cluster", "info"],
    ["quorum"], ["quorum", "describe"], ["cluster", "status"], ["config"], ["config", "get"], ["config", "set"],
    ["config", "keys"],
])
def test_help(invoke, command):
    r = invoke(*command, "--help")
    assert r.code == 0 and "Usage:" in r.stdout
    if command and command[-1] not in ("topic", "cluster", "quorum", "config", "keys"):
        assert "KAFKA_COMPAT_BROKERS" in r.stdout or "--brokers" in r.stdout


def processes_under(path: Path) -> list[int]:
    """Pids of processes whose command line mentions `path` (the nodes of a cluster under it)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline and b"cluster" not in cmdline.split(b"\0")[1:3]:
                pids.append(int(entry))
    return pids


def test_cluster_up_on_a_taken_port_fails_with_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([CLI, "cluster", "up", "--nodes", "1", "--port", str(port), "--dir", str(tmp_path / "c")],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "Bootstrap" not in r.stdout
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: ") and str(port) in line and "in use" in line
    assert not (tmp_path / "c").exists()


def test_sigterm_to_cluster_up_stops_every_node(tmp_path):
    base = free_port_range(6)
    data = tmp_path / "c"
    up = subprocess.Popen([CLI, "cluster", "up", "--nodes", "3", "--port", str(base), "--dir", str(data)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("Bootstrap servers"):
            line = up.stdout.readline()
            assert line, up.stderr.read()
            lines.append(line)
        assert lines[-1].split()[-1] == ",".join(f"127.0.0.1:{base + 2 * i}" for i in range(3))
        nodes = processes_under(data)
        assert len(nodes) == 3
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
        wait_until(lambda: not processes_under(data), "every node to stop", timeout=30)
        assert not any(api_versions_ok("127.0.0.1", base + 2 * i) for i in range(3))
        assert all((data / f"node-{i}" / "data" / ".kafka_cleanshutdown").exists() for i in (1, 2, 3))
    finally:
        up.kill()
        for pid in processes_under(data):
            os.kill(pid, signal.SIGKILL)


def test_cluster_up_gives_topics_three_replicas_and_min_insync_replicas_2(tmp_path):
    base = free_port_range(6)
    data = tmp_path / "c"
    up = subprocess.Popen([CLI, "cluster", "up", "--nodes", "3", "--port", str(base), "--dir", str(data)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("Bootstrap servers"):
            line = up.stdout.readline()
            assert line, up.stderr.read()
        bootstrap = line.split()[-1]
        env = {**os.environ, "KAFKA_COMPAT_BROKERS": bootstrap}
        r = subprocess.run([CLI, "topic", "create", "defaults"], capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        with Cluster(bootstrap) as c:
            parts = c.topic("defaults").partitions.values()
        assert {len(p.replicas) for p in parts} == {3}
        r = subprocess.run([CLI, "topic", "describe", "defaults"], capture_output=True, text=True, env=env, timeout=60)
        configs = r.stdout.split("CONFIGS\n")[1].split("\n\n")[0].splitlines()[1:]
        assert ["min.insync.replicas", "2", "STATIC_BROKER_CONFIG"] in [c.split() for c in configs]
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        finally:
            up.kill()
            for pid in processes_under(data):
                os.kill(pid, signal.SIGKILL)


def test_docker_compose_nodes_replicate_every_topic_three_ways():
    """docker-compose.yml's settings, as each node's configuration loads them (the file is checked
    by loading it; `docker-compose config` needs the binary)."""
    compose = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
    assert sorted(compose["services"]) == ["kafka-1", "kafka-2", "kafka-3"]
    for service in compose["services"].values():
        config = load_config(env={k: str(v) for k, v in service["environment"].items()})
        assert [config[k] for k in ("default.replication.factor", "offsets.topic.replication.factor",
                                    "transaction.state.log.replication.factor", "min.insync.replicas")] == [3, 3, 3, 2]


def test_cluster_up_secure_prints_client_settings_that_a_client_uses(tmp_path):
    base = free_port_range(2)
    data = tmp_path / "c"
    up = subprocess.Popen([CLI, "cluster", "up", "--secure", "--nodes", "1", "--port", str(base), "--dir", str(data)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("sasl.jaas.config"):
            line = up.stdout.readline()
            assert line, up.stderr.read()
            lines.append(line)
        assert any(line.startswith("security.protocol=SASL_SSL") for line in lines)
        assert not api_versions_ok("127.0.0.1", base)  # nothing answers in the clear
        listed = subprocess.run([CLI, "topic", "create", "t", "-b", f"127.0.0.1:{base}", "--command-config",
                                 str(data / "client.properties")], capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        up.kill()
        for pid in processes_under(data):
            os.kill(pid, signal.SIGKILL)
