"""kafka-compat's files read by Kafka's own readers (the pinned release's kafka-dump-log,
DumpLogSegments, and kafka-metadata-shell): a topic's segments (several, of uncompressed, lz4 and
zstd batches) with every record where it was acknowledged, valid CRCs, keys, values, headers and
CreateTimes; their offset and time indexes, which the tool cross-checks against the log without a
mismatch; `__consumer_offsets` decoded with --offsets-decoder (the committed offset of a group);
the `__cluster_metadata` log and a metadata snapshot decoded with --cluster-metadata-decoder
(topic, partition and config records at wall-clock times; snapshot header and footer); and the
metadata shell, which loads the snapshot and shows the topic's partitions."""

import re
from pathlib import Path

import pytest

from conformance.jvm import Driver, java, records_arg, side_classpath
from conformance.support import create_topic, now_ms, sample_records, wait_until
from kafka_compat.testing.broker_process import BrokerProcess

pytestmark = pytest.mark.timeout(180)
RECORD = re.compile(r"^\| offset: (\d+) CreateTime: (\d+) keySize: (-?\d+) valueSize: (-?\d+) sequence: (-?\d+) "
                    r"headerKeys: \[([^\]]*)\](?: key: (\S*))?(?: payload: (.*))?$")


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    """A broker that stored a topic in several segments, a group's commit and enough metadata for a
    snapshot; what kafka-dump-log printed of its metadata log while it ran, then its data files
    after a clean stop (when the active segment's indexes are trimmed, as Kafka's are)."""
    started = now_ms()
    broker = BrokerProcess(tmp_path_factory.mktemp("dump"), overrides={
        "metadata.log.max.record.bytes.between.snapshots": "1000"}).start()
    logs = Path(broker.data_dir) / "logs"
    try:
        with Driver(broker.bootstrap) as java_:
            topic = create_topic(broker.bootstrap, "dumped", configs={"segment.bytes": "2048",
                                                                     "index.interval.bytes": "512"})
            records = sample_records(60, partitions=1)
            for codec, part in (("none", records[:30]), ("lz4", records[30:45]), ("zstd", records[45:])):
                java_.call("produce", topic=topic, records=records_arg(part), chunk=5,
                           config={"compression.type": codec, "linger.ms": "50"})
            java_.call("consumer.open", name="c", config={"group.id": "dump-group"})
            java_.call("consumer.assign", name="c", partitions=[[topic, 0]])
            java_.call("consumer.commit", name="c", offsets=[[topic, 0, 42, "at 42"]])
            java_.call("consumer.close", name="c")
            for i in range(8):  # metadata records until a snapshot is due
                create_topic(broker.bootstrap, f"more-{i}", configs={"retention.ms": "3600000"})
            meta = logs / "__cluster_metadata-0"
            snapshot = wait_until(lambda: sorted(meta.glob("*.checkpoint")), "a metadata snapshot", 30)[-1]
            metadata_log = java_.tool("kafka-dump-log", "--cluster-metadata-decoder", "--files",
                                      ",".join(str(p) for p in sorted(meta.glob("*.log")))).stdout
            snapshot_dump = java_.tool("kafka-dump-log", "--cluster-metadata-decoder", "--files", str(snapshot)).stdout
            snapshot_copy = tmp_path_factory.mktemp("snapshot") / snapshot.name
            snapshot_copy.write_bytes(snapshot.read_bytes())
            assert broker.stop() == 0
            part = logs / f"{topic}-0"
            segments = sorted(part.glob("*.log"))
            data = {p.name: java_.tool("kafka-dump-log", "--deep-iteration", "--print-data-log", "--files",
                                       str(p)).stdout for p in segments}
            indexes = {p.name: java_.tool("kafka-dump-log", "--files", str(p)).stdout
                       for p in sorted(part.glob("*.index")) + sorted(part.glob("*.timeindex"))}
            offsets = "".join(java_.tool("kafka-dump-log", "--offsets-decoder", "--files", str(p)).stdout
                              for p in sorted(logs.glob("__consumer_offsets-*/*.log")))
    finally:
        broker.kill()
    return {"records": records, "started": started, "ended": now_ms(), "segments": segments, "data": data,
            "indexes": indexes, "offsets": offsets, "metadata_log": metadata_log, "snapshot": snapshot_dump,
            "snapshot_file": snapshot_copy}


