"""The replication APIs over the wire, on three real nodes in three racks: reassignment through
kafka-python's admin, preferred elections through confluent-kafka's, reads from a follower in
the consumer's rack (KIP-392) with confluent-kafka, and what Kafka answers to a stale
AlterPartition, a fetch from a replica the partition does not have and a follower fetching past
the leader's end."""

from __future__ import annotations

import json

import pytest
from confluent_kafka import Consumer, ElectionType, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from conformance.replication import wait_in_sync
from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.replication.config import RACK_AWARE_SELECTOR
from kafka_compat.testing.broker_process import BrokerProcess
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT = 60.0
SETTINGS = {
    "controller.quorum.fetch.timeout.ms": "1000",
    "controller.quorum.election.timeout.ms": "500",
    "broker.heartbeat.interval.ms": "250",
    "broker.session.timeout.ms": "10000",  # a broker stopped for a moment stays unfenced
    "replica.selector.class": RACK_AWARE_SELECTOR,
}
F = m.FetchRequest


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    racks = {i: {"broker.rack": f"rack-{i}"} for i in (1, 2, 3)}
    with ClusterProcess(tmp_path_factory.mktemp("racks"), 3, overrides=SETTINGS, node_overrides=racks) as c:
        yield c


def create(cluster: ClusterProcess, name: str, replicas: list[int], **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = NewTopic(name, num_partitions=1, replica_assignment=[replicas], config=configs)
    for f in admin.create_topics([topic]).values():
        f.result(WAIT)


def produce(cluster: ClusterProcess, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(topic, b"%d" % i, partition=0)
    assert producer.flush(WAIT) == 0


def request(cluster: ClusterProcess, node: int, message, version: int, *, controller: bool = False):
    port = cluster[node].controller_port if controller else cluster[node].broker_port
    with BrokerConnection("127.0.0.1", port, client_id="test") as conn:
        return conn.request(message, version)


def partition(cluster: ClusterProcess, topic: str, node: int = 1):
    meta = request(cluster, node, m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name=topic)],
                                                    allow_auto_topic_creation=False), 12)
    return meta.topics[0].partitions[0]


def wait_partition(cluster: ClusterProcess, topic: str, what: str, check, node: int = 1):
    seen = []

    def holds():
        seen[:] = [partition(cluster, topic, node)]
        return seen[0] if check(seen[0]) else None
    return wait_until(holds, lambda: f"{topic}: {what} (saw {seen})", WAIT)


def logs_on(cluster: ClusterProcess, node: int) -> dict[str, int]:
    """partition name -> size, as DescribeLogDirs on `node` lists them."""
    resp = request(cluster, node, m.DescribeLogDirsRequest(topics=None), 4)
    return {f"{t.name}-{p.partition_index}": p.partition_size for r in resp.results for t in r.topics
            for p in t.partitions}


def fetch(cluster: ClusterProcess, node: int, topic_id, offset: int, *, rack: str = "", replica: int = -1,
          epoch: int = -1):
    return request(cluster, node, F(
        replica_state=F.ReplicaState(replica_id=replica, replica_epoch=-1), max_wait_ms=0, min_bytes=0,
        max_bytes=1 << 20, rack_id=rack, session_epoch=-1,
        topics=[F.FetchTopic(topic_id=topic_id, partitions=[F.FetchPartition(
            partition=0, fetch_offset=offset, current_leader_epoch=epoch, partition_max_bytes=1 << 20)])]),
        17).responses[0].partitions[0]


