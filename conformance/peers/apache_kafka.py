"""Apache Kafka itself on 127.0.0.1, as the reference peer for the differential suite, the
scenarios that need a second broker and the benchmarks.

The jars are the pinned release that `make test-deps` resolves with Maven (conformance/java/pom.xml);
nothing is downloaded here. A node is a KRaft combined broker+controller: its data directory is
formatted with Kafka's own StorageTool (`kafka-storage format`) for one cluster id, then `kafka.Kafka
server.properties` runs with a small heap and INFO logs in `<data dir>/server.log`. `start()`
returns once the node answers Metadata listing itself (registered and unfenced); `stop()` sends
SIGTERM to its PID (Kafka's controlled shutdown) and `kill()` SIGKILL.

`ApacheKafkaCluster(base_dir, 3)` is three such nodes sharing a static controller quorum.

`python -m conformance.peers.apache_kafka [--nodes 3]` runs one for trying things by hand.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conformance import jvm
from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.testing.broker_process import free_port

SERVER_LOG4J = jvm.JAVA_DIR / "log4j2-server.properties"
# The same quick-test settings kafka-compat's test brokers run with (TEST_DEFAULTS), so that both
# answer alike; replication factors of internal topics fit a single node.
TEST_SETTINGS = {
    "group.initial.rebalance.delay.ms": "0",
    "offsets.topic.num.partitions": "5",
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.num.partitions": "5",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "num.partitions": "1",
}


class ApacheKafkaNode:
    """One Apache Kafka node; `voters` ("1@host:port,...") and `cluster_id` are shared by a cluster's
    nodes. `overrides` replace any server.properties setting."""

    def __init__(self, data_dir: Path, node_id: int = 1, *, port: int | None = None, controller_port: int | None = None,
                 voters: str | None = None, cluster_id: str | None = None, overrides: dict[str, str] | None = None,
                 heap: str = "384m"):
        self.data_dir = Path(data_dir)
        self.node_id = node_id
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.voters = voters or f"{node_id}@127.0.0.1:{self.controller_port}"
        self.cluster_id = cluster_id or str(Uuid.random())
        self.heap = heap
        self.settings = {
            "process.roles": "broker,controller",
            "node.id": str(node_id),
            "controller.quorum.voters": self.voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            **TEST_SETTINGS,
            **(overrides or {}),
        }
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_dirs(self) -> Path:
        return Path(self.settings["log.dirs"])

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _jvm(self, main: str, *args: str, quick: bool) -> list[str]:
        opts = jvm.QUICK_JVM if quick else ["-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
        return [jvm.JAVA, f"-Xmx{self.heap}", f"-Xms{self.heap}" if not quick else "-Xms32m", *opts,
                f"-Dlog4j2.configurationFile={SERVER_LOG4J}", f"-Dkafka.logs.dir={self.data_dir}",
                "-cp", jvm.classpath(), main, *args]

    def format(self) -> None:
        """`kafka-storage format` for this node's cluster id (skipped if already formatted)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text("".join(f"{k}={v}\n" for k, v in self.settings.items()))
        if (self.log_dirs / "meta.properties").exists():
            return
        r = subprocess.run(self._jvm("kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c",
                                     str(self.properties_path), quick=True),
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed ({r.returncode}): {r.stdout.decode()}{r.stderr.decode()}")

    def launch(self) -> ApacheKafkaNode:
        self.format()
        with open(self.data_dir / "stdout.log", "ab") as out:
            self.proc = subprocess.Popen(self._jvm("kafka.Kafka", str(self.properties_path), quick=False),
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def serving(self, brokers: int = 1) -> bool:
        """True once this node answers Metadata with `brokers` unfenced brokers, itself among them."""
        try:
            with BrokerConnection("127.0.0.1", self.port, client_id="peer-probe", timeout=2.0) as conn:
                meta = conn.request(m.MetadataRequest(topics=[], allow_auto_topic_creation=False), 12)
        except (BrokerUnreachable, OSError):
            return False
        ids = {b.node_id for b in meta.brokers}
        return self.node_id in ids and len(ids) >= brokers

    def wait_ready(self, timeout: float = 90.0, brokers: int = 1) -> ApacheKafkaNode:
        deadline = time.monotonic() + timeout
        while not self.serving(brokers):
            if self.proc.poll() is not None:
                raise RuntimeError(f"Apache Kafka exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"Apache Kafka did not serve within {timeout}s:\n{self.tail()}")
            time.sleep(0.2)
        return self

    def start(self, timeout: float = 90.0) -> ApacheKafkaNode:
        return self.launch().wait_ready(timeout)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM to the PID (controlled shutdown) and wait; SIGKILL after `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        text = ""
        for p in (self.data_dir / "stdout.log", self.log_path):
            try:
                text += "\n".join(p.read_text(errors="replace").splitlines()[-lines:]) + "\n"
            except OSError:
                pass
        return text or "(no log)"

    def __enter__(self) -> ApacheKafkaNode:
        try:
            return self.start()
        except BaseException:
            self.kill()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


class ApacheKafkaCluster:
    """`nodes` combined nodes with one static controller quorum; formatted and started together."""

    def __init__(self, base_dir: Path, nodes: int = 3, *, overrides: dict[str, str] | None = None, heap: str = "384m"):
        ports = {i: (free_port(), free_port()) for i in range(1, nodes + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{c}" for i, (_, c) in ports.items())
        cluster_id = str(Uuid.random())
        self.nodes = {i: ApacheKafkaNode(Path(base_dir) / f"node-{i}", i, port=p, controller_port=c, voters=voters,
                                         cluster_id=cluster_id, overrides=overrides, heap=heap)
                      for i, (p, c) in ports.items()}

    def __getitem__(self, node_id: int) -> ApacheKafkaNode:
        return self.nodes[node_id]

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes.values())

    def start(self, timeout: float = 120.0) -> ApacheKafkaCluster:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(ApacheKafkaNode.format, self.nodes.values()))
        for n in self.nodes.values():
            n.launch()
        for n in self.nodes.values():
            n.wait_ready(timeout, brokers=len(self.nodes))
        return self

    def stop(self, timeout: float = 30.0) -> dict[int, int]:
        """SIGTERM to every node at once (one by one, the last would wait for a quorum that is gone)."""
        for n in self.nodes.values():
            if n.alive:
                n.proc.send_signal(signal.SIGTERM)
        codes = {}
        deadline = time.monotonic() + timeout
        for i, n in self.nodes.items():
            if n.proc is None:
                continue
            try:
                codes[i] = n.proc.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                n.kill()
                codes[i] = n.proc.returncode
        return codes

    def close(self) -> None:
        for n in self.nodes.values():
            n.kill()

    def __enter__(self) -> ApacheKafkaCluster:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description="Run Apache Kafka (the pinned release) on 127.0.0.1 until Ctrl-C.")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="apache-kafka-"))
    peer = ApacheKafkaCluster(base, args.nodes) if args.nodes > 1 else ApacheKafkaNode(base)
    with peer:
        print(f"Apache Kafka serving on {peer.bootstrap} (data under {base}); Ctrl-C stops it", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
