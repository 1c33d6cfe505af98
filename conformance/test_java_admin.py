"""The Java AdminClient, every call the broker serves, with the exception Kafka raises where a call
is refused: topics (create with configs, validate-only, manual assignment; the refusals for a
replication factor above the broker count, an existing topic, a bad name, unknown or malformed
configs, no partitions; list; describe by name and by id; add partitions; delete by name and by
id), configs (describe with synonyms, incremental SET/DELETE/APPEND), records deletion (and its
refusal on a compacted topic), listOffsets (earliest, latest, max timestamp, by time), the cluster,
log dirs, the metadata quorum, features, consumer groups (list, describe, committed offsets:
list, alter, delete; delete groups; a deleted group described raises GroupIdNotFoundException).
SCRAM users and quotas are described, ACLs refused with SecurityDisabledException (no authorizer).
The calls of APIs not served yet (feature updates) raise UnsupportedVersionException, which is what
the client raises for a broker that lacks the API. (Transactions and producers:
test_java_transactions.py.)"""

import pytest

from conformance.jvm import JavaError, records_arg
from conformance.support import create_topic, now_ms, sample_records, wait_until

pytestmark = pytest.mark.timeout(120)


def error(outcome) -> str | None:
    return outcome.get("error", {}).get("type")


def test_topic_lifecycle(broker, java, unique):
    t, ids = unique("java-adm"), {}
    created = java.call("admin.createTopics", topics=[
        {"name": t, "partitions": 2, "replicationFactor": 1, "configs": {"retention.ms": "3600000"}},
        {"name": t + "-rf3", "partitions": 1, "replicationFactor": 3},
        {"name": t + "-cfg", "configs": {"no.such.config": "1"}},
        {"name": t + "-val", "configs": {"retention.ms": "abc"}},
        {"name": t + "/bad", "partitions": 1},
        {"name": t + "-zero", "partitions": 0},
        {"name": t + "-manual", "assignments": {"0": [1], "1": [1], "2": [1]}},
    ])
    assert created[t]["value"]["partitions"] == 2 and created[t]["value"]["replicationFactor"] == 1
    assert created[t + "-manual"]["value"]["partitions"] == 3
    assert error(created[t + "-rf3"]) == "InvalidReplicationFactorException"
    assert error(created[t + "-cfg"]) == "InvalidConfigurationException"
    assert error(created[t + "-val"]) == "InvalidConfigurationException"
    assert error(created[t + "/bad"]) == "InvalidTopicException"
    assert error(created[t + "-zero"]) == "InvalidPartitionsException"
    ids[t] = created[t]["value"]["topicId"]

    again = java.call("admin.createTopics", topics=[{"name": t, "partitions": 2}])
    assert error(again[t]) == "TopicExistsException"
    validated = java.call("admin.createTopics", topics=[{"name": t + "-v", "partitions": 2}], validateOnly=True)
    assert validated[t + "-v"]["value"]["partitions"] == 2
    listed = java.call("admin.listTopics")
    assert t in listed and t + "-manual" in listed and t + "-v" not in listed and "__consumer_offsets" not in listed

    described = java.call("admin.describeTopics", names=[t, t + "-nope"])
    d = described[t]["value"]
    node = java.call("admin.describeCluster")["controller"]["id"]
    assert (d["topicId"], d["internal"]) == (ids[t], False)
    assert d["partitions"] == [{"partition": p, "leader": node, "replicas": [node], "isr": [node], "elr": []}
                               for p in (0, 1)]
    assert error(described[t + "-nope"]) == "UnknownTopicOrPartitionException"
    by_id = java.call("admin.describeTopics", ids=[ids[t], "AAAAAAAAAAAAAAAAAAAAAQ"])
    assert by_id[ids[t]]["value"]["name"] == t
    assert error(by_id["AAAAAAAAAAAAAAAAAAAAAQ"]) == "UnknownTopicIdException"

    grown = java.call("admin.createPartitions", topics={t: 4, t + "-manual": 2, t + "-nope": 3})
    assert grown[t] == {"value": True}
    assert error(grown[t + "-manual"]) == "InvalidPartitionsException"
    assert error(grown[t + "-nope"]) == "UnknownTopicOrPartitionException"
    assert len(java.call("admin.describeTopics", names=[t])[t]["value"]["partitions"]) == 4

    deleted = java.call("admin.deleteTopics", names=[t, t + "-nope"])
    assert deleted[t] == {"value": True} and error(deleted[t + "-nope"]) == "UnknownTopicOrPartitionException"
    assert java.call("admin.deleteTopics", ids=[ids.get(t + "-manual") or created[t + "-manual"]["value"]["topicId"]])
    wait_until(lambda: not {t, t + "-manual"} & set(java.call("admin.listTopics")), "the deleted topics to go")


