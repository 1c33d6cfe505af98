"""Keys land where other clients put them: murmur2 checked against Kafka's published values,
kafka-python's independent implementation, and librdkafka's `murmur2_random` partitioner writing
to the same broker."""

from __future__ import annotations

import random

import pytest

from kafka_compat.client import Cluster, iter_fetched, murmur2, partition_for_key

# Kafka's UtilsTest.testMurmur2: Utils.murmur2 of these bytes.
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("key", list(KAFKA_VECTORS))
def test_murmur2_matches_kafkas_own_test_vectors(key):
    assert murmur2(key) == KAFKA_VECTORS[key]


def test_murmur2_and_partitions_match_kafka_python():
    from kafka.partitioner.default import murmur2 as kp_murmur2  # unsigned; its partitioner masks and mods

    rng = random.Random(7)
    keys = [b"", b"\xff", b"\x80\x81\x82"] + [rng.randbytes(rng.randrange(1, 40)) for _ in range(500)]
    for key in keys:
        assert murmur2(key) & 0xFFFFFFFF == kp_murmur2(key), key
        for n in (1, 3, 7, 100):
            assert partition_for_key(key, n) == (kp_murmur2(key) & 0x7FFFFFFF) % n, (key, n)


def _placement(bootstrap: str, topic: str, partitions: int) -> dict[bytes, int]:
    with Cluster(bootstrap) as c:
        out = {}
        for p, answer in c.fetch(topic, {p: 0 for p in range(partitions)}, max_wait_ms=0).items():
            out.update((r.key, p) for r in iter_fetched(answer.records))
        return out


def test_cli_puts_keys_where_librdkafka_murmur2_does(invoke, broker, unique):
    from confluent_kafka import Producer

    ours, theirs, n = unique(), unique(), 7
    for topic in (ours, theirs):
        invoke("topic", "create", topic, "-p", str(n))
    keys = [f"user-{i}".encode() for i in range(60)] + ["ключ".encode(), b"x" * 33]
    invoke("produce", ours, "-K", "\t", input=b"".join(k + b"\tv\n" for k in keys))
    producer = Producer({"bootstrap.servers": broker.bootstrap, "partitioner": "murmur2_random"})
    for key in keys:
        producer.produce(theirs, key=key, value=b"v")
    assert producer.flush(15) == 0

    placed = _placement(broker.bootstrap, ours, n)
    assert placed == _placement(broker.bootstrap, theirs, n)
    assert placed == {k: partition_for_key(k, n) for k in keys}
    assert len(set(placed.values())) == n


def test_keyless_lines_sent_together_stick_to_one_partition(invoke, broker, unique):
    topic = unique()
    invoke("topic", "create", topic, "-p", "5")
    r = invoke("produce", topic, input="".join(f"v{i}\n" for i in range(30)))
    assert len(r.stderr.splitlines()) == 3  # the summary line, the header, one partition
    assert r.stderr.splitlines()[2].split()[1:] == ["30", "0", "29"]
