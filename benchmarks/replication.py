"""Partition replication on three local nodes: what acks=all costs, how fast leadership fails over,
how fast a lagging replica rejoins, how fast a large topic becomes usable.

The product: three `kafka-compat start` processes on loopback (broker+controller each, Kafka's
defaults but for the replication settings of a multi-node cluster: replication factor 3,
min.insync.replicas 2). confluent-kafka (librdkafka) is the client throughout. Figures:

- throughput: 1 KiB records (half compressible, lz4, linger.ms 5, batch.size 1 MiB) to a
  6-partition RF-3 topic for `--seconds`, at acks=1 and at acks=all, alternating for `--rounds`
  (each phase on its own topic, the followers caught up in between); the best of each and the
  ratio acks=all / acks=1 (target >= 0.6);
- latency: produce call to consumer receipt (same process) at a steady `--rate` with acks=all and
  linger.ms 0: a consumer only sees a record once the ISR has it, so this is the replicated path;
- failover after kill -9 of a partition leader, and for a controlled shutdown (SIGTERM to it),
  `--runs` each, medians: the longest time without a successful acks=all produce to that
  partition, from the signal until the old leader has exited and a produce after that succeeded
  (targets: within broker.session.timeout.ms + 1 s after kill -9, < 1 s for SIGTERM). The
  producer for this figure is the project's wire client, produces one after another, Metadata
  asked before each (as the Java client refreshes at once on a lost connection or leader).
  librdkafka, sending a record every 5 ms meanwhile, gives its own figures (`*_librdkafka_*`: the
  first acknowledgement of a record sent after the kill; the longest wait of any record sent
  after the SIGTERM): they add its metadata refresh policy (it learns of a new leader only on its
  next refresh, about a second after a kill). `*_new_leader_*`: until the survivors' Metadata
  names another leader. The node comes back and the leaders return (preferred election) before
  the next run. The victim is never the active controller: a kill of that node adds a metadata
  quorum election (benchmarks/election.py measures that);
- catch-up: one node stopped (SIGTERM), `--catchup-mib` MiB produced at acks=all to the
  6-partition topic, the node restarted; the time from its launch until it is in every ISR again
  (its start-up, ready line, included and also given alone);
- a 1,000-partition RF-3 topic: from CreateTopics until every partition has a leader and three
  in-sync replicas in Metadata, and until one acks=all record to each partition is acknowledged
  (target: within 3 s).

Client settings that would otherwise measure librdkafka's back-off instead of the brokers:
retry.backoff.ms 20 (max 100), reconnect.backoff.ms 20 (max 100).

The peer: Apache Kafka, where `conformance/peers/apache_kafka.py` (ApacheKafkaCluster) and its
jars are present (`make test-deps`), with `--peer apache-kafka`: the same figures in the same run,
under "peer" in the JSON line. Without it the line says why there is no peer.

Prints one JSON line: {"bench": "replication", "acks1_msgs_s", "acks_all_msgs_s", "acks_all_ratio",
"latency_p50_ms", "latency_p99_ms", "kill9_median_ms", "kill9_runs_ms", "sigterm_median_ms" (the
stall), "sigterm_runs_ms", "catchup_mib", "catchup_rejoin_s", "catchup_startup_s",
"partitions_1000_led_in_sync_s", "partitions_1000_writable_s", "peer", "targets": {...}, "args": {...}}.

Usage: python benchmarks/replication.py [--seconds 10] [--rate 1000] [--latency-seconds 5] [--runs 5]
                                        [--catchup-mib 1024] [--session-timeout-ms 9000]
                                        [--partitions 1000] [--dir DIR] [--peer apache-kafka]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness.load import latencies, percentile, produce_for
from kafka_compat.client import BrokerConnection, BrokerUnreachable, Cluster
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.raft import wire
from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.waiting import wait_until

PARTITIONS = 6
RECORD = 1024
WAIT = 120.0
REPLICATION = {"default.replication.factor": "3", "offsets.topic.replication.factor": "3",
               "transaction.state.log.replication.factor": "3", "min.insync.replicas": "2"}
CLIENT = {"retry.backoff.ms": 20, "retry.backoff.max.ms": 100, "reconnect.backoff.ms": 20,
          "reconnect.backoff.max.ms": 100}


class Nodes:
    """What the measurements need of a three-node cluster, whichever broker runs it: the bootstrap
    list and, per node id, kill -9, SIGTERM, waiting for the exit and starting again."""

    def __init__(self, bootstrap: str, kill: Callable[[int], None], terminate: Callable[[int], None],
                 alive: Callable[[int], bool], start: Callable[[int], None]):
        self.bootstrap, self.kill, self.terminate, self.alive, self.start = bootstrap, kill, terminate, alive, start

    def wait_exit(self, node: int) -> None:
        wait_until(lambda: not self.alive(node), f"node {node} to exit", WAIT, 0.005)


@contextmanager
def kafka_compat_nodes(base: Path, session_timeout_ms: int):
    settings = {**REPLICATION, "broker.session.timeout.ms": str(session_timeout_ms),
                "broker.heartbeat.interval.ms": str(min(2000, session_timeout_ms // 4))}
    with ClusterProcess(base, 3, overrides=settings) as cluster:
        yield Nodes(cluster.bootstrap, lambda i: cluster[i].kill(),
                    lambda i: cluster[i].proc.send_signal(signal.SIGTERM), lambda i: cluster[i].proc.poll() is None,
                    lambda i: cluster[i].start(timeout=WAIT))


@contextmanager
def apache_kafka_nodes(base: Path, session_timeout_ms: int):
    """The hook for the peer: conformance/peers/apache_kafka.py's ApacheKafkaCluster, once it is on
    this branch (ImportError otherwise, reported in the JSON line)."""
    from conformance.peers.apache_kafka import ApacheKafkaCluster

    settings = {**REPLICATION, "broker.session.timeout.ms": str(session_timeout_ms),
                "broker.heartbeat.interval.ms": str(min(2000, session_timeout_ms // 4))}
    with ApacheKafkaCluster(base, 3, overrides=settings) as cluster:
        nodes = cluster.nodes
        yield Nodes(cluster.bootstrap, lambda i: nodes[i].kill(), lambda i: nodes[i].proc.send_signal(signal.SIGTERM),
                    lambda i: nodes[i].alive, lambda i: nodes[i].start())


# -- helpers ------------------------------------------------------------------------------------

def create(bootstrap: str, topic: str, partitions: int, assignment: list[list[int]] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, partitions, 3) if assignment is None else NewTopic(
        topic, num_partitions=partitions, replica_assignment=assignment)
    admin.create_topics([new])[topic].result(WAIT)


def partitions(bootstrap: str, topic: str) -> dict:
    with Cluster(bootstrap) as c:
        return c.metadata([topic]).topics[topic].partitions


def wait_full_isr(bootstrap: str, topic: str, what: str) -> None:
    def full():
        try:
            ps = partitions(bootstrap, topic)
        except (BrokerUnreachable, OSError, KeyError):
            return False
        return ps and all(p.leader >= 0 and len(p.isr) == 3 for p in ps.values())
    wait_until(full, f"{topic}: every partition led with three in-sync replicas ({what})", WAIT)


def quorum_leader(bootstrap: str) -> int:
    """The active controller, as DescribeQuorum through a broker says (Kafka forwards it too)."""
    for address in bootstrap.split(","):
        host, port = address.rsplit(":", 1)
        try:
            with BrokerConnection(host, int(port), timeout=5) as conn:
                return conn.request(wire.describe_quorum_request(), 1).topics[0].partitions[0].leader_id
        except (BrokerUnreachable, OSError):
            continue
    raise RuntimeError("no broker answers DescribeQuorum")


def caught_up(bootstrap: str, topic: str, expected: int) -> bool:
    with Cluster(bootstrap) as c:
        marks = c.watermarks(topic, range(PARTITIONS))
    return sum(high for _, high in marks.values()) >= expected


# -- the figures ---------------------------------------------------------------------------------

def throughput(bootstrap: str, topic: str, acks: str, seconds: float) -> dict:
    create(bootstrap, topic, PARTITIONS)
    delivered, failed, elapsed = produce_for(bootstrap, topic, seconds, acks=acks, partitions=PARTITIONS,
                                             record=RECORD, flush_timeout=WAIT)
    # The followers catch up before anything else is measured.
    wait_until(lambda: caught_up(bootstrap, topic, delivered), f"{topic}'s high watermarks", WAIT)
    return {"msgs_s": round(delivered / elapsed), "mb_s": round(delivered * RECORD / 1e6 / elapsed, 1),
            "failed": failed}


def latency(bootstrap: str, topic: str, rate: int, seconds: float) -> dict:
    create(bootstrap, topic, PARTITIONS)
    lat = latencies(bootstrap, topic, rate, seconds, acks="all", partitions=PARTITIONS, record=RECORD, wait=WAIT)
    expected = int(rate * seconds)
    if len(lat) < expected:
        raise AssertionError(f"{expected - len(lat)} of {expected} latency records never consumed")
    return {"samples": len(lat), "p50_ms": round(lat[len(lat) // 2] / 1e6, 2),
            "p99_ms": round(percentile(lat, 0.99) / 1e6, 2)}


def wire_gaps(nodes: Nodes, topic: str, partition: int, victim: int, t_act: float, stop: threading.Event,
              out: dict) -> None:
    """The broker's side of a failover, without librdkafka's metadata refresh policy: acks=all
    produces one after another through the project's wire client, which asks the survivors'
    Metadata before each (as the Java client refreshes at once on a lost connection or leader).
    out["gap"]: the longest time without an acknowledgement, from the act until the victim has
    exited and a produce after that succeeded."""
    survivors = ",".join(a for i, a in enumerate(nodes.bootstrap.split(","), 1) if i != victim)
    last, gap, exited = t_act, 0.0, False
    with Cluster(survivors, retries=0, timeout=2) as c:
        while not stop.is_set():
            exited = exited or not nodes.alive(victim)
            try:
                c.topic(topic, refresh=True)
                answer = c.produce(topic, {partition: build_batch([Record(None, b"wire")])}, acks=-1)[partition]
                if answer.error_code == ErrorCode.NONE:
                    now = time.monotonic()
                    last, gap = now, max(gap, now - last)
                    if exited:
                        break
            except (BrokerUnreachable, KafkaError, OSError):
                pass
            time.sleep(0.002)
    out["gap"] = gap * 1000


def producer_across(nodes: Nodes, topic: str, partition: int, victim: int, act: Callable[[], None]) -> dict:
    """Send an acks=all record to `partition` every 5 ms with librdkafka, `act()` on its leader
    `victim`, and go on until the victim has exited and a record sent after that is acknowledged,
    with every record before it. Returns ms from the act: until librdkafka's first acknowledgement
    of a record sent after the act ("first_ack"), the longest any of its records sent from the act
    on waited ("stall"), until Metadata names another leader ("new_leader"), and the longest time
    the wire client went without an acknowledgement ("wire")."""
    p = Producer({"bootstrap.servers": nodes.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 0,
                  "message.timeout.ms": 120000, **CLIENT})
    sent: dict[int, float] = {}
    acked: dict[int, float] = {}
    failed: list[str] = []

    def on_delivery(err, msg):
        if err is None:
            acked[int(msg.value())] = time.monotonic()
        else:
            failed.append(str(err))

    def send(n: int) -> None:
        sent[n] = time.monotonic()
        p.produce(topic, b"%d" % n, partition=partition, on_delivery=on_delivery)

    for n in range(20):  # warm: connected, the leader known
        send(n)
    p.flush(WAIT)
    first = n = 20
    survivor = Cluster(",".join(a for i, a in enumerate(nodes.bootstrap.split(","), 1) if i != victim))
    new_leader = exited_at = None
    wire: dict[str, float] = {}
    stop = threading.Event()
    t_act = time.monotonic()
    act()
    side = threading.Thread(target=wire_gaps, args=(nodes, topic, partition, victim, t_act, stop, wire))
    side.start()
    deadline = t_act + WAIT
    while time.monotonic() < deadline:
        send(n)
        n += 1
        p.poll(0.005)
        if new_leader is None and n % 4 == 0:
            try:
                if survivor.topic(topic, refresh=True).partitions[partition].leader not in (victim, -1):
                    new_leader = time.monotonic()
            except (BrokerUnreachable, OSError):
                pass
        if exited_at is None and not nodes.alive(victim):
            exited_at = n
        if exited_at is not None and new_leader is not None and any(k >= exited_at for k in acked) \
                and all(k in acked for k in range(first, exited_at)):
            break
    side.join(WAIT)
    stop.set()
    survivor.close()
    p.flush(WAIT)
    if failed:
        raise RuntimeError(f"deliveries failed: {failed[:3]}")
    return {"first_ack": (min(acked[k] for k in acked if k >= first) - t_act) * 1000,
            "stall": max(acked[k] - sent[k] for k in range(first, n)) * 1000,
            "new_leader": (new_leader - t_act) * 1000, "wire": wire["gap"]}


def failovers(nodes: Nodes, runs: int) -> dict:
    """kill -9 and SIGTERM of a partition leader that is not the active controller, `runs` times
    each; the node is restarted and the preferred leaders restored between runs."""
    topic = "failover"
    create(nodes.bootstrap, topic, 3, [[1, 2, 3], [2, 3, 1], [3, 1, 2]])
    wait_full_isr(nodes.bootstrap, topic, "created")
    out: dict[str, list[float]] = {}
    for run in range(2 * runs):
        how = "kill9" if run % 2 == 0 else "sigterm"
        controller = quorum_leader(nodes.bootstrap)
        leaders = {p.leader: i for i, p in partitions(nodes.bootstrap, topic).items()}
        victim = next(v for v in sorted(leaders) if v != controller)
        act = (lambda v=victim: nodes.kill(v)) if how == "kill9" else (lambda v=victim: nodes.terminate(v))
        got = producer_across(nodes, topic, leaders[victim], victim, act)
        # librdkafka, kill -9: until a record sent after the kill is acknowledged; SIGTERM: the old
        # leader serves until leadership moves, so the figure is the longest wait of any record.
        for key, value in ((how, got["wire"]), (f"{how}_librdkafka", got["first_ack" if how == "kill9" else "stall"]),
                           (f"{how}_new_leader", got["new_leader"])):
            out.setdefault(key, []).append(value)
        nodes.wait_exit(victim)
        nodes.start(victim)
        wait_full_isr(nodes.bootstrap, topic, f"node {victim} back")
        with Cluster(nodes.bootstrap) as c:
            c.elect_leaders(0, [(topic, p) for p in range(3)])
        wait_until(lambda: all(p.leader == p.replicas[0] for p in partitions(nodes.bootstrap, topic).values()),
                   "the preferred leaders back", WAIT)
    return {f"{k}_median_ms": round(statistics.median(v), 1) for k, v in out.items()} | {
        f"{k}_runs_ms": [round(x) for x in v] for k, v in out.items() if not k.endswith("new_leader")}


def catchup(nodes: Nodes, mib: int) -> dict:
    topic = "catchup"
    create(nodes.bootstrap, topic, PARTITIONS)
    wait_full_isr(nodes.bootstrap, topic, "created")
    follower = 3
    nodes.terminate(follower)
    nodes.wait_exit(follower)
    payloads = [os.urandom(RECORD // 2) * 2 for _ in range(64)]
    p = Producer({"bootstrap.servers": nodes.bootstrap, "compression.type": "lz4", "linger.ms": 5,
                  "batch.size": 1 << 20, "acks": "all", "queue.buffering.max.kbytes": 1 << 20, **CLIENT})
    count = mib * 1024 * 1024 // RECORD
    for i in range(count):
        while True:
            try:
                p.produce(topic, payloads[i & 63], partition=i % PARTITIONS)
                break
            except BufferError:
                p.poll(0.01)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(WAIT * 10) == 0
    t0 = time.monotonic()
    nodes.start(follower)
    ready = time.monotonic() - t0
    wait_until(lambda: all(follower in q.isr for q in partitions(nodes.bootstrap, topic).values()),
               f"node {follower} back in every ISR of {topic}", WAIT * 10, 0.05)
    return {"catchup_mib": mib, "catchup_rejoin_s": round(time.monotonic() - t0, 2),
            "catchup_startup_s": round(ready, 2)}


def many_partitions(bootstrap: str, count: int) -> dict:
    topic = "many"
    C = m.CreateTopicsRequest
    with Cluster(bootstrap) as c:
        c.metadata([])
        t0 = time.monotonic()
        r = c.request(C(timeout_ms=60000, topics=[C.CreatableTopic(name=topic, num_partitions=count,
                                                                   replication_factor=3)])).topics[0]
        if r.error_code:
            raise RuntimeError(f"CreateTopics: {ErrorCode(r.error_code).name} {r.error_message}")

    def ready():
        try:
            ps = partitions(bootstrap, topic)
        except (BrokerUnreachable, OSError, KeyError):
            return False
        return len(ps) == count and all(p.leader >= 0 and len(p.isr) == 3 for p in ps.values())
    wait_until(ready, f"{count} partitions led and in sync", WAIT, 0.02)
    led = time.monotonic() - t0
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, **CLIENT})
    failed = []
    for i in range(count):
        p.produce(topic, b"x", partition=i, on_delivery=lambda err, msg: err and failed.append(err))
    if p.flush(WAIT) or failed:
        raise RuntimeError(f"{count}-partition produce: {len(failed)} failed")
    return {f"partitions_{count}_led_in_sync_s": round(led, 2),
            f"partitions_{count}_writable_s": round(time.monotonic() - t0, 2)}


def measure(nodes: Nodes, args) -> dict:
    out: dict = {}
    rounds = {"1": [], "all": []}
    for r in range(args.rounds):  # alternating, so that load from elsewhere falls on both alike
        for acks, got in rounds.items():
            got.append(throughput(nodes.bootstrap, f"acks-{acks}-{r}", acks, args.seconds))
    one, every = (max(rounds[a], key=lambda x: x["msgs_s"]) for a in ("1", "all"))
    out.update({"acks1_msgs_s": one["msgs_s"], "acks1_mb_s": one["mb_s"], "acks_all_msgs_s": every["msgs_s"],
                "acks_all_mb_s": every["mb_s"], "acks_all_ratio": round(every["msgs_s"] / max(one["msgs_s"], 1), 2),
                "acks1_rounds_msgs_s": [x["msgs_s"] for x in rounds["1"]],
                "acks_all_rounds_msgs_s": [x["msgs_s"] for x in rounds["all"]],
                "produce_failed": sum(x["failed"] for got in rounds.values() for x in got)})
    lat = latency(nodes.bootstrap, "latency", args.rate, args.latency_seconds)
    out.update({"latency_rate": args.rate, "latency_p50_ms": lat["p50_ms"], "latency_p99_ms": lat["p99_ms"]})
    out.update(failovers(nodes, args.runs))
    out.update(catchup(nodes, args.catchup_mib))
    out.update(many_partitions(nodes.bootstrap, args.partitions))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10, help="each throughput phase")
    ap.add_argument("--rounds", type=int, default=2, help="throughput rounds (acks=1, acks=all alternating); best of")
    ap.add_argument("--rate", type=int, default=1000, help="records/s of the latency phase")
    ap.add_argument("--latency-seconds", type=float, default=5)
    ap.add_argument("--runs", type=int, default=5, help="kills and SIGTERMs each")
    ap.add_argument("--catchup-mib", type=int, default=1024, help="how far behind the restarted replica is")
    ap.add_argument("--session-timeout-ms", type=int, default=9000, help="broker.session.timeout.ms (Kafka's 9000)")
    ap.add_argument("--partitions", type=int, default=1000, help="the large topic's partitions")
    ap.add_argument("--dir", help="where the nodes keep their data (default: a temporary directory in $TMPDIR)")
    ap.add_argument("--peer", choices=["apache-kafka"], help="also measure Apache Kafka in the same run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, \
            kafka_compat_nodes(Path(tmp), args.session_timeout_ms) as nodes:
        line = {"bench": "replication", "target": "kafka-compat 3 x broker,controller, RF 3, min.insync.replicas 2",
                **measure(nodes, args)}
    if args.peer:
        try:
            with tempfile.TemporaryDirectory(dir=args.dir) as tmp, \
                    apache_kafka_nodes(Path(tmp), args.session_timeout_ms) as peer:
                line["peer"] = {"name": "apache-kafka", **measure(peer, args)}
        except ImportError as e:
            line["peer"] = f"apache-kafka unavailable: {e}"
    else:
        line["peer"] = "none (--peer apache-kafka measures Apache Kafka where conformance/peers/apache_kafka.py runs)"
    budget = args.session_timeout_ms + 1000
    line["targets"] = {
        "acks_all_ratio>=0.6": line["acks_all_ratio"] >= 0.6,
        f"kill9_failover<={budget}ms": line["kill9_median_ms"] <= budget,
        "sigterm_stall<1000ms": line["sigterm_median_ms"] < 1000,
        f"partitions_{args.partitions}_writable<=3s": line[f"partitions_{args.partitions}_writable_s"] <= 3,
    }
    line["args"] = vars(args)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
