"""Error responses for requests a handler could not answer item by item."""

from __future__ import annotations

from kafka_compat.protocol import messages
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message


def error_response(api_key: int, version: int, request: Message | None, code: ErrorCode,
                   message: str | None) -> Message | None:
    """A response carrying `code` in its top-level error field, if that version has one; else
    None (the caller closes the connection, as Kafka does when it cannot answer)."""
    cls = messages.response_class(api_key)
    if not cls.has_field("error_code", version):
        return None
    response = cls(error_code=code)
    if message is not None and cls.has_field("error_message", version):
        response.error_message = message
    return response