def test_configs(broker, java, unique):
    t = create_topic(broker.bootstrap, unique("java-cfg"), configs={"retention.ms": "3600000"})
    described = java.call("admin.describeConfigs", resources=[["TOPIC", t], ["TOPIC", t + "-nope"], ["BROKER", "1"]],
                          synonyms=True)
    entries = described[f"TOPIC/{t}"]["value"]
    assert {k: entries["retention.ms"][k] for k in ("value", "source", "isDefault", "readOnly", "type")} == \
        {"value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG", "isDefault": False, "readOnly": False, "type": "LONG"}
    assert entries["retention.ms"]["synonyms"][0] == ["retention.ms", "3600000", "DYNAMIC_TOPIC_CONFIG"]
    assert {k: entries["cleanup.policy"][k] for k in ("value", "source", "isDefault", "type")} == \
        {"value": "delete", "source": "DEFAULT_CONFIG", "isDefault": True, "type": "LIST"}
    assert error(described[f"TOPIC/{t}-nope"]) == "UnknownTopicOrPartitionException"
    broker_entries = described["BROKER/1"]["value"]
    assert broker_entries["log.retention.hours"]["value"] == "168"
    assert broker_entries["advertised.listeners"]["source"] == "STATIC_BROKER_CONFIG"

    altered = java.call("admin.incrementalAlterConfigs", resources=[
        {"type": "TOPIC", "name": t, "ops": [["SET", "cleanup.policy", "compact"], ["DELETE", "retention.ms", None],
                                             ["APPEND", "cleanup.policy", "delete"]]}])
    # two operations on one key in one request: Kafka refuses the whole resource
    assert error(altered[f"TOPIC/{t}"]) == "InvalidRequestException"
    altered = java.call("admin.incrementalAlterConfigs", resources=[
        {"type": "TOPIC", "name": t, "ops": [["SET", "cleanup.policy", "compact"], ["DELETE", "retention.ms", None]]},
        {"type": "TOPIC", "name": t + "-nope", "ops": [["SET", "retention.ms", "1"]]}])
    assert altered[f"TOPIC/{t}"] == {"value": True}
    assert error(altered[f"TOPIC/{t}-nope"]) == "UnknownTopicOrPartitionException"
    refused = java.call("admin.incrementalAlterConfigs", resources=[
        {"type": "TOPIC", "name": t, "ops": [["APPEND", "retention.ms", "1"]]}])
    assert error(refused[f"TOPIC/{t}"]) == "InvalidConfigurationException"
    appended = java.call("admin.incrementalAlterConfigs", resources=[
        {"type": "TOPIC", "name": t, "ops": [["APPEND", "cleanup.policy", "delete"]]}])
    assert appended == {f"TOPIC/{t}": {"value": True}}
    entries = java.call("admin.describeConfigs", resources=[["TOPIC", t]])[f"TOPIC/{t}"]["value"]
    assert entries["cleanup.policy"]["value"] == "compact,delete"
    assert (entries["retention.ms"]["value"], entries["retention.ms"]["source"]) == ("604800000", "DEFAULT_CONFIG")


def test_records_offsets_and_cluster(broker, java, unique):
    t = create_topic(broker.bootstrap, unique("java-off"), partitions=2)
    ts0 = now_ms() - 100_000
    java.call("produce", topic=t, records=records_arg(sample_records(20, partitions=2, ts0=ts0)))
    listed = java.call("admin.listOffsets", topic=t, specs={"0": "earliest", "1": "latest"})
    assert (listed["0"]["value"]["offset"], listed["1"]["value"]["offset"]) == (0, 10)
    by_time = java.call("admin.listOffsets", topic=t, specs={"0": ts0 + 5000, "1": "maxTimestamp"})
    assert by_time["0"]["value"]["offset"] == 3  # partition 0 holds ts0, ts0+2s, ...: the first at or after +5s
    assert (by_time["1"]["value"]["offset"], by_time["1"]["value"]["timestamp"]) == (9, ts0 + 19_000)

    assert java.call("admin.deleteRecords", topic=t, before={"0": 4}) == {"0": {"value": 4}}
    assert error(java.call("admin.deleteRecords", topic=t, before={"1": 11})["1"]) == "OffsetOutOfRangeException"
    assert java.call("admin.listOffsets", topic=t, specs={"0": "earliest"})["0"]["value"]["offset"] == 4
    compacted = create_topic(broker.bootstrap, unique("java-off-c"), configs={"cleanup.policy": "compact"})
    assert error(java.call("admin.deleteRecords", topic=compacted, before={"0": 0})["0"]) == "PolicyViolationException"

    cluster = java.call("admin.describeCluster")
    [node] = cluster["nodes"]
    assert f"{node['host']}:{node['port']}" == broker.bootstrap and cluster["controller"] == node
    dirs = java.call("admin.describeLogDirs", brokers=[node["id"]])[str(node["id"])]
    [(path, d)] = dirs.items()
    assert d["error"] is None and d["totalBytes"] >= d["usableBytes"] > 0
    assert d["replicas"][f"{t}/0"]["size"] > 0 and d["replicas"][f"{t}/0"]["offsetLag"] == 0
    replica_dirs = java.call("admin.describeReplicaLogDirs", topic=t, partitions=[0], broker=node["id"])
    assert replica_dirs == {"0": {"value": path}}

    quorum = java.call("admin.describeMetadataQuorum")
    assert quorum["leaderId"] == node["id"] and [v["id"] for v in quorum["voters"]] == [node["id"]]
    assert quorum["voters"][0]["logEndOffset"] >= quorum["highWatermark"] > 0
    features = java.call("admin.describeFeatures")
    lo, hi = features["supported"]["metadata.version"]
    assert lo <= features["finalized"]["metadata.version"][0] <= hi


