"""`kafka-compat produce` and `consume` against a real broker: round trips, formats, seeking."""

from __future__ import annotations

import json
import subprocess

import pytest

from kafka_compat.client import EARLIEST, Cluster
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.records import compression as codecs
from kafka_compat.records import iter_headers
from kafka_compat.testing.broker_process import CLI


def _batches(bootstrap: str, topic: str, partition: int = 0):
    """The batch headers stored in a partition, read back over the wire."""
    with Cluster(bootstrap) as c:
        data = c.fetch(topic, {partition: 0}, max_wait_ms=0)[partition].records
    return [h for _, h in iter_headers(data)]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_keys_headers_and_compression_round_trip(invoke, broker, unique, codec):
    topic = unique()
    invoke("topic", "create", topic, "-p", "1")
    lines = "".join(f"key{i}|value {i}|with|bars\n" for i in range(50)) + "no separator\n"
    r = invoke("produce", topic, "--key-separator", "|", "-H", "trace=abc", "-H", "empty=", "-z", codec, input=lines)
    assert r.code == 0, r.stderr
    assert "Produced 51 records" in r.stderr and r.stderr.splitlines()[-1].split() == ["0", "51", "0", "50"]

    got = [json.loads(line) for line in invoke("consume", topic, "-f", "json").stdout.splitlines()]
    assert [(g["key"], g["value"]) for g in got] == [(f"key{i}", f"value {i}|with|bars") for i in range(50)] + [
        (None, "no separator")]
    assert all(g["headers"] == [{"key": "trace", "value": "abc"}, {"key": "empty", "value": ""}] for g in got)
    assert [g["offset"] for g in got] == list(range(51))

    batches = _batches(broker.bootstrap, topic)
    assert len(batches) == 1 and batches[0].record_count == 51  # lines are batched, not sent one by one
    assert codecs.codec_name(batches[0].compression) == codec


def test_template_format(invoke, unique):
    topic = unique()
    invoke("topic", "create", topic, "-p", "1")
    invoke("produce", topic, "-K", "=", "-H", "a=1", "-H", "b=2", "--timestamp", "1700000000000",
           input="k=v\nnull-key\n")
    r = invoke("consume", topic, "-f", r"%t|%p|%o|%k|%v|%s|%K|%S|%T|%h|100%%\t.")
    assert r.stdout == (f"{topic}|0|0|k|v|v|1|1|1700000000000|a=1,b=2|100%\t.\n"
                        f"{topic}|0|1||null-key|null-key|-1|8|1700000000000|a=1,b=2|100%\t.\n")
    # The default prints values, one a line; a template with its own \n gets no extra newline.
    assert invoke("consume", topic).stdout == "v\nnull-key\n"
    assert invoke("consume", topic, "-f", r"%o\n\n").stdout == "0\n\n1\n\n"


def test_seek_by_offset_negative_offset_timestamp_and_limit(invoke, unique):
    topic = unique()
    invoke("topic", "create", topic, "-p", "1")
    invoke("produce", topic, "--timestamp", "1000", input="".join(f"old{i}\n" for i in range(5)))
    invoke("produce", topic, "--timestamp", "2000", input="".join(f"new{i}\n" for i in range(5)))

    def values(*args):
        r = invoke("consume", topic, *args)
        assert r.code == 0, r.stderr
        return r.stdout.split()

    assert values("-o", "beginning") == [f"old{i}" for i in range(5)] + [f"new{i}" for i in range(5)]
    assert values("-o", "7") == ["new2", "new3", "new4"]
    assert values("-o", "-2") == ["new3", "new4"]
    assert values("--offset=-50") == values("-o", "beginning")  # no further back than the log start
    assert values("-o", "end") == []
    assert values("--timestamp", "1500") == [f"new{i}" for i in range(5)]
    assert values("--timestamp", "1000", "-n", "2") == ["old0", "old1"]
    assert values("--timestamp", "9999") == []
    assert invoke("consume", topic, "-o", "2", "--timestamp", "1").code == 2
    assert invoke("consume", topic, "-o", "soon").code == 2


def test_compressed_batches_are_read_from_the_requested_offset(invoke, unique):
    topic = unique()
    invoke("topic", "create", topic, "-p", "1")
    invoke("produce", topic, "-z", "gzip", input="".join(f"{i}\n" for i in range(20)))
    assert invoke("consume", topic, "-o", "15", "-f", "%o").stdout.split() == ["15", "16", "17", "18", "19"]


