"""Leader failover: how long a 3-voter quorum of real processes is without a known leader.

Starts three `kafka_compat.raft.standalone` processes on loopback, then `--runs` times: kill -9
the leader, poll the two survivors until both name the same new leader in a newer epoch (that
instant minus the kill is one figure), commit a record through the new leader, restart the
killed process and wait until all three agree again. Default timeouts are KRaft's
(controller.quorum.fetch.timeout.ms=2000, election.timeout.ms=1000): followers only suspect the
leader once a fetch timeout passes without a successful Fetch, so that bounds the figure below.

Prints one JSON line: {"bench": "election", "runs", "median_ms", "p90_ms", "min_ms", "max_ms",
"commit_after_election_median_ms", "fetch_timeout_ms", "election_timeout_ms"}.

Usage: python benchmarks/election.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from kafka_compat.testing.raft_process import RaftQuorum


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    failovers, commits = [], []
    with tempfile.TemporaryDirectory() as tmp, RaftQuorum(Path(tmp), voters=3) as quorum:
        leader, epoch = quorum.wait_for_leader(timeout=30)
        quorum.propose("warmup=0")
        for run in range(args.runs):
            survivors = [i for i in quorum.nodes if i != leader]
            killed_at = time.monotonic()
            quorum[leader].kill()
            new, new_epoch = quorum.wait_for_leader(survivors, newer_than=epoch, timeout=30, poll=0.005)
            failovers.append((time.monotonic() - killed_at) * 1000)
            started = time.monotonic()
            quorum.propose(f"run={run}")
            commits.append((time.monotonic() - started) * 1000)
            quorum[leader].start()
            leader, epoch = quorum.wait_for_leader(newer_than=epoch, timeout=30)
            time.sleep(0.5)  # let the restarted node settle into fetching before the next kill
            leader, epoch = quorum.wait_for_leader(timeout=30)
    print(json.dumps({
        "bench": "election", "runs": len(failovers),
        "median_ms": round(statistics.median(failovers), 1), "p90_ms": round(percentile(failovers, 0.9), 1),
        "min_ms": round(min(failovers), 1), "max_ms": round(max(failovers), 1),
        "commit_after_election_median_ms": round(statistics.median(commits), 1),
        "fetch_timeout_ms": 2000, "election_timeout_ms": 1000,
    }))


if __name__ == "__main__":
    main()
