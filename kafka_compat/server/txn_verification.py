"""KIP-890 part 1 on a partition leader: a transaction's first batch on a partition is written only
once the transaction coordinator confirms the partition is in the transaction
(`transaction.partition.verification.enable`, dynamic). Both transactional writers come here, as
both go through Kafka's ReplicaManager: Produce, and the group coordinator for TxnOffsetCommit
(its batch on the group's `__consumer_offsets` partition, which AddOffsetsToTxn adds).

The partition's log hands out a guard when there is something to verify (none while the
producer's transaction is ongoing there, or with verification off) and refuses a transaction's
first batch that does not carry the guard it handed out (INVALID_TXN_STATE): a marker written
while the coordinator was being asked ends the verification, and the append after it fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kafka_compat.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from kafka_compat.replication.partition import Partition
    from kafka_compat.server.broker import Broker


async def verification_guard(broker: Broker, p: Partition, transactional_id: str, producer_id: int,
                             producer_epoch: int, sequence: int, *, abortable: bool) -> object | None:
    """The guard for a transactional append to `p` (None: nothing to verify), once the coordinator
    confirmed `p` is in the transaction. `sequence` is the batch's first (NO_SEQUENCE for the group
    coordinator's); `abortable` says the request's version knows TRANSACTION_ABORTABLE (Produce
    v11+, TxnOffsetCommit v4+), else a partition not in the transaction is INVALID_TXN_STATE.

    Raises KafkaError with the coordinator's answer as Kafka's AddPartitionsToTxnManager passes
    it on: PRODUCER_FENCED as INVALID_PRODUCER_EPOCH, COORDINATOR_NOT_AVAILABLE without one,
    NETWORK_EXCEPTION when it did not answer; each writer maps these for its clients."""
    guard = p.log.verification_guard(producer_id, sequence, producer_epoch)
    if guard is None:
        return None
    transactions = broker.transactions
    code = ErrorCode.COORDINATOR_NOT_AVAILABLE if transactions is None else await transactions.verify(
        transactional_id, producer_id, producer_epoch, p.topic, p.index)
    code = passed_on(code, abortable=abortable)
    if code != ErrorCode.NONE:
        raise KafkaError(code)
    return guard


def passed_on(code: ErrorCode, *, abortable: bool) -> ErrorCode:
    """The coordinator's answer to a verification as the writer gets it (see verification_guard)."""
    if code == ErrorCode.PRODUCER_FENCED:
        return ErrorCode.INVALID_PRODUCER_EPOCH
    if code == ErrorCode.TRANSACTION_ABORTABLE and not abortable:
        return ErrorCode.INVALID_TXN_STATE
    if code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED:  # the broker may not ask: not the client's to see
        return ErrorCode.INVALID_TXN_STATE
    return code
