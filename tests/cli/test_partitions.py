"""`kafka-compat topic describe`, `partitions reassign` (plan / execute / verify / cancel) and
`partitions elect-leaders` against three real nodes, checked against what Metadata says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from kafka_compat.cli.main import app
from kafka_compat.client import Cluster
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WAIT = 60.0
SETTINGS = {
    "controller.quorum.fetch.timeout.ms": "1000",
    "controller.quorum.election.timeout.ms": "500",
    "broker.heartbeat.interval.ms": "250",
    "broker.session.timeout.ms": "3000",
    "replica.lag.time.max.ms": "2000",
    "auto.leader.rebalance.enable": "false",  # leaders stay where the tests put them
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ClusterProcess(tmp_path_factory.mktemp("replicated"), 3, overrides=SETTINGS) as c:
        yield c


@pytest.fixture
def run(cluster):
    runner = CliRunner()

    def invoke(*args: str):
        r = runner.invoke(app, list(map(str, args)), env={"KAFKA_COMPAT_BROKERS": cluster.bootstrap})
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        return r
    return invoke


def create(cluster: ClusterProcess, name: str, assignment: list[list[int]], **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    topic = NewTopic(name, num_partitions=len(assignment), replica_assignment=assignment, config=configs)
    for f in admin.create_topics([topic]).values():
        f.result(WAIT)


def produce(cluster: ClusterProcess, topic: str, count: int, partitions: int = 2) -> None:
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(topic, b"%d" % i, partition=i % partitions)
    assert producer.flush(WAIT) == 0


def partitions(cluster: ClusterProcess, topic: str):
    with Cluster(cluster.bootstrap) as c:
        return c.topic(topic, refresh=True).partitions


def wait_partitions(cluster: ClusterProcess, topic: str, what: str, check):
    seen = []

    def holds():
        seen[:] = [partitions(cluster, topic)]
        return seen[0] if check(seen[0]) else None
    return wait_until(holds, lambda: f"{topic}: {what} (saw {seen})", WAIT)


def rows(output: str, section: str = "PARTITIONS") -> list[dict[str, str]]:
    lines = output.split(section + "\n", 1)[1].split("\n\n")[0].splitlines()
    header = lines[0].lower().split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_topic_describe_shows_leader_epoch_replicas_and_isr(cluster, run):
    create(cluster, "described", [[1, 2, 3], [2, 3, 1]])
    produce(cluster, "described", 10)
    r = run("topic", "describe", "described")
    assert r.exit_code == 0, r.stderr
    got = {row["partition"]: (row["leader"], row["replicas"], sorted(row["isr"].strip("[]").split(",")))
           for row in rows(r.stdout)}
    assert got == {"0": ("1", "[1,2,3]", ["1", "2", "3"]), "1": ("2", "[2,3,1]", ["1", "2", "3"])}
    assert {row["epoch"] for row in rows(r.stdout)} == {str(p.leader_epoch)
                                                        for p in partitions(cluster, "described").values()}
    assert {row["high-watermark"] for row in rows(r.stdout)} == {"5"}


def test_reassign_plan_proposes_only_the_given_brokers_and_keeps_the_replication_factor(cluster, run, tmp_path):
    create(cluster, "planned", [[1, 2], [2, 1], [1, 2]])
    move = write(tmp_path / "move.json", {"version": 1, "topics": [{"topic": "planned"}]})
    r = run("partitions", "reassign", "plan", "--topics-to-move-json-file", move, "--broker-list", "2,3")
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Current partition replica assignment"
    assert lines[3] == "Proposed partition reassignment configuration"
    current, proposed = json.loads(lines[1]), json.loads(lines[4])
    assert [(p["topic"], p["partition"], p["replicas"]) for p in current["partitions"]] == [
        ("planned", 0, [1, 2]), ("planned", 1, [2, 1]), ("planned", 2, [1, 2])]
    assert proposed["version"] == 1
    assert [(p["partition"], sorted(p["replicas"]), p["log_dirs"]) for p in proposed["partitions"]] == [
        (i, [2, 3], ["any", "any"]) for i in range(3)]
    assert partitions(cluster, "planned")[0].replicas == [1, 2]  # a plan changes nothing


def test_reassign_execute_then_verify_reports_progress_until_the_move_completes(cluster, run, tmp_path):
    create(cluster, "moved", [[1, 2], [2, 1]], **{"min.insync.replicas": "2"})
    produce(cluster, "moved", 100)
    plan = write(tmp_path / "plan.json", {"version": 1, "partitions": [
        {"topic": "moved", "partition": 0, "replicas": [2, 3], "log_dirs": ["any", "any"]},
        {"topic": "moved", "partition": 1, "replicas": [3, 2]}]})
    assert cluster[3].stop() == 0  # the added replica cannot catch up yet: the moves stay in progress
    try:
        r = run("partitions", "reassign", "execute", "--reassignment-json-file", plan)
        assert r.exit_code == 0, r.stderr
        out = r.stdout.splitlines()
        assert out[0] == "Current partition replica assignment"
        assert json.loads(out[2])["partitions"] == [
            {"topic": "moved", "partition": 0, "replicas": [1, 2], "log_dirs": ["any", "any"]},
            {"topic": "moved", "partition": 1, "replicas": [2, 1], "log_dirs": ["any", "any"]}]
        assert out[-1] == "Successfully started partition reassignments for moved-0,moved-1"
        r = run("partitions", "reassign", "verify", "--reassignment-json-file", plan)
        assert r.exit_code == 1
        assert r.stdout.splitlines() == [
            "Status of partition reassignment:",
            "Reassignment of partition moved-0 is still in progress (adding [3], removing [1]).",
            "Reassignment of partition moved-1 is still in progress (adding [3], removing [1]).",
        ]
    finally:
        cluster[3].start()
    wait_until(lambda: run("partitions", "reassign", "verify", "--reassignment-json-file", plan).exit_code == 0,
               "verify to report both moves complete", WAIT)
    assert run("partitions", "reassign", "verify", "--reassignment-json-file", plan).stdout.splitlines()[1:] == [
        "Reassignment of partition moved-0 is completed.", "Reassignment of partition moved-1 is completed."]
    assert [(p.replicas, sorted(p.isr)) for p in partitions(cluster, "moved").values()] == [
        ([2, 3], [2, 3]), ([3, 2], [2, 3])]


def test_reassign_cancel_puts_the_replicas_back(cluster, run, tmp_path):
    """As in Kafka, the replicas return without the added ones, in the order of the move: [2, 1]."""
    create(cluster, "cancelled", [[1, 2]])
    plan = write(tmp_path / "plan.json", {"version": 1, "partitions": [
        {"topic": "cancelled", "partition": 0, "replicas": [2, 3]}]})
    assert cluster[3].stop() == 0
    try:
        assert run("partitions", "reassign", "execute", "--reassignment-json-file", plan).exit_code == 0
        r = run("partitions", "reassign", "cancel", "--reassignment-json-file", plan)
        assert (r.exit_code, r.stdout.strip()) == (0, "Successfully cancelled partition reassignments for cancelled-0")
        r = run("partitions", "reassign", "verify", "--reassignment-json-file", plan)
        assert r.exit_code == 1
        assert r.stdout.splitlines()[1] == ("There is no active reassignment of partition cancelled-0, but replica set "
                                            "is 2,1 rather than 2,3.")
    finally:
        cluster[3].start()
    assert partitions(cluster, "cancelled")[0].replicas == [2, 1]


def test_reassign_execute_reports_the_brokers_answer_per_partition(cluster, run, tmp_path):
    create(cluster, "refused", [[1, 2]])
    plan = write(tmp_path / "plan.json", {"version": 1, "partitions": [
        {"topic": "refused", "partition": 0, "replicas": [1, 9]}]})
    r = run("partitions", "reassign", "execute", "--reassignment-json-file", plan)
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == "Error reassigning partition(s):"
    assert r.stderr.splitlines()[1].startswith(f"refused-0: {ErrorCode.INVALID_REPLICA_ASSIGNMENT.name}")
    assert partitions(cluster, "refused")[0].replicas == [1, 2]


@pytest.mark.parametrize("doc, message", [
    ({"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1, 2]},
                                   {"topic": "t", "partition": 0, "replicas": [2, 3]}]},
     "error: Duplicate reassignment partitions: t-0"),
    ({"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1, 1]}]},
     "error: Duplicate replica assignment found for partition t-0: 1,1"),
    ({"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1], "log_dirs": ["/d"]}]},
     "(this broker has one per node); use \"any\""),
    ({"version": 1, "partitions": [{"topic": "t", "replicas": [1]}]},
     "each partition needs a \"topic\" (string) and a \"partition\" (integer)"),
])
def test_a_bad_reassignment_file_is_one_line_and_exit_2(tmp_path, doc, message):
    plan = write(tmp_path / "bad.json", doc)
    r = CliRunner().invoke(app, ["partitions", "reassign", "execute", "--reassignment-json-file", str(plan),
                                 "-b", "127.0.0.1:1"])
    assert r.exit_code == 2
    (line,) = r.stderr.splitlines()
    assert line.startswith("error: ") and message in line


def test_elect_leaders_preferred_moves_leadership_to_the_first_replica(cluster, run, tmp_path):
    create(cluster, "preferred", [[1, 2, 3], [1, 2, 3]])
    produce(cluster, "preferred", 10)
    reorder = write(tmp_path / "reorder.json", {"version": 1, "partitions": [
        {"topic": "preferred", "partition": p, "replicas": [2, 1, 3]} for p in (0, 1)]})
    assert run("partitions", "reassign", "execute", "--reassignment-json-file", reorder).exit_code == 0
    before = wait_partitions(cluster, "preferred", "replicas reordered",
                             lambda ps: all(p.replicas == [2, 1, 3] for p in ps.values()))
    assert [p.leader for p in before.values()] == [1, 1]
    r = run("partitions", "elect-leaders", "--election-type", "preferred", "--topic", "preferred", "--partition", 0)
    assert (r.exit_code, r.stdout.strip()) == (
        0, "Successfully completed leader election (PREFERRED) for partitions preferred-0")
    after = partitions(cluster, "preferred")
    assert [(p.leader, p.leader_epoch) for p in after.values()] == [(2, before[0].leader_epoch + 1),
                                                                    (1, before[1].leader_epoch)]
    listed = write(tmp_path / "elect.json", {"partitions": [{"topic": "preferred", "partition": p} for p in (0, 1)]})
    r = run("partitions", "elect-leaders", "--election-type", "PREFERRED", "--path-to-json-file", listed)
    assert (r.exit_code, r.stdout.splitlines()) == (0, [
        "Successfully completed leader election (PREFERRED) for partitions preferred-1",
        "Valid replica already elected for partitions preferred-0"])
    assert [p.leader for p in partitions(cluster, "preferred").values()] == [2, 2]


@pytest.mark.parametrize("command", [["partitions", "reassign", c] for c in ("plan", "execute", "verify", "cancel")]
                         + [["partitions", "elect-leaders"]])
def test_help(command):
    r = CliRunner().invoke(app, [*command, "--help"])
    assert r.exit_code == 0 and "Usage:" in r.stdout and "KAFKA_COMPAT_BROKERS" in r.stdout


def test_elect_leaders_wants_one_way_of_naming_partitions(cluster, run):
    r = run("partitions", "elect-leaders", "--election-type", "preferred", "--all-topic-partitions", "--topic", "t",
            "--partition", 0)
    assert r.exit_code == 2
    assert r.stderr.strip() == ("error: give exactly one of --topic with --partition, --all-topic-partitions, "
                                "--path-to-json-file")


def test_elect_leaders_unclean_brings_back_an_offline_partition_and_describe_shows_it_offline(cluster, run):
    """Replicas [a, b]: b stops answering and leaves the ISR, records arrive that only a has, a is
    killed as b comes back: the partition's last ISR member is gone, b is out of sync, so the
    partition stays offline until an unclean election makes b its leader."""
    a, b = 1, 2
    create(cluster, "unclean", [[a, b]])
    produce(cluster, "unclean", 4, partitions=1)
    cluster[b].pause()
    try:
        wait_partitions(cluster, "unclean", f"ISR without {b}", lambda ps: ps[0].isr == [a])
        produce(cluster, "unclean", 4, partitions=1)
        cluster[a].kill()
    finally:
        cluster[b].resume()
    try:
        wait_partitions(cluster, "unclean", "no leader", lambda ps: ps[0].leader < 0)
        r = run("topic", "describe", "unclean")
        assert r.exit_code == 0, r.stderr
        (row,) = rows(r.stdout)
        assert (row["leader"], row["replicas"], row["isr"], row["offline"]) == ("-1", f"[{a},{b}]", f"[{a}]",
                                                                                 f"[{a}]")
        assert row["error"] == ErrorCode.LEADER_NOT_AVAILABLE.name
        r = run("partitions", "elect-leaders", "--election-type", "unclean", "--topic", "unclean", "--partition", 0)
        assert (r.exit_code, r.stdout.strip()) == (
            0, "Successfully completed leader election (UNCLEAN) for partitions unclean-0"), r.stderr
        assert partitions(cluster, "unclean")[0].leader == b
    finally:
        cluster[a].start()
    wait_partitions(cluster, "unclean", "both replicas in sync again", lambda ps: sorted(ps[0].isr) == [a, b])
