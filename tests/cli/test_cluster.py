"""`kafka-compat cluster info`, and --help on every command."""

from __future__ import annotations

import pytest

from kafka_compat.client import Cluster


def test_cluster_info_through_the_executable(cli, broker):
    with Cluster(broker.bootstrap) as c:
        meta = c.metadata(None)
    r = cli("cluster", "info")
    assert r.code == 0, r.stderr
    summary, brokers = r.stdout.split("\n\n")
    row = summary.splitlines()[2].split()
    assert row[:3] == [meta.cluster_id, str(meta.controller_id), "1"]
    assert brokers.splitlines()[2].split() == [f"{meta.controller_id}*", "127.0.0.1", str(broker.port), "-"]


def test_cluster_info_of_an_unreachable_cluster(invoke):
    r = invoke("cluster", "info", brokers="127.0.0.1:1,127.0.0.1:2")
    assert r.code == 1
    assert r.stderr.strip() == ("error: cannot connect to any bootstrap broker: cannot connect to 127.0.0.1:1: "
                                "Connection refused; cannot connect to 127.0.0.1:2: Connection refused")


@pytest.mark.parametrize("command", [
    [], ["topic"], ["topic", "create"], ["topic", "list"], ["topic", "describe"], ["topic", "delete"],
    ["topic", "alter-config"], ["topic", "add-partitions"], ["produce"], ["consume"], ["cluster"], ["cluster", "info"],
    ["quorum"], ["quorum", "describe"],
])
def test_help(invoke, command):
    r = invoke(*command, "--help")
    assert r.code == 0 and "Usage:" in r.stdout
    if command and command[-1] not in ("topic", "cluster", "quorum"):
        assert "KAFKA_COMPAT_BROKERS" in r.stdout or "--brokers" in r.stdout
