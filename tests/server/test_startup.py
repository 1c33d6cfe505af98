"""Starting a node as users do (`kafka-compat start` processes): a second node on a live data
directory, a taken port, and the other usual mistakes stop the start with one line and exit code 2,
before anything on disk is touched."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from kafka_compat.client import Cluster, iter_fetched
from kafka_compat.records import Record, build_batch
from kafka_compat.testing.broker_process import CLI, BrokerProcess, free_port
from kafka_compat.testing.waiting import wait_until


def start(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
          timeout: float = 30) -> subprocess.CompletedProcess:
    """A `kafka-compat start` expected to stop by itself (with an error)."""
    return subprocess.run([CLI, "start", *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def overrides(**settings: str) -> list[str]:
    return [a for k, v in settings.items() for a in ("--override", f"{k.replace('_', '.')}={v}")]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (relative path -> sha256 of its bytes)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def taken_port():
    """A port with a listening socket on it (as another server would hold it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_second_node_on_a_live_data_directory_refuses_to_start_and_touches_nothing(tmp_path):
    with BrokerProcess(tmp_path / "first") as first:
        with Cluster(first.bootstrap) as c:
            c.metadata(["before"], auto_create=True)
        data = first.data_dir / "logs"
        before = snapshot(data)
        second = start(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{free_port()}", log_dirs=str(data)))
        assert second.returncode == 2
        line = one_line(second.stderr)
        assert line.startswith("error: ") and str(data) in line and "in use" in line
        assert snapshot(data) == before  # no recovery, no election, no checkpoint, no clean-shutdown marker
        fmt = subprocess.run([CLI, "format", "--ignore-formatted", *overrides(log_dirs=str(data))],
                             capture_output=True, text=True, timeout=30)
        assert fmt.returncode == 1 and "in use" in one_line(fmt.stderr)
        with Cluster(first.bootstrap) as c:  # the first broker goes on, its metadata log intact
            c.topic("after", auto_create=True)
            assert {"before", "after"} <= set(c.metadata(None).topics)
    assert first.proc.returncode == 0


def test_the_metadata_log_directory_is_locked_too(tmp_path):
    meta = tmp_path / "meta"
    with BrokerProcess(tmp_path / "first", overrides={"metadata.log.dir": str(meta)}):
        before = snapshot(meta)
        second = start(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{free_port()}",
                                  log_dirs=str(tmp_path / "other"), metadata_log_dir=str(meta)))
        assert second.returncode == 2
        assert str(meta) in one_line(second.stderr)
        assert snapshot(meta) == before


def test_a_taken_port_is_one_line_and_a_fresh_data_directory_is_left_as_it_was(tmp_path, taken_port):
    data = tmp_path / "new" / "data"
    r = start(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{taken_port}", log_dirs=str(data)))
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith("error: ") and f"127.0.0.1:{taken_port}" in line and "in use" in line
    assert not (tmp_path / "new").exists()


def test_a_listener_address_not_on_this_machine_is_one_line_and_leaves_nothing(tmp_path):
    data = tmp_path / "data"
    r = start(*overrides(listeners="PLAINTEXT://192.0.2.1:9092", log_dirs=str(data)))  # TEST-NET-1: not ours
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith("error: ") and "192.0.2.1:9092" in line
    assert not data.exists()


def test_a_taken_port_leaves_a_stopped_nodes_data_as_it_was(tmp_path, taken_port):
    node = BrokerProcess(tmp_path / "node")
    node.start().stop()
    data = node.data_dir / "logs"
    before = snapshot(data)
    r = start(*overrides(listeners=f"PLAINTEXT://127.0.0.1:{taken_port}", log_dirs=str(data)))
    assert r.returncode == 2 and "in use" in one_line(r.stderr)
    assert snapshot(data) == before  # still marked clean: nothing was recovered or rewritten


def test_a_taken_controller_port_is_one_line_before_formatting(tmp_path, taken_port):
    data = tmp_path / "data"
    port = free_port()
    r = start("--cluster-id", "MkU3OEVBNTcwNTJENDM2Qk", *overrides(
        node_id="1", process_roles="broker,controller", log_dirs=str(data),
        listeners=f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{taken_port}",
        controller_listener_names="CONTROLLER",
        listener_security_protocol_map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        controller_quorum_voters=f"1@127.0.0.1:{taken_port},2@127.0.0.1:{free_port()}"))
    assert r.returncode == 2
    assert f"127.0.0.1:{taken_port}" in one_line(r.stderr)
    assert not data.exists()


def test_a_log_cut_short_after_a_clean_stop_is_truncated_with_one_line_and_the_broker_serves(tmp_path):
    node = BrokerProcess(tmp_path / "node")
    with node, Cluster(node.bootstrap) as c:
        c.topic("events", auto_create=True)
        for i in range(3):
            c.produce("events", {0: build_batch([Record(None, b"v%d" % i, 1_700_000_000_000)])})
    segment = node.data_dir / "logs" / "events-0" / "00000000000000000000.log"
    assert (node.data_dir / "logs" / ".kafka_cleanshutdown").exists()
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - 30)
    logged = len(node.log_path.read_text().splitlines())
    with node, Cluster(node.bootstrap) as c:
        data = c.fetch("events", {0: 0})[0].records
        assert [r.value for r in iter_fetched(data)] == [b"v0", b"v1"]
        assert c.produce("events", {0: build_batch([Record(None, b"v3", 1_700_000_000_000)])})[0].base_offset == 2
    lines = [json.loads(line) for line in node.log_path.read_text().splitlines()[logged:]]
    about = [e for e in lines if "events-0" in json.dumps(e)]
    assert [(e["event"], e["level"]) for e in about] == [("log_truncated", "warning")], about
    assert about[0]["kept"] == "offsets 0-1" and about[0]["dropped"].endswith("bytes from offset 2 on")


@pytest.mark.parametrize("args, env, named", [
    (["--log-format", "xml"], {}, "'xml'"),
    (["--log-level", "verbose"], {}, "'verbose'"),
    (["--override", "num.partitons=3"], {}, "'num.partitons'"),
    ([], {"KAFKA_NUM_PARTITONS": "3"}, "KAFKA_NUM_PARTITONS"),
    ([], {"KAFKA_NUM_PARTITIONS": "three"}, "KAFKA_NUM_PARTITIONS"),
], ids=["log-format", "log-level", "unknown-key", "unknown-key-from-env", "bad-value-from-env"])
def test_usual_mistakes_stop_the_start_with_one_line_and_exit_code_2(tmp_path, args, env, named):
    data = tmp_path / "data"
    r = start(*args, *overrides(listeners=f"PLAINTEXT://127.0.0.1:{free_port()}", log_dirs=str(data)), env=env,
              timeout=20)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith("error: ") and named in line
    assert not data.exists()


def test_the_clis_own_environment_variables_are_not_broker_configs(tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_COMPAT_BROKERS", "127.0.0.1:1")  # what a user of the CLI has exported
    monkeypatch.setenv("KAFKA_COMPAT_ANYTHING", "x")
    with BrokerProcess(tmp_path / "node") as node, Cluster(node.bootstrap) as c:
        assert c.metadata([]).nodes


READY = re.compile(r"ready: PLAINTEXT://127\.0\.0\.1:(\d+), controller (.+), cluster id (\S+), data (\S+)$")


def start_lines(node: BrokerProcess, skip: int) -> list[str]:
    """The console lines of a start (after the first `skip` lines of the log file), up to and
    including the ready line, once it is there; then the node is stopped and nothing may have
    come between the ready line and the shutdown."""
    lines = wait_until(lambda: (ls := node.log_path.read_text().splitlines()[skip:]) and any(
        "ready: " in line for line in ls) and ls, "the ready line")
    assert node.stop() == 0
    after = node.log_path.read_text().splitlines()[skip + len(lines):]
    assert after and "shutdown_requested" in after[0], after
    return lines


def test_the_start_log_ends_with_one_ready_line_saying_where(tmp_path):
    node = BrokerProcess(tmp_path / "node", log_format="console").start()
    lines = start_lines(node, 0)
    ready = READY.search(lines[-1])
    assert ready, lines[-1]
    port, controller, cluster_id, data = ready.groups()
    assert int(port) == node.port and data == str(node.data_dir / "logs")
    assert controller == "in process" and len(cluster_id) == 22
    assert not any("{'" in line for line in lines), lines  # nothing printed as a Python dict


def test_a_restart_summarises_the_consumer_offsets_partitions(tmp_path):
    node = BrokerProcess(tmp_path / "node", log_format="console", overrides={"offsets.topic.num.partitions": "50"})
    with node, Cluster(node.bootstrap) as c:
        c.topic("events", auto_create=True)
        c.commit("readers", "events", {0: 0})
    skip = len(node.log_path.read_text().splitlines())
    node.start()
    lines = start_lines(node, skip)
    assert READY.search(lines[-1]), lines[-1]
    events = [line.split("]", 1)[1].split()[0] for line in lines]
    repeated = {e: n for e, n in Counter(events).items() if n > 2}
    assert not repeated, lines
    assert any("coordinator_loaded" in line and "partitions=50" in line and "groups=1" in line for line in lines)


def test_kafka_keys_that_are_accepted_but_ignored_are_one_warning_line(tmp_path):
    node = BrokerProcess(tmp_path / "node", log_format="console",
                         overrides={"num.network.threads": "8", "metrics.context.foo": "1"}).start()
    lines = start_lines(node, 0)
    warned = [line for line in lines if "num.network.threads" in line]
    assert len(warned) == 1 and "[warning" in warned[0] and "metrics.context.foo" in warned[0]
