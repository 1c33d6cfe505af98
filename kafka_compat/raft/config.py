"""The quorum's configuration, under KRaft's `controller.quorum.*` names and with its defaults.

Static voters come from `controller.quorum.voters` (`id@host:port,...`); observers (and voters that
know no voter set) can find the leader through `controller.quorum.bootstrap.servers`
(`host:port,...`, KIP-853). Bootstrap servers have no known node id, so they are addressed by the
negative ids -2, -3, ... (Kafka does the same), which the driver maps to their addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

VOTERS = "controller.quorum.voters"


class Endpoint(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _host_port(text: str) -> Endpoint:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {text!r}")
    return Endpoint(host.strip("[]"), int(port))


def parse_voters(text: str) -> dict[int, Endpoint]:
    """`1@h1:9093,2@h2:9093` -> {1: Endpoint('h1', 9093), ...}; ValueError on anything else."""
    voters: dict[int, Endpoint] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        node, at, address = item.partition("@")
        if not at or not node.strip().isdigit():
            raise ValueError(f"expected id@host:port in {VOTERS}, got {item!r}")
        if int(node) in voters:
            raise ValueError(f"voter {node} appears twice in {VOTERS}")
        voters[int(node)] = _host_port(address)
    return voters


def parse_bootstrap_servers(text: str) -> dict[int, Endpoint]:
    """`h1:9093,h2:9093` -> {-2: Endpoint('h1', 9093), -3: ...}."""
    servers = [_host_port(s) for s in text.split(",") if s.strip()]
    return {-2 - i: ep for i, ep in enumerate(servers)}


@dataclass(frozen=True)
class QuorumConfig:
    """Timeouts in milliseconds, the voter set and the addresses the node knows.

    `voters` are the node ids allowed to vote; `endpoints` maps ids (voters and bootstrap servers)
    to their controller listener. A node whose id is not a voter is an observer.
    """

    voters: frozenset[int]
    endpoints: Mapping[int, Endpoint] = field(default_factory=dict)
    bootstrap: tuple[int, ...] = ()
    election_timeout_ms: int = 1000
    fetch_timeout_ms: int = 2000
    election_backoff_max_ms: int = 1000
    request_timeout_ms: int = 2000
    retry_backoff_ms: int = 20
    # How long a leader parks a Fetch that has nothing new to return (KRaft's fetch max wait).
    fetch_max_wait_ms: int = 500
    fetch_max_bytes: int = 8 * 1024 * 1024
    snapshot_chunk_bytes: int = 1024 * 1024
    # A leader forgets an observer it has not heard from for this long (DescribeQuorum stops listing it).
    observer_session_timeout_ms: int = 300_000
    cluster_id: str | None = None
    listener_name: str = "CONTROLLER"

    @property
    def majority(self) -> int:
        return len(self.voters) // 2 + 1
