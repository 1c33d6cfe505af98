"""Kafka Connect (connect-runtime and the FileStream connectors at 4.3.1, the newest release that
serves connect-file: conformance/java/connect/pom.xml) as a distributed worker on the broker: it
creates its config, offset and status topics (compacted, replication factor 1), joins its group,
and a FileStreamSource and a FileStreamSink connector, created through its REST API, move a file's
lines through a topic into another file, in order. Stopped cleanly and started again (a new worker
process, same group and topics), it finds the connectors in the config topic, the source's file
position in the offset topic and the sink's committed offsets, and moves the lines written
meanwhile: the sink file then equals the source file exactly. Killed with SIGKILL while lines flow,
then started again, it loses no line; Connect guarantees at least once, so lines may be written
again, but only as a replay of a run already written, in order."""

import json
import urllib.error
import urllib.request

import pytest

from conformance.jvm import JvmProcess, side_classpath
from conformance.support import TIMEOUT, create_topic, wait_until
from kafka_compat.testing.broker_process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

OFFSET_PARTITIONS, STATUS_PARTITIONS = 5, 3


class Worker:
    """A distributed Connect worker process (ConnectDistributed) with its REST API on a free
    loopback port. Connectors are found by ServiceLoader manifests (connect-file's jar is on the
    classpath); a departed worker's connectors are reassigned at once (no scheduled delay), and its
    group session is Kafka's shortest, so a crashed worker is gone soon."""

    def __init__(self, name: str, bootstrap: str, group: str, work_dir):
        self.port = free_port()
        settings = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "config.storage.topic": f"{group}-configs",
            "offset.storage.topic": f"{group}-offsets",
            "status.storage.topic": f"{group}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "offset.storage.partitions": str(OFFSET_PARTITIONS),
            "status.storage.partitions": str(STATUS_PARTITIONS),
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter",
            "offset.flush.interval.ms": "500",
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1",
            "plugin.discovery": "service_load",
            "scheduled.rebalance.max.delay.ms": "0",
            "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000",
        }
        props = work_dir / f"{name}.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        self.process = JvmProcess(name, "org.apache.kafka.connect.cli.ConnectDistributed", str(props),
                                  log_dir=work_dir, heap="384m", cp=side_classpath("connect"))

    def start(self) -> "Worker":
        self.process.start()
        try:
            wait_until(lambda: self.ready(), "the Connect worker's REST API", 120, interval=0.5)
        except BaseException:
            self.process.kill()
            raise
        return self

    def ready(self) -> bool:
        assert self.process.proc.poll() is None, f"the Connect worker exited:\n{self.process.tail()}"
        try:
            return self.rest("GET", "/connectors") is not None
        except OSError:
            return False

    def rest(self, method: str, path: str, body: dict | None = None):
        """One REST call; the JSON answer, or None for a 404, 409 (rebalancing) or 503 (starting)."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            if e.code in (404, 409, 503):
                return None
            raise AssertionError(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}") from e

    def create(self, name: str, config: dict[str, str]) -> None:
        """POST /connectors, retried while the worker is still joining its group."""
        wait_until(lambda: self.rest("POST", "/connectors", {"name": name, "config": config}),
                   f"connector {name} created", 60, interval=0.5)

    def running(self, name: str) -> bool:
        status = self.rest("GET", f"/connectors/{name}/status")
        return bool(status) and status["connector"]["state"] == "RUNNING" and \
            [t["state"] for t in status["tasks"]] == ["RUNNING"]

    def stop(self) -> None:
        assert self.process.stop() == JvmProcess.TERMINATED, self.process.tail()

    def kill(self) -> None:
        self.process.kill()


def append(path, lines: list[str]) -> None:
    with open(path, "a") as f:
        f.writelines(line + "\n" for line in lines)


def sink_lines(path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def at_least_once_in_order(sent: list[str], got: list[str]) -> None:
    """`got` is `sent` in order, where a line may come again only as part of a replay: each line is
    the one after its predecessor, or an earlier one (a run written again after a crash)."""
    index = {line: i for i, line in enumerate(sent)}
    assert set(got) <= set(index), f"lines never sent: {sorted(set(got) - set(index))[:5]}"
    at = [index[line] for line in got]
    assert at[0] == 0 and sorted(set(at)) == list(range(len(sent))), "a line is missing"
    jumps = [(a, b) for a, b in zip(at, at[1:]) if b != a + 1 and b > a]
    assert not jumps, f"lines skipped then written later (out of order): {jumps[:5]}"


def test_file_through_source_and_sink_connectors_across_worker_restarts(broker, unique, tmp_path):
    group, topic = unique("connect"), unique("connect-lines")
    create_topic(broker.bootstrap, topic)  # one partition: the sink file keeps the source's order
    source, sink = tmp_path / "source.txt", tmp_path / "sink.txt"
    sent = [f"line {i} of the source file" for i in range(200)]
    append(source, sent)

    worker = Worker("worker-1", broker.bootstrap, group, tmp_path).start()
    try:
        worker.create("file-source", {"connector.class": "FileStreamSource", "tasks.max": "1",
                                      "file": str(source), "topic": topic})
        worker.create("file-sink", {"connector.class": "FileStreamSink", "tasks.max": "1",
                                    "file": str(sink), "topics": topic})
        wait_until(lambda: sink_lines(sink) == sent, "the source file's lines in the sink file", 60)
        assert worker.running("file-source") and worker.running("file-sink")
        assert sorted(worker.rest("GET", "/connectors")) == ["file-sink", "file-source"]
        assert internal_topics(broker.bootstrap, group) == {
            f"{group}-configs": (1, "compact"), f"{group}-offsets": (OFFSET_PARTITIONS, "compact"),
            f"{group}-status": (STATUS_PARTITIONS, "compact")}
    finally:
        worker.stop()

    # written while no worker runs; a new worker resumes both connectors where they stopped
    more = [f"line {i} written while the worker was down" for i in range(200, 300)]
    append(source, more)
    sent += more
    worker = Worker("worker-2", broker.bootstrap, group, tmp_path).start()
    try:
        wait_until(lambda: len(sink_lines(sink)) >= len(sent), "the new lines in the sink file", 90)
        assert sink_lines(sink) == sent, "after a clean stop, nothing lost and nothing written twice"
        assert worker.running("file-source") and worker.running("file-sink")

        # lines flowing when the worker crashes: at least once, in order
        crash = [f"line {i} around a crash" for i in range(300, 2300)]
        append(source, crash)
        sent += crash
        wait_until(lambda: len(sink_lines(sink)) > 300, "the sink moving again", 60, interval=0.05)
    finally:
        worker.kill()
    worker = Worker("worker-3", broker.bootstrap, group, tmp_path).start()
    try:
        after = [f"line {i} after the crash" for i in range(2300, 2400)]
        append(source, after)
        sent += after
        wait_until(lambda: sink_lines(sink)[-1:] == sent[-1:], "the last line in the sink file", 90)
        at_least_once_in_order(sent, sink_lines(sink))
    finally:
        worker.stop()


def internal_topics(bootstrap: str, group: str) -> dict[str, tuple[int, str]]:
    """The worker's three topics: partition count and cleanup.policy."""
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = admin.list_topics(timeout=TIMEOUT).topics
    out = {}
    for name in (f"{group}-configs", f"{group}-offsets", f"{group}-status"):
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        policy = admin.describe_configs([res])[res].result(TIMEOUT)["cleanup.policy"].value
        out[name] = (len(topics[name].partitions), policy)
    return out
