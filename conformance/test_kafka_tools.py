"""Kafka's own command-line tools (the bin/kafka-*.sh main classes of the pinned release, run in the
scenario driver's JVM) against the broker, their output read as an operator reads it: kafka-topics
(create with a config, the refusal of RF 3 on one broker, list, describe, add partitions, delete),
kafka-configs (describe with synonyms, add and delete topic configs, a cluster-wide broker default),
kafka-console-producer and -consumer (keys, a consumer group), kafka-consumer-groups (list, describe
with lag, --state, reset-offsets to earliest and by shift, delete-offsets, delete), kafka-get-
offsets (latest, earliest, by time), kafka-delete-records, kafka-metadata-quorum (status with the
voters' controller endpoints, and replication), kafka-log-dirs, kafka-broker-api-versions,
kafka-features (metadata.version from Kafka 4's lowest, 3.3-IV3), kafka-cluster cluster-id and
kafka-reassign-partitions --generate. kafka-leader-election and kafka-reassign-partitions
--execute need ElectLeaders and AlterPartitionReassignments, which are not served yet: they fail
with the client's UnsupportedVersionException."""

import json
import re

import pytest

from conformance.support import now_ms
from kafka_compat.testing.broker_process import BrokerProcess, free_port

pytestmark = pytest.mark.timeout(180)


