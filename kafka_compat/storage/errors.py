"""Storage errors: KafkaErrors whose class names the code the client gets."""

from __future__ import annotations

from kafka_compat.protocol.errors import ErrorCode, KafkaError


class StorageError(KafkaError):
    """A storage operation refused."""

    CODE = ErrorCode.KAFKA_STORAGE_ERROR

    def __init__(self, message: str):
        super().__init__(self.CODE, message)


class OffsetOutOfRangeError(StorageError):
    """A read or lookup outside [log start offset, log end offset]."""

    CODE = ErrorCode.OFFSET_OUT_OF_RANGE


class InvalidConfigError(StorageError):
    """A topic config key or value Kafka would refuse; the message names the key."""

    CODE = ErrorCode.INVALID_CONFIG


class OffsetsOutOfOrderError(StorageError):
    """A follower append whose offsets do not follow the log's (the replication layer truncates
    and fetches again). Not an API error in Kafka, hence UNKNOWN_SERVER_ERROR if it ever escapes."""

    CODE = ErrorCode.UNKNOWN_SERVER_ERROR
