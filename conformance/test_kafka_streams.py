"""Kafka Streams (the pinned release) runs a word count (kc.WordCount: split lines, re-key by word
through a repartition topic, count in a state store backed by a changelog topic) against a
three-node kafka-compat cluster, with processing.guarantee=at_least_once and replication factor 1
(replication is not built yet). Streams creates its internal topics with their configs (the
changelog compacted), purges the repartition topic with DeleteRecords, and the counts it emits are
exactly the words sent: one output record per word, the latest per word its count. Closed cleanly
and restarted with an empty state directory, it restores the counts from the changelog and resumes
from its committed offsets with exact counts; killed with SIGKILL mid-stream and restarted, no word
is lost (at least once: a count may run ahead by what was reprocessed). exactly_once_v2 needs
transactions, which are not built yet."""

import random
import struct
from collections import Counter

import pytest

from conformance.jvm import JvmProcess
from conformance.support import TIMEOUT, create_topic, wait_until
from kafka_compat.testing.cluster_process import ClusterProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike".split()
PARTITIONS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with ClusterProcess(tmp_path_factory.mktemp("streams-cluster"), 3) as c:
        yield c


def lines(n: int, seed: int) -> list[str]:
    """`n` lines of 1..8 words, mixed case and punctuation (the topology lower-cases and splits)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS).capitalize() if rng.random() < 0.2 else rng.choice(WORDS)
                     for _ in range(rng.randint(1, 8))) + rng.choice(["", ".", "!", ", ok"])
            for _ in range(n)]


def word_counts(text: list[str]) -> Counter:
    return Counter(w.strip(".!,").lower() for line in text for w in line.split() if w.strip(".!,"))


def produce(bootstrap: str, topic: str, text: list[str], first: int) -> None:
    """Each line keyed by its number, so the lines spread over the input's partitions (on three nodes)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, line in enumerate(text, first):
        p.produce(topic, line.encode(), f"line-{i}".encode())
    assert p.flush(TIMEOUT) == 0, "input lines not all acknowledged"


class Counts:
    """Every (word, count) record of the output topic, read from its start with confluent-kafka."""

    def __init__(self, bootstrap: str, topic: str):
        from confluent_kafka import Consumer, TopicPartition

        self.records: list[tuple[str, int]] = []
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "never-joined",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": 100})
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])

    def poll(self) -> dict[str, int]:
        """Read what has arrived; the latest count per word."""
        for msg in self.consumer.consume(1000, 0.2):
            assert not msg.error(), msg.error()
            self.records.append((msg.key().decode(), struct.unpack(">q", msg.value())[0]))
        return self.latest

    @property
    def latest(self) -> dict[str, int]:
        return dict(self.records)

    def until(self, done, what: str, timeout: float = 90.0) -> dict[str, int]:
        wait_until(lambda: done(self.poll()), what, timeout, interval=0)
        return self.latest

    def close(self) -> None:
        self.consumer.close()


def word_count(name: str, cluster, app: str, state_dir, input: str, output: str, log_dir) -> JvmProcess:
    """A running Streams application (the topology started, its partitions assigned). The group's
    session is Kafka's shortest (group.min.session.timeout.ms), so a crashed member is gone soon."""
    app_proc = JvmProcess(name, "kc.WordCount", cluster.bootstrap, app, str(state_dir), input, output,
                          "repartition.purge.interval.ms=200", "session.timeout.ms=6000", log_dir=log_dir).start()
    try:
        app_proc.wait_for("STATE RUNNING", timeout=120)
    except BaseException:
        app_proc.kill()
        raise
    return app_proc


def stop(app: JvmProcess) -> None:
    """SIGTERM: Streams closes (commits what it processed, leaves the group) in its shutdown hook."""
    assert app.stop() == JvmProcess.TERMINATED and "CLOSED" in app.output(), app.tail()


