"""Replication under faults, as real processes on 127.0.0.1: three nodes, topics with replication
factor 3 and min.insync.replicas 2, a confluent-kafka (librdkafka) idempotent producer at
acks=all. Leaders are killed with SIGKILL and restarted, or stopped with SIGTERM (a controlled
shutdown); afterwards every acknowledged record is read back exactly once, in order, at the
offset it was acknowledged at. A consumer group carries on when its coordinator's broker dies.
Leaders go back to preferred replicas by themselves, and an offline partition gets an unclean
leader once its topic allows one."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from conformance.replication import (
    FAST,
    WAIT,
    ProducerThread,
    create_topic,
    ends_of,
    partition_state,
    read_back,
    report,
    wait_in_sync,
    wait_offline,
)
from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.ledger import Ledger, value
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def described(cluster: ClusterProcess, topic: str) -> dict[int, tuple]:
    """partition_state as DescribeTopicPartitions (KIP-966) tells it."""
    D = m.DescribeTopicPartitionsRequest
    node = next(n.id for n in cluster.brokers if n.alive)
    with BrokerConnection("127.0.0.1", cluster[node].broker_port, client_id="test") as conn:
        resp = conn.request(D(topics=[D.TopicRequest(name=topic)], response_partition_limit=2000), 0)
    return {p.partition_index: (p.leader_id, p.leader_epoch, tuple(sorted(p.isr_nodes)), tuple(p.offline_replicas))
            for p in resp.topics[0].partitions}


def _committed(consumer: Consumer, topic: str, partitions: int) -> dict[int, int] | None:
    try:
        got = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=5)
    except KafkaException:  # (the coordinator loading, or moving)
        return None
    return {tp.partition: tp.offset for tp in got}


@pytest.fixture
def cluster(tmp_path):
    with ClusterProcess(tmp_path, 3, overrides=FAST) as c:
        yield c


def test_acks_all_records_survive_kill_9_of_partition_leaders_exactly_once_and_in_order(tmp_path):
    # Followers that fetch only every 200 ms: a leader that answered acks=all before they had the
    # records would lose a few hundred of them to each kill.
    lagging = {**FAST, "replica.fetch.min.bytes": str(1 << 20), "replica.fetch.wait.max.ms": "200"}
    with ClusterProcess(tmp_path, 3, overrides=lagging) as cluster:
        kill_leaders(cluster)


def kill_leaders(cluster: ClusterProcess) -> None:
    topic, partitions = "kills", 3
    create_topic(cluster.bootstrap, topic, partitions)
    wait_in_sync(cluster, topic)
    ledger = Ledger()
    faults = 0
    with ProducerThread(cluster.bootstrap, topic, partitions, ledger) as producer:
        producer.wait_acks(500)
        for round_ in range(2):
            leader = partition_state(cluster, topic)[round_][0]
            cluster[leader].kill()
            faults += 1
            producer.wait_acks(500)  # with the leader dead, through the new leaders
            state = wait_offline(cluster, topic, leader)
            assert all(p[0] >= 0 for p in state.values()), state
            assert described(cluster, topic) == {i: (p[0], p[1], p[2], p[3]) for i, p in state.items()}
            cluster[leader].start()
            wait_in_sync(cluster, topic)  # it caught up and rejoined every ISR
            producer.wait_acks(500)
    verdict = ledger.verdict(read_back(cluster.bootstrap, topic, partitions, ends_of(ledger, partitions)))
    report("confluent-kafka, lagging followers", verdict, ["kill -9"] * faults, ledger.errors)
    assert verdict.ok, verdict
    assert not ledger.errors and faults == 2 and verdict.acknowledged >= 2500


def test_a_consumer_group_carries_on_when_its_coordinators_broker_is_killed(cluster):
    topic, partitions, group = "orders", 3, "survivors"
    create_topic(cluster.bootstrap, topic, partitions)
    wait_in_sync(cluster, topic)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    sent = 0

    def produce(n: int) -> None:
        nonlocal sent
        for i in range(sent, sent + n):
            producer.produce(topic, value("p", i), partition=i % partitions)
        sent += n
        assert producer.flush(WAIT) == 0

    produce(300)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    consumer.subscribe([topic])
    seen: set[bytes] = set()
    uncommitted = False

    def consume_until(count: int) -> None:
        """Consume, committing after each batch, until `count` records were seen and committed."""
        def enough() -> bool:
            nonlocal uncommitted
            msgs = [msg for msg in consumer.consume(500, 0.5) if msg.error() is None]
            seen.update(msg.value() for msg in msgs)
            if msgs or uncommitted:
                try:
                    consumer.commit(asynchronous=False)
                    uncommitted = False
                except KafkaException:  # the coordinator moving: committed again with the next batch
                    uncommitted = True
            return len(seen) >= count and not uncommitted
        wait_until(enough, lambda: f"the group to consume {count} records (has {len(seen)})", WAIT, 0)

    def committed(c: Consumer) -> dict[int, int]:
        return wait_until(lambda: _committed(c, topic, partitions), "the group's committed offsets", WAIT)

    try:
        consume_until(300)
        with BrokerConnection.to(cluster[1].bootstrap) as conn:
            found = conn.request(m.FindCoordinatorRequest(key=group, key_type=0), 3)
        coordinator = found.node_id
        assert found.error_code == ErrorCode.NONE and coordinator in cluster.nodes
        assert sum(committed(consumer).values()) == 300
        cluster[coordinator].kill()
        produce(300)
        consume_until(600)  # commits go to the new coordinator after each batch
        state = partition_state(cluster, "__consumer_offsets")
        assert all(p[0] != coordinator and len(p[2]) == 2 for p in state.values()), state
        after = committed(consumer)
        assert sum(after.values()) == 600, after
    finally:
        consumer.close()
    cluster[coordinator].start()
    wait_in_sync(cluster, "__consumer_offsets")
    # A new member of the group starts where the group's commits say, on whichever coordinator.
    fresh = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        final = committed(fresh)
    finally:
        fresh.close()
    assert final == after


def test_sigterm_moves_a_nodes_leaderships_away_first_so_a_rolling_restart_costs_the_producer_nothing(tmp_path):
    # A session timeout far beyond the waits below: only a controlled shutdown moves leaders this fast.
    with ClusterProcess(tmp_path, 3, overrides={**FAST, "broker.session.timeout.ms": "60000"}) as cluster:
        topic, partitions = "rolling", 3
        create_topic(cluster.bootstrap, topic, partitions)
        wait_in_sync(cluster, topic)
        ledger = Ledger()
        with ProducerThread(cluster.bootstrap, topic, partitions, ledger) as producer:
            producer.wait_acks(300)
            for node in cluster.brokers:
                before = partition_state(cluster, topic)
                assert node.stop() == 0
                assert "broker_controlled_shutdown" in node.tail(200)
                state = partition_state(cluster, topic)
                assert all(p[0] not in (node.id, -1) and node.id not in p[2] for p in state.values()), state
                assert all(state[i][1] > before[i][1] for i, p in before.items() if p[0] == node.id), (before, state)
                producer.wait_acks(300)
                node.start()
                wait_in_sync(cluster, topic)
                producer.wait_acks(300)
        gaps = [b - a for a, b in zip(producer.ack_times, producer.ack_times[1:])]
        verdict = ledger.verdict(read_back(cluster.bootstrap, topic, partitions, ends_of(ledger, partitions)))
    report("confluent-kafka rolling restart", verdict, [f"SIGTERM {n.id}" for n in cluster.brokers], ledger.errors)
    assert verdict.ok, verdict
    assert not ledger.errors
    assert max(gaps) < 10, f"acknowledgements stopped for {max(gaps):.1f} s during the rolling restart"


def test_leadership_goes_back_to_the_preferred_replica_by_itself_after_it_returns(tmp_path):
    with ClusterProcess(tmp_path, 3, overrides={**FAST, "leader.imbalance.check.interval.seconds": "1"}) as cluster:
        create_topic(cluster.bootstrap, "homing", 3)
        preferred = {i: p[0] for i, p in wait_in_sync(cluster, "homing").items()}  # leaders at creation
        home = preferred[0]
        assert cluster[home].stop() == 0  # a controlled shutdown: its leaderships move away
        moved = partition_state(cluster, "homing")
        assert all(p[0] != home for p in moved.values()), moved
        cluster[home].start()
        # Back in every ISR, the imbalance check moves its partitions back within a second or two.
        wait_until(lambda: {i: p[0] for i, p in partition_state(cluster, "homing").items()} == preferred,
                   f"the leaders back on their preferred replicas {preferred}", WAIT)


def test_an_offline_partition_gets_an_unclean_leader_once_its_topic_allows_one(tmp_path):
    # One controller, on node 3: the quorum must outlive brokers 1 and 2 both being down.
    roles = {1: "broker", 2: "broker", 3: "broker,controller"}
    with ClusterProcess(tmp_path, roles=roles, overrides=FAST) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        for f in admin.create_topics([NewTopic("lossy", num_partitions=1, replica_assignment=[[1, 2]])]).values():
            f.result(WAIT)
        wait_in_sync(cluster, "lossy", 2)
        assert cluster[2].stop() == 0  # leaves the ISR: broker 1 is its last member
        cluster[1].kill()
        offline = wait_until(lambda: (s := partition_state(cluster, "lossy", 3)[0])[0] == -1 and s,
                             "the partition without a leader", WAIT)
        assert offline[2:] == ((1,), (1, 2))  # ISR [1], both replicas offline
        with BrokerConnection("127.0.0.1", cluster[3].broker_port, client_id="test") as conn:
            meta = conn.request(m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name="lossy")]), 12)
        assert meta.topics[0].partitions[0].error_code == ErrorCode.LEADER_NOT_AVAILABLE
        cluster[2].start()
        assert partition_state(cluster, "lossy", 3)[0][0] == -1  # not in the ISR: no clean election
        admin = AdminClient({"bootstrap.servers": cluster[3].bootstrap})
        resource = ConfigResource(ConfigResource.Type.TOPIC, "lossy", incremental_configs=[
            ConfigEntry("unclean.leader.election.enable", "true", incremental_operation=AlterConfigOpType.SET)])
        for f in admin.incremental_alter_configs([resource]).values():
            f.result(WAIT)
        elected = wait_until(lambda: (s := partition_state(cluster, "lossy", 3)[0])[0] == 2 and s,
                             "broker 2 elected unclean leader", WAIT)
        assert elected[2] == (2,)
