"""The controller's decisions against an image, and the image they produce: Kafka's rules, one per test."""

import random

import pytest

from kafka_compat.metadata.controller import METADATA_VERSION, Controller, ControllerDefaults, topic_name_problem
from kafka_compat.metadata.image import BROKER_RESOURCE, TOPIC_RESOURCE, MetadataImage
from kafka_compat.metadata.records import decode_record, encode_record
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid

C = m.CreateTopicsRequest


def registration(node_id: int) -> m.RegisterBrokerRecord:
    """An unfenced broker with one PLAINTEXT endpoint."""
    R = m.RegisterBrokerRecord
    return R(broker_id=node_id, incarnation_id=Uuid.random(), broker_epoch=10 + node_id, fenced=False,
             end_points=[R.BrokerEndpoint(name="PLAINTEXT", host="127.0.0.1", port=9090 + node_id,
                                          security_protocol=0)],
             features=[R.BrokerFeature(name="metadata.version", min_supported_version=1,
                                       max_supported_version=METADATA_VERSION)])


def cluster(brokers=(1,)) -> tuple[Controller, MetadataImage]:
    ctl = Controller(ControllerDefaults(num_partitions=2, replication_factor=1,
                                        dynamic_broker_keys=frozenset({"num.partitions"})), random.Random(7))
    image = MetadataImage(cluster_id="c")
    for b in brokers:
        image = image.apply([registration(b)])
    return ctl, image


def create(ctl, image, *topics, validate_only=False):
    records, resp = ctl.create_topics(image, C(topics=list(topics), validate_only=validate_only))
    return image.apply(records), resp


def topic(name, partitions=-1, rf=-1, assignments=(), **configs):
    return C.CreatableTopic(name=name, num_partitions=partitions, replication_factor=rf,
                            assignments=[C.CreatableReplicaAssignment(partition_index=i, broker_ids=b)
                                         for i, b in assignments],
                            configs=[C.CreatableTopicConfig(name=k.replace("_", "."), value=v)
                                     for k, v in configs.items()])


def test_created_topic_has_partitions_replicas_leaders_and_configs():
    ctl, image = cluster((1, 2, 3))
    image, resp = create(ctl, image, topic("orders", 6, 3, retention_ms="1000"))
    assert resp.topics[0].error_code == ErrorCode.NONE and resp.topics[0].num_partitions == 6
    t = image.topics["orders"]
    assert image.topics_by_id[t.topic_id] is t and len(t.partitions) == 6
    for p in t.partitions.values():
        assert len(set(p.replicas)) == 3 and p.isr == p.replicas and p.leader == p.replicas[0] and p.leader_epoch == 0
    leaders = [p.leader for p in t.partitions.values()]
    assert sorted(leaders) == [1, 1, 2, 2, 3, 3]  # spread over the brokers
    assert image.topic_configs("orders") == {"retention.ms": "1000"}


def test_defaults_apply_when_partitions_and_rf_are_minus_one():
    ctl, image = cluster()
    image, resp = create(ctl, image, topic("t"))
    assert len(image.topics["t"].partitions) == 2


