"""/health/live and /health/ready as container probes see them, and the request log, on real
`kafka-compat start` processes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from confluent_kafka.admin import AdminClient, NewTopic

from kafka_compat.client import Cluster
from kafka_compat.testing.broker_process import BrokerProcess, free_port
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.waiting import wait_until


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:  # not listening yet
        return 0, str(e)


def test_broker_is_ready_only_while_its_controller_answers(tmp_path):
    """A broker started before its controller is live but not ready (not registered); ready once
    registered and unfenced; not ready while the controller is stopped for longer than the broker's
    session timeout (the controller would fence it); ready again once the controller is back."""
    cluster = ClusterProcess(tmp_path, roles={1: "controller", 2: "broker"},
                             overrides={"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "300"})
    controller, broker = cluster[1], cluster[2]
    port = free_port()
    broker.overrides["metrics.port"] = str(port)
    try:
        broker.launch()
        wait_until(lambda: probe(port, "/health/live")[0] == 200, "the broker's endpoint", timeout=20)
        status, body = probe(port, "/health/ready")
        assert status == 503 and "not registered with the controller" in body
        controller.launch()
        broker.wait_ready(30)
        wait_until(lambda: probe(port, "/health/ready") == (200, "ready\n"), "ready", timeout=20)
        controller.pause()
        # First the quorum's leader is lost from view (controller.quorum.fetch.timeout.ms), then the
        # session: both are reasons.
        wait_until(lambda: (lambda r: r[0] == 503 and "no heartbeat answered by the controller" in r[1])(
            probe(port, "/health/ready")), "not ready", timeout=20)
        assert probe(port, "/health/live")[0] == 200
        controller.resume()
        wait_until(lambda: probe(port, "/health/ready") == (200, "ready\n"), "ready again", timeout=30)
    finally:
        cluster.close()


def gauge(port: int, name: str) -> float | None:
    status, text = probe(port, "/metrics")
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if status == 200 and values else None


def test_a_broker_fenced_while_stopped_shows_in_the_controller_and_replica_metrics(tmp_path):
    """A broker stopped past its session timeout is fenced: the controller counts it, the other
    broker leads both partitions of a two-replica topic with shrunken ISRs; the stopped broker is
    ready again once it is back and unfenced."""
    cluster = ClusterProcess(tmp_path, roles={1: "controller", 2: "broker", 3: "broker"},
                             overrides={"broker.session.timeout.ms": "2000", "broker.heartbeat.interval.ms": "300"})
    ports = {i: free_port() for i in (1, 2, 3)}
    for i, port in ports.items():
        cluster[i].overrides["metrics.port"] = str(port)
    with cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("replicated", 2, 2)])["replicated"].result(30)
        assert gauge(ports[1], "kafka_controller_kafkacontroller_activecontrollercount") == 1
        wait_until(lambda: gauge(ports[1], "kafka_controller_kafkacontroller_globalpartitioncount") == 2,
                   "the topic's partitions counted")
        assert gauge(ports[2], "kafka_server_replicamanager_underreplicatedpartitions") == 0
        cluster[3].pause()
        wait_until(lambda: gauge(ports[1], "kafka_controller_kafkacontroller_fencedbrokercount") == 1,
                   "the broker fenced", timeout=20)
        assert gauge(ports[1], "kafka_controller_kafkacontroller_activebrokercount") == 1
        wait_until(lambda: gauge(ports[2], "kafka_server_replicamanager_underreplicatedpartitions") == 2,
                   "broker 2 leading both partitions, alone in their ISRs")
        assert gauge(ports[2], "kafka_server_replicamanager_leadercount") == 2
        assert gauge(ports[2], "kafka_server_replicamanager_isrshrinks_total") >= 1
        cluster[3].resume()
        wait_until(lambda: gauge(ports[1], "kafka_controller_kafkacontroller_fencedbrokercount") == 0,
                   "the broker unfenced", timeout=20)
        wait_until(lambda: probe(ports[3], "/health/ready") == (200, "ready\n"), "the broker ready", timeout=20)


def log_events(node: BrokerProcess) -> list[dict]:
    events = []
    for line in node.log_path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


def test_request_logger_logs_the_apis_listed_with_their_timings(tmp_path):
    with BrokerProcess(tmp_path, overrides={"request.logger.apis": "Metadata"}) as node:
        admin = Cluster(node.bootstrap)
        try:
            admin.metadata()
        finally:
            admin.close()

        def logged():
            return [e for e in log_events(node) if e.get("event") == "request"]
        wait_until(logged, "a request line", timeout=10)
        assert {e["api"] for e in logged()} == {"Metadata"}
        assert all({"total_ms", "queue_ms", "local_ms", "remote_ms", "send_ms", "peer"} <= e.keys() for e in logged())


def test_slow_requests_are_logged_with_their_timings(tmp_path):
    # A threshold of 0 ms makes every request slow: the Metadata below is logged as one.
    with BrokerProcess(tmp_path, overrides={"request.logger.slow.ms": "0"}) as node:
        admin = Cluster(node.bootstrap)
        try:
            admin.metadata()
        finally:
            admin.close()
        wait_until(lambda: any(e.get("event") == "slow_request" and e.get("api") == "Metadata"
                               and e["total_ms"] >= e["local_ms"] for e in log_events(node)), "a slow_request line",
                   timeout=10)
        assert not any(e.get("event") == "request" for e in log_events(node))
