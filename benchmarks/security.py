"""Security costs. Now: the authorizer's decision time with 10,000 ACLs (the TLS and SASL throughput
figures join this line when listeners speak them).

The ACLs are applied as AccessControlEntryRecords to a metadata image, as a broker gets them, no
two alike (as the controller keeps them): literal ALLOW ACLs on 1,000 topics for ten principals
(WRITE, READ or DESCRIBE, some from one host), PREFIXED ACLs on prefixes of 2 to 12 characters, DENY
ACLs, group ACLs and wildcard ACLs. Decisions ask random (principal, host, operation, topic)
questions over the 1,000 topics and ~100 names that only prefixes cover; each is timed alone. The
peer, measured in the same run on the same ACLs and questions: a decision that scans every ACL (what
an authorizer without an index costs).

Prints one JSON line: {"bench": "security", "acls", "decisions", "authorize_p50_us",
"authorize_p99_us", "target_p99_us": 50, "peer": "scan", "peer_p50_us", "peer_p99_us"}.

Usage: python benchmarks/security.py [--acls N] [--decisions N]
"""

from __future__ import annotations

import argparse
import json
import random
import time

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.security.acls import AclOperation as Op
from kafka_compat.security.acls import AclPermissionType as Perm
from kafka_compat.security.acls import PatternType as Pat
from kafka_compat.security.acls import ResourceType as Res
from kafka_compat.security.authorizer import Authorizer


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acls", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=200_000)
    args = ap.parse_args()
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
        "bench": "security", "acls": len(acls), "decisions": len(ours),
        "authorize_p50_us": round(percentile(ours, 0.5), 2), "authorize_p99_us": round(percentile(ours, 0.99), 2),
        "target_p99_us": 50,
        "peer": "scan", "peer_decisions": len(peer), "peer_p50_us": round(percentile(peer, 0.5), 1),
        "peer_p99_us": round(percentile(peer, 0.99), 1),
    }))


if __name__ == "__main__":
    main()