@pytest.mark.parametrize("name, code", [
    ("", ErrorCode.INVALID_TOPIC_EXCEPTION), ("..", ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("a" * 250, ErrorCode.INVALID_TOPIC_EXCEPTION), ("bad name", ErrorCode.INVALID_TOPIC_EXCEPTION),
    ("ok.name_with-chars", ErrorCode.NONE),
])
def test_topic_names_follow_kafka_rules(name, code):
    ctl, image = cluster()
    _, resp = create(ctl, image, topic(name))
    assert resp.topics[0].error_code == code
    assert (topic_name_problem(name) is None) == (code == ErrorCode.NONE)


def test_existing_and_colliding_names_are_refused():
    ctl, image = cluster()
    image, _ = create(ctl, image, topic("a.b"))
    _, resp = create(ctl, image, topic("a.b"), topic("a_b"))
    assert [t.error_code for t in resp.topics] == [ErrorCode.TOPIC_ALREADY_EXISTS, ErrorCode.INVALID_TOPIC_EXCEPTION]


def test_any_replication_factor_up_to_the_registered_brokers_is_accepted():
    ctl, image = cluster((1, 2, 3))
    image, resp = create(ctl, image, topic("t", 4, 3), topic("u", 2, 2))
    assert [(r.error_code, r.replication_factor) for r in resp.topics] == [(0, 3), (0, 2)]
    assert all(len(p.replicas) == 2 for p in image.topics["u"].partitions.values())


def test_replication_factor_above_the_registered_brokers_is_refused_with_kafkas_sentence():
    ctl, image = cluster((1, 2))
    image, resp = create(ctl, image, topic("t", 1, 3))
    assert resp.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert resp.topics[0].error_message == ("Unable to replicate the partition 3 time(s): The target replication "
                                            "factor of 3 cannot be reached because only 2 broker(s) are registered.")
    assert "t" not in image.topics


def test_the_default_replication_factor_applies_to_minus_one():
    ctl, image = cluster((1, 2, 3))
    ctl.defaults.replication_factor = 3
    image, resp = create(ctl, image, topic("t", 2))
    assert resp.topics[0].replication_factor == 3 and len(image.topics["t"].partitions[1].replicas) == 3


def test_consumer_offsets_with_kafkas_replication_factor_waits_for_enough_brokers():
    ctl, image = cluster((1,))
    offsets = topic("__consumer_offsets", 50, 3, cleanup_policy="compact")
    _, resp = create(ctl, image, offsets)
    assert resp.topics[0].error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert "only 1 broker(s) are registered" in resp.topics[0].error_message
    ctl, image = cluster((1, 2, 3))
    image, resp = create(ctl, image, offsets)
    assert resp.topics[0].error_code == 0 and len(image.topics["__consumer_offsets"].partitions[49].isr) == 3


def test_a_new_partition_starts_with_the_replicas_that_can_serve_as_isr_led_by_the_first():
    ctl, image = cluster((1, 2, 3))
    image = image.apply([m.BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=11, fenced=1)])
    image, resp = create(ctl, image, topic("t", assignments=[(0, [1, 2, 3])]))
    p = image.topics["t"].partitions[0]
    assert (p.replicas, p.isr, p.leader) == ((1, 2, 3), (2, 3), 2)
    assert image.offline_replicas(p) == (1,)


def test_no_topic_is_placed_while_every_broker_is_fenced():
    ctl, image = cluster((1, 2))
    image = image.apply([m.BrokerRegistrationChangeRecord(broker_id=b, broker_epoch=10 + b, fenced=1) for b in (1, 2)])
    _, resp = create(ctl, image, topic("t", 1, 1), topic("u", assignments=[(0, [1, 2])]))
    assert [(r.error_code, r.error_message) for r in resp.topics] == [
        (ErrorCode.INVALID_REPLICATION_FACTOR, "Unable to replicate the partition 1 time(s): All brokers are currently "
                                               "fenced."),
        (ErrorCode.INVALID_REPLICA_ASSIGNMENT, "All brokers specified in the manual partition assignment for "
                                               "partition 0 are fenced or in controlled shutdown.")]


@pytest.mark.parametrize("assignments, message", [
    ([(0, [1]), (1, [2])], None),
    ([(0, [1]), (2, [2])], "partitions should be a consecutive 0-based integer sequence"),
    ([(0, [1]), (0, [2])], "Found multiple manual partition assignments for partition 0"),
    ([(0, [2, 1, 2])], "The manual partition assignment includes the broker 2 more than once."),
    ([(0, [9, 1])], "The manual partition assignment includes broker 9, but no such broker is registered."),
    ([(0, [])], "The manual partition assignment includes an empty replica list."),
    ([(0, [1]), (1, [1, 2])], "The manual partition assignment includes a partition with 2 replica(s), but this is not "
                              "consistent with previous partitions, which have 1 replica(s)."),
])
def test_manual_replica_assignments_are_checked(assignments, message):
    ctl, image = cluster((1, 2))
    image, resp = create(ctl, image, topic("t", assignments=assignments))
    result = resp.topics[0]
    assert result.error_message == message
    assert result.error_code == (ErrorCode.NONE if message is None else ErrorCode.INVALID_REPLICA_ASSIGNMENT)
    if message is None:
        assert [image.topics["t"].partitions[i].replicas for i in (0, 1)] == [(1,), (2,)]


@pytest.mark.parametrize("partitions, rf, message", [
    (1, -1, "A manual partition assignment was specified, but numPartitions was not set to -1."),
    (-1, 1, "A manual partition assignment was specified, but replication factor was not set to -1."),
])
def test_assignments_with_a_partition_count_or_replication_factor_is_invalid_request(partitions, rf, message):
    ctl, image = cluster()
    _, resp = create(ctl, image, topic("t", partitions, rf, assignments=[(0, [1])]))
    assert (resp.topics[0].error_code, resp.topics[0].error_message) == (ErrorCode.INVALID_REQUEST, message)