def topics_and_configs(bootstrap: str, names: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    from confluent_kafka.admin import AdminClient, ConfigResource

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = admin.list_topics(timeout=TIMEOUT).topics
    out = {}
    for name in names:
        res = ConfigResource(ConfigResource.Type.TOPIC, name)
        configs = admin.describe_configs([res])[res].result(TIMEOUT)
        out[name] = (len(topics[name].partitions), {k: c.value for k, c in configs.items()})
    return out


def earliest(bootstrap: str, topic: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "never-joined"})
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), TIMEOUT)[0] for p in range(PARTITIONS)]
    finally:
        c.close()


def test_exact_counts_through_internal_topics_and_a_clean_restart(cluster, unique, tmp_path):
    app, input, output = unique("wc"), unique("wc-in"), unique("wc-out")
    for t in (input, output):
        create_topic(cluster.bootstrap, t, PARTITIONS)
    first, second = lines(150, 1), lines(100, 2)
    produce(cluster.bootstrap, input, first, 0)
    counts = Counts(cluster.bootstrap, output)
    try:
        streams = word_count("streams-1", cluster, app, tmp_path / "state-1", input, output, tmp_path)
        try:
            want = word_counts(first)
            counts.until(lambda got: got == want, "the first lines' counts")
            assert len(counts.records) == want.total(), "one output record per word, none twice"

            internal = topics_and_configs(cluster.bootstrap, [f"{app}-words-repartition", f"{app}-counts-changelog"])
            assert internal[f"{app}-counts-changelog"][0] == PARTITIONS
            assert internal[f"{app}-counts-changelog"][1]["cleanup.policy"] == "compact"
            assert internal[f"{app}-words-repartition"][0] == PARTITIONS
            assert internal[f"{app}-words-repartition"][1]["cleanup.policy"] == "delete"
            # Streams deletes the repartition records it has committed past (DeleteRecords)
            wait_until(lambda: sum(earliest(cluster.bootstrap, f"{app}-words-repartition")) > 0,
                       "the repartition topic purged", 60)
        finally:
            stop(streams)

        # While it is down, more lines; a new instance with an empty state directory restores the
        # counts from the changelog and resumes from the committed offsets.
        produce(cluster.bootstrap, input, second, len(first))
        streams = word_count("streams-2", cluster, app, tmp_path / "state-2", input, output, tmp_path)
        try:
            want = word_counts(first + second)
            counts.until(lambda got: got == want, "the counts of both sets of lines")
            assert len(counts.records) == want.total(), "one output record per word, none twice"
        finally:
            stop(streams)
    finally:
        counts.close()


def test_no_word_lost_through_a_kill_9(cluster, unique, tmp_path):
    app, input, output = unique("wc"), unique("wc-in"), unique("wc-out")
    for t in (input, output):
        create_topic(cluster.bootstrap, t, PARTITIONS)
    before, during, after = lines(100, 3), lines(600, 4), lines(50, 5)
    produce(cluster.bootstrap, input, before, 0)
    counts = Counts(cluster.bootstrap, output)
    streams = word_count("streams-1", cluster, app, tmp_path / "state", input, output, tmp_path)
    try:
        counts.until(lambda got: got == word_counts(before), "the first lines' counts")
        produce(cluster.bootstrap, input, during, len(before))
        counts.until(lambda got: len(counts.records) > word_counts(before).total(), "the next lines' first counts")
    finally:
        streams.kill()  # mid-stream: the last commit is up to 200 ms behind what was emitted

    streams = word_count("streams-2", cluster, app, tmp_path / "state", input, output, tmp_path)
    try:
        produce(cluster.bootstrap, input, after, len(before) + len(during))
        want = word_counts(before + during + after)
        got = counts.until(lambda got: got.keys() == want.keys() and all(got[w] >= n for w, n in want.items()),
                           "every word counted at least once")
        # every word's offset is committed only once its count was sent: at least one record a word
        assert len(counts.records) >= want.total()
        assert got.keys() == want.keys()
    finally:
        stop(streams)
        counts.close()
