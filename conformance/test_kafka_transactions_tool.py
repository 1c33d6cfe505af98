"""kafka-transactions.sh (Kafka's TransactionsCommand of the pinned release) against a hanging
transaction, one a producer started and left: `list` and `describe` at its coordinator,
`describe-producers` at the partition's leader, `find-hanging` on the broker, and `abort` with the
transaction's start offset, after which read_committed readers get past it."""

import pytest

from kafka_compat.client import BrokerConnection
from tests.cli.test_txn import read_committed_end
from tests.server.test_transactions import open_transaction

pytestmark = pytest.mark.timeout(120)


def table(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


def test_kafka_transactions_finds_and_aborts_a_hanging_transaction(broker, java, unique):
    b, topic, txn_id = broker.bootstrap, unique("hang"), unique("hanging")
    with BrokerConnection.to(b) as conn:
        pid, epoch = open_transaction(conn, txn_id, topic, b"left open")

        listed = table(java.tool("kafka-transactions", "--bootstrap-server", b, "list").stdout)
        assert listed[0][:4] == ["TransactionalId", "Coordinator", "ProducerId", "TransactionState"]
        assert [txn_id, "1", str(pid), "Ongoing"] in listed

        described = java.tool("kafka-transactions", "--bootstrap-server", b, "describe",
                              "--transactional-id", txn_id).stdout
        row = table(described)[1]
        assert row[:5] == ["1", txn_id, str(pid), str(epoch), "Ongoing"] and f"{topic}-0" in row

        producers = java.tool("kafka-transactions", "--bootstrap-server", b, "describe-producers",
                              "--topic", topic, "--partition", "0").stdout
        assert table(producers)[1][0] == str(pid) and table(producers)[1][-1] == "0"

        java.tool("kafka-transactions", "--bootstrap-server", b, "abort", "--topic", topic, "--partition", "0",
                  "--start-offset", "0")
        assert read_committed_end(conn, topic) == 2  # the record and its ABORT marker