def table(text: str) -> list[dict[str, str]]:
    """The rows of a kafka-consumer-groups table (header line, then whitespace-separated columns)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    header = lines[0].split()
    return [dict(zip(header, ln.split())) for ln in lines[1:]]


def test_topics_configs_and_offsets(broker, java, unique, tmp_path):
    b, t = broker.bootstrap, unique("tool-topic")
    out = java.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t, "--partitions", "3",
                     "--config", "retention.ms=3600000").stdout
    assert f"Created topic {t}." in out
    refused = java.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t + "-rf3",
                        "--replication-factor", "3", check=False)
    assert refused.returncode == 1 and "InvalidReplicationFactorException" in refused.stderr
    assert "Error while executing topic command : Unable to replicate the partition 3 time(s)" in refused.stdout
    assert t in java.tool("kafka-topics", "--bootstrap-server", b, "--list").stdout.split()

    described = java.tool("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", t).stdout
    summary, *parts = [ln for ln in described.splitlines() if ln.strip()]
    assert re.match(rf"Topic: {t}\tTopicId: \S+\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: "
                    r".*retention.ms=3600000", summary), summary
    node = java.tool("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--status").stdout
    leader = re.search(r"LeaderId:\s+(\d+)", node)[1]
    assert [ln.split("\t")[1:] for ln in parts] == [
        [f"Topic: {t}", f"Partition: {p}", f"Leader: {leader}", f"Replicas: {leader}", f"Isr: {leader}",
         "Elr: ", "LastKnownElr: "] for p in range(3)]

    java.tool("kafka-topics", "--bootstrap-server", b, "--alter", "--topic", t, "--partitions", "4")
    assert "PartitionCount: 4" in java.tool("kafka-topics", "--bootstrap-server", b, "--describe", "--topic", t).stdout

    cfg = ["--bootstrap-server", b, "--entity-type", "topics", "--entity-name", t]
    java.tool("kafka-configs", *cfg, "--alter", "--add-config", "cleanup.policy=[compact,delete],retention.bytes=1000")
    java.tool("kafka-configs", *cfg, "--alter", "--delete-config", "retention.bytes")
    out = java.tool("kafka-configs", *cfg, "--describe").stdout
    assert f"Dynamic configs for topic {t} are:" in out
    assert "  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=3600000}" in out
    assert ("  cleanup.policy=compact,delete sensitive=false synonyms={"
            "DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}") in out
    assert "retention.bytes" not in out

    # a cluster-wide broker default (set to Kafka's default value: other scenarios share this broker)
    brokers = ["--bootstrap-server", b, "--entity-type", "brokers", "--entity-default"]
    java.tool("kafka-configs", *brokers, "--alter", "--add-config", "log.cleaner.delete.retention.ms=86400000")
    out = java.tool("kafka-configs", *brokers, "--describe").stdout
    assert "log.cleaner.delete.retention.ms=86400000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:" in out
    java.tool("kafka-configs", *brokers, "--alter", "--delete-config", "log.cleaner.delete.retention.ms")
    assert "log.cleaner.delete.retention.ms" not in java.tool("kafka-configs", *brokers, "--describe").stdout

    # records in by the console producer (partition 0: parse.key), then the offsets of the log
    before = now_ms()
    java.tool("kafka-console-producer", "--bootstrap-server", b, "--topic", t, "--reader-property", "parse.key=true",
              "--reader-property", "key.separator=:", "--command-property",
              "partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner",
              input=b"".join(b"k%d:v%d\n" % (i, i) for i in range(8)))
    latest = java.tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t).stdout.split()
    assert sorted(latest) == [f"{t}:{p}:2" for p in range(4)]
    earliest = java.tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-2").stdout.split()
    assert sorted(earliest) == [f"{t}:{p}:0" for p in range(4)]
    by_time = java.tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", str(before - 60_000))
    assert sorted(by_time.stdout.split()) == [f"{t}:{p}:0" for p in range(4)]

    plan = tmp_path / "delete.json"
    plan.write_text(json.dumps({"partitions": [{"topic": t, "partition": 0, "offset": 1}], "version": 1}))
    deleted = java.tool("kafka-delete-records", "--bootstrap-server", b, "--offset-json-file", str(plan)).stdout
    assert f"partition: {t}-0\tlow_watermark: 1" in deleted
    assert f"{t}:0:1" in java.tool("kafka-get-offsets", "--bootstrap-server", b, "--topic", t, "--time", "-2").stdout

    java.tool("kafka-topics", "--bootstrap-server", b, "--delete", "--topic", t)


def test_console_clients_and_consumer_groups(broker, java, unique):
    b, t, g = broker.bootstrap, unique("tool-grp"), unique("tool-grp")
    java.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t, "--partitions", "2")
    lines = [f"key{i}:value{i}" for i in range(10)]
    java.tool("kafka-console-producer", "--bootstrap-server", b, "--topic", t, "--reader-property", "parse.key=true",
               "--reader-property", "key.separator=:", input="\n".join(lines).encode() + b"\n")
    consumed = java.tool("kafka-console-consumer", "--bootstrap-server", b, "--topic", t, "--group", g,
                          "--from-beginning", "--max-messages", "10", "--timeout-ms", "30000",
                          "--formatter-property", "print.key=true", "--formatter-property", "print.partition=true")
    rows = [ln.split("\t") for ln in consumed.stdout.splitlines()]
    assert sorted((k, v) for _, k, v in rows) == sorted(tuple(ln.split(":")) for ln in lines)
    assert "Processed a total of 10 messages" in consumed.stderr
    per_partition = {p: sum(1 for r in rows if r[0] == f"Partition:{p}") for p in (0, 1)}

    cg = ["--bootstrap-server", b, "--group", g]
    assert g in java.tool("kafka-consumer-groups", "--bootstrap-server", b, "--list").stdout.split()
    described = java.tool("kafka-consumer-groups", *cg, "--describe")
    assert f"Consumer group '{g}' has no active members." in described.stderr
    assert [(r["PARTITION"], r["CURRENT-OFFSET"], r["LOG-END-OFFSET"], r["LAG"]) for r in table(described.stdout)] == \
        [(str(p), str(n), str(n), "0") for p, n in per_partition.items()]
    [state] = table(java.tool("kafka-consumer-groups", *cg, "--describe", "--state").stdout)
    assert (state["STATE"], state["#MEMBERS"]) == ("Empty", "0")

    reset = java.tool("kafka-consumer-groups", *cg, "--reset-offsets", "--topic", t, "--to-earliest", "--execute")
    assert sorted((r["PARTITION"], r["NEW-OFFSET"]) for r in table(reset.stdout)) == [("0", "0"), ("1", "0")]
    lag = {r["PARTITION"]: r["LAG"] for r in table(java.tool("kafka-consumer-groups", *cg, "--describe").stdout)}
    assert lag == {str(p): str(n) for p, n in per_partition.items()}
    shifted = java.tool("kafka-consumer-groups", *cg, "--reset-offsets", "--topic", f"{t}:0", "--shift-by", "1",
                         "--execute")
    assert [(r["PARTITION"], r["NEW-OFFSET"]) for r in table(shifted.stdout)] == [("0", "1")]

    out = java.tool("kafka-consumer-groups", *cg, "--delete-offsets", "--topic", f"{t}:1").stdout
    assert re.search(rf"{t}\s+1\s+Successful", out), out
    out = java.tool("kafka-consumer-groups", *cg, "--delete").stdout
    assert f"Deletion of requested consumer groups ('{g}') was successful." in out
    assert g not in java.tool("kafka-consumer-groups", "--bootstrap-server", b, "--list").stdout.split()


def test_cluster_tools(broker, java, unique, tmp_path):
    b, t = broker.bootstrap, unique("tool-cluster")
    java.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t, "--partitions", "2")
    status = java.tool("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--status").stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))
    assert fields["LeaderEpoch"].isdigit() and int(fields["HighWatermark"]) > 0
    assert json.loads(fields["CurrentVoters"])[0]["id"] == int(fields["LeaderId"])
    replication = java.tool("kafka-metadata-quorum", "--bootstrap-server", b, "describe", "--replication").stdout
    [row] = table(replication)
    assert (row["NodeId"], row["Lag"], row["Status"]) == (fields["LeaderId"], "0", "Leader")

    cluster_id = java.tool("kafka-cluster", "cluster-id", "--bootstrap-server", b).stdout.strip()
    assert cluster_id == f"Cluster ID: {fields['ClusterId']}"

    dirs = java.tool("kafka-log-dirs", "--bootstrap-server", b, "--describe", "--topic-list", t).stdout
    report = json.loads(dirs.splitlines()[-1])
    [entry] = report["brokers"]
    [log_dir] = entry["logDirs"]
    assert log_dir["error"] is None
    assert sorted(p["partition"] for p in log_dir["partitions"]) == [f"{t}-0", f"{t}-1"]

    versions = java.tool("kafka-broker-api-versions", "--bootstrap-server", b).stdout
    assert re.search(r"Produce\(0\): \d+ to \d+ \[usable: \d+\]", versions)
    assert re.search(r"ConsumerGroupHeartbeat\(68\): \d+ to \d+ \[usable: \d+\]", versions)
    features = java.tool("kafka-features", "--bootstrap-server", b, "describe").stdout
    assert re.search(r"Feature: metadata.version\s+SupportedMinVersion: 3.3-IV3\s+SupportedMaxVersion: \d\.\d+-IV\d"
                     r"\s+FinalizedVersionLevel: \d\.\d+-IV\d", features), features  # 3.3-IV3: Kafka 4's lowest

    move = tmp_path / "move.json"
    move.write_text(json.dumps({"topics": [{"topic": t}], "version": 1}))
    generated = java.tool("kafka-reassign-partitions", "--bootstrap-server", b, "--generate",
                           "--topics-to-move-json-file", str(move), "--broker-list", fields["LeaderId"]).stdout
    proposed = json.loads(generated.split("Proposed partition reassignment configuration")[1])
    assert [(p["topic"], p["partition"], p["replicas"]) for p in proposed["partitions"]] == \
        [(t, 0, [int(fields["LeaderId"])]), (t, 1, [int(fields["LeaderId"])])]


def test_metadata_quorum_shows_the_voters_controller_endpoint(java, tmp_path):
    """A single node with a controller listener (and no controller.quorum.voters) shows it as its
    voter endpoint, as Kafka's combined node does."""
    port, controller = free_port(), free_port()
    node = BrokerProcess(tmp_path, port, overrides={
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"}).start()
    try:
        status = java.tool("kafka-metadata-quorum", "--bootstrap-server", node.bootstrap, "describe", "--status").stdout
    finally:
        node.stop()
    voters = json.loads(dict(re.findall(r"^(\w+):\s+(.*)$", status, re.M))["CurrentVoters"])
    assert voters == [{"id": 1, "endpoints": [f"CONTROLLER://127.0.0.1:{controller}"]}]


def test_leader_election_and_reassignment_tools(broker, java, unique, tmp_path):
    b, t = broker.bootstrap, unique("tool-elect")
    java.tool("kafka-topics", "--bootstrap-server", b, "--create", "--topic", t)
    elect = java.tool("kafka-leader-election", "--bootstrap-server", b, "--election-type", "preferred",
                      "--topic", t, "--partition", "0")
    assert f"Valid replica already elected for partitions {t}-0" in elect.stdout
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": t, "partition": 0, "replicas": [1]}]}))
    execute = java.tool("kafka-reassign-partitions", "--bootstrap-server", b, "--execute",
                        "--reassignment-json-file", str(plan))
    assert f"Successfully started partition reassignment for {t}-0" in execute.stdout
    # --preserve-throttles: replication throttles (KIP-73, leader/follower.replication.throttled.rate)
    # are not built, so the tool's clearing of them would be refused.
    verify = java.tool("kafka-reassign-partitions", "--bootstrap-server", b, "--verify", "--preserve-throttles",
                       "--reassignment-json-file", str(plan))
    assert f"Reassignment of partition {t}-0 is completed." in verify.stdout