def test_bad_topic_config_is_invalid_config_and_creates_nothing():
    ctl, image = cluster()
    image2, resp = create(ctl, image, topic("t", cleanup_policy="sometimes"))
    assert resp.topics[0].error_code == ErrorCode.INVALID_CONFIG and "cleanup.policy" in resp.topics[0].error_message
    assert "t" not in image2.topics


def test_validate_only_answers_without_records():
    ctl, image = cluster()
    records, resp = ctl.create_topics(image, C(topics=[topic("t")], validate_only=True))
    assert records == [] and resp.topics[0].error_code == ErrorCode.NONE


def test_delete_by_name_and_by_id():
    ctl, image = cluster()
    image, _ = create(ctl, image, topic("a"), topic("b"))
    records, resp = ctl.delete_topics(image, m.DeleteTopicsRequest(topic_names=["a", "zz"]), 5)
    assert [r.error_code for r in resp.responses] == [0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    image = image.apply(records)
    assert "a" not in image.topics
    D = m.DeleteTopicsRequest
    tid = image.topics["b"].topic_id
    records, resp = ctl.delete_topics(
        image, D(topics=[D.DeleteTopicState(topic_id=tid), D.DeleteTopicState(topic_id=Uuid.random())]), 6)
    assert [r.error_code for r in resp.responses] == [0, ErrorCode.UNKNOWN_TOPIC_ID] and resp.responses[0].name == "b"
    assert image.apply(records).topics == {}


def test_recreated_topic_gets_a_new_id():
    ctl, image = cluster()
    image, _ = create(ctl, image, topic("t"))
    old = image.topics["t"].topic_id
    records, _ = ctl.delete_topics(image, m.DeleteTopicsRequest(topic_names=["t"]), 5)
    image, _ = create(ctl, image.apply(records), topic("t"))
    assert image.topics["t"].topic_id != old and old not in image.topics_by_id


def test_create_partitions_only_grows():
    ctl, image = cluster()
    image, _ = create(ctl, image, topic("t", 2, 1))
    P = m.CreatePartitionsRequest
    records, resp = ctl.create_partitions(image, P(topics=[
        P.CreatePartitionsTopic(name="t", count=5, assignments=None),
        P.CreatePartitionsTopic(name="t2", count=5, assignments=None)]))
    assert [r.error_code for r in resp.results] == [0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    image = image.apply(records)
    assert sorted(image.topics["t"].partitions) == [0, 1, 2, 3, 4]
    _, resp = ctl.create_partitions(image, P(topics=[P.CreatePartitionsTopic(name="t", count=3, assignments=None)]))
    assert resp.results[0].error_code == ErrorCode.INVALID_PARTITIONS


def test_new_partitions_keep_the_topics_replication_factor():
    ctl, image = cluster((1, 2, 3))
    image, _ = create(ctl, image, topic("t", 1, 2))
    P = m.CreatePartitionsRequest
    req = P(topics=[P.CreatePartitionsTopic(name="t", count=7, assignments=None)])
    records, resp = ctl.create_partitions(image, req)
    image = image.apply(records)
    assert resp.results[0].error_code == 0
    assert all(len(set(p.replicas)) == 2 and p.isr == p.replicas for p in image.topics["t"].partitions.values())


@pytest.mark.parametrize("assignments, code, message", [
    ([[1, 2], [2, 3]], ErrorCode.NONE, None),
    ([[1, 2]], ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "Attempted to add 2 additional partition(s), but only 1 assignment(s) were specified."),
    ([[1, 2], [3]], ErrorCode.INVALID_REPLICA_ASSIGNMENT, "The manual partition assignment includes a partition with "
     "1 replica(s), but this is not consistent with previous partitions, which have 2 replica(s)."),
    ([[1, 2], [3, 7]], ErrorCode.INVALID_REPLICA_ASSIGNMENT,
     "The manual partition assignment includes broker 7, but no such broker is registered."),
])
def test_manual_assignments_of_new_partitions_are_checked(assignments, code, message):
    ctl, image = cluster((1, 2, 3))
    image, _ = create(ctl, image, topic("t", 1, 2))
    P = m.CreatePartitionsRequest
    req = P(topics=[P.CreatePartitionsTopic(name="t", count=3, assignments=[
        P.CreatePartitionsAssignment(broker_ids=b) for b in assignments])])
    records, resp = ctl.create_partitions(image, req)
    assert (resp.results[0].error_code, resp.results[0].error_message) == (code, message)
    assert len(image.apply(records).topics["t"].partitions) == (3 if code == ErrorCode.NONE else 1)


def test_new_partitions_beyond_the_registered_brokers_are_refused():
    ctl, image = cluster((1, 2, 3))
    image, _ = create(ctl, image, topic("t", 1, 3))
    image = image.apply([m.UnregisterBrokerRecord(broker_id=3, broker_epoch=13)])
    P = m.CreatePartitionsRequest
    _, resp = ctl.create_partitions(image, P(topics=[P.CreatePartitionsTopic(name="t", count=2, assignments=None)]))
    assert (resp.results[0].error_code, resp.results[0].error_message) == (
        ErrorCode.INVALID_REPLICATION_FACTOR,
        "The target replication factor of 3 cannot be reached because only 2 broker(s) are registered.")


def test_incremental_alter_configs_set_delete_append_subtract():
    ctl, image = cluster()
    image, _ = create(ctl, image, topic("t", retention_ms="1000"))
    I = m.IncrementalAlterConfigsRequest

    def alter(*ops):
        nonlocal image
        req = I(resources=[I.AlterConfigsResource(resource_type=TOPIC_RESOURCE, resource_name="t", configs=[
            I.AlterableConfig(name=n, config_operation=op, value=v) for n, op, v in ops])])
        records, resp = ctl.incremental_alter_configs(image, req, 1)
        image = image.apply(records)
        return resp.responses[0].error_code

    assert alter(("segment.ms", 0, "60000"), ("retention.ms", 1, None)) == 0
    assert image.topic_configs("t") == {"segment.ms": "60000"}
    assert alter(("cleanup.policy", 2, "compact")) == 0
    assert image.topic_configs("t")["cleanup.policy"] == "delete,compact"
    assert alter(("cleanup.policy", 3, "delete")) == 0
    assert image.topic_configs("t")["cleanup.policy"] == "compact"
    assert alter(("retention.ms", 2, "5")) == ErrorCode.INVALID_CONFIG  # not a list
    assert alter(("no.such.key", 0, "1")) == ErrorCode.INVALID_CONFIG


def test_broker_configs_must_be_dynamic_to_alter():
    ctl, image = cluster()
    A = m.AlterConfigsRequest
    req = A(resources=[A.AlterConfigsResource(resource_type=BROKER_RESOURCE, resource_name="1", configs=[
        A.AlterableConfig(name="num.partitions", value="3")])])
    records, resp = ctl.alter_configs(image, req, 1)
    assert resp.responses[0].error_code == ErrorCode.NONE
    assert image.apply(records).configs[(BROKER_RESOURCE, "1")] == {"num.partitions": "3"}
    req.resources[0].configs[0].name = "log.dirs"
    _, resp = ctl.alter_configs(image, req, 1)
    assert resp.responses[0].error_code == ErrorCode.INVALID_REQUEST


def test_records_survive_their_kraft_framing():
    ctl, image = cluster()
    records, _ = ctl.create_topics(image, C(topics=[topic("t", 3, 1, retention_ms="5")]))
    framed = [encode_record(r) for r in records]
    assert framed[0][:3] == bytes([1, m.TopicRecord.API_KEY, 0])  # frame version, type, version
    decoded = [decode_record(f)[0] for f in framed]
    assert decoded == records
    assert image.apply(decoded).topics["t"] == image.apply(records).topics["t"]


def test_broker_records_are_framed_at_the_versions_of_metadata_version_3_9():
    """Kafka 4's schemas add log-dir cordoning (RegisterBrokerRecord v4, BrokerRegistrationChangeRecord
    v3), which a reader of the metadata.version written here (3.9-IV0) refuses."""
    register = m.RegisterBrokerRecord(broker_id=1, incarnation_id=Uuid.random(), broker_epoch=5)
    assert encode_record(register)[:3] == bytes([1, m.RegisterBrokerRecord.API_KEY, 3])
    change = m.BrokerRegistrationChangeRecord(broker_id=1, broker_epoch=5, fenced=1)
    assert encode_record(change)[:3] == bytes([1, m.BrokerRegistrationChangeRecord.API_KEY, 2])
    assert decode_record(encode_record(register)) == (register, 3)
