"""A real `kafka-compat start` process on 127.0.0.1, for tests, conformance scenarios and benchmarks.

The process gets its own data directory and a free port, writes JSON logs to `<data>/broker.log`,
and is stopped with SIGTERM (or killed with SIGKILL, for crash tests). `start()` returns once the
process has logged its ready line (so a port that another server answers on never passes for it).
"""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import join

CLI = str(Path(sys.executable).parent / "kafka-compat")
# Where the script is not beside the interpreter (a user install, a system Python), the module is.
COMMAND = [CLI] if Path(CLI).exists() else [sys.executable, "-m", "kafka_compat.cli"]
# Settings that make a test broker quick to use (Kafka's own test harness does the same).
TEST_DEFAULTS = {
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "5",
    "offsets.topic.replication.factor": "1",  # one broker (a cluster sets its own)
    "transaction.state.log.num.partitions": "5",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n: int) -> int:
    """The first of `n` consecutive ports free now, below Linux's ephemeral range (32768 and up),
    where outgoing connections do not take them meanwhile (`cluster up --port` uses n from there)."""
    for _ in range(100):
        base = random.randrange(10000, 32768 - n)
        socks = []
        try:
            for port in range(base, base + n):
                socks.append(socket.socket())
                socks[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def api_versions_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a broker answers ApiVersions v0 on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(join(framing.request_frame(m.ApiVersionsRequest(), 0, 1, "probe")))
            size = framing.SIZE.unpack(_recv(s, 4))[0]
            cid, resp = framing.read_response(_recv(s, size), m.ApiKey.API_VERSIONS, 0)
            return cid == 1 and resp.error_code == 0
    except OSError:
        return False


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("closed")
        buf += chunk
    return buf


class BrokerProcess:
    """`overrides` replace the defaults (listeners on `port`, log.dirs under `data_dir`);
    `cluster_id` formats empty data directories for that cluster (`start --cluster-id`)."""

    def __init__(self, data_dir: Path, port: int | None = None, overrides: dict[str, str] | None = None,
                 cluster_id: str | None = None, log_format: str = "json"):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.overrides = {**TEST_DEFAULTS, **(overrides or {})}
        self.cluster_id = cluster_id
        self.log_format = log_format
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    def command(self) -> list[str]:
        settings = {
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "log.dirs": str(self.data_dir / "logs"),
            **self.overrides,
        }
        cmd = [*COMMAND, "start", "--log-format", self.log_format]
        if self.cluster_id:
            cmd += ["--cluster-id", self.cluster_id]
        for k, v in settings.items():
            cmd += ["--override", f"{k}={v}"]
        return cmd

    def start(self, timeout: float = 30.0) -> BrokerProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> BrokerProcess:
        """Start the process without waiting for it (nodes of a quorum start together)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_start = log.tell()  # where this run's lines begin
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.paused = False
        return self

    def wait_ready(self, timeout: float = 30.0) -> BrokerProcess:
        """Return once this run of the process logged its ready line (a broker is registered,
        unfenced and serving by then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.tail()}")
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                if b"ready: " in log.read():
                    return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker was not ready within {timeout}s:\n{self.tail()}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: the graceful path (flush, checkpoint, clean-shutdown marker)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: an unclean stop, for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the process stops answering without closing anything (a partition, as its
        peers see it)."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self, *, clean: bool = True) -> BrokerProcess:
        self.stop() if clean else self.kill()
        return self.start()

    @property
    def alive(self) -> bool:
        """Running and not stopped: it can answer."""
        return self.proc is not None and self.proc.poll() is None and not self.paused

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> BrokerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
