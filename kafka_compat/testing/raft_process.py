"""Real `python -m kafka_compat.raft.standalone` processes on 127.0.0.1, for end-to-end tests and
the election benchmark.

Each process gets a free port and its own directory, logs to `<dir>/raft.log`, and is driven with
the standalone node's JSON admin commands on its controller port. `RaftQuorum` starts N voters and
always kills what it started when closed.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kafka_compat.testing.broker_process import free_port


class RaftProcess:
    def __init__(self, node_id: int, port: int, voters: str, data_dir: Path, extra_args: list[str] = ()):
        self.id, self.port, self.voters = node_id, port, voters
        self.dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def log_path(self) -> Path:
        return self.dir / "raft.log"

    def start(self, timeout: float = 20.0) -> RaftProcess:
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kafka_compat.raft.standalone", "--node-id", str(self.id),
               "--voters", self.voters, "--dir", str(self.dir)] + self.extra_args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                self.admin({"op": "status"}, timeout=0.5)
                return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"node {self.id} did not answer within {timeout}s:\n{self.tail()}")

    def admin(self, command: dict, timeout: float = 10.0) -> dict:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(json.dumps(command).encode() + b"\n")
            line = s.makefile("rb").readline()
        if not line:
            raise OSError("connection closed without an answer")
        return json.loads(line)

    def status(self, timeout: float = 2.0) -> dict | None:
        """The node's status, or None if it does not answer (dead or stopped)."""
        try:
            return self.admin({"op": "status"}, timeout=timeout)
        except (OSError, ValueError):
            return None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM: the graceful path (a leader resigns first)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    @property
    def alive(self) -> bool:
        """Running and not stopped: it can answer."""
        return self.proc is not None and self.proc.poll() is None and not self.paused

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class RaftQuorum:
    """N voters (ids 1..N) on free loopback ports under `base_dir`."""

    def __init__(self, base_dir: Path, voters: int = 3, extra_args: list[str] = ()):
        ports = {i: free_port() for i in range(1, voters + 1)}
        spec = ",".join(f"{i}@127.0.0.1:{p}" for i, p in ports.items())
        self.nodes = {i: RaftProcess(i, p, spec, Path(base_dir) / f"node-{i}", extra_args) for i, p in ports.items()}

    def __getitem__(self, node_id: int) -> RaftProcess:
        return self.nodes[node_id]

    def start(self) -> RaftQuorum:
        for n in self.nodes.values():
            n.start()
        return self

    def close(self) -> None:
        for n in self.nodes.values():
            n.kill()

    def __enter__(self) -> RaftQuorum:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_for_leader(self, among=None, *, newer_than: int = 0, timeout: float = 15.0,
                        poll: float = 0.02) -> tuple[int, int]:
        """(leader id, epoch) once every node in `among` (default: all alive) names the same leader
        in the same epoch, above `newer_than`."""
        deadline = time.monotonic() + timeout
        while True:
            ids = among if among is not None else [i for i, n in self.nodes.items() if n.alive]
            statuses = [self.nodes[i].status(timeout=0.5) for i in ids]
            if all(statuses):
                views = {(s["leader_id"], s["epoch"]) for s in statuses}
                if len(views) == 1:
                    leader, epoch = views.pop()
                    if leader in self.nodes and epoch > newer_than:
                        return leader, epoch
            if time.monotonic() > deadline:
                raise TimeoutError(f"no agreed leader among {ids} within {timeout}s: {statuses}")
            time.sleep(poll)

    def propose(self, *values: str, timeout: float = 15.0) -> dict:
        """Propose on whichever node leads, following redirects, until it commits."""
        deadline = time.monotonic() + timeout
        target = None
        while time.monotonic() < deadline:
            if target is None or not self.nodes[target].alive:
                target = next(i for i, n in self.nodes.items() if n.alive)
            try:
                answer = self.nodes[target].admin({"op": "propose", "values": list(values)}, timeout=timeout)
            except OSError:
                answer = {"ok": False, "leader_id": -1}
            if answer.get("ok"):
                return answer
            leader = answer.get("leader_id", -1)
            target = leader if leader in self.nodes and self.nodes[leader].alive else None
            if target is None:
                time.sleep(0.05)
        raise TimeoutError(f"could not commit {values} within {timeout}s")