def test_a_reassignment_through_kafka_python_moves_a_partition_and_its_data(cluster):
    a, b, c = 1, 2, 3  # replicas [a, b] move to [b, c]
    create(cluster, "moving", [a, b], **{"min.insync.replicas": "2"})
    produce(cluster, "moving", 200)
    tp = TopicPartition("moving", 0)
    assert cluster[c].stop() == 0  # the replica being added cannot catch up: the move stays in progress
    admin = KafkaAdminClient(bootstrap_servers=cluster[a].bootstrap, request_timeout_ms=30000)  # (it knows a, b)
    try:
        try:
            assert admin.alter_partition_reassignments({tp: [b, c]}) == {tp: None}
            ongoing = admin.list_partition_reassignments([tp])
            assert ongoing[tp] == {"replicas": [b, c, a], "adding_replicas": [c], "removing_replicas": [a]}
        finally:
            cluster[c].start()
        done = wait_partition(cluster, "moving", f"replicas [{b}, {c}] in sync",
                              lambda p: p.replica_nodes == [b, c] and sorted(p.isr_nodes) == sorted([b, c]), node=a)
        assert done.leader_id in (b, c)
        assert admin.list_partition_reassignments([tp]) == {}
    finally:
        admin.close()
    wait_until(lambda: "moving-0" not in logs_on(cluster, a), f"broker {a} to delete its replica of moving-0", WAIT)
    assert logs_on(cluster, c)["moving-0"] == logs_on(cluster, b)["moving-0"] > 0
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "mover", "auto.offset.reset": "earliest"})
    try:
        consumer.assign([CTopicPartition("moving", 0, 0)])
        read: list[bytes] = []
        wait_until(lambda: read.extend(msg.value() for msg in consumer.consume(200, 0.5) if not msg.error())
                   or len(read) >= 200, "the moved partition read back", WAIT, 0)
    finally:
        consumer.close()
    assert read == [b"%d" % i for i in range(200)]


def test_a_preferred_election_through_confluent_kafka_moves_leadership_back(cluster):
    create(cluster, "preferred", [1, 2, 3])
    produce(cluster, "preferred", 10)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    try:  # the same replicas in another order: done at once, leader kept, preferred leader now 2
        admin.alter_partition_reassignments({TopicPartition("preferred", 0): [2, 1, 3]})
    finally:
        admin.close()
    before = wait_partition(cluster, "preferred", "replicas reordered", lambda p: p.replica_nodes == [2, 1, 3])
    assert before.leader_id == 1
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    elected = admin.elect_leaders(ElectionType.PREFERRED, [CTopicPartition("preferred", 0)]).result(WAIT)
    assert {(tp.topic, tp.partition): e for tp, e in elected.items()} == {("preferred", 0): None}
    after = partition(cluster, "preferred")
    assert (after.leader_id, after.leader_epoch) == (2, before.leader_epoch + 1)
    again = admin.elect_leaders(ElectionType.PREFERRED, [CTopicPartition("preferred", 0)]).result(WAIT)
    assert [e.code() for e in again.values()] == [ErrorCode.ELECTION_NOT_NEEDED]


def test_a_consumer_reads_from_the_replica_in_its_rack_kip_392(cluster):
    create(cluster, "racked", [1, 2, 3], **{"min.insync.replicas": "3"})
    produce(cluster, "racked", 50)  # acks=all with min.insync.replicas 3: every replica has all 50
    topic_id = request(cluster, 1, m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name="racked")]),
                       12).topics[0].topic_id
    at_leader = fetch(cluster, 1, topic_id, 0, rack="rack-2")
    assert (at_leader.error_code, at_leader.preferred_read_replica, len(at_leader.records)) == (ErrorCode.NONE, 2, 0)
    assert fetch(cluster, 1, topic_id, 0, rack="rack-1").preferred_read_replica == -1  # the leader's own rack
    at_follower = fetch(cluster, 2, topic_id, 0, rack="rack-2")
    assert (at_follower.error_code, at_follower.high_watermark) == (ErrorCode.NONE, 50) and len(at_follower.records)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "racked", "client.rack": "rack-3",
                         "auto.offset.reset": "earliest"})
    try:
        consumer.assign([CTopicPartition("racked", 0, 0)])
        read: list[bytes] = []
        wait_until(lambda: read.extend(msg.value() for msg in consumer.consume(50, 0.5) if not msg.error())
                   or len(read) >= 50, "the rack-3 consumer to read every record", WAIT, 0)
    finally:
        consumer.close()
    assert read == [b"%d" % i for i in range(50)]


