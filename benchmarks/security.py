"""Security costs: produce and consume throughput over TLS and SASL_SSL against plaintext (one broker
process with the three listeners, librdkafka as the client, the same run), SCRAM-SHA-512
authentications per second (connect, handshake, exchange, over the wire), and the authorizer's
decision time with 10,000 ACLs.

Throughput is measured on a broker at steady state, as one in service runs: each listener's topic
has 64 MiB segments, 256 MiB of retention and no file delete delay, and the broker checks retention
every second, so its writes land in page-cache pages it recycled. On this machine (a VM) the first
touch of a guest page is dear: `dd` of 2 GB into a fresh file costs ~5 ms/MB of system time, into
reused pages ~0.3 ms/MB, so a log that only grows makes each phase pay for the ones before it and
the ratios follow the phase order, not the listener. After an unmeasured warm-up (each listener
sends 384 MiB, until retention has deleted from every log; a JVM compiles its hot paths) the
listeners run one after the other, `--rounds` times; each figure is the median over the rounds (with
the default 2, the mean of the two), the figures of every round under "rounds". A produce phase
sends 1,000-byte records with acks=1 for `--seconds`; a consume phase then reads the newest 244 MB
of that topic (what retention keeps for sure) again and again for as long, with a fresh consumer
that asks librdkafka for no more records than remain (a batch call waits out its timeout for the
rest), sets fetch.wait.max.ms to 5 ms (the fetch it sends at the log end would hold up the next pass
for 500 ms) and fetch.queue.backoff.ms to 1 ms (1 s by default once queued.min.messages, 100,000
records, are queued). CPU per MB: the broker process's (utime+stime from /proc; its system time
alone for produce) and this process's, the client's, over the same phase.

The same phases then run against Apache Kafka (the release the conformance suite pins, started by
conformance/peers/apache_kafka.py; `make test-deps` resolves its jars) with the same listeners,
PKCS12 keystore, SCRAM user, topic settings and clients, after kafka-compat has stopped: what a JVM
broker reaches on this machine with the same client, under "apache_kafka".

The ACLs are applied as AccessControlEntryRecords to a metadata image, as a broker gets them, no
two alike (as the controller keeps them): literal ALLOW ACLs on 1,000 topics for ten principals
(WRITE, READ or DESCRIBE, some from one host), PREFIXED ACLs on prefixes of 2 to 12 characters, DENY
ACLs, group ACLs and wildcard ACLs. Decisions ask random (principal, host, operation, topic)
questions over the 1,000 topics and ~100 names that only prefixes cover; each is timed alone. The
peer, measured in the same run on the same ACLs and questions: a decision that scans every ACL (what
an authorizer without an index costs).

Prints one JSON line: {"bench": "security", "produce_mb_s": {listener: MB/s}, "consume_mb_s": {...},
"tls_produce_ratio", "tls_consume_ratio", "sasl_ssl_produce_ratio", "sasl_ssl_consume_ratio",
"target_ratio": 0.5, "scram_auths_per_s", "broker_produce_cpu_ms_per_mb": {listener: ms},
"broker_produce_sys_ms_per_mb", "client_produce_cpu_ms_per_mb", "consumed_mb",
"broker_consume_cpu_ms_per_mb", "client_consume_cpu_ms_per_mb", "rounds": [{listener: {...}}],
"apache_kafka": {the same throughput keys}, "acls", "decisions", "authorize_p50_us",
"authorize_p99_us", "target_p99_us": 50, "peer": "scan", "peer_p50_us", "peer_p99_us"}.

Usage: python benchmarks/security.py [--acls N] [--decisions N] [--seconds S] [--rounds N]
       [--no-apache-kafka] [--apache-kafka-heap 1g]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from operator import sub
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conformance.peers.apache_kafka import ApacheKafkaNode
from kafka_compat.cli.certs import dev_certs
from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.client.security import ClientSecurity
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import AclPermissionType as Perm
from kafka_compat.security.acls import PatternType as Pat
from kafka_compat.security.acls import ResourceType as Res
from kafka_compat.security.authorizer import Authorizer
from kafka_compat.security.sasl.scram import SCRAM_SHA_512
from kafka_compat.testing.broker_process import BrokerProcess, free_port
from kafka_compat.testing.waiting import wait_until


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def acl_records(n: int, rng: random.Random) -> list[m.AccessControlEntryRecord]:
    def rec(res, name, pat, principal, host, op, perm):
        return m.AccessControlEntryRecord(id=Uuid(rng.randbytes(16)), resource_type=res, resource_name=name,
                                          pattern_type=pat, principal=principal, host=host, operation=op,
                                          permission_type=perm)

    out, seen = [], set()
    ops = (Op.WRITE, Op.READ, Op.DESCRIBE)
    k = 0
    while len(out) < n:
        k += 1
        kind = k % 20
        if kind < 8:  # literal topic ACLs
            out.append(rec(Res.TOPIC, f"topic-{k % 1000}", Pat.LITERAL, f"User:p{k % 10}",
                           "*" if k % 3 else f"10.0.0.{k % 7}", ops[k % 3], Perm.ALLOW))
        elif kind < 12:  # prefixes
            prefix = f"team-{k % 97}-{k % 13}"[: 2 + k % 11]
            out.append(rec(Res.TOPIC, prefix, Pat.PREFIXED, f"User:p{k % 10}", "*", ops[k % 3], Perm.ALLOW))
        elif kind < 13:
            out.append(rec(Res.TOPIC, f"topic-{k % 1000}", Pat.LITERAL, f"User:p{k % 10}", "*", Op.WRITE, Perm.DENY))
        elif kind < 15:
            out.append(rec(Res.GROUP, f"group-{k % 300}", Pat.LITERAL, f"User:p{k % 10}", "*", Op.READ, Perm.ALLOW))
        elif kind < 16:
            out.append(rec(Res.TOPIC, "*", Pat.LITERAL, f"User:svc{k}", "*", Op.DESCRIBE, Perm.ALLOW))
        else:
            out.append(rec(Res.TOPIC, f"topic-{k % 1000}", Pat.LITERAL, f"User:q{k}", "*", Op.READ, Perm.ALLOW))
        content = (out[-1].resource_type, out[-1].resource_name, out[-1].pattern_type, out[-1].principal,
                   out[-1].host, out[-1].operation, out[-1].permission_type)
        if content in seen:  # the controller never writes an ACL twice
            out.pop()
        seen.add(content)
    return out


def scan(acls, principal, host, op, name) -> bool:
    """The peer: every ACL looked at for every decision (no implied operations: a lower bound)."""
    allowed = False
    for _id, a in acls:
        if a.resource_type != Res.TOPIC:
            continue
        if not ((a.pattern_type == Pat.LITERAL and a.resource_name in (name, "*"))
                or (a.pattern_type == Pat.PREFIXED and name.startswith(a.resource_name))):
            continue
        if a.principal in (principal, "User:*") and a.host in (host, "*") and a.operation in (op, Op.ALL):
            if a.permission == Perm.DENY:
                return False
            allowed = True
    return allowed


def timed(fn, questions) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for q in questions:
        t = clock()
        fn(*q)
        out.append((clock() - t) / 1000)
    return out


LISTENERS = ("PLAINTEXT", "SSL", "SASL_SSL")
VALUE = b"v" * 1000
PASSWORD = "bench-secret"
# A broker at steady state: segments roll and are deleted as fast as records arrive, so its writes
# land in recycled page-cache pages (see the module docstring).
TOPIC_CONFIG = {"segment.bytes": str(64 << 20), "retention.bytes": str(256 << 20), "file.delete.delay.ms": "0"}
RETENTION_CHECK = {"log.retention.check.interval.ms": "1000"}
# Records a consume phase reads: what retention.bytes keeps for sure (a record takes ~1,010 bytes in
# the log).
RETAINED = (256 << 20) // 1100
WARM_UP_RECORDS = (384 << 20) // len(VALUE)
CONSUMER_DEADLINE_S = 60.0


def listener_settings(ports: dict[str, int]) -> str:
    return ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items())


def client_configs(ca: Path) -> dict[str, dict]:
    ssl = {"security.protocol": "SSL", "ssl.ca.location": str(ca)}
    return {"PLAINTEXT": {}, "SSL": ssl,
            "SASL_SSL": {**ssl, "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                         "sasl.username": "bench", "sasl.password": PASSWORD}}


def ssl_settings(certs: dict[str, Path]) -> dict[str, str]:
    return {"ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["broker.p12"]),
            "ssl.keystore.password": PASSWORD, "sasl.enabled.mechanisms": "SCRAM-SHA-512"}


def our_broker(tmp: Path, certs: dict[str, Path]) -> tuple[BrokerProcess, dict[str, str]]:
    ports = {name: free_port() for name in LISTENERS}
    listeners = listener_settings(ports)
    broker = BrokerProcess(tmp / "kafka-compat", port=ports["PLAINTEXT"], overrides={
        "listeners": listeners, "advertised.listeners": listeners, **ssl_settings(certs), **RETENTION_CHECK})
    return broker, {n: f"127.0.0.1:{p}" for n, p in ports.items()}


def kafka_broker(tmp: Path, certs: dict[str, Path], heap: str) -> tuple[ApacheKafkaNode, dict[str, str]]:
    """Apache Kafka with the same three listeners (its controller listener stays PLAINTEXT)."""
    ports, controller = {name: free_port() for name in LISTENERS}, free_port()
    listeners = listener_settings(ports)
    overrides = {
        "listeners": f"{listeners},CONTROLLER://127.0.0.1:{controller}", "advertised.listeners": listeners,
        "listener.security.protocol.map": ",".join(f"{n}:{n}" for n in LISTENERS) + ",CONTROLLER:PLAINTEXT",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        **ssl_settings(certs), **RETENTION_CHECK}
    node = ApacheKafkaNode(tmp / "apache-kafka", port=ports["PLAINTEXT"], controller_port=controller, heap=heap,
                           overrides=overrides)
    return node, {n: f"127.0.0.1:{p}" for n, p in ports.items()}


def add_scram_user(bootstraps: dict[str, str], config: dict) -> None:
    """AlterUserScramCredentials over the wire, then wait until the SASL_SSL listener accepts the user
    (Apache Kafka's broker learns it from the controller's metadata log a moment later)."""
    A, salt = m.AlterUserScramCredentialsRequest, os.urandom(16)
    with BrokerConnection.to(bootstraps["PLAINTEXT"]) as conn:
        response = conn.request(A(upsertions=[A.ScramCredentialUpsertion(
            name="bench", mechanism=SCRAM_SHA_512.type, iterations=4096, salt=salt,
            salted_password=hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 4096))]))
    assert all(r.error_code == ErrorCode.NONE for r in response.results), response
    security = ClientSecurity.from_properties(config)

    def authenticates() -> bool:
        try:
            BrokerConnection.to(bootstraps["SASL_SSL"], security=security).close()
            return True
        except BrokerUnreachable:
            return False

    wait_until(authenticates, "the SCRAM user to authenticate", timeout=30, interval=0.2)


def cpu_seconds(pid: int) -> tuple[float, float, float]:
    """(broker user, broker system, this process's user+system) CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick, ours = os.sysconf("SC_CLK_TCK"), os.times()
    return int(fields[11]) / tick, int(fields[12]) / tick, ours.user + ours.system


def producer(bootstrap: str, config: dict) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20, "acks": 1, **config})


