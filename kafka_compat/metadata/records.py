"""Metadata records as KRaft frames them in `__cluster_metadata` record values.

A value is: frame version (unsigned varint, 1), record type (the record schema's apiKey, unsigned
varint), record version (unsigned varint), then the record at that version. Keys are null.
"""

from __future__ import annotations

from kafka_compat.protocol import messages
from kafka_compat.protocol.primitives import DecodeError, Message, read_uvarint, uvarint

FRAME_VERSION = 1
# The newest record versions the metadata.version written here (3.9-IV0) allows, where the schemas
# go further (Kafka 4's log-dir cordoning: readers of 3.9 refuse the newer versions).
MAX_RECORD_VERSIONS = {"RegisterBrokerRecord": 3, "BrokerRegistrationChangeRecord": 2}


def encode_record(record: Message, version: int | None = None) -> bytes:
    """Frame a metadata record (at the newest version metadata.version 3.9-IV0 allows unless told
    otherwise)."""
    if version is None:
        version = min(record.VALID_VERSIONS[1], MAX_RECORD_VERSIONS.get(record.NAME, record.VALID_VERSIONS[1]))
    return uvarint(FRAME_VERSION) + uvarint(record.API_KEY) + uvarint(version) + record.encode(version)


def decode_record(value: bytes) -> tuple[Message, int]:
    """(record, version) from a framed value; DecodeError for an unknown frame or type."""
    value = bytes(value)
    frame, p = read_uvarint(value, 0)
    if frame != FRAME_VERSION:
        raise DecodeError(f"metadata record frame version {frame} (only {FRAME_VERSION} is known)", 0)
    kind, p = read_uvarint(value, p)
    version, p = read_uvarint(value, p)
    if kind not in messages.METADATA_RECORDS:
        raise DecodeError(f"unknown metadata record type {kind}", 0)
    return messages.metadata_record_class(kind).decode(value, version, p), version