def test_kafkas_errors_for_a_stale_alter_partition_an_unknown_replica_and_a_fetch_past_the_end(cluster):
    create(cluster, "guarded", [1, 2, 3])
    produce(cluster, "guarded", 5)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=30000)
    try:  # a change of the partition (its replicas reordered): partition epoch 1
        admin.alter_partition_reassignments({TopicPartition("guarded", 0): [1, 3, 2]})
    finally:
        admin.close()
    p = wait_partition(cluster, "guarded", "replicas reordered, a full ISR",
                       lambda p: p.replica_nodes == [1, 3, 2] and len(p.isr_nodes) == 3)
    topic_id = request(cluster, 1, m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name="guarded")]),
                       12).topics[0].topic_id
    # AlterPartition (shrinking the ISR to the leader) from the leader: with a stale broker epoch,
    # then in the partition epoch before the change: refused, the ISR stays.
    A = m.AlterPartitionRequest
    epoch = [json.loads(line)["epoch"] for line in cluster[1].log_path.read_text().splitlines()
             if '"broker_registered"' in line][-1]

    def alter(broker_epoch: int, partition_epoch: int) -> m.AlterPartitionResponse:
        return request(cluster, cluster.wait_for_leader()[0], A(broker_id=1, broker_epoch=broker_epoch, topics=[
            A.TopicData(topic_id=topic_id, partitions=[A.PartitionData(
                partition_index=0, leader_epoch=p.leader_epoch, partition_epoch=partition_epoch,
                leader_recovery_state=0, new_isr_with_epochs=[A.BrokerState(broker_id=1, broker_epoch=epoch)])])]),
            3, controller=True)
    assert alter(epoch - 1, 0).error_code == ErrorCode.STALE_BROKER_EPOCH
    answer = alter(epoch, 0)
    assert answer.error_code == ErrorCode.NONE
    assert [pd.error_code for t in answer.topics for pd in t.partitions] == [ErrorCode.INVALID_UPDATE_VERSION]
    assert sorted(partition(cluster, "guarded").isr_nodes) == [1, 2, 3]
    # A replica id the partition does not have; then a real follower's id past the leader's end.
    assert fetch(cluster, 1, topic_id, 0, replica=99).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert fetch(cluster, 1, topic_id, 0, replica=99, epoch=p.leader_epoch).error_code == \
        ErrorCode.UNKNOWN_LEADER_EPOCH
    assert fetch(cluster, 1, topic_id, 1000, replica=2).error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    # Nothing was lost or moved: every record is there and the ISR is whole.
    assert fetch(cluster, 1, topic_id, 0).high_watermark == 5
    assert sorted(partition(cluster, "guarded").isr_nodes) == [1, 2, 3]


def test_find_coordinator_answers_coordinator_not_available_while_too_few_brokers_for_the_offsets_topic(tmp_path):
    # One broker, offsets.topic.replication.factor 3 (Kafka's default): __consumer_offsets cannot
    # be created, so FindCoordinator says so (clients retry) and no topic appears.
    with BrokerProcess(tmp_path / "node", overrides={"offsets.topic.replication.factor": "3"}) as node:
        with BrokerConnection("127.0.0.1", node.port, client_id="test") as conn:
            found = conn.request(m.FindCoordinatorRequest(key="g", key_type=0), 3)
            meta = conn.request(m.MetadataRequest(topics=None, allow_auto_topic_creation=False), 12)
    assert found.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
    assert found.node_id == -1
    assert "__consumer_offsets" not in {t.name for t in meta.topics}


def test_acks_all_produces_to_every_leader_at_once_are_answered_without_waiting_out_follower_fetches(tmp_path):
    # Followers' fetches wait up to 30 s for data: an append or high watermark that a parked fetch
    # missed (one that came between its handler and its wait) would hold acks=all that long, past
    # the produce's own timeout.
    settings = {**SETTINGS, "replica.fetch.wait.max.ms": "30000", "replica.socket.timeout.ms": "30000"}
    with ClusterProcess(tmp_path, 3, overrides=settings) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        for f in admin.create_topics([NewTopic("everywhere", 3, 3, config={"min.insync.replicas": "2"})]).values():
            f.result(WAIT)
        wait_in_sync(cluster, "everywhere")
        # The produce's timeout (request.timeout.ms) is 10 s; not retried, so one that times out fails.
        producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "linger.ms": 0, "retries": 0,
                             "request.timeout.ms": 10000, "message.timeout.ms": 60000})
        failed = []
        for round_ in range(20):  # each round: one record to each leader, together
            for p in range(3):
                producer.produce("everywhere", b"%d" % round_, partition=p,
                                 on_delivery=lambda e, _: e and failed.append(e))
            assert producer.flush(WAIT) == 0
        assert failed == []