def send(p: Producer, topic: str) -> None:
    while True:
        try:
            return p.produce(topic, VALUE)
        except BufferError:
            p.poll(0.01)


def warm_up(bootstraps: dict[str, str], configs: dict[str, dict], topics: dict[str, str]) -> None:
    """Unmeasured: each listener sends retention.bytes and two segments more, until retention has
    deleted from every log (its page cache recycles from then on); a JVM compiles its hot paths."""
    for name, topic in topics.items():
        p = producer(bootstraps[name], configs[name])
        for _ in range(WARM_UP_RECORDS):
            send(p, topic)
        assert p.flush(60) == 0, "records left unacknowledged after 60 s"
    c = Consumer({"bootstrap.servers": bootstraps["PLAINTEXT"], "group.id": "bench-warm-up"})
    for topic in topics.values():
        wait_until(lambda t=topic: c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)[0] > 0,
                   f"retention to delete from {topic}", timeout=30)
    c.close()


def produce(bootstrap: str, config: dict, topic: str, seconds: float, pid: int) -> dict[str, float]:
    p = producer(bootstrap, config)
    sent = 0
    before, start = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - start < seconds:
        send(p, topic)
        sent += 1
    assert p.flush(60) == 0, "records left unacknowledged after 60 s"
    elapsed, (user, system, client) = time.monotonic() - start, map(sub, cpu_seconds(pid), before)
    mb = sent * len(VALUE) / 1e6
    return {"produce_mb_s": mb / elapsed, "broker_produce_cpu_ms_per_mb": (user + system) * 1e3 / mb,
            "broker_produce_sys_ms_per_mb": system * 1e3 / mb, "client_produce_cpu_ms_per_mb": client * 1e3 / mb}


