"""The commands' output for people and for scripts: `--output json` is one JSON document whose
values are what the cluster says over the wire; on a terminal tables are drawn (rich) and long
operations show progress on stderr, neither of which happens when the output is piped."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess

import pytest

from kafka_compat.client import Cluster
from kafka_compat.testing.broker_process import CLI

pytestmark = pytest.mark.timeout(120)


def as_json(result) -> object:
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_topic_list_and_describe_as_json(invoke, broker, unique):
    topic = unique()
    assert invoke("topic", "create", topic, "-p", "2", "-c", "retention.ms=3600000").code == 0
    assert invoke("produce", topic, "-p", "1", input="a\nb\n").code == 0
    listed = {t["name"]: t for t in as_json(invoke("topic", "list", "--output", "json"))}
    assert listed[topic] == {"name": topic, "partitions": 2, "replicas": 1}

    doc = as_json(invoke("topic", "describe", topic, "--output", "json"))
    with Cluster(broker.bootstrap) as c:
        meta = c.topic(topic)
    assert doc["summary"] == {"name": topic, "id": str(meta.topic_id), "partitions": 2, "replicas": 1,
                              "internal": False}
    assert doc["configs"] == [{"key": "retention.ms", "value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG"}]
    assert doc["partitions"] == [
        {"partition": p, "leader": 1, "epoch": 0, "replicas": [1], "isr": [1], "low_watermark": 0,
         "high_watermark": high} for p, high in ((0, 0), (1, 2))]


def test_group_list_and_describe_as_json(invoke, broker, unique):
    topic, group = unique(), unique("g")
    invoke("topic", "create", topic, "-p", "2")
    invoke("produce", topic, "-p", "0", input="1\n2\n3\n4\n5\n")
    with Cluster(broker.bootstrap) as c:
        c.commit(group, topic, {0: 2})
    groups = {g["group"]: g for g in as_json(invoke("group", "list", "--output", "json"))}
    assert groups[group]["state"] == "Empty"
    (described,) = as_json(invoke("group", "describe", group, "--output", "json"))
    assert described["summary"] == {"group": group, "coordinator": 1, "state": "Empty", "protocol": None,
                                    "members": 0, "total_lag": 3}
    assert described["partitions"] == [{"topic": topic, "partition": 0, "current_offset": 2, "log_end_offset": 5,
                                        "lag": 3, "member_id": None, "client_id": None, "host": None}]


def test_cluster_info_quorum_and_config_keys_as_json(invoke, broker):
    info = as_json(invoke("cluster", "info", "--output", "json"))
    assert info["cluster"]["controller"] == 1 and info["cluster"]["brokers"] == 1
    assert info["brokers"] == [{"id": 1, "host": "127.0.0.1", "port": broker.port, "rack": None, "controller": True}]

    quorum = as_json(invoke("quorum", "describe", "--output", "json"))
    assert quorum["status"]["leader_id"] == 1 and quorum["status"]["current_voters"] == [1]
    (voter,) = quorum["replication"]
    assert voter["node_id"] == 1 and voter["status"] == "Leader"
    assert voter["log_end_offset"] >= quorum["status"]["high_watermark"]

    keys = as_json(invoke("config", "keys", "--output", "json"))
    broker_keys = {k["key"]: k for k in keys["broker"]}
    assert broker_keys["num.partitions"]["default"] == "1" and broker_keys["num.partitions"]["dynamic"] is True
    assert {k["key"]: k for k in keys["topic"]}["retention.ms"]["broker_key"] == "log.retention.ms"
    assert "zookeeper.connect" in {k["key"] for k in keys["ignored"]}


def test_json_through_the_executable(cli, unique):
    topic = unique()
    created = cli("topic", "create", topic, "-p", "3", "--output", "json")
    assert created.code == 0 and json.loads(created.stdout) == [
        {"topic": topic, "partitions": 3, "replicas": 1, "status": "OK"}]
    produced = cli("produce", topic, "-K", ":", "--output", "json", input="k:v\n")
    summary = json.loads(produced.stdout)
    assert summary["summary"] == {"topic": topic, "records": 1, "acks": "all", "compression": "none"}
    assert [p["records"] for p in summary["partitions"]] == [1] and produced.stderr == ""


def test_errors_stay_one_line_on_stderr_with_json(invoke, unique):
    r = invoke("topic", "describe", unique(), "--output", "json")
    assert r.code == 1 and r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: UNKNOWN_TOPIC_OR_PARTITION") and "kafka-compat topic list" in line


def on_terminal(argv: list[str], *, stdout_tty: bool, stderr_tty: bool, input: bytes = b"",
                env: dict | None = None) -> tuple[int, str, str]:
    """Run `argv` with stdout and/or stderr on a pseudo-terminal (80 columns) and the others piped:
    (exit code, stdout, stderr), with what the terminal received as text."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=slave if stdout_tty else subprocess.PIPE,
                            stderr=slave if stderr_tty else subprocess.PIPE,
                            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", **(env or {})})
    os.close(slave)
    proc.stdin.write(input)
    proc.stdin.close()
    screen, piped = b"", {}
    readers = [master] + [s for s in (proc.stdout, proc.stderr) if s is not None]
    while readers:
        for r in select.select(readers, [], [], 30)[0]:
            try:
                chunk = os.read(r if r == master else r.fileno(), 65536)
            except OSError:  # the terminal's other side closed
                chunk = b""
            if not chunk:
                readers.remove(r)
            elif r == master:
                screen += chunk
            else:
                piped[r] = piped.get(r, b"") + chunk
    os.close(master)
    code = proc.wait(30)
    text = screen.decode(errors="replace")
    out = text if stdout_tty else piped.get(proc.stdout, b"").decode()
    err = text if stderr_tty else piped.get(proc.stderr, b"").decode()
    return code, out, err


def test_tables_are_drawn_on_a_terminal_and_plain_when_piped(broker, unique):
    env = {"KAFKA_COMPAT_BROKERS": broker.bootstrap}
    code, drawn, _ = on_terminal([CLI, "cluster", "info"], stdout_tty=True, stderr_tty=False, env=env)
    assert code == 0 and "─" in drawn and "\x1b[1" in drawn  # rules and bold headers
    assert "CLUSTER" in drawn and "127.0.0.1" in drawn
    code, plain, _ = on_terminal([CLI, "cluster", "info"], stdout_tty=False, stderr_tty=True, env=env)
    assert code == 0 and "─" not in plain and "\x1b" not in plain
    assert plain.splitlines()[0] == "CLUSTER"


def test_progress_shows_on_a_terminal_while_records_go_to_a_pipe(broker, unique):
    topic = unique()
    env = {"KAFKA_COMPAT_BROKERS": broker.bootstrap}
    lines = b"".join(b"%d\n" % i for i in range(2000))
    code, _, err = on_terminal([CLI, "produce", topic], stdout_tty=False, stderr_tty=True, input=lines, env=env)
    assert code == 0 and "producing to" in err and "Produced 2000 records" in err

    code, out, err = on_terminal([CLI, "consume", topic, "-n", "1500"], stdout_tty=False, stderr_tty=True, env=env)
    assert code == 0 and len(out.split()) == 1500
    assert f"consuming {topic}" in err and "1500/1500" in err

    piped = subprocess.run([CLI, "consume", topic, "-n", "1500"], capture_output=True, env={**os.environ, **env},
                           timeout=60)
    assert piped.returncode == 0 and piped.stderr == b""  # no progress when stderr is not a terminal
