"""Storage errors, each carrying the Kafka error name the protocol layer answers with."""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation refused; `error` is the Kafka error name (UPPER_SNAKE)."""

    error = "KAFKA_STORAGE_ERROR"

    def __init__(self, message: str, error: str | None = None):
        if error is not None:
            self.error = error
        self.message = message
        super().__init__(f"{self.error}: {message}")


class OffsetOutOfRangeError(StorageError):
    """A read or lookup outside [log start offset, log end offset]."""

    error = "OFFSET_OUT_OF_RANGE"


class InvalidConfigError(StorageError):
    """A topic config key or value Kafka would refuse; the message names the key."""

    error = "INVALID_CONFIG"


class OffsetsOutOfOrderError(StorageError):
    """A follower append whose offsets do not follow the log's (the replication layer truncates
    and fetches again). Not an API error in Kafka, hence UNKNOWN_SERVER_ERROR if it ever escapes."""

    error = "UNKNOWN_SERVER_ERROR"
