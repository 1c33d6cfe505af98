"""A single node is a one-voter metadata quorum: data directories written before the quorum
existed stay readable, Kafka's own single-node KRaft settings work, and restarts keep everything."""

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from kafka_compat.client import Cluster
from kafka_compat.metadata.records import encode_record
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.records import Record, build_batch
from kafka_compat.storage import Log, LogConfig
from kafka_compat.storage.meta_properties import write_meta_properties
from kafka_compat.testing.broker_process import free_port
from kafka_compat.testing.cluster_process import ClusterProcess

pytestmark = [pytest.mark.timeout(60)]


def write_log(directory, batches, epoch):
    log = Log(directory, LogConfig.from_dict({"segment.bytes": str(64 << 20)}))
    for values in batches:
        log.append_as_follower(build_batch([Record(value=v) for v in values], base_offset=log.log_end_offset,
                                           partition_leader_epoch=epoch))
    log.flush()
    log.close()


def test_a_data_directory_from_the_one_voter_log_without_raft_is_read(broker_factory, tmp_path):
    """The metadata log as the broker wrote it before the Raft quorum: epoch-1 batches, no
    quorum-state file. The node elects itself, keeps the topic, and serves its data."""
    logs = tmp_path / "old" / "logs"
    write_meta_properties(logs, 1, "old-cluster-id-aaaaaa", str(Uuid.random()))
    topic_id = Uuid.random()
    R = m.RegisterBrokerRecord
    write_log(logs / "__cluster_metadata-0", [
        [encode_record(m.FeatureLevelRecord(name="metadata.version", feature_level=21))],
        [encode_record(R(broker_id=1, incarnation_id=Uuid.random(), broker_epoch=1, fenced=False,
                         end_points=[R.BrokerEndpoint(name="PLAINTEXT", host="127.0.0.1", port=1)]))],
        [encode_record(m.TopicRecord(name="kept", topic_id=topic_id)),
         encode_record(m.PartitionRecord(partition_id=0, topic_id=topic_id, replicas=[1], isr=[1], leader=1,
                                         leader_epoch=0, partition_epoch=0))],
    ], epoch=1)
    write_log(logs / "kept-0", [[b"one", b"two"]], epoch=0)
    node = broker_factory(name="old")
    with Cluster(node.bootstrap) as c:
        meta = c.metadata(None)
        assert meta.cluster_id == "old-cluster-id-aaaaaa" and list(meta.topics) == ["kept"]
        assert meta.topics["kept"].partitions[0].leader == 1
    consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=None, auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition("kept", 0)])
        values = []
        for _ in range(20):
            values += [r.value for rs in consumer.poll(timeout_ms=500).values() for r in rs]
            if len(values) >= 2:
                break
        assert values == [b"one", b"two"]
    finally:
        consumer.close()


def test_kafka_single_node_kraft_settings_and_a_restart(tmp_path):
    """Kafka's config/kraft/server.properties shape: node 1 votes alone on its CONTROLLER listener."""
    port = free_port()
    with ClusterProcess(tmp_path, roles={1: "broker,controller"}, ports={1: (port, free_port())}) as cluster:
        node = cluster[1]
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        try:
            admin.create_topics([NewTopic("t", 2, 1)])
            quorum = admin.describe_metadata_quorum()["topics"][0]["partitions"][0]
            assert quorum["leader_id"] == 1 and [v["replica_id"] for v in quorum["current_voters"]] == [1]
        finally:
            admin.close()
        before = cluster.metadata_view(1)
        assert node.stop() == 0
        node.start()
        after = cluster.metadata_view(1)
        assert after["brokers"] == before["brokers"] and after["topics"].keys() == {"t"}
        for p, (leader, epoch, replicas, isr) in after["topics"]["t"][1].items():
            # a controlled shutdown left it leaderless, the restart led it again: two new epochs
            assert leader == 1 and epoch == before["topics"]["t"][1][p][1] + 2 and replicas == isr == (1,)
        assert after["topics"]["t"][0] == before["topics"]["t"][0]
        assert cluster.raft_view(1)[0] == 1
