"""`kafka-compat cluster up` and `kafka-compat quorum describe`, as users run them."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from kafka_compat.testing.broker_process import CLI
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def free_port_run(count: int) -> int:
    """The first of `count` consecutive free ports."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def test_cluster_up_starts_three_nodes_that_quorum_describe_reports_and_ctrl_c_stops(tmp_path):
    port = free_port_run(6)
    up = subprocess.Popen([CLI, "cluster", "up", "--nodes", "3", "--dir", str(tmp_path), "--port", str(port)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []

        def bootstrap_printed() -> bool:
            assert up.poll() is None, "".join(lines) + up.stderr.read()
            lines.append(up.stdout.readline())
            return lines[-1].startswith("Bootstrap servers:")
        wait_until(bootstrap_printed, "`cluster up` to print its bootstrap servers", 60, interval=0)
        bootstrap = lines[-1].split(":", 1)[1].strip()
        assert bootstrap == f"127.0.0.1:{port},127.0.0.1:{port + 2},127.0.0.1:{port + 4}"

        describe = subprocess.run([CLI, "quorum", "describe", "-b", f"127.0.0.1:{port + 2}"], capture_output=True,
                                  text=True, timeout=30)
        assert describe.returncode == 0, describe.stderr
        status, replication = describe.stdout.split("\n\n")
        fields = dict(line.split(":", 1) for line in status.splitlines())
        assert fields["CurrentVoters"].strip() == "[1,2,3]" and int(fields["LeaderId"]) in (1, 2, 3)
        rows = [line.split() for line in replication.splitlines()[1:]]
        assert sorted(r[0] for r in rows) == ["1", "2", "3"]
        assert [r[0] for r in rows if r[-1] == "Leader"] == [fields["LeaderId"].strip()]
    finally:
        up.send_signal(signal.SIGINT)
        try:
            assert up.wait(30) == 0
        finally:
            up.kill()
    survivors = subprocess.run(["pgrep", "-f", f"log.dirs={tmp_path}/"], capture_output=True, text=True).stdout
    assert survivors == "", f"nodes still running: {survivors}"
