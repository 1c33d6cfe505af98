"""The JVM side of the suite: Apache Kafka's jars and the scenario drivers, as `make test-deps`
built them in conformance/java (Maven: one pinned Kafka release, a classpath file, compiled drivers).

`java(main, *args)` runs one main class of that classpath (a Kafka tool, a driver) to completion;
`Driver` keeps one JVM running a scenario driver (`kc.Driver`) that takes one JSON command a line on
stdin and answers one JSON line on stdout, so a scenario file pays for one JVM start, not one a step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from conformance.support import Got, Rec, wait_until

JAVA_DIR = Path(__file__).parent / "java"
TARGET = JAVA_DIR / "target"
JAVA_HOME = os.environ.get("JAVA_HOME")
JAVA = str(Path(JAVA_HOME) / "bin" / "java") if JAVA_HOME else "java"
# Short-lived JVMs: the client compiler only and one GC thread start fastest on a shared 2-core box.
QUICK_JVM = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto", "-Xss512k"]
CLIENT_LOG4J = JAVA_DIR / "log4j2-client.properties"


def classpath() -> str:
    """The drivers' classes and every jar of the pinned Kafka release."""
    cp = TARGET / "classpath.txt"
    assert cp.is_file() and (TARGET / "classes" / "kc").is_dir(), \
        "the Java scenarios are not built: run `make test-deps` (Maven, conformance/java)"
    return f"{TARGET / 'classes'}:{cp.read_text().strip()}"


def side_classpath(name: str) -> str:
    """The jars of a tool resolved apart from the pinned release (conformance/java/<name>/pom.xml:
    not served at that release, so resolved at the newest release that serves it): "metadata-shell"
    (kafka-metadata-shell) or "connect" (the Connect worker and the FileStream connectors)."""
    cp = TARGET / f"{name}-classpath.txt"
    assert cp.is_file(), f"conformance/java/{name} is not resolved: run `make test-deps`"
    return cp.read_text().strip()


def java_command(main: str, *args: str, heap: str = "256m", jvm: list[str] | None = None,
                 cp: str | None = None) -> list[str]:
    return [JAVA, f"-Xmx{heap}", *(QUICK_JVM if jvm is None else jvm), f"-Dlog4j2.configurationFile={CLIENT_LOG4J}",
            "-cp", cp or classpath(), main, *args]


def java(main: str, *args: str, input: bytes | None = None, timeout: float = 60.0, check: bool = True,
         heap: str = "256m", cp: str | None = None) -> subprocess.CompletedProcess:
    """Run a main class in a JVM of its own to its end; with `check`, fail with its output unless it
    exited 0."""
    r = subprocess.run(java_command(main, *args, heap=heap, cp=cp), input=input, capture_output=True,
                       timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, (f"{main} {' '.join(args)} exited {r.returncode}\n"
                                   f"stdout: {r.stdout.decode(errors='replace')[-3000:]}\n"
                                   f"stderr: {r.stderr.decode(errors='replace')[-3000:]}")
    return r


class JvmProcess:
    """A long-running JVM of its own (a Streams application, a Connect worker), its stdout and
    stderr in `<log_dir>/<name>.out` and `.err`. `stop()` is SIGTERM (the JVM's shutdown hooks: a
    clean close), `kill()` SIGKILL (a crash); either ends the process by its PID."""

    TERMINATED = 128 + signal.SIGTERM  # a JVM's exit code after SIGTERM, once its shutdown hooks ran

    def __init__(self, name: str, main: str, *args: str, log_dir: Path, heap: str = "256m",
                 cp: str | None = None):
        self.name, self.log_dir = name, Path(log_dir)
        self.command = java_command(main, *args, heap=heap, cp=cp)
        self.proc: subprocess.Popen | None = None

    @property
    def out_path(self) -> Path:
        return self.log_dir / f"{self.name}.out"

    def start(self) -> JvmProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_path, "ab") as out, open(self.log_dir / f"{self.name}.err", "ab") as err:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        return self

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        err = (self.log_dir / f"{self.name}.err").read_text(errors="replace")
        return "\n".join((self.output() + err).splitlines()[-lines:])

    def wait_for(self, text: str, timeout: float = 60.0, after: int = 0) -> None:
        """Until `text` appears in stdout at or after character `after`; fails at once if the JVM exits."""
        def seen():
            assert self.proc.poll() is None or text in self.output()[after:], \
                f"{self.name} exited {self.proc.returncode} before printing {text!r}:\n{self.tail()}"
            return text in self.output()[after:]
        wait_until(seen, f"{self.name} to print {text!r}", timeout)

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# Kafka's bin/kafka-*.sh scripts, by script name: the main class each one runs (`Driver.tool`).
TOOLS = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-configs": "org.apache.kafka.tools.ConfigCommand",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
    "kafka-metadata-quorum": "org.apache.kafka.tools.MetadataQuorumCommand",
    "kafka-log-dirs": "org.apache.kafka.tools.LogDirsCommand",
    "kafka-delete-records": "org.apache.kafka.tools.DeleteRecordsCommand",
    "kafka-broker-api-versions": "org.apache.kafka.tools.BrokerApiVersionsCommand",
    "kafka-features": "org.apache.kafka.tools.FeatureCommand",
    "kafka-cluster": "org.apache.kafka.tools.ClusterTool",
    "kafka-leader-election": "org.apache.kafka.tools.LeaderElectionCommand",
    "kafka-reassign-partitions": "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
    "kafka-dump-log": "org.apache.kafka.tools.DumpLogSegments",
    "kafka-transactions": "org.apache.kafka.tools.TransactionsCommand",
    "kafka-acls": "org.apache.kafka.tools.AclCommand",
}


