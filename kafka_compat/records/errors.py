"""The error the records package raises: a KafkaError with the code a producer or consumer gets."""

from __future__ import annotations

from kafka_compat.protocol.errors import ErrorCode, KafkaError


class RecordsError(KafkaError):
    """Bad record bytes or a record the topic must refuse: CORRUPT_MESSAGE, INVALID_RECORD,
    MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, UNSUPPORTED_COMPRESSION_TYPE or INVALID_TIMESTAMP,
    with a message saying what was wrong (for the response's error message and logs)."""


def corrupt(message: str) -> RecordsError:
    return RecordsError(ErrorCode.CORRUPT_MESSAGE, message)


def invalid(message: str) -> RecordsError:
    return RecordsError(ErrorCode.INVALID_RECORD, message)
