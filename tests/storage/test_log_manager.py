"""LogManager: partitions across log dirs, deletion, checkpoints, clean and unclean restarts, maintenance."""

from kafka_compat.records.builder import build_batch
from kafka_compat.records.record import Record
from kafka_compat.records.validator import validate_records
from kafka_compat.storage import LogConfig, LogManager, checkpoint
from kafka_compat.storage.log_manager import CLEAN_SHUTDOWN_FILE

NOW = 1_700_000_000_000


def produce(log, n=1):
    for i in range(n):
        log.append(validate_records(build_batch([Record(b"k%d" % i, b"v", NOW)]), log.config, NOW), 0)
    log.high_watermark = log.log_end_offset


def manager(tmp_path, **kw):
    return LogManager([tmp_path / "d1", tmp_path / "d2"], LogConfig.from_dict({"segment.bytes": "300"}),
                      clock=lambda: NOW, **kw)


def test_create_spreads_partitions_and_get_finds_them(tmp_path):
    m = manager(tmp_path)
    a, b = m.create("t", 0), m.create("t", 1)
    assert {a.dir.parent.name, b.dir.parent.name} == {"d1", "d2"}
    assert m.get("t", 0) is a and m.create("t", 0) is a and m.get("t", 9) is None


def test_topic_names_with_dashes_round_trip(tmp_path):
    m = manager(tmp_path)
    produce(m.create("my-topic-v2", 3), 2)
    m.close()
    assert manager(tmp_path).get("my-topic-v2", 3).log_end_offset == 2


def test_clean_restart_restores_offsets_from_checkpoints_and_removes_the_marker(tmp_path):
    m = manager(tmp_path)
    log = m.create("t", 0)
    produce(log, 10)
    log.high_watermark = 7
    log.advance_log_start_offset(4)
    m.close()
    for d in ("d1", "d2"):
        assert (tmp_path / d / CLEAN_SHUTDOWN_FILE).exists()
    again = manager(tmp_path).get("t", 0)
    assert (again.log_start_offset, again.log_end_offset, again.high_watermark, again.recovery_point) == (4, 10, 7, 10)
    assert not (tmp_path / "d1" / CLEAN_SHUTDOWN_FILE).exists()


def test_unclean_restart_recovers_from_the_checkpointed_recovery_point(tmp_path, capsys):
    m = manager(tmp_path)
    produce(m.create("t", 0), 10)
    m.checkpoint()
    del m
    again = manager(tmp_path)
    assert again.get("t", 0).log_end_offset == 10
    assert "log_recovered" in capsys.readouterr().out


def test_delete_renames_then_removes_after_the_delay(tmp_path):
    m = manager(tmp_path)
    log = m.create("t", 0)
    produce(log, 3)
    [s] = log.read(0, 1 << 20)
    parent = log.dir.parent
    assert m.delete("t", 0) and m.get("t", 0) is None
    [renamed] = [p for p in parent.iterdir() if p.is_dir()]
    assert renamed.name.startswith("t-0.") and renamed.name.endswith("-delete")
    assert len(s.read()) == len(s)
    assert m.delete_expired_files(NOW) == 0 and renamed.exists()
    assert m.delete_expired_files(NOW + 60_000) == 1 and not renamed.exists()
    assert len(s.read()) == len(s)  # the open slice outlives the files


def test_leftover_delete_directories_are_removed_on_start(tmp_path):
    (tmp_path / "d1" / "t-0.abc-delete").mkdir(parents=True)
    manager(tmp_path)
    assert not (tmp_path / "d1" / "t-0.abc-delete").exists()


def test_topic_configs_come_from_config_for(tmp_path):
    compact = LogConfig.from_dict({"cleanup.policy": "compact"})
    m = manager(tmp_path, config_for=lambda t: compact if t == "c" else None)
    assert m.create("c", 0).config.compact and not m.create("d", 0).config.compact
    m.close()
    assert manager(tmp_path, config_for=lambda t: compact if t == "c" else None).get("c", 0).config.compact


def test_checkpoint_files_use_kafkas_format(tmp_path):
    m = manager(tmp_path)
    produce(m.create("t", 0), 2)
    m.checkpoint()
    d = m.get("t", 0).dir.parent
    assert checkpoint.read_offsets(d / checkpoint.HIGH_WATERMARK) == {("t", 0): 2}
    assert (d / checkpoint.RECOVERY_POINT).read_text().startswith("0\n1\nt 0 ")


def test_maintenance_entry_points(tmp_path):
    m = LogManager([tmp_path / "d"], LogConfig.from_dict({"segment.bytes": "300", "retention.ms": "1000",
                                                         "file.delete.delay.ms": "0"}), clock=lambda: NOW)
    log = m.create("t", 0)
    for _i in range(6):
        log.append(validate_records(build_batch([Record(b"k", b"x" * 80, NOW - 10_000)]), log.config, NOW), 0)
    log.high_watermark = log.log_end_offset
    assert m.flush_due(NOW) == 1
    assert m.run_retention(NOW) >= 1 and log.log_start_offset == log.log_end_offset == 6


def test_clean_once_compacts_the_dirtiest_compacted_log(tmp_path):
    m = LogManager([tmp_path / "d"], LogConfig.from_dict({"segment.bytes": "300", "cleanup.policy": "compact",
                                                         "file.delete.delay.ms": "0"}), clock=lambda: NOW)
    log = m.create("t", 0)
    produce(log, 1)
    for _ in range(10):
        log.append(validate_records(build_batch([Record(b"same", b"v", NOW)]), log.config, NOW), 0)
    log.roll()
    log.high_watermark = log.log_end_offset
    result = m.clean_once(NOW)
    assert result is not None and result.records_removed == 9
    assert m.clean_once(NOW) is None


def test_the_metadata_log_directory_is_left_to_the_quorum(tmp_path):
    from kafka_compat.storage import Log
    from kafka_compat.storage.log_manager import METADATA_TOPIC
    produce(Log(tmp_path / "d1" / f"{METADATA_TOPIC}-0", LogConfig()), 2)
    m = manager(tmp_path)
    assert m.get(METADATA_TOPIC, 0) is None
    m.close()
    assert METADATA_TOPIC not in (tmp_path / "d1" / checkpoint.RECOVERY_POINT).read_text()
