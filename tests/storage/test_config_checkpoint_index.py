"""LogConfig parsing, checkpoint files, and the sparse indexes."""

import os

import pytest

from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.storage import TOPIC_CONFIGS, InvalidConfigError, LogConfig, checkpoint
from kafka_compat.storage.config import format_value
from kafka_compat.storage.index import OffsetIndex, TimeIndex


def test_defaults_are_kafkas():
    c = LogConfig()
    assert (c.segment_bytes, c.segment_ms, c.retention_ms, c.retention_bytes) == (1073741824, 604800000, 604800000, -1)
    assert (c.index_interval_bytes, c.max_message_bytes, c.cleanup_policy) == (4096, 1048588, ["delete"])
    assert (c.compression_type, c.message_timestamp_type, c.file_delete_delay_ms) == ("producer", "CreateTime", 60000)
    assert c.flush_messages == c.flush_ms == (1 << 63) - 1 and c.min_cleanable_dirty_ratio == 0.5


def test_string_values_are_parsed_by_type():
    c = LogConfig.from_dict({"segment.bytes": "1048576", "cleanup.policy": "compact, delete", "preallocate": "TRUE",
                             "min.cleanable.dirty.ratio": "0.25"})
    assert (c.segment_bytes, c.cleanup_policy, c.preallocate, c.min_cleanable_dirty_ratio) == \
        (1048576, ["compact", "delete"], True, 0.25)
    assert c.compact and c.delete and c.overrides == {"segment.bytes", "cleanup.policy", "preallocate",
                                                      "min.cleanable.dirty.ratio"}


@pytest.mark.parametrize("key,value,needle", [
    ("segment.bytes", "ten", "segment.bytes"),
    ("segment.bytes", "10", "at least 14"),
    ("cleanup.policy", "shred", "cleanup.policy"),
    ("compression.type", "brotli", "compression.type"),
    ("message.timestamp.type", "createtime", "message.timestamp.type"),
    ("min.cleanable.dirty.ratio", "2", "between"),
    ("max.message.bytes", str(1 << 40), "max.message.bytes"),
    ("no.such.key", "1", "Unknown topic config name: no.such.key"),
])
def test_invalid_values_raise_one_line_invalid_config_naming_the_key(key, value, needle):
    with pytest.raises(InvalidConfigError) as e:
        LogConfig.from_dict({key: value})
    assert e.value.code == ErrorCode.INVALID_CONFIG and needle in str(e.value) and "\n" not in str(e.value)


def test_broker_keys_become_defaults():
    c = LogConfig.from_broker({"log.segment.bytes": "2048", "log.retention.hours": "1", "message.max.bytes": "500",
                               "node.id": "1"})
    assert (c.segment_bytes, c.retention_ms, c.max_message_bytes, c.overrides) == (2048, 3600000, 500, frozenset())


def test_table_lists_every_key_with_a_type_and_default_that_round_trips():
    for name, key in TOPIC_CONFIGS.items():
        assert LogConfig.from_dict({name: format_value(key, key.default)}).get(name) == key.default


def test_checkpoint_round_trip_and_no_temp_file_left(tmp_path):
    path = tmp_path / checkpoint.RECOVERY_POINT
    checkpoint.write_offsets(path, {("a-b", 0): 10, ("c", 3): 7})
    assert path.read_text() == "0\n2\na-b 0 10\nc 3 7\n"
    assert checkpoint.read_offsets(path) == {("a-b", 0): 10, ("c", 3): 7}
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.RECOVERY_POINT]


def test_corrupt_checkpoint_raises(tmp_path):
    path = tmp_path / "x"
    path.write_text("0\n2\na 0 1\n")
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.read_offsets(path)


def test_offset_index_lookup_and_truncate(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 100, 1024)
    idx.load(0)
    for off, pos in [(105, 50), (110, 90), (120, 200)]:
        idx.append(off, pos)
    assert idx.lookup(99) == (100, 0) and idx.lookup(112) == (110, 90) and idx.lookup(500) == (120, 200)
    assert idx.floor_position(150) == 90
    idx.truncate_to(110)
    assert idx.lookup(500) == (105, 50)
    again = OffsetIndex(tmp_path / "0.index", 100, 1024)
    assert again.load(300) and again.lookup(500) == (105, 50)


def test_an_index_dropped_without_close_releases_its_descriptor(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 0, 1024)
    idx.load(0)
    idx.append(5, 50)
    idx.file.flush()  # the entry is written: the file is open
    fd = idx.file._fd
    assert fd >= 0
    del idx  # as when a crashed broker's logs are abandoned
    with pytest.raises(OSError):
        os.fstat(fd)


def test_offset_index_with_a_torn_entry_or_bad_position_is_refused(tmp_path):
    idx = OffsetIndex(tmp_path / "0.index", 0, 1024)
    idx.load(0)
    idx.append(5, 100)
    idx.file.flush()
    assert not OffsetIndex(tmp_path / "0.index", 0, 1024).load(50)  # position past the log's end
    with open(tmp_path / "0.index", "ab") as f:
        f.write(b"\x00\x01")
    assert not OffsetIndex(tmp_path / "0.index", 0, 1024).load(1000)


def test_time_index_offset_before_is_strict(tmp_path):
    idx = TimeIndex(tmp_path / "0.timeindex", 0, 1024)
    idx.load()
    idx.maybe_append(1000, 3)
    idx.maybe_append(900, 4)  # not newer: ignored
    idx.maybe_append(2000, 9)
    assert len(idx) == 2
    assert idx.offset_before(1000) is None and idx.offset_before(1001) == 3 and idx.offset_before(5000) == 9
