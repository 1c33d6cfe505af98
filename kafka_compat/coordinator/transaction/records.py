"""The records the transaction coordinator keeps in `__transaction_state` (Kafka's TransactionLog).

    key   = int16 0 (the record type, TransactionLogKey's version) + TransactionLogKey v0
    value = int16 version + TransactionLogValue at it; None = tombstone (an expired transactional id)

The value is version 0 while the cluster's transaction version is 0, else version 1 (flexible,
with the previous and next producer ids and the client's transaction version as tagged fields),
as Kafka writes them; Kafka's tools and a Kafka broker taking over the log read both.
"""

from __future__ import annotations

import struct
from collections import defaultdict

from kafka_compat.coordinator.responses import fit
from kafka_compat.coordinator.transaction.state import TransactionMetadata, TxnState, TxnTransit
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import DecodeError

_INT16 = struct.Struct(">h")
KEY_VERSION = 0


class RecordError(Exception):
    """A `__transaction_state` record that does not decode."""


def key_bytes(transactional_id: str) -> bytes:
    return _INT16.pack(KEY_VERSION) + m.TransactionLogKey(transactional_id=transactional_id).encode(KEY_VERSION)


def value_version(transaction_version: int) -> int:
    return 0 if transaction_version == 0 else 1


def value_bytes(t: TxnTransit, version: int) -> bytes:
    if t.state is TxnState.EMPTY and t.partitions:
        raise ValueError(f"an Empty transaction has no partitions: {t}")
    partitions = None
    if t.state is not TxnState.EMPTY:
        by_topic: dict[str, list[int]] = defaultdict(list)
        for topic, p in sorted(t.partitions):
            by_topic[topic].append(p)
        partitions = [m.TransactionLogValue.PartitionsSchema(topic=topic, partition_ids=ps)
                      for topic, ps in by_topic.items()]
    value = m.TransactionLogValue(
        producer_id=t.producer_id, previous_producer_id=t.prev_producer_id, next_producer_id=t.next_producer_id,
        producer_epoch=t.producer_epoch, transaction_timeout_ms=t.timeout_ms, transaction_status=int(t.state),
        transaction_partitions=partitions, transaction_last_update_timestamp_ms=t.update_ms,
        transaction_start_timestamp_ms=t.start_ms, client_transaction_version=t.client_version)
    return _INT16.pack(version) + fit(value, version).encode(version)  # v0 has no tagged fields


def record(transactional_id: str, t: TxnTransit, version: int) -> tuple[bytes, bytes]:
    return key_bytes(transactional_id), value_bytes(t, version)


def tombstone(transactional_id: str) -> tuple[bytes, None]:
    return key_bytes(transactional_id), None


def decode(key: bytes, value: bytes | None) -> tuple[str, TransactionMetadata | None] | None:
    """(transactional id, its state or None for a tombstone); None for a key version this broker
    does not know (Kafka skips those too). Raises RecordError for bytes that do not parse."""
    if key is None or len(key) < 2:
        raise RecordError("transaction log record without a key version")
    (version,) = _INT16.unpack_from(key)
    if version != KEY_VERSION:
        return None
    try:
        txn_id = m.TransactionLogKey.decode(bytes(key[2:]), KEY_VERSION).transactional_id
        if value is None:
            return txn_id, None
        if len(value) < 2:
            raise RecordError(f"{txn_id}: truncated value")
        (vv,) = _INT16.unpack_from(value)
        lo, hi = m.TransactionLogValue.VALID_VERSIONS
        if not lo <= vv <= hi:
            raise RecordError(f"{txn_id}: unknown value version {vv}")
        v = m.TransactionLogValue.decode(bytes(value[2:]), vv)
        state = TxnState(v.transaction_status)
    except (DecodeError, ValueError) as e:
        raise RecordError(f"transaction log record: {e}") from None
    partitions = set()
    if state is not TxnState.EMPTY:
        partitions = {(ps.topic, p) for ps in v.transaction_partitions or () for p in ps.partition_ids}
    return txn_id, TransactionMetadata(
        txn_id, v.producer_id, prev_producer_id=v.previous_producer_id, next_producer_id=v.next_producer_id,
        producer_epoch=v.producer_epoch, timeout_ms=v.transaction_timeout_ms, state=state, partitions=partitions,
        start_ms=v.transaction_start_timestamp_ms, update_ms=v.transaction_last_update_timestamp_ms,
        client_version=v.client_transaction_version)


def format_record(key: bytes, value: bytes | None) -> tuple[str, str | None]:
    """(key, payload) as Kafka's transaction log decoder prints a record (kafka-dump-log
    --transaction-log-decoder)."""
    try:
        decoded = decode(key, value)
    except RecordError as e:
        return f"undecodable::{e}", None
    if decoded is None:
        return f"unknown::version={_INT16.unpack_from(key)[0]}", None
    txn_id, md = decoded
    if md is None:
        return f"transaction_metadata::transactionalId={txn_id}", "<DELETE>"
    parts = ",".join(f"{t}-{p}" for t, p in sorted(md.partitions))
    return (f"transaction_metadata::transactionalId={txn_id}",
            f"producerId:{md.producer_id},producerEpoch:{md.producer_epoch},state={md.state.kafka_name},"
            f"partitions=[{parts}],txnLastUpdateTimestamp={md.update_ms},txnTimeoutMs={md.timeout_ms}")
