"""Security costs: produce and consume throughput over TLS and SASL_SSL against plaintext (one broker
process with the three listeners, librdkafka as the client, the same run), SCRAM-SHA-512
authentications per second (connect, handshake, exchange, over the wire), and the authorizer's
decision time with 10,000 ACLs.

The ACLs are applied as AccessControlEntryRecords to a metadata image, as a broker gets them, no
two alike (as the controller keeps them): literal ALLOW ACLs on 1,000 topics for ten principals
(WRITE, READ or DESCRIBE, some from one host), PREFIXED ACLs on prefixes of 2 to 12 characters, DENY
ACLs, group ACLs and wildcard ACLs. Decisions ask random (principal, host, operation, topic)
questions over the 1,000 topics and ~100 names that only prefixes cover; each is timed alone. The
peer, measured in the same run on the same ACLs and questions: a decision that scans every ACL (what
an authorizer without an index costs).

Prints one JSON line: {"bench": "security", "produce_mb_s": {listener: MB/s}, "consume_mb_s": {...},
"tls_produce_ratio", "tls_consume_ratio", "sasl_ssl_produce_ratio", "sasl_ssl_consume_ratio",
"target_ratio": 0.5, "scram_auths_per_s", "acls", "decisions", "authorize_p50_us", "authorize_p99_us",
"target_p99_us": 50, "peer": "scan", "peer_p50_us", "peer_p99_us"}.

Usage: python benchmarks/security.py [--acls N] [--decisions N] [--seconds S]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_compat.cli.certs import dev_certs
from kafka_compat.client import BrokerConnection
from kafka_compat.client.security import ClientSecurity
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import AclPermissionType as Perm
from kafka_compat.security.acls import PatternType as Pat
from kafka_compat.security.acls import ResourceType as Res
from kafka_compat.security.authorizer import Authorizer
from kafka_compat.security.sasl.scram import SCRAM_SHA_512
from kafka_compat.testing.broker_process import BrokerProcess, free_port


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


def secure_broker(tmp: Path) -> tuple[BrokerProcess, dict[str, str], dict]:
    certs = dev_certs(tmp / "certs", ["localhost", "127.0.0.1"], [], PASSWORD)
    ports = {name: free_port() for name in LISTENERS}
    listeners = ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items())
    broker = BrokerProcess(tmp / "broker", port=ports["PLAINTEXT"], overrides={
        "listeners": listeners, "advertised.listeners": listeners,
        "ssl.keystore.type": "PKCS12", "ssl.keystore.location": str(certs["broker.p12"]),
        "ssl.keystore.password": PASSWORD, "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "log.retention.check.interval.ms": "300000"})
    ca = str(certs["ca.pem"])
    configs = {"PLAINTEXT": {}, "SSL": {"security.protocol": "SSL", "ssl.ca.location": ca},
               "SASL_SSL": {"security.protocol": "SASL_SSL", "ssl.ca.location": ca, "sasl.mechanism": "SCRAM-SHA-512",
                            "sasl.username": "bench", "sasl.password": PASSWORD}}
    return broker, {n: f"127.0.0.1:{p}" for n, p in ports.items()}, configs


def add_scram_user(bootstrap: str) -> None:
    A, salt = m.AlterUserScramCredentialsRequest, os.urandom(16)
    with BrokerConnection.to(bootstrap) as conn:
        conn.request(A(upsertions=[A.ScramCredentialUpsertion(
            name="bench", mechanism=SCRAM_SHA_512.type, iterations=4096, salt=salt,
            salted_password=hashlib.pbkdf2_hmac("sha512", PASSWORD.encode(), salt, 4096))]))


def produce_mb_s(bootstrap: str, config: dict, topic: str, seconds: float) -> tuple[float, int]:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "batch.size": 1 << 20, "acks": 1, **config})
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            p.produce(topic, VALUE)
            sent += 1
        except BufferError:
            p.poll(0.01)
    p.flush(60)
    return sent * len(VALUE) / (time.monotonic() - start) / 1e6, sent


def consume_mb_s(bootstrap: str, config: dict, topic: str, expected: int) -> float:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, **config})
    c.subscribe([topic])
    got, start, deadline = 0, None, time.monotonic() + 120
    while got < expected and time.monotonic() < deadline:
        for msg in c.consume(10_000, 1.0):
            if msg.error() is None:
                start = start or time.monotonic()
                got += 1
    elapsed = time.monotonic() - (start or time.monotonic())
    c.close()
    return got * len(VALUE) / max(elapsed, 1e-9) / 1e6


def scram_auths_per_s(bootstrap: str, config: dict, seconds: float = 3.0) -> float:
    security = ClientSecurity.from_properties(config)
    n, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        BrokerConnection.to(bootstrap, security=security).close()
        n += 1
    return n / (time.monotonic() - start)


def throughput(seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        broker, bootstraps, configs = secure_broker(Path(tmp))
        with broker:
            add_scram_user(bootstraps["PLAINTEXT"])
            produced, consumed = {}, {}
            for name in LISTENERS:
                topic = f"bench-{name.lower()}"
                admin = AdminClient({"bootstrap.servers": bootstraps["PLAINTEXT"]})
                admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
                produced[name], count = produce_mb_s(bootstraps[name], configs[name], topic, seconds)
                consumed[name] = consume_mb_s(bootstraps[name], configs[name], topic, count)
            auths = scram_auths_per_s(bootstraps["SASL_SSL"], configs["SASL_SSL"])  # TLS handshake included
    return {
        "produce_mb_s": {k: round(v, 1) for k, v in produced.items()},
        "consume_mb_s": {k: round(v, 1) for k, v in consumed.items()},
        "tls_produce_ratio": round(produced["SSL"] / produced["PLAINTEXT"], 2),
        "tls_consume_ratio": round(consumed["SSL"] / consumed["PLAINTEXT"], 2),
        "sasl_ssl_produce_ratio": round(produced["SASL_SSL"] / produced["PLAINTEXT"], 2),
        "sasl_ssl_consume_ratio": round(consumed["SASL_SSL"] / consumed["PLAINTEXT"], 2),
        "target_ratio": 0.5, "scram_auths_per_s": round(auths, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acls", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=200_000)
    ap.add_argument("--seconds", type=float, default=5.0, help="Producing time per listener.")
    args = ap.parse_args()
    wire = throughput(args.seconds)
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
