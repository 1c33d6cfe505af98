"""What the replication fault scenarios share: three real kafka-compat nodes on 127.0.0.1
(replication factor 3, min.insync.replicas 2, sessions of two seconds), the partition state as a
live broker's Metadata tells it, the faults struck at partition leaders (kill -9 and restart,
SIGSTOP and SIGCONT), counted, and the read-back of every partition that a `Ledger` judges.

A scenario runs a client's producer at acks=all into a `Ledger` (`ProducerThread` is
confluent-kafka's), strikes the leaders with `Faults`, reads everything back and reports the
verdict and the faults as one line (`report`, shown by `pytest -rP`): the counts the issue's
closing note quotes. tests/server/test_replication_faults.py uses the same harness.
"""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m
from kafka_compat.testing.cluster_process import ClusterProcess
from kafka_compat.testing.ledger import Ledger, Verdict, value
from kafka_compat.testing.waiting import wait_until

WAIT = 60.0  # any one wait, on a loaded two-core machine
SESSION_MS = 2000
FAST = {
    "controller.quorum.fetch.timeout.ms": "1000",
    "controller.quorum.election.timeout.ms": "500",
    "broker.heartbeat.interval.ms": "250",
    "broker.session.timeout.ms": str(SESSION_MS),
    "replica.lag.time.max.ms": "3000",
}
REPLICATED = {"min.insync.replicas": "2"}


def create_topic(bootstrap: str, name: str, partitions: int, rf: int = 3) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(name, partitions, rf, config=REPLICATED)]).values():
        f.result(WAIT)


def partition_state(cluster: ClusterProcess, topic: str, via: int | None = None) -> dict[int, tuple]:
    """partition -> (leader, leader epoch, ISR, offline replicas), as a live broker's Metadata says."""
    node = via if via is not None else next(n.id for n in cluster.brokers if n.alive)
    with BrokerConnection("127.0.0.1", cluster[node].broker_port, client_id="test") as conn:
        meta = conn.request(m.MetadataRequest(topics=[m.MetadataRequest.MetadataRequestTopic(name=topic)],
                                              allow_auto_topic_creation=False), 12)
    (t,) = meta.topics
    return {p.partition_index: (p.leader_id, p.leader_epoch, tuple(sorted(p.isr_nodes)), tuple(p.offline_replicas))
            for p in t.partitions}


def wait_in_sync(cluster: ClusterProcess, topic: str, replicas: int = 3) -> dict[int, tuple]:
    state: dict = {}

    def complete():
        state.update(partition_state(cluster, topic))
        # (no partitions yet: the broker asked has not seen the topic)
        return state if state and all(s[0] >= 0 and len(s[2]) == replicas for s in state.values()) else None
    return wait_until(complete, lambda: f"every partition of {topic} led with a full ISR (saw {state})", WAIT)


def wait_offline(cluster: ClusterProcess, topic: str, broker: int) -> dict[int, tuple]:
    """The topic's state once Metadata shows `broker` as an offline replica, out of every ISR and
    leading nothing."""
    state: dict = {}

    def gone():
        state.update(partition_state(cluster, topic))
        return all(broker in p[3] and broker not in p[2] and p[0] != broker for p in state.values())
    wait_until(gone, lambda: f"broker {broker} offline in {topic} (saw {state})", WAIT)
    return state


def wait_acks(ledger: Ledger, more: int) -> None:
    """Until `more` records more than now are acknowledged (the producer is carrying on)."""
    target = len(ledger) + more
    wait_until(lambda: len(ledger) >= target, lambda: f"{more} more acknowledgements "
               f"(have {len(ledger)} of {target}; errors {ledger.errors[:3]})", WAIT)


