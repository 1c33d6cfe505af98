"""`kafka-compat txn ...` against the session broker: a hanging transaction (a producer that
started one and went away) is listed, described, found among the partition's producers and
aborted, after which read_committed readers get past it."""

import pytest

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from tests.server.test_transactions import open_transaction

pytestmark = pytest.mark.timeout(60)


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.strip().splitlines()]


def read_committed_end(conn: BrokerConnection, topic: str) -> int:
    L = m.ListOffsetsRequest
    resp = conn.request(L(replica_id=-1, isolation_level=1, topics=[L.ListOffsetsTopic(name=topic, partitions=[
        L.ListOffsetsPartition(partition_index=0, timestamp=-1)])]), 5)
    return resp.topics[0].partitions[0].offset


def test_a_hanging_transaction_is_listed_described_and_aborted(broker, cli, unique):
    topic, txn_id = unique(), unique("hanging")
    with BrokerConnection.to(broker.bootstrap) as conn:
        pid, epoch = open_transaction(conn, txn_id, topic, b"left open")
        assert read_committed_end(conn, topic) == 0  # the last stable offset stops at the open transaction

        listed = cli("txn", "list")
        assert listed.code == 0, listed.stderr
        assert [txn_id, "1", str(pid), "Ongoing"] in rows(listed.stdout)

        described = cli("txn", "describe", txn_id)
        assert described.code == 0, described.stderr
        row = rows(described.stdout)[1]
        assert row[:5] == [txn_id, "1", str(pid), str(epoch), "Ongoing"] and row[-1] == f"{topic}-0"

        producers = cli("txn", "describe-producers", "--topic", topic, "--partition", "0")
        assert producers.code == 0, producers.stderr
        assert rows(producers.stdout)[1][0] == str(pid) and rows(producers.stdout)[1][-1] == "0"

        missing = cli("txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "5")
        assert missing.code == 1 and "no open transaction starts at offset 5" in missing.stderr

        aborted = cli("txn", "abort", "--topic", topic, "--partition", "0", "--start-offset", "0")
        assert aborted.code == 0, aborted.stderr
        assert read_committed_end(conn, topic) == 2  # the record and its ABORT marker