def test_segments_hold_every_record_as_produced(dumped):
    assert len(dumped["segments"]) >= 3, "segment.bytes=2048 rolls the log several times"
    got, codecs = [], set()
    for text in dumped["data"].values():
        for line in text.splitlines():
            if line.startswith("baseOffset:"):
                assert "isvalid: true" in line and "magic: 2" in line, line
                codecs.add(re.search(r"compresscodec: (\w+)", line)[1])
            elif line.startswith("| offset:"):
                match = RECORD.match(line)
                assert match, line
                got.append(match.groups())
    assert codecs == {"none", "lz4", "zstd"}
    assert [int(g[0]) for g in got] == list(range(60))
    for r, (_, ts, _, _, _, header_keys, key, payload) in zip(dumped["records"], got):
        assert int(ts) == r.timestamp and header_keys == "idx,dup,dup"
        assert (key.encode() if key is not None else None) == r.key
        assert (payload.rstrip().encode() if payload is not None else None) == (r.value.rstrip() if r.value else None)
    # one idempotent producer per codec: its own gap-free sequences
    assert [int(g[4]) for g in got] == [*range(30), *range(15), *range(15)]


def test_indexes_match_their_segments(dumped):
    offset_entries = time_entries = 0
    for name, text in dumped["indexes"].items():
        assert "Mismatches in" not in text and "mismatch" not in text.lower() and "out of order" not in text, text
        if name.endswith(".index"):
            offset_entries += len(re.findall(r"^offset: \d+ position: \d+$", text, re.M))
        else:
            time_entries += len(re.findall(r"^timestamp: \d+ offset: \d+$", text, re.M))
    assert offset_entries > 0 and time_entries > 0


def test_consumer_offsets_decode(dumped):
    key = '{"type":"1","data":{"group":"dump-group","topic":"dumped","partition":0}}'
    [line] = [ln for ln in dumped["offsets"].splitlines() if key in ln]
    payload = re.search(r"payload: (\{.*\})$", line)[1]
    assert '"offset":42' in payload and '"metadata":"at 42"' in payload


def test_metadata_log_and_snapshot_decode(dumped):
    log, snap = dumped["metadata_log"], dumped["snapshot"]
    assert '"type":"TOPIC_RECORD"' in log + snap and '"name":"dumped"' in log + snap
    assert re.search(r'"type":"CONFIG_RECORD".*"resourceName":"more-\d","name":"retention.ms","value":"3600000"',
                     log + snap)
    times = [int(t) for t in re.findall(r"CreateTime: (\d+)", log + snap)]
    assert times and all(dumped["started"] - 5_000 <= t <= dumped["ended"] for t in times), "wall-clock times"
    assert "SnapshotHeader" in snap and "SnapshotFooter" in snap and '"type":"PARTITION_RECORD"' in snap
    assert "isvalid: true" in snap and "isvalid: false" not in log + snap
    # the snapshot keeps what the broker registered with (its supported features), as the log did
    [registered] = [ln for ln in snap.splitlines() if '"type":"REGISTER_BROKER_RECORD"' in ln]
    assert '"features":[{"name":"metadata.version","minSupportedVersion":7,"maxSupportedVersion":21}]' in registered


def test_metadata_shell_reads_the_snapshot(dumped):
    def shell(*command: str) -> str:
        r = java("org.apache.kafka.shell.MetadataShell", "--snapshot", str(dumped["snapshot_file"]), *command,
                 cp=side_classpath("metadata-shell"))
        return r.stdout.decode()
    topics = shell("ls", "/image/topics/byName").split()
    assert "dumped" in topics and "more-0" in topics
    assert shell("cat", "/image/topics/byName/dumped/0").startswith("PartitionRegistration(replicas=[1]")

