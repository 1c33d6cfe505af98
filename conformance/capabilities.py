"""The client x capability table: which conformance scenarios show that a client does what.

One table, two renderings. `markdown()` is the table README.md carries (tests/test_capabilities.py
keeps them equal and checks that every scenario named here exists); the suite's terminal summary
prints `report(outcomes)` for the run that just ended, each cell saying whether its scenarios
passed. A cell names scenario files, or `file::prefix` for the tests of a file whose names start
with `test_<prefix>`.
"""

from __future__ import annotations

from dataclasses import dataclass

CLIENTS = {
    "java": "Java (kafka-clients 4.4.0)",
    "confluent": "confluent-kafka",
    "kafka_python": "kafka-python",
    "aiokafka": "aiokafka",
    "kafkajs": "KafkaJS",
    "kcat": "kcat",
    "franz_go": "franz-go",
    "sarama": "sarama",
    "tools": "Kafka tools 4.4.0",
}
# The file-name prefix of each client's scenarios (test_<prefix>_<capability>.py).
PREFIXES = {"java": "java", "confluent": "confluent_kafka", "kafka_python": "kafka_python", "aiokafka": "aiokafka",
            "kafkajs": "kafkajs", "kcat": "kcat", "franz_go": "franz_go", "sarama": "sarama"}


@dataclass(frozen=True)
class Cell:
    scenarios: tuple[str, ...]
    text: str = "yes"


def each(capability: str, clients: str, text: str = "yes") -> dict[str, Cell]:
    """The scenario file `test_<client>_<capability>.py` of each of `clients` (space-separated)."""
    return {c: Cell((f"test_{PREFIXES[c]}_{capability}.py",), text) for c in clients.split()}


def cell(text: str, *scenarios: str) -> Cell:
    return Cell(scenarios, text)


def yes(*scenarios: str) -> Cell:
    return Cell(scenarios)


ROWS: list[tuple[str, dict[str, Cell]]] = [
    ("produce: every codec, keys, headers, timestamps", {
        "java": yes("test_java_produce.py"),
        **each("compression", "confluent kafka_python aiokafka kcat franz_go sarama"),
        **each("compression", "kafkajs", "yes (no zstd)"),
        "tools": cell("console producer", "test_kafka_tools.py::console")}),
    ("idempotent producer, acks=all", {
        "java": cell("yes (default)", "test_java_produce.py"),
        **each("acks_all", "confluent kafka_python aiokafka kafkajs kcat"),
        **each("compression", "franz_go", "yes (default)"),
        **each("compression", "sarama")}),
    ("records over the size limit refused",
     each("too_large", "confluent kafka_python aiokafka kafkajs kcat franz_go sarama")),
    ("acknowledged records survive a broker restart", each("restart", "confluent kafka_python aiokafka kafkajs kcat")),
    ("replication (3 nodes, RF 3): acks=all survives kill -9 and SIGSTOP of leaders",
     each("replication", "confluent kafka_python kafkajs")),
    ("topics created on first use", each("auto_create", "confluent kafka_python aiokafka kafkajs kcat")),
    ("assign, seek, offsets by time", {
        "java": yes("test_java_assign.py"),
        **{c: yes(f"test_{PREFIXES[c]}_assign.py", f"test_{PREFIXES[c]}_seek.py")
           for c in ("confluent", "kafka_python", "aiokafka", "kcat")},
        **each("seek", "franz_go sarama"),
        **each("seek", "kafkajs", "offsets by time"),
        "tools": cell("kafka-get-offsets", "test_kafka_tools.py::topics_configs")}),
    ("classic groups (eager, cooperative)", {
        "java": yes("test_java_group.py::classic", "test_java_group.py::crashed"),
        **each("group", "confluent kafka_python aiokafka kafkajs franz_go sarama"),
        "tools": cell("console consumer", "test_kafka_tools.py::console")}),
    ("static membership", {"java": yes("test_java_group.py::static")}),
    ("KIP-848 `group.protocol=consumer`", {
        "java": yes("test_java_group.py::consumer_protocol"),
        **each("group_consumer_protocol", "confluent franz_go"),
        **each("group_consumer_protocol", "sarama", "none in sarama 1.61")}),
    ("committed offsets across broker restarts",
     each("group_offsets", "confluent kafka_python aiokafka kafkajs franz_go sarama")),
    ("group admin (describe, offsets, delete)", {
        "java": yes("test_java_admin.py::group_offsets"),
        **each("group_admin", "confluent kafka_python aiokafka kafkajs franz_go sarama"),
        "tools": cell("kafka-consumer-groups", "test_kafka_tools.py::console")}),
    ("topic and config admin", {
        "java": yes("test_java_admin.py::topic_lifecycle", "test_java_admin.py::configs"),
        **each("admin", "confluent kafka_python aiokafka kafkajs franz_go sarama"),
        **each("admin", "kcat", "metadata (-L)"),
        "tools": cell("kafka-topics, kafka-configs", "test_kafka_tools.py::topics_configs")}),
    ("transactions, read_committed", {
        "java": cell("yes (and Streams exactly_once_v2)", "test_java_transactions.py"),
        "confluent": cell("yes (and exactly once, killed -9)", "test_confluent_kafka_transactions.py",
                          "test_confluent_kafka_exactly_once.py"),
        **each("transactions", "kafka_python aiokafka kafkajs"),
        "tools": cell("kafka-transactions", "test_kafka_transactions_tool.py")}),
    ("records deletion, log dirs, quorum, features", {
        "java": yes("test_java_admin.py::records_offsets_and_cluster"),
        **each("admin", "franz_go sarama", "records deletion, log dirs"),
        "tools": cell("kafka-delete-records, -log-dirs, -metadata-quorum, -features",
                      "test_kafka_tools.py::topics_configs", "test_kafka_tools.py::cluster_tools")}),
    ("on-disk formats read by Kafka's own readers", {
        "tools": cell("kafka-dump-log, kafka-metadata-shell", "test_kafka_dump_log.py")}),
    ("security: SASL_SSL, mutual TLS, re-authentication, ACLs (other clients: tests/security)", {
        "java": cell("SCRAM-SHA-512, mTLS, re-auth, ACL admin", "test_java_security.py::java_clients",
                     "test_java_security.py::the_java"),
        "tools": cell("kafka-acls, kafka-configs (SCRAM users, listener truststore)", "test_java_security.py::kafka_",
                      "test_java_security.py::a_scram_user")}),
    ("Kafka Streams (at_least_once, restart, kill -9)", {"java": cell("Streams 4.4.0", "test_kafka_streams.py")}),
    ("Kafka Connect (distributed, FileStream connectors)", {"java": cell("Connect 4.3.1", "test_kafka_connect.py")}),
]


