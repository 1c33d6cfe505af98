"""The one exception the records package raises: a Kafka error name and a human sentence."""

from __future__ import annotations


class RecordsError(Exception):
    """Bad record bytes or a record the topic must refuse.

    `error` is the Kafka error name in UPPER_SNAKE (CORRUPT_MESSAGE, INVALID_RECORD, MESSAGE_TOO_LARGE,
    RECORD_LIST_TOO_LARGE, UNSUPPORTED_COMPRESSION_TYPE, INVALID_TIMESTAMP); the protocol layer turns
    it into an error code. `message` says what was wrong, for the response's error message and logs.
    """

    def __init__(self, error: str, message: str):
        self.error = error
        self.message = message
        super().__init__(f"{error}: {message}")


def corrupt(message: str) -> RecordsError:
    return RecordsError("CORRUPT_MESSAGE", message)


def invalid(message: str) -> RecordsError:
    return RecordsError("INVALID_RECORD", message)
