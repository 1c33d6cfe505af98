"""Three real kafka-compat processes on 127.0.0.1 sharing a Raft metadata quorum, driven by a real
client (kafka-python): the controller leader killed with SIGKILL and stopped with SIGSTOP,
brokers fenced and back, topic creation through any node, and every node ending with the same
metadata."""

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from kafka_compat.raft.snapshots import parse_file_name
from kafka_compat.testing import waiting
from kafka_compat.testing.cluster_process import ClusterProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
# How long any one wait may take: generous, for a loaded two-core machine; a wait that runs out
# says what it waited for.
WAIT = 60.0

# Kafka's defaults are 2 s / 1 s / 2 s / 9 s; shorter ones keep the tests quick.
FAST = {
    "controller.quorum.fetch.timeout.ms": "1000",
    "controller.quorum.election.timeout.ms": "500",
    "broker.heartbeat.interval.ms": "250",
    "broker.session.timeout.ms": "2000",
}
# Snapshots of the metadata image (and the log trimmed behind them) every few hundred bytes of
# records, so that a node that was away catches up from a snapshot.
SNAPSHOTS = {"metadata.log.max.record.bytes.between.snapshots": "300"}


@pytest.fixture
def cluster(tmp_path):
    with ClusterProcess(tmp_path, 3, overrides={**FAST, **SNAPSHOTS}) as c:
        yield c


def latest_snapshot(node) -> int:
    """The end offset of the newest metadata snapshot in a node's data directory (0: none)."""
    ids = [parse_file_name(p.name) for p in (node.data_dir / "data" / "__cluster_metadata-0").iterdir()]
    return max((i.offset for i in ids if i is not None), default=0)


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    """CreateTopics as kafka-python's admin sends it: to the 'controller' its Metadata names."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()


def round_trip(bootstrap: str, topic: str, partitions: list[int]) -> None:
    """Produce one record to each partition (acks=all) and read every one back."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5)
    try:
        sent = {p: f"{topic}-{p}-{time.monotonic_ns()}".encode() for p in partitions}
        for p, value in sent.items():
            producer.send(topic, value, partition=p).get(timeout=WAIT)
    finally:
        producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        seen: dict[int, set] = {p: set() for p in partitions}

        def missing() -> list[int]:
            return [p for p in partitions if sent[p] not in seen[p]]

        def all_read_back() -> bool:
            for tp, records in consumer.poll(timeout_ms=500).items():
                seen[tp.partition].update(r.value for r in records)
            return not missing()
        waiting.wait_until(all_read_back, lambda: f"{topic} partitions {missing()} to be read back", WAIT, 0)
    finally:
        consumer.close()


def wait_until(predicate, what: str):
    return waiting.wait_until(predicate, what, timeout=WAIT)


def all_back(cluster):
    """The metadata every node agrees on, once it lists all three brokers (else None)."""
    view = cluster.wait_for_same_metadata(timeout=WAIT)
    return view if [b[0] for b in view["brokers"]] == [1, 2, 3] else None


def leaders(view: dict, topic: str) -> dict[int, int]:
    return {p: state[0] for p, state in view["topics"][topic][1].items()}


