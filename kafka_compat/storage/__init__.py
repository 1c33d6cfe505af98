"""Partition logs on disk: segments, indexes, recovery, retention, compaction, checkpoints.

Synchronous and trio-free; see log.Log for the thread model and log_manager.LogManager for the
broker-facing entry points.
"""

from kafka_compat.storage.config import TOPIC_CONFIGS, ConfigKey, LogConfig
from kafka_compat.storage.errors import InvalidConfigError, OffsetOutOfRangeError, OffsetsOutOfOrderError, StorageError
from kafka_compat.storage.file_slice import FileSlice
from kafka_compat.storage.log import (
    EARLIEST_LOCAL_TIMESTAMP,
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    MAX_TIMESTAMP,
    AppendInfo,
    Log,
    TimestampAndOffset,
)
from kafka_compat.storage.log_manager import LogManager

__all__ = [
    "AppendInfo", "ConfigKey", "EARLIEST_LOCAL_TIMESTAMP", "EARLIEST_TIMESTAMP", "FileSlice", "InvalidConfigError",
    "LATEST_TIMESTAMP", "Log", "LogConfig", "LogManager", "MAX_TIMESTAMP", "OffsetOutOfRangeError",
    "OffsetsOutOfOrderError", "StorageError", "TOPIC_CONFIGS", "TimestampAndOffset",
]