class JavaError(AssertionError):
    """A driver command that raised in the JVM: `type` is the exception's simple class name (the
    cause's, where the Java client wraps it in an ExecutionException)."""

    def __init__(self, type: str, message: str):
        super().__init__(f"{type}: {message}")
        self.type, self.message = type, message


class Driver:
    """One `kc.Driver` JVM for a scenario file. `call(op, **args)` sends `{"op": op, ...args}` and
    returns the answer's `result`, or raises `JavaError` with the exception the Java client threw."""

    def __init__(self, bootstrap: str, heap: str = "256m", properties: Path | None = None):
        """`properties`: a client.properties file (security settings) every client of the driver takes."""
        self.stderr = tempfile.TemporaryFile()  # a file, not a pipe: client warnings never block the JVM
        args = (bootstrap,) if properties is None else (bootstrap, str(properties))
        self.proc = subprocess.Popen(java_command("kc.Driver", *args, heap=heap), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)

    def log(self) -> str:
        """What the JVM wrote on stderr (its client logs) so far."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def call(self, op: str, **args):
        self.proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f"the Java driver exited {self.proc.returncode} during {op}:\n{self.log()[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise JavaError(answer["error"]["type"], answer["error"]["message"])
        return answer["result"]

    def tool(self, script: str, *args: str, input: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
        """Run one of Kafka's command-line tools (by its script name, e.g. "kafka-topics") in this JVM
        (`kc.Tools`: its stdin given, stdout and stderr captured, its exit code returned); with
        `check`, fail with its output unless it exited 0."""
        r = self.call("tool", main=TOOLS[script], args=list(args), input=input.decode())
        done = subprocess.CompletedProcess([script, *args], r["code"], r["stdout"], r["stderr"])
        if check:
            assert done.returncode == 0, f"{script} {' '.join(args)} exited {done.returncode}\n" \
                                         f"stdout: {done.stdout[-3000:]}\nstderr: {done.stderr[-3000:]}"
        return done

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.call("exit")
            except (AssertionError, OSError):
                pass
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            f.close()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def records_arg(records: list[Rec]) -> list[dict]:
    """`Rec`s as the driver's `produce` takes them (text keys, values and header values)."""
    text = lambda b: None if b is None else b.decode()  # noqa: E731
    return [{"partition": r.partition, "key": text(r.key), "value": text(r.value),
             "headers": [[n, v.decode()] for n, v in r.headers], "timestamp": r.timestamp} for r in records]


def gots(records: list[dict]) -> list[Got]:
    """The driver's consumed records as `Got`s."""
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    return [Got(r["partition"], r["offset"], enc(r["key"]), enc(r["value"]),
                tuple((n, enc(v)) for n, v in r["headers"]), r["timestamp"]) for r in records]


class JavaGroup:
    """Named group members inside one driver JVM, polled in turn (each poll also runs the member's
    rebalance and heartbeats). Per member it keeps the current assignment (partition numbers of
    `topic`), the (partition, offset, value) of every record consumed and the rebalance listener's
    events, in order."""

    def __init__(self, driver: Driver, topic: str, group: str, **config: str):
        self.driver, self.topic, self.group, self.config = driver, topic, group, config
        self.assigned: dict[str, list[int] | None] = {}
        self.records: dict[str, list[tuple[int, int, str]]] = {}
        self.events: dict[str, list[tuple[str, list[int]]]] = {}
        self.generation: dict[str, int] = {}

    def join(self, name: str, **config: str) -> None:
        conf = {"group.id": self.group, "client.id": name, "auto.offset.reset": "earliest",
                "enable.auto.commit": "false", "fetch.max.wait.ms": "100", **self.config, **config}
        self.driver.call("consumer.open", name=name, config=conf, topics=[self.topic])
        self.assigned[name], self.records[name], self.events[name] = None, [], []

    def poll(self, ms: int = 50) -> None:
        for name, state in self.driver.call("consumer.poll", names=list(self.assigned), ms=ms).items():
            self.assigned[name] = [p for _, p in state["assignment"]]
            self.records[name] += [(r["partition"], r["offset"], r["value"]) for r in state["records"]]
            self.events[name] += [(e["type"], [p for _, p in e["partitions"]]) for e in state["events"]]
            self.generation[name] = state["generation"]

    def poll_until(self, condition, what: str, timeout: float = 20.0):
        """Poll every member until `condition(self)` holds."""
        def step():
            self.poll()
            return condition(self)
        return wait_until(step, what, timeout, interval=0)

    def split(self, partitions: int) -> bool:
        """Every member owns its share of `range(partitions)`, each partition exactly one member."""
        owned = [p for parts in self.assigned.values() if parts for p in parts]
        share = partitions // len(self.assigned)
        return sorted(owned) == list(range(partitions)) and all(
            parts is not None and len(parts) == share for parts in self.assigned.values())

    def values(self) -> list[str]:
        return sorted(v for recs in self.records.values() for _, _, v in recs)

    def leave(self, name: str) -> None:
        """close(): a dynamic member leaves the group (LeaveGroup, or a heartbeat with epoch -1)."""
        self.driver.call("consumer.close", name=name)
        del self.assigned[name]

    def close(self) -> None:
        for name in list(self.assigned):
            self.leave(name)