def markdown() -> str:
    """The table as README.md carries it."""
    lines = ["| capability | " + " | ".join(CLIENTS.values()) + " |", "|---" * (len(CLIENTS) + 1) + "|"]
    for capability, cells in ROWS:
        lines.append(f"| {capability} | " + " | ".join(cells[c].text if c in cells else "-" for c in CLIENTS) + " |")
    return "\n".join(lines) + "\n"


def matches(scenario: str, nodeid: str) -> bool:
    """Whether a test (its pytest node id) is one of a cell's scenarios."""
    path, _, name = nodeid.partition("::")
    file, _, prefix = scenario.partition("::")
    return path.rsplit("/", 1)[-1] == file and name.startswith(f"test_{prefix}")


def outcome(cell: Cell, outcomes: dict[str, str]) -> str:
    """A cell in a run: "ok" (its scenarios that ran passed), "FAIL", "skip" or "." (none ran)."""
    seen = {o for nodeid, o in outcomes.items() if any(matches(s, nodeid) for s in cell.scenarios)}
    if "failed" in seen:
        return "FAIL"
    return "ok" if "passed" in seen else "skip" if seen else "."


def report(outcomes: dict[str, str]) -> str:
    """The table for a run ({node id: "passed" | "failed" | "skipped"}) as plain text; empty if
    none of its scenarios ran."""
    short = {c: label.split(" (")[0].removesuffix(" 4.4.0") for c, label in CLIENTS.items()}
    width = max(len(r) for r, _ in ROWS)
    results = [(capability, [outcome(cells[c], outcomes) if c in cells else "-" for c in CLIENTS])
               for capability, cells in ROWS]
    if all(r in (".", "-") for _, row in results for r in row):
        return ""
    lines = [" " * width + "  " + " ".join(f"{short[c]:>4}" for c in CLIENTS)]
    lines += [f"{capability:<{width}}  " + " ".join(f"{r:>{max(len(short[c]), 4)}}" for c, r in zip(CLIENTS, row))
              for capability, row in results]
    return "\n".join(lines)
