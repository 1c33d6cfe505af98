"""Real `python -m kafka_compat.testing.raft_peer` processes on 127.0.0.1, for end-to-end tests and
the election benchmark.

Each process gets two free ports (its controller listener, and the client listener a test drives
it through) and its own directory, and logs to `<dir>/raft.log`. It is asked over the wire, with
the project's own client: DescribeQuorum on the controller listener for its own view of the
quorum, Produce to propose, Fetch to read the committed log. `RaftQuorum` starts N voters and
always kills what it started when closed.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import time
from pathlib import Path

from kafka_compat.client import BrokerConnection, BrokerUnreachable, iter_fetched
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.raft import wire
from kafka_compat.records import Record, build_batch
from kafka_compat.testing.broker_process import free_port

PRODUCE_VERSION = 11  # current_leader on NOT_LEADER_OR_FOLLOWER needs v10+
FETCH_VERSION = 12


class RaftProcess:
    def __init__(self, node_id: int, port: int, voters: str, data_dir: Path, extra_args: list[str] = ()):
        self.id, self.port, self.voters = node_id, port, voters
        self.client_port = free_port()
        self.dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.proc: subprocess.Popen | None = None
        self.paused = False

    @property
    def log_path(self) -> Path:
        return self.dir / "raft.log"

    def start(self, timeout: float = 20.0) -> RaftProcess:
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kafka_compat.testing.raft_peer", "--node-id", str(self.id),
               "--voters", self.voters, "--dir", str(self.dir), "--client-listen", f"127.0.0.1:{self.client_port}"]
        cmd += self.extra_args
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node {self.id} exited with {self.proc.returncode}:\n{self.tail()}")
            if self.status(timeout=0.5) is not None:
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"node {self.id} did not answer within {timeout}s:\n{self.tail()}")

    def _ask(self, port: int, request, version: int, timeout: float):
        with BrokerConnection("127.0.0.1", port, client_id="raft-process", timeout=timeout) as conn:
            return conn.request(request, version)

    def status(self, timeout: float = 2.0) -> dict | None:
        """The node's own view of the quorum (DescribeQuorum on its controller listener): its role,
        the leader and epoch it knows, the high watermark; None if it does not answer (dead or
        stopped)."""
        try:
            p = wire.partition_of(self._ask(self.port, wire.describe_quorum_request(), 2, timeout))
        except (BrokerUnreachable, OSError):
            return None
        if p.error_code == ErrorCode.NONE:
            role = "leader"
        else:
            role = "follower" if p.leader_id >= 0 and p.leader_id != self.id else "unattached"
        return {"node_id": self.id, "role": role, "leader_id": p.leader_id, "epoch": p.leader_epoch,
                "high_watermark": p.high_watermark}

    def propose(self, values: list[str], timeout: float = 10.0) -> m.ProduceResponse.PartitionProduceResponse:
        """Produce `values` to this node as one batch: answered once committed, or with
        NOT_LEADER_OR_FOLLOWER and the leader it knows (`current_leader`)."""
        P = m.ProduceRequest
        batch = build_batch([Record(key=None, value=v.encode(), timestamp=0) for v in values])
        request = P(acks=-1, timeout_ms=int(timeout * 1000), topic_data=[P.TopicProduceData(
            name=wire.METADATA_TOPIC, partition_data=[P.PartitionProduceData(index=0, records=batch)])])
        response = self._ask(self.client_port, request, PRODUCE_VERSION, timeout + 1)
        return response.responses[0].partition_responses[0]

    def committed_log(self, timeout: float = 10.0) -> dict:
        """The committed log (Fetch on the client listener): its records as (offset, value), a
        digest of its bytes, and the key/value state it makes."""
        F = m.FetchRequest
        request = F(max_wait_ms=0, topics=[F.FetchTopic(topic=wire.METADATA_TOPIC, partitions=[
            F.FetchPartition(partition=0, fetch_offset=0)])])
        data = self._ask(self.client_port, request, FETCH_VERSION, timeout).responses[0].partitions[0].records
        records = [(r.offset, r.value.decode()) for r in iter_fetched(data)]
        state = dict(value.split("=", 1) for _, value in records)
        return {"records": records, "digest": hashlib.sha256(data or b"").hexdigest(), "data": state}

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

    def propose(self, *values: str, timeout: float = 15.0) -> m.ProduceResponse.PartitionProduceResponse:
        """Propose on whichever node leads, following redirects, until it commits."""
        deadline = time.monotonic() + timeout
        target = None
        while time.monotonic() < deadline:
            if target is None or not self.nodes[target].alive:
                target = next(i for i, n in self.nodes.items() if n.alive)
            try:
                answer = self.nodes[target].propose(list(values), timeout=max(deadline - time.monotonic(), 0.1))
            except (BrokerUnreachable, OSError):
                answer = None
            if answer is not None and answer.error_code == ErrorCode.NONE:
                return answer
            leader = answer.current_leader.leader_id if answer is not None else -1
            target = leader if leader in self.nodes and self.nodes[leader].alive else None
            if target is None:
                time.sleep(0.05)
        raise TimeoutError(f"could not commit {values} within {timeout}s")
