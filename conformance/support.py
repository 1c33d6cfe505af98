"""What the conformance scenarios share: the records they send, readers for every client, checks.

A scenario produces `Rec`s with one client and reads them back as `Got`s with the same or another
client; `check_partition_order` then demands exactly the records sent, in order, at consecutive
offsets. Every wait here is bounded (`TIMEOUT`), so a broken broker fails a scenario quickly
instead of hanging it. Readers never join a consumer group: they assign partitions and seek (the
consumer-group scenarios share `conformance/groups.py`).
"""

from __future__ import annotations

import asyncio
import json
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kafka_compat.testing.waiting import collect, collect_async, wait_until  # noqa: F401 (scenarios import them)

TIMEOUT = 15.0  # seconds: the longest any single wait in a scenario may take
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
NODE_DIR = Path(__file__).parent / "node"


@dataclass(frozen=True)
class Rec:
    """A record as produced: where it goes and everything a consumer must see again."""

    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int | None  # CreateTime in ms; None where the client cannot set it (kcat)


@dataclass(frozen=True)
class Got:
    """A record as consumed."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int


def sample_records(n: int = 12, partitions: int = 2, *, ts0: int | None = None, tag: str = "") -> list[Rec]:
    """`n` records over `partitions`: ASCII keys (one null), compressible values (every fourth
    null), repeated header names (order matters) and distinct CreateTimes a second apart, an
    hour ago (well inside retention)."""
    ts0 = ts0 if ts0 is not None else now_ms() - 3_600_000
    out = []
    for i in range(n):
        key = None if i == 5 else f"key-{tag}{i:03d}".encode()
        value = None if i % 4 == 3 else (f"value-{tag}{i:03d} " * 20).encode()
        headers = (("idx", str(i).encode()), ("dup", b"first"), ("dup", b"second"))
        out.append(Rec(i % partitions, key, value, headers, ts0 + i * 1000))
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


def by_partition(records) -> dict[int, list]:
    out: dict[int, list] = {}
    for r in records:
        out.setdefault(r.partition, []).append(r)
    return out


def check_partition_order(sent: list[Rec], got: list[Got], first_offsets: dict[int, int] | None = None,
                          check_timestamps: bool = True) -> None:
    """`got` holds exactly `sent`, partition by partition in the order sent, at consecutive offsets
    from `first_offsets` (0 by default)."""
    assert len(got) == len(sent), f"sent {len(sent)} records, got {len(got)}"
    want, have = by_partition(sent), by_partition(got)
    assert sorted(have) == sorted(want), f"partitions: sent to {sorted(want)}, read from {sorted(have)}"
    for p, recs in want.items():
        base = (first_offsets or {}).get(p, 0)
        gots = have[p]
        assert [g.offset for g in gots] == list(range(base, base + len(recs))), f"partition {p} offsets"
        for r, g in zip(recs, gots):
            assert (g.key, g.value, g.headers) == (r.key, r.value, r.headers), f"partition {p} offset {g.offset}"
            if check_timestamps and r.timestamp is not None:
                assert g.timestamp == r.timestamp, f"partition {p} offset {g.offset}: timestamp"


def create_topic(bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> str:
    """Set-up helper (confluent-kafka's admin client): create a topic and wait until it is created."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            config=configs or {})], request_timeout=TIMEOUT)
    futures[name].result(TIMEOUT)
    return name


# -- what the broker stored ------------------------------------------------------------------------

_BATCH_HEAD = struct.Struct(">qiiBIhiqqqhii")  # the 61-byte magic-2 batch header


@dataclass(frozen=True)
class StoredBatch:
    base_offset: int
    attributes: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def codec(self) -> int:
        return self.attributes & 0x07


def assert_codec_kept(batches, codec_id: int) -> None:
    """The broker keeps each batch's codec as sent. librdkafka and franz-go send a batch uncompressed
    when compressing does not shrink it (a lone small record, when batching splits under load), so
    none may appear beside the producer's codec, which at least one batch carries."""
    codecs = {b.codec for b in batches}
    assert codec_id in codecs and codecs <= {codec_id, 0}, f"the broker must keep the producer's codec: {codecs}"


def stored_batches(log_dirs: Path, topic: str, partition: int) -> list[StoredBatch]:
    """The batch headers in a partition's segment files, read straight from disk (the broker
    writes appends to its files before answering, so this sees every acknowledged batch)."""
    out = []
    for seg in sorted((Path(log_dirs) / f"{topic}-{partition}").glob("*.log")):
        data = seg.read_bytes()
        pos = 0
        while pos + _BATCH_HEAD.size <= len(data):
            (base, length, _epoch, magic, _crc, attrs, _lod, _bts, _mts, pid, pepoch, seq,
             count) = _BATCH_HEAD.unpack_from(data, pos)
            if length <= 0 or magic != 2:
                break
            out.append(StoredBatch(base, attrs, pid, pepoch, seq, count))
            pos += 12 + length
    return out


def log_dirs_of(broker) -> Path:
    return Path(broker.data_dir) / "logs"


# -- readers, one per client: assign the partitions, seek, read `count` records ----------------------

def confluent_read(bootstrap: str, topic: str, starts: dict[int, int], count: int, timeout: float = TIMEOUT,
                   **conf) -> list[Got]:
    """librdkafka needs a group.id to build a consumer; it is never joined (assign, no commits)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "conformance-never-joined",
                  "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "error",
                  "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 1000, **conf})
    try:
        c.assign([TopicPartition(topic, p, off) for p, off in starts.items()])

        def poll() -> list[Got]:
            msg = c.poll(0.2)
            if msg is None:
                return []
            if msg.error():
                raise AssertionError(f"confluent-kafka consumer error: {msg.error()}")
            return [Got(msg.partition(), msg.offset(), msg.key(), msg.value(), tuple(msg.headers() or ()),
                        msg.timestamp()[1])]
        return collect(poll, count, "records read by confluent-kafka", timeout)
    finally:
        c.close()


def kafka_python_read(bootstrap: str, topic: str, starts: dict[int, int], count: int, timeout: float = TIMEOUT,
                      **conf) -> list[Got]:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=100, request_timeout_ms=10_000, **conf)
    try:
        tps = {p: TopicPartition(topic, p) for p in starts}
        c.assign(list(tps.values()))
        for p, off in starts.items():
            c.seek(tps[p], off)
        out = collect(lambda: [Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                               for tp, msgs in c.poll(timeout_ms=200).items() for m in msgs],
                      count, "records read by kafka-python", timeout)
        assert len(out) == count, f"kafka-python read {len(out)} records, {count} expected"
        return out
    finally:
        c.close()


async def aiokafka_read_async(bootstrap: str, topic: str, starts: dict[int, int], count: int,
                              timeout: float = TIMEOUT, **conf) -> list[Got]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         fetch_max_wait_ms=100, request_timeout_ms=10_000, **conf)
    await asyncio.wait_for(c.start(), timeout)
    try:
        tps = {p: TopicPartition(topic, p) for p in starts}
        c.assign(list(tps.values()))
        for p, off in starts.items():
            c.seek(tps[p], off)

        async def poll() -> list[Got]:
            return [Got(tp.partition, m.offset, m.key, m.value, tuple(m.headers), m.timestamp)
                    for tp, msgs in (await c.getmany(timeout_ms=200)).items() for m in msgs]
        out = await collect_async(poll, count, "records read by aiokafka", timeout)
        assert len(out) == count, f"aiokafka read {len(out)} records, {count} expected"
        return out
    finally:
        await asyncio.wait_for(c.stop(), timeout)


def aiokafka_read(*args, **kwargs) -> list[Got]:
    return asyncio.run(aiokafka_read_async(*args, **kwargs))


# -- kcat and node -----------------------------------------------------------------------------------

def kcat(*args: str, input: bytes | None = None, timeout: float = TIMEOUT, check: bool = True,
         quiet: bool = True) -> subprocess.CompletedProcess:
    """Run kcat (quiet unless told, a bounded metadata wait); fail with its stderr when `check` and
    it fails."""
    r = subprocess.run(["kcat", *(["-q"] if quiet else []), "-m", "5", *args], input=input, capture_output=True,
                       timeout=timeout)
    if check:
        assert r.returncode == 0, f"kcat {' '.join(args)} exited {r.returncode}: {r.stderr.decode(errors='replace')}"
    return r


def kcat_json_records(stdout: bytes) -> list[Got]:
    """Parse `kcat -C -J` output (one JSON envelope a line; headers as a flat name, value list)."""
    out = []
    for line in stdout.decode().splitlines():
        if not line.strip():
            continue
        e = json.loads(line)
        h = e.get("headers") or []
        headers = tuple((h[i], h[i + 1].encode()) for i in range(0, len(h), 2))
        enc = lambda s: None if s is None else s.encode()  # noqa: E731
        out.append(Got(e["partition"], e["offset"], enc(e["key"]), enc(e["payload"]), headers, e["ts"]))
    return out


def kcat_read(bootstrap: str, topic: str, starts: dict[int, int], count: int, timeout: float = TIMEOUT) -> list[Got]:
    """`kcat -C` (no group) from an offset in each partition, `count` records in total."""
    out = []
    for p, off in sorted(starts.items()):
        r = kcat("-b", bootstrap, "-C", "-t", topic, "-p", str(p), "-o", str(off), "-e", "-J", timeout=timeout)
        out += kcat_json_records(r.stdout)
    assert len(out) == count, f"kcat read {len(out)} of {count} records"
    return out


def records_json(records: list[Rec]) -> bytes:
    """Records for a node scenario's stdin (keys, values and header values as UTF-8 text)."""
    text = lambda b: None if b is None else b.decode()  # noqa: E731
    return json.dumps([{"partition": r.partition, "key": text(r.key), "value": text(r.value),
                        "headers": [[n, v.decode()] for n, v in r.headers], "timestamp": r.timestamp}
                       for r in records]).encode()


def run_node(script: str, *args: str, input: bytes = b"", timeout: float = 60.0, check: bool = True) -> dict:
    """Run `node conformance/node/<script> ARGS` (`input` on its stdin) and return the JSON object it
    prints on stdout; with `check`, fail unless it exited 0."""
    assert (NODE_DIR / "node_modules" / "kafkajs").is_dir(), "KafkaJS is not installed: run `make test-deps`"
    r = subprocess.run(["node", str(NODE_DIR / script), *args], input=input, capture_output=True, timeout=timeout,
                       cwd=NODE_DIR)
    out = r.stdout.decode(errors="replace").strip()
    assert r.returncode == 0 or not check, \
        f"node {script} exited {r.returncode}\nstdout: {out}\nstderr: {r.stderr.decode(errors='replace')[-3000:]}"
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"node {script} printed no JSON object: {out!r}") from None

KCAT_HEADERS = (("dup", b"first"), ("dup", b"second"))


def kcat_records(n: int = 12, partitions: int = 2, tag: str = "") -> list[Rec]:
    """`sample_records` as kcat can send them: the same keys and values (kcat -Z sends an empty key
    or value as null), the headers every record gets from `-H`, no CreateTime of our choosing."""
    return [Rec(r.partition, r.key, r.value, KCAT_HEADERS, None) for r in sample_records(n, partitions, tag=tag)]


def kcat_produce(bootstrap: str, topic: str, records: list[Rec], *extra: str) -> None:
    """Send `records` with `kcat -P` (one run per partition, key TAB value per line, -Z for nulls)."""
    for p, recs in sorted(by_partition(records).items()):
        lines = b"".join((r.key or b"") + b"\t" + (r.value or b"") + b"\n" for r in recs)
        kcat("-b", bootstrap, "-P", "-t", topic, "-p", str(p), "-K", "\t", "-Z",
             *[a for name, value in KCAT_HEADERS for a in ("-H", f"{name}={value.decode()}")], *extra, input=lines)
