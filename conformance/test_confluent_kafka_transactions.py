"""confluent-kafka's transactional producer (librdkafka's EOS): committed transactions are seen by
read_committed consumers, aborted ones and open ones are not (read_uncommitted consumers see
them all); a second instance with the same transactional.id fences the first; a transaction left
open longer than transaction.timeout.ms is aborted by the coordinator."""

import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from conformance.support import TIMEOUT, create_topic
from kafka_compat.testing.broker_process import BrokerProcess
from kafka_compat.testing.waiting import wait_until

pytestmark = pytest.mark.timeout(120)


def transactional(bootstrap: str, txn_id: str, **extra) -> Producer:
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5, **extra})
    p.init_transactions(TIMEOUT)
    return p


def send(p: Producer, topic: str, values: list[bytes], partitions: int = 2) -> None:
    for i, v in enumerate(values):
        p.produce(topic, value=v, partition=i % partitions)


def read_all(bootstrap: str, topic: str, isolation: str, expect: int | None = None, partitions: int = 2,
             settle: float = 2.0) -> list[bytes]:
    """Every value of `topic` a consumer with `isolation` sees: until `expect` values arrived, or
    nothing new came for `settle` seconds."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                  "isolation.level": isolation, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got: list[bytes] = []
    quiet_since, deadline = time.monotonic(), time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline and (expect is None or len(got) < expect):
            msg = c.poll(0.2)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
                quiet_since = time.monotonic()
            elif expect is None and time.monotonic() - quiet_since > settle:
                break
    finally:
        c.close()
    return sorted(got)


def values(tag: str, n: int) -> list[bytes]:
    return [f"{tag}-{i}".encode() for i in range(n)]


def test_read_committed_sees_committed_transactions_only(broker, unique):
    topic = create_topic(broker.bootstrap, unique("cfk-txn"), partitions=2)
    p = transactional(broker.bootstrap, unique("txn"))
    p.begin_transaction()
    send(p, topic, values("committed", 10))
    p.commit_transaction(TIMEOUT)
    p.begin_transaction()
    send(p, topic, values("aborted", 10))
    assert p.flush(TIMEOUT) == 0  # written, then aborted (abort_transaction drops what is unsent)
    p.abort_transaction(TIMEOUT)
    p.begin_transaction()
    send(p, topic, values("open", 4))
    assert p.flush(TIMEOUT) == 0

    everything = sorted(values("committed", 10) + values("aborted", 10) + values("open", 4))
    assert read_all(broker.bootstrap, topic, "read_uncommitted", expect=24) == everything
    assert read_all(broker.bootstrap, topic, "read_committed") == sorted(values("committed", 10))

    p.commit_transaction(TIMEOUT)  # the open transaction becomes visible once committed
    assert read_all(broker.bootstrap, topic, "read_committed", expect=14) == sorted(
        values("committed", 10) + values("open", 4))


def test_a_second_instance_fences_the_first(broker, unique):
    topic = create_topic(broker.bootstrap, unique("cfk-fence"), partitions=2)
    txn_id = unique("txn")
    first = transactional(broker.bootstrap, txn_id)
    first.begin_transaction()
    send(first, topic, values("zombie", 6))
    assert first.flush(TIMEOUT) == 0

    second = transactional(broker.bootstrap, txn_id)  # aborts the first's open transaction
    second.begin_transaction()
    send(second, topic, values("second", 6))
    second.commit_transaction(TIMEOUT)

    with pytest.raises(KafkaException) as fenced:
        send(first, topic, values("late", 2))
        first.commit_transaction(TIMEOUT)
    assert fenced.value.args[0].code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                                           KafkaError.INVALID_PRODUCER_EPOCH)
    assert read_all(broker.bootstrap, topic, "read_committed", expect=6) == sorted(values("second", 6))
    assert read_all(broker.bootstrap, topic, "read_committed") == sorted(values("second", 6))


def test_a_transaction_open_past_its_timeout_is_aborted(tmp_path, unique):
    broker = BrokerProcess(tmp_path, overrides={
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"}).start()
    try:
        topic = create_topic(broker.bootstrap, "timeout", partitions=2)
        p = transactional(broker.bootstrap, "slow", **{"transaction.timeout.ms": 1500})
        p.begin_transaction()
        send(p, topic, values("stale", 6))
        assert p.flush(TIMEOUT) == 0
        # The coordinator aborts it: its records stop holding back read_committed readers.
        later = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
        later.produce(topic, value=b"after", partition=0)
        assert later.flush(TIMEOUT) == 0
        wait_until(lambda: read_all(broker.bootstrap, topic, "read_committed", settle=0.5) == [b"after"],
                   "the timed-out transaction to be aborted", timeout=30)
        with pytest.raises(KafkaException):
            p.commit_transaction(TIMEOUT)
        assert read_all(broker.bootstrap, topic, "read_uncommitted", expect=7) == sorted(
            values("stale", 6) + [b"after"])
    finally:
        broker.stop()


def test_transactional_offsets_survive_a_restart_as_their_markers_decided(tmp_path, unique):
    """Offsets sent with a committed transaction are the group's after the broker restarts (hard or
    not), those of an aborted one are not: the group coordinator replays transactional batches and
    markers when it loads __consumer_offsets."""
    broker = BrokerProcess(tmp_path).start()
    try:
        topic = create_topic(broker.bootstrap, "offsets-in-txn", partitions=1)
        p = transactional(broker.bootstrap, "offsets")
        member = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "readers"})  # not in the group
        for offset, commit in ((5, True), (9, False)):
            p.begin_transaction()
            p.produce(topic, value=b"x", partition=0)
            p.send_offsets_to_transaction([TopicPartition(topic, 0, offset)], member.consumer_group_metadata(), TIMEOUT)
            assert p.flush(TIMEOUT) == 0
            p.commit_transaction(TIMEOUT) if commit else p.abort_transaction(TIMEOUT)
        member.close()
        for clean in (True, False):
            broker.restart(clean=clean)
            c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "readers"})
            try:
                assert [tp.offset for tp in c.committed([TopicPartition(topic, 0)], TIMEOUT)] == [5]
            finally:
                c.close()
    finally:
        broker.stop()
