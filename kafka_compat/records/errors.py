"""The error the records package raises: a KafkaError with the code a producer or consumer gets."""

from __future__ import annotations

from kafka_compat.protocol.errors import ErrorCode, KafkaError


class RecordsError(KafkaError):
    """Bad record bytes or a record the topic must refuse: CORRUPT_MESSAGE, INVALID_RECORD,
    MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, UNSUPPORTED_COMPRESSION_TYPE or INVALID_TIMESTAMP,
    with a message saying what was wrong (for the response's error message and logs).
    `record_errors`: the records that made a batch fail, as (index in the batch, why), which
    Produce v8+ returns (KIP-467)."""

    def __init__(self, code, message: str | None = None, record_errors: list[tuple[int, str]] | None = None):
        super().__init__(code, message)
        self.record_errors = record_errors or []


def record_errors(errors: list[tuple[int, str]], timestamps: bool) -> RecordsError:
    """The error for a batch some of whose records are refused, worded as Kafka's LogValidator
    words it: INVALID_TIMESTAMP if any record's timestamp is out of range, else INVALID_RECORD."""
    if timestamps:
        return RecordsError(ErrorCode.INVALID_TIMESTAMP, "One or more records have been rejected due to invalid "
                            "timestamp", errors)
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in errors[:3])
    return RecordsError(ErrorCode.INVALID_RECORD, f"One or more records have been rejected due to {len(errors)} "
                        f"record errors in total, and only showing the first three errors at most: [{shown}]", errors)


def corrupt(message: str) -> RecordsError:
    return RecordsError(ErrorCode.CORRUPT_MESSAGE, message)


def invalid(message: str) -> RecordsError:
    return RecordsError(ErrorCode.INVALID_RECORD, message)