def test_kill_9_the_controller_leader_then_any_node_creates_topics_and_the_killed_node_catches_up(cluster):
    old, epoch = cluster.wait_for_leader(timeout=WAIT)
    create_topic(cluster[1].bootstrap, "spread", 6)
    view = cluster.wait_for_same_metadata(timeout=WAIT)
    assert sorted(leaders(view, "spread").values()) == [1, 1, 2, 2, 3, 3]  # placed over the live brokers
    round_trip(cluster.bootstrap, "spread", list(range(6)))
    quorum = cluster.describe_quorum(old).topics[0].partitions[0]
    old_end = next(v.log_end_offset for v in quorum.current_voters if v.replica_id == old)

    cluster[old].kill()
    survivors = [i for i in cluster.nodes if i != old]
    new, new_epoch = cluster.wait_for_leader(survivors, newer_than=epoch, timeout=WAIT)
    assert new != old

    # Its heartbeats stopped: the killed broker is fenced, its single-replica partitions leaderless.
    def fenced():
        v = cluster.metadata_view(survivors[0])
        return v if old not in [b[0] for b in v["brokers"]] and -1 in leaders(v, "spread").values() else None
    view = wait_until(fenced, what=f"broker {old} to be fenced")
    orphaned = sorted(p for p, leader in leaders(view, "spread").items() if leader == -1)
    assert len(orphaned) == 2 and all(view["topics"]["spread"][1][p][3] == (old,) for p in orphaned)
    for i in survivors:  # the new controller takes admin requests through any node
        create_topic(cluster[i].bootstrap, f"after-kill-{i}", 2)
    round_trip(",".join(cluster[i].bootstrap for i in survivors), "spread",
               [p for p in range(6) if p not in orphaned])

    # The survivors' logs now start past the killed node's end: it can only catch up from a snapshot.
    wait_until(lambda: latest_snapshot(cluster[new]) > old_end, what="a snapshot past the killed node's log")
    cluster[old].start()  # catches up from the new leader, registers again, is unfenced
    view = wait_until(lambda: all_back(cluster), what=f"broker {old} to be back everywhere")
    assert set(view["topics"]) == {"spread", *(f"after-kill-{i}" for i in survivors)}
    assert sorted(leaders(view, "spread").values()) == [1, 1, 2, 2, 3, 3]
    round_trip(cluster.bootstrap, "spread", list(range(6)))
    assert cluster.raft_view(old) == (new, new_epoch)
    assert latest_snapshot(cluster[old]) > old_end  # fetched from the leader (FetchSnapshot)


def test_sigstop_the_controller_leader_it_steps_down_and_rejoins(cluster):
    old, epoch = cluster.wait_for_leader(timeout=WAIT)
    create_topic(cluster[old].bootstrap, "before", 3)
    cluster[old].pause()
    try:
        survivors = [i for i in cluster.nodes if i != old]
        new, new_epoch = cluster.wait_for_leader(survivors, newer_than=epoch, timeout=WAIT)
        # Clients skip it once it is fenced (until then they may pick it and wait for it).
        wait_until(lambda: old not in [b[0] for b in cluster.metadata_view(survivors[0])["brokers"]],
                   what=f"broker {old} to be fenced")
        for i in survivors:
            create_topic(cluster[i].bootstrap, f"while-stopped-{i}", 3)
    finally:
        cluster[old].resume()
    # Back, it learns of the newer epoch and follows; its broker is unfenced again.
    wait_until(lambda: (view := cluster.raft_view(old)) and view[1] >= new_epoch and view[0] in survivors,
               what=f"node {old} to follow the new leader")
    view = wait_until(lambda: all_back(cluster), what=f"broker {old} to be unfenced again")
    assert set(view["topics"]) == {"before", *(f"while-stopped-{i}" for i in survivors)}
    assert all(leader != -1 for t in view["topics"] for leader in leaders(view, t).values())
    round_trip(cluster.bootstrap, "before", [0, 1, 2])


@pytest.fixture(scope="module")
def steady_cluster(tmp_path_factory):
    """A cluster the tests below only read from and add topics to (nothing is killed)."""
    with ClusterProcess(tmp_path_factory.mktemp("steady"), 3, overrides=FAST) as c:
        yield c


def test_kafka_python_describes_the_quorum_through_any_broker(steady_cluster):
    cluster = steady_cluster
    leader, epoch = cluster.wait_for_leader()
    for i in cluster.nodes:
        admin = KafkaAdminClient(bootstrap_servers=cluster[i].bootstrap)
        try:
            quorum = admin.describe_metadata_quorum()
        finally:
            admin.close()
        p = quorum["topics"][0]["partitions"][0]
        assert (p["leader_id"], p["leader_epoch"]) == (leader, epoch) and p["error"] is None
        assert sorted(v["replica_id"] for v in p["current_voters"]) == [1, 2, 3]