class Faults:
    """Faults struck at the leaders of `topic`'s partitions, each followed by the producer's
    acknowledgements going on (`progress`), the broker's return and the full ISR again."""

    def __init__(self, cluster: ClusterProcess, topic: str, progress):
        self.cluster, self.topic, self.progress = cluster, topic, progress
        self.injected: list[str] = []

    def _leader(self, partition: int) -> int:
        leader = partition_state(self.cluster, self.topic)[partition][0]
        assert leader >= 0, f"{self.topic}-{partition} has no leader"
        return leader

    def kill_leader(self, partition: int) -> None:
        """kill -9 the partition's leader; once the others carried on without it, start it again."""
        leader = self._leader(partition)
        self.cluster[leader].kill()
        self.injected.append(f"kill -9 {leader}")
        self._recover(leader, self.cluster[leader].start)

    def pause_leader(self, partition: int) -> None:
        """SIGSTOP the partition's leader: its sockets stay open and its requests unanswered until
        it is fenced and its partitions led elsewhere; then SIGCONT, and it catches up."""
        leader = self._leader(partition)
        self.cluster[leader].pause()
        self.injected.append(f"SIGSTOP {leader}")
        self._recover(leader, self.cluster[leader].resume)

    def _recover(self, broker: int, back) -> None:
        self.progress()  # writes go on while it is down
        state = wait_offline(self.cluster, self.topic, broker)
        assert all(p[0] >= 0 for p in state.values()), state
        back()
        wait_in_sync(self.cluster, self.topic)  # it caught up and rejoined every ISR
        self.progress()


class ProducerThread:
    """A confluent-kafka idempotent producer at acks=all, sending `value("p", n)` for n = 0, 1, ...
    round-robin over the partitions until stopped; delivery reports go to the ledger."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, ledger: Ledger):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 120000})
        self.topic, self.partitions, self.ledger = topic, partitions, ledger
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ack_times: list[float] = []

    def _delivered(self, error, msg) -> None:
        if error is not None:
            self.ledger.failed(error)
        else:
            self.ledger.acknowledged(msg.partition(), msg.offset(), msg.value())
            self.ack_times.append(time.monotonic())

    def _run(self) -> None:
        n = 0
        while not self.stopping.is_set():
            try:
                self.producer.produce(self.topic, value("p", n), partition=n % self.partitions,
                                      on_delivery=self._delivered)
                n += 1
            except BufferError:
                pass
            except KafkaException as e:  # fatal: e.g. the idempotent producer's sequences broken
                self.ledger.failed(e)
                return
            self.producer.poll(0.002)
        self.producer.flush(WAIT * 2)

    def __enter__(self) -> ProducerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join()

    def wait_acks(self, more: int) -> None:
        wait_acks(self.ledger, more)


def read_back(bootstrap: str, topic: str, partitions: int, ends: dict[int, int]) -> dict[int, list]:
    """Every record of the topic, per partition, from offset 0 to `ends` (exclusive)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "read-back", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    read: dict[int, list] = {p: [] for p in range(partitions)}
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])

        def complete() -> bool:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    read[msg.partition()].append((msg.offset(), msg.value()))
            return all((read[p][-1][0] + 1 if read[p] else 0) >= ends[p] for p in read)
        wait_until(complete, lambda: f"{topic} read to {ends} (at {[len(r) for r in read.values()]})", WAIT, 0)
    finally:
        consumer.close()
    return read


def ends_of(ledger: Ledger, partitions: int) -> dict[int, int]:
    return {p: max((o + 1 for (q, o) in ledger.acked if q == p), default=0) for p in range(partitions)}


def judge(cluster: ClusterProcess, topic: str, partitions: int, ledger: Ledger) -> Verdict:
    return ledger.verdict(read_back(cluster.bootstrap, topic, partitions, ends_of(ledger, partitions)))


def report(client: str, verdict: Verdict, faults: list[str], errors: list) -> str:
    """The scenario's counts, one line (printed: `pytest -rP` shows it)."""
    line = (f"replication faults [{client}]: acknowledged {verdict.acknowledged}, faults injected {len(faults)} "
            f"({', '.join(faults)}), lost {len(verdict.lost)}, duplicated {len(verdict.duplicated)}, "
            f"out of order {len(verdict.out_of_order)}, producer errors {len(errors)}")
    print(line)
    return line