def consume(bootstrap: str, config: dict, topic: str, seconds: float, pid: int) -> dict[str, float]:
    """Read the newest records the log holds, up to RETAINED of them (retention deletes only what lies
    beyond retention.bytes, so none of them goes), again and again for `seconds`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}", "enable.auto.commit": False,
                  "fetch.queue.backoff.ms": 1, "fetch.wait.max.ms": 5, **config})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)  # connected and authenticated here
    first = max(low, high - RETAINED)
    read = 0
    before, start = cpu_seconds(pid), time.monotonic()
    c.assign([TopicPartition(topic, 0, first)])
    while True:
        last, deadline = first - 1, time.monotonic() + CONSUMER_DEADLINE_S
        while last < high - 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic}: read up to offset {last} of {first}..{high - 1} in "
                                   f"{CONSUMER_DEADLINE_S:.0f} s")
            for msg in c.consume(min(10_000, high - 1 - last), 1.0):  # more would wait out the timeout
                if msg.error() is None:
                    read += 1
                    last = msg.offset()
        if time.monotonic() - start >= seconds:
            break
        c.seek(TopicPartition(topic, 0, first))
    elapsed, (user, system, client) = time.monotonic() - start, map(sub, cpu_seconds(pid), before)
    c.close()
    mb = read * len(VALUE) / 1e6
    return {"consume_mb_s": mb / elapsed, "consumed_mb": mb, "broker_consume_cpu_ms_per_mb": (user + system) * 1e3 / mb,
            "client_consume_cpu_ms_per_mb": client * 1e3 / mb}


def scram_auths_per_s(bootstrap: str, config: dict, seconds: float = 3.0) -> float:
    security = ClientSecurity.from_properties(config)
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        BrokerConnection.to(bootstrap, security=security).close()
        n += 1
    return n / (time.monotonic() - start)


def throughput(bootstraps: dict[str, str], configs: dict[str, dict], pid: int, rounds: int, seconds: float) -> dict:
    """The listeners one after the other, `rounds` times; each figure is the median over the rounds."""
    add_scram_user(bootstraps, configs["SASL_SSL"])
    topics = {name: f"bench-{name.lower()}" for name in LISTENERS}
    admin = AdminClient({"bootstrap.servers": bootstraps["PLAINTEXT"]})
    for future in admin.create_topics([NewTopic(t, 1, 1, config=TOPIC_CONFIG) for t in topics.values()]).values():
        future.result(30)
    warm_up(bootstraps, configs, topics)
    per_round = [{name: {**produce(bootstraps[name], configs[name], topics[name], seconds, pid),
                         **consume(bootstraps[name], configs[name], topics[name], seconds, pid)}
                  for name in LISTENERS} for _ in range(rounds)]
    median = {key: {name: round(statistics.median(r[name][key] for r in per_round), 2) for name in LISTENERS}
              for key in per_round[0]["PLAINTEXT"]}
    produced, consumed = median["produce_mb_s"], median["consume_mb_s"]
    auths = scram_auths_per_s(bootstraps["SASL_SSL"], configs["SASL_SSL"])  # TLS handshake included
    return {
        "produce_mb_s": produced, "consume_mb_s": consumed,
        "tls_produce_ratio": round(produced["SSL"] / produced["PLAINTEXT"], 2),
        "tls_consume_ratio": round(consumed["SSL"] / consumed["PLAINTEXT"], 2),
        "sasl_ssl_produce_ratio": round(produced["SASL_SSL"] / produced["PLAINTEXT"], 2),
        "sasl_ssl_consume_ratio": round(consumed["SASL_SSL"] / consumed["PLAINTEXT"], 2),
        "target_ratio": 0.5, "scram_auths_per_s": round(auths, 1),
        **{key: value for key, value in median.items() if key not in ("produce_mb_s", "consume_mb_s")},
        "rounds": [{name: {k: round(v, 2) for k, v in r[name].items()} for name in LISTENERS} for r in per_round],
    }


def brokers(rounds: int, seconds: float, kafka: bool, heap: str) -> dict:
    """kafka-compat, then (unless told not to) Apache Kafka, never both at once."""
    out = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        certs = dev_certs(tmp / "certs", ["localhost", "127.0.0.1"], [], PASSWORD)
        configs = client_configs(certs["ca.pem"])
        broker, bootstraps = our_broker(tmp, certs)
        with broker:
            out.update(throughput(bootstraps, configs, broker.proc.pid, rounds, seconds))
        if kafka:
            node, bootstraps = kafka_broker(tmp, certs, heap)
            with node:
                out["apache_kafka"] = throughput(bootstraps, configs, node.proc.pid, rounds, seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acls", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="Producing time per listener and round.")
    ap.add_argument("--rounds", type=int, default=2, help="Rounds of the three listeners, one after the other.")
    ap.add_argument("--no-apache-kafka", action="store_true", help="measure kafka-compat alone")
    ap.add_argument("--apache-kafka-heap", default="1g", help="Apache Kafka's JVM heap (-Xms and -Xmx)")
    args = ap.parse_args()
    wire = brokers(args.rounds, args.seconds, not args.no_apache_kafka, args.apache_kafka_heap)
    rng = random.Random(14)
    records = acl_records(args.acls, rng)
    image = MetadataImage(cluster_id="bench").apply(records, len(records) - 1)
    names = [f"topic-{i}" for i in range(1000)] + [f"team-{i}-orders" for i in range(97)] + ["other"]
    questions = [(f"User:p{rng.randrange(12)}", f"10.0.0.{rng.randrange(9)}", rng.choice((Op.WRITE, Op.READ,
                                                                                          Op.DESCRIBE)),
                  rng.choice(names)) for _ in range(args.decisions)]
    authorizer = Authorizer()
    acls = image.acls

    def decide(principal, host, op, name):
        return authorizer.authorize(acls, principal, host, op, Res.TOPIC, name)

    timed(decide, questions[:10_000])  # warm up
    ours = timed(decide, questions)
    peer = timed(lambda p, h, o, n: scan(acls, p, h, o, n), questions[: max(1, args.decisions // 100)])
    print(json.dumps({
        "bench": "security", **wire, "acls": len(acls), "decisions": len(ours),
        "authorize_p50_us": round(percentile(ours, 0.5), 2), "authorize_p99_us": round(percentile(ours, 0.99), 2),
        "target_p99_us": 50,
        "peer": "scan", "peer_decisions": len(peer), "peer_p50_us": round(percentile(peer, 0.5), 1),
        "peer_p99_us": round(percentile(peer, 0.99), 1),
    }))


if __name__ == "__main__":
    main()