def test_separate_roles_one_controller_two_brokers(tmp_path):
    roles = {1: "controller", 2: "broker", 3: "broker"}
    with ClusterProcess(tmp_path, roles=roles, overrides=FAST) as cluster:
        create_topic(cluster[2].bootstrap, "split", 4)  # forwarded from broker 2 to controller 1
        view = cluster.wait_for_same_metadata()
        assert [b[0] for b in view["brokers"]] == [2, 3]
        assert sorted(leaders(view, "split").values()) == [2, 2, 3, 3]
        round_trip(cluster.bootstrap, "split", [0, 1, 2, 3])
        round_trip(cluster[3].bootstrap, "made-on-first-use", [0])  # auto-created through broker 3
        quorum = cluster.describe_quorum(3).topics[0].partitions[0]
        assert quorum.leader_id == 1 and [v.replica_id for v in quorum.current_voters] == [1]
        assert sorted(o.replica_id for o in quorum.observers) == [2, 3]


def test_librdkafka_admin_creates_and_deletes_topics_through_any_broker(steady_cluster):
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.admin import NewTopic as RdNewTopic
    cluster = steady_cluster
    for i in cluster.nodes:
        admin = AdminClient({"bootstrap.servers": cluster[i].bootstrap})
        name = f"rd-{i}"
        admin.create_topics([RdNewTopic(name, 3, 1)], request_timeout=30)[name].result(timeout=30)
        refused = admin.create_topics([RdNewTopic(f"{name}-rf4", 1, 4)], request_timeout=30)[f"{name}-rf4"]
        with pytest.raises(Exception, match=r"replication factor of 4 cannot be reached because only 3 broker\(s\)"):
            refused.result(timeout=30)
        assert name in admin.list_topics(timeout=10).topics
    view = cluster.wait_for_same_metadata()
    assert {"rd-1", "rd-2", "rd-3"} <= set(view["topics"])
    admin = AdminClient({"bootstrap.servers": cluster[2].bootstrap})
    admin.delete_topics(["rd-1", "rd-3"], request_timeout=30)["rd-1"].result(timeout=30)

    def deleted():
        v = cluster.wait_for_same_metadata()
        return v if "rd-1" not in v["topics"] else None
    view = wait_until(deleted, what="the deletion to reach every node")
    assert "rd-2" in view["topics"] and "rd-3" not in view["topics"]


def test_only_the_active_controller_takes_controller_requests_on_its_listener(steady_cluster):
    from kafka_compat.client import BrokerConnection
    from kafka_compat.protocol import messages as m
    from kafka_compat.protocol.errors import ErrorCode
    from kafka_compat.server.quorum_controller import request_bytes
    cluster = steady_cluster
    leader, _ = cluster.wait_for_leader()
    C = m.CreateTopicsRequest
    request = C(topics=[C.CreatableTopic(name="direct", num_partitions=1, replication_factor=1)], timeout_ms=5000)
    for i in cluster.nodes:
        with BrokerConnection("127.0.0.1", cluster[i].controller_port) as conn:
            result = conn.request(request, 7).topics[0]
            envelope = conn.request(
                m.EnvelopeRequest(request_data=request_bytes(m.DescribeClusterRequest(), 0, 9, "x")), 0)
        if i == leader:  # the controller's own API (KIP-919's admin path); then it exists
            assert result.error_code in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS)
        else:
            assert result.error_code == ErrorCode.NOT_CONTROLLER
        assert envelope.error_code == ErrorCode.INVALID_REQUEST  # not an API brokers forward


def test_the_controller_listener_advertises_exactly_the_controller_handlers(steady_cluster):
    from kafka_compat.client import BrokerConnection
    from kafka_compat.protocol import messages as m
    from kafka_compat.server.handlers import CONTROLLER
    from kafka_compat.server.pipeline import apis
    with BrokerConnection("127.0.0.1", steady_cluster[1].controller_port) as conn:
        listed = conn.versions()
    assert listed == {k: (h.min_version, h.max_version) for k, h in apis(CONTROLLER).items()}
    assert m.ApiKey.VOTE in listed and m.ApiKey.PRODUCE not in listed