def test_group_offsets(broker, java, unique):
    t = create_topic(broker.bootstrap, unique("java-goff"), partitions=2)
    group = unique("java-goff")
    java.call("produce", topic=t, records=records_arg(sample_records(10, partitions=2)))
    name = unique("c")
    java.call("consumer.open", name=name, config={"group.id": group, "enable.auto.commit": "false"})
    java.call("consumer.assign", name=name, partitions=[[t, 0], [t, 1]])
    java.call("consumer.commit", name=name, offsets=[[t, 0, 3, "meta"], [t, 1, 5]])
    try:
        offsets = java.call("admin.listConsumerGroupOffsets", group=group)
        assert {k: (v["offset"], v["metadata"]) for k, v in offsets.items()} == \
            {f"{t}/0": (3, "meta"), f"{t}/1": (5, "")}
        listed = [g for g in java.call("admin.listGroups") if g["groupId"] == group]
        assert listed == [{"groupId": group, "type": "CLASSIC", "protocol": "", "state": "EMPTY", "simple": True}]

        altered = java.call("admin.alterConsumerGroupOffsets", group=group, offsets=[[t, 0, 1]])
        assert altered == {f"{t}/0": {"value": True}}
        assert sorted(java.call("consumer.committed", name=name, partitions=[[t, 0], [t, 1]])) == \
            [[t, 0, 1, ""], [t, 1, 5, ""]]
        dropped = java.call("admin.deleteConsumerGroupOffsets", group=group, partitions=[[t, 1]])
        assert dropped == {f"{t}/1": {"value": True}}
        assert list(java.call("admin.listConsumerGroupOffsets", group=group)) == [f"{t}/0"]

        deleted = java.call("admin.deleteConsumerGroups", groups=[group, unique("nope")])
        assert deleted[group] == {"value": True}
        assert [error(v) for k, v in deleted.items() if k != group] == ["GroupIdNotFoundException"]
        assert java.call("admin.listConsumerGroupOffsets", group=group) == {}
        gone = java.call("admin.describeConsumerGroups", groups=[group])[group]
        assert gone["error"] == {"type": "GroupIdNotFoundException", "message": f"Group {group} not found."}
    finally:
        java.call("consumer.close", name=name)


def test_security_describes_answer_as_kafka_does_without_an_authorizer(broker, java):
    """SCRAM users and quotas are listed (none here); ACLs need an authorizer: SecurityDisabledException."""
    assert java.call("admin.describeUserScramCredentials") == 0
    assert java.call("admin.describeClientQuotas") == 0
    with pytest.raises(JavaError) as e:
        java.call("admin.describeAcls")
    assert e.value.type == "SecurityDisabledException"


@pytest.mark.parametrize("op, args", [
    ("admin.updateFeatures", {"features": {"metadata.version": 1}, "validateOnly": True}),
])
@pytest.mark.not_served_yet
def test_calls_of_apis_not_served_yet_raise_unsupported_version(broker, java, unique, op, args):
    if "partitions" in args:
        args = {"partitions": [[create_topic(broker.bootstrap, unique("java-nys")), 0]]}
    with pytest.raises(JavaError) as e:
        java.call(op, **args)
    assert e.value.type == "UnsupportedVersionException"


def test_a_preferred_election_where_the_preferred_replica_leads_is_not_needed(broker, java, unique):
    t = create_topic(broker.bootstrap, unique("java-elect"))
    assert java.call("admin.electLeaders", partitions=[[t, 0]]) == {f"{t}/0": "ElectionNotNeededException"}
    # A move to the replicas the partition has completes at once: nothing is left in progress.
    assert java.call("admin.alterPartitionReassignments", reassignments=[[t, 0, [1]]]) == {f"{t}/0": {"value": True}}
    assert f"{t}/0" not in java.call("admin.listPartitionReassignments")