def test_partitions_select_and_partition_flag(invoke, unique):
    topic = unique()
    invoke("topic", "create", topic, "-p", "3")
    for p in range(3):
        assert invoke("produce", topic, "-p", str(p), input=f"in{p}\n").code == 0
    assert invoke("consume", topic, "-p", "2", "-p", "0", "-f", "%p %v").stdout.splitlines() == ["0 in0", "2 in2"]
    r = invoke("produce", topic, "-p", "3", input="x\n")
    assert r.code == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr
    r = invoke("consume", topic, "-p", "7")
    assert r.code == 1 and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr


def test_acks_zero_and_one(invoke, broker, unique):
    topic = unique()
    invoke("topic", "create", topic, "-p", "1")
    r = invoke("produce", topic, "--acks", "0", input="fire\nand\nforget\n")
    assert r.code == 0 and r.stderr.splitlines()[-1].split() == ["0", "3", "-", "-"]
    assert invoke("produce", topic, "--acks", "1", input="x\n").stderr.splitlines()[-1].split() == ["0", "1", "3", "3"]
    assert invoke("consume", topic).stdout.split() == ["fire", "and", "forget", "x"]


def test_follow_prints_records_as_they_arrive(cli, broker, unique):
    topic = unique()
    cli("topic", "create", topic, "-p", "2")
    env = {"KAFKA_COMPAT_BROKERS": broker.bootstrap}
    follower = subprocess.Popen([CLI, "consume", topic, "--follow", "-n", "4", "-f", "%v"], stdout=subprocess.PIPE,
                                env=env)
    try:
        cli("produce", topic, "-K", ":", input="a:1\nb:2\n")
        first = sorted(follower.stdout.readline().split() + follower.stdout.readline().split())
        assert first == [b"1", b"2"] and follower.poll() is None  # caught up, and still waiting for more
        cli("produce", topic, "-K", ":", input="c:3\nd:4\n")
        out, _ = follower.communicate(timeout=20)
    finally:
        follower.kill()
    assert follower.returncode == 0 and sorted(out.decode().split()) == ["3", "4"]


def test_group_offsets(invoke, unique):
    """With --group: resume after what was consumed."""
    topic, group = unique(), unique("g")
    invoke("topic", "create", topic, "-p", "2")
    invoke("produce", topic, "-K", ":", input="".join(f"k{i}:{i}\n" for i in range(10)))
    first = invoke("consume", topic, "--group", group, "-n", "4")
    assert first.code == 0, first.stderr
    rest = invoke("consume", topic, "--group", group)
    assert sorted(first.stdout.split() + rest.stdout.split(), key=int) == [str(i) for i in range(10)]
    assert invoke("consume", topic, "--group", group).stdout == ""
    assert len(invoke("consume", topic, "--group", group, "-o", "beginning").stdout.split()) == 10


def test_unknown_topic_and_unreachable_broker_through_the_executable(cli, unique):
    r = cli("consume", unique())
    assert r.code == 1 and r.stderr.startswith("error: UNKNOWN_TOPIC_OR_PARTITION") and len(r.stderr.splitlines()) == 1
    r = cli("produce", "t", input="x\n", brokers="127.0.0.1:1")
    assert r.code == 1 and r.stderr == ("error: cannot connect to 127.0.0.1:1: Connection refused; is a broker "
                                        "running there? Give another address with -b host:port or "
                                        "KAFKA_COMPAT_BROKERS\n")


def test_a_restarted_broker_is_reconnected_to(broker_factory, unique):
    """A Cluster outlives its connections: after the broker restarts, the next produce and fetch
    reconnect, refresh metadata and succeed."""
    from kafka_compat.client import iter_fetched
    from kafka_compat.records import Record, build_batch

    b = broker_factory()
    topic = unique()
    with Cluster(b.bootstrap) as c:
        c.topic(topic, auto_create=True)
        assert c.produce(topic, {0: bytes(build_batch([Record(value=b"before")]))})[0].error_code == ErrorCode.NONE
        b.restart()
        assert c.produce(topic, {0: bytes(build_batch([Record(value=b"after")]))})[0].base_offset == 1
        data = c.fetch(topic, {0: c.list_offsets(topic, {0: EARLIEST})[0]}, max_wait_ms=0)[0].records
        assert [r.value for r in iter_fetched(data)] == [b"before", b"after"]
