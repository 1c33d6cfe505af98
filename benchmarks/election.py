"""Leader failover: how long a 3-node cluster is without a metadata quorum leader after kill -9.

The product: three `kafka-compat start` processes on loopback (process.roles=broker,controller,
each a voter of the metadata quorum). `--runs` times: kill -9 the quorum leader, poll the two
survivors' controller listeners (DescribeQuorum: each node's own Raft view) until both name the
same new leader in a newer epoch (that instant minus the kill is one figure), then send
CreateTopics to a surviving broker until the new controller commits it (the admin path works
again), restart the killed node, wait until it is back (registered, unfenced, following) and go
again. The peer, measured in the same run the same way: the Raft layer alone (three
`kafka_compat.testing.raft_peer` processes with a key/value state machine), which shows what the
broker around the quorum costs. Timeouts are KRaft's defaults (controller.quorum.fetch.timeout.ms
= 2000, election.timeout.ms = 1000): followers only suspect the leader once a fetch timeout
passes without a successful Fetch, so that bounds the figure below.

Prints one JSON line: {"bench": "election", "runs", "median_ms", "p90_ms", "min_ms", "max_ms",
"create_topics_after_kill_median_ms", "peer": "raft-standalone", "peer_median_ms", "peer_p90_ms",
"fetch_timeout_ms", "election_timeout_ms"}.

Usage: python benchmarks/election.py [--runs N] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from kafka_compat.client import BrokerConnection, BrokerUnreachable
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.raft_process import RaftQuorum


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def create_topic(port: int, name: str, timeout: float = 30.0) -> None:
    """CreateTopics to the broker on `port` until it succeeds (the broker forwards it)."""
    C = m.CreateTopicsRequest
    request = C(topics=[C.CreatableTopic(name=name, num_partitions=1, replication_factor=1)], timeout_ms=5000)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with BrokerConnection("127.0.0.1", port, timeout=10) as conn:
                result = conn.request(request, 5).topics[0]
            if result.error_code in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS):
                return
        except (BrokerUnreachable, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"CreateTopics {name} did not succeed within {timeout}s")
        time.sleep(0.005)


def kafka_compat_cluster(runs: int) -> tuple[list[float], list[float]]:
    failovers, creates = [], []
    with tempfile.TemporaryDirectory() as tmp, ClusterProcess(Path(tmp), 3) as cluster:
        leader, epoch = cluster.wait_for_leader(timeout=60)
        create_topic(cluster[1].broker_port, "warmup")
        for run in range(runs):
            survivors = [i for i in cluster.nodes if i != leader]
            killed_at = time.monotonic()
            cluster[leader].kill()
            new, epoch = cluster.wait_for_leader(survivors, newer_than=epoch, timeout=60, poll=0.005)
            failovers.append((time.monotonic() - killed_at) * 1000)
            create_topic(cluster[survivors[run % 2]].broker_port, f"run-{run}")
            creates.append((time.monotonic() - killed_at) * 1000)
            cluster[leader].start(timeout=60)  # back once registered and unfenced
            leader, epoch = cluster.wait_for_leader(timeout=60)
            time.sleep(0.5)  # let the restarted node settle into fetching before the next kill
            leader, epoch = cluster.wait_for_leader(timeout=60)
    return failovers, creates


def raft_standalone(runs: int) -> list[float]:
    failovers = []
    with tempfile.TemporaryDirectory() as tmp, RaftQuorum(Path(tmp), voters=3) as quorum:
        leader, epoch = quorum.wait_for_leader(timeout=30)
        quorum.propose("warmup=0")
        for run in range(runs):
            survivors = [i for i in quorum.nodes if i != leader]
            killed_at = time.monotonic()
            quorum[leader].kill()
            quorum.wait_for_leader(survivors, newer_than=epoch, timeout=30, poll=0.005)
            failovers.append((time.monotonic() - killed_at) * 1000)
            quorum.propose(f"run={run}")
            quorum[leader].start()
            leader, epoch = quorum.wait_for_leader(newer_than=epoch, timeout=30)
            time.sleep(0.5)
            leader, epoch = quorum.wait_for_leader(timeout=30)
    return failovers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--no-peer", action="store_true", help="skip the Raft-only peer measurement")
    args = ap.parse_args()
    failovers, creates = kafka_compat_cluster(args.runs)
    line = {
        "bench": "election", "target": "kafka-compat 3 x broker,controller", "runs": len(failovers),
        "median_ms": round(statistics.median(failovers), 1), "p90_ms": round(percentile(failovers, 0.9), 1),
        "min_ms": round(min(failovers), 1), "max_ms": round(max(failovers), 1),
        "create_topics_after_kill_median_ms": round(statistics.median(creates), 1),
    }
    if not args.no_peer:
        peer = raft_standalone(args.runs)
        line.update({"peer": "raft-standalone", "peer_median_ms": round(statistics.median(peer), 1),
                     "peer_p90_ms": round(percentile(peer, 0.9), 1)})
    line.update({"fetch_timeout_ms": 2000, "election_timeout_ms": 1000})
    print(json.dumps(line))


if __name__ == "__main__":
    main()
