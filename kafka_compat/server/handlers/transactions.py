"""The transaction family: the coordinator's APIs, served by `ctx.broker.transactions`
(`kafka_compat.server.transaction_coordinator.TransactionCoordinatorDriver`), and the partition
leader's: WriteTxnMarkers and DescribeProducers.

InitProducerId without a transactional id is the idempotent producer's: a fresh producer id from
the controller's blocks. With one, the coordinator decides (fencing, epoch bumps, KIP-360), after
`__transaction_state` exists (created here on first use, as Kafka does). Before the coordinator
runs, its APIs answer COORDINATOR_NOT_AVAILABLE, which clients retry.

WriteTxnMarkers (from a transaction coordinator, on the inter-broker listener) writes each marker
on the partition's leader with acks=all; a `__consumer_offsets` partition's marker is written by
the group coordinator, which then commits or drops the producer's pending offsets.
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.server.authz import Op, Res, allowed, allowed_any, require, split
from kafka_compat.server.errors import error_response
from kafka_compat.server.handlers import RequestContext, handles
from kafka_compat.server.transaction_coordinator import ensure_transaction_topic, write_markers

A = m.ApiKey
OFFSETS_TOPIC = "__consumer_offsets"

COORDINATOR_APIS = {
    A.ADD_PARTITIONS_TO_TXN: (0, 5),  # batched transactions and verify_only (KIP-890) from v4
    A.ADD_OFFSETS_TO_TXN: (0, 4),
    A.END_TXN: (0, 5),  # v5: transaction version 2, the epoch bumps with every transaction
    A.DESCRIBE_TRANSACTIONS: (0, 0),
    A.LIST_TRANSACTIONS: (0, 1),  # duration_filter v1
}


def _unavailable(ctx: RequestContext, request):
    return error_response(ctx.api_key, request, ctx.api_version, ErrorCode.COORDINATOR_NOT_AVAILABLE,
                          "The coordinator is not available.")


async def coordinated(ctx: RequestContext, request):
    """Every API of COORDINATOR_APIS: the transaction coordinator decides, on what the principal
    may ask."""
    transactions = ctx.broker.transactions
    if transactions is None:
        return _unavailable(ctx, request)
    if ctx.broker.authorizer is None:
        return await transactions.handle(request, ctx)
    k = ctx.api_key
    if k == A.ADD_PARTITIONS_TO_TXN:
        if ctx.api_version >= 4:  # batched: from partition leaders verifying (KIP-890)
            require(ctx, Op.CLUSTER_ACTION)
        else:
            require(ctx, Op.WRITE, Res.TRANSACTIONAL_ID, request.v3_and_below_transactional_id)
            for t in request.v3_and_below_topics:
                require(ctx, Op.WRITE, Res.TOPIC, t.name)
    elif k in (A.ADD_OFFSETS_TO_TXN, A.END_TXN):
        require(ctx, Op.WRITE, Res.TRANSACTIONAL_ID, request.transactional_id)
        if k == A.ADD_OFFSETS_TO_TXN:
            require(ctx, Op.READ, Res.GROUP, request.group_id)
    elif k == A.DESCRIBE_TRANSACTIONS:
        request.transactional_ids, denied = split(
            ctx, request.transactional_ids, lambda t: allowed(ctx, Op.DESCRIBE, Res.TRANSACTIONAL_ID, t))
        response = await transactions.handle(request, ctx)
        response.transaction_states += [m.DescribeTransactionsResponse.TransactionState(
            error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, transactional_id=t) for t in denied]
        return response
    response = await transactions.handle(request, ctx)
    if k == A.LIST_TRANSACTIONS:  # only the ids the principal may describe
        response.transaction_states = [t for t in response.transaction_states if allowed(
            ctx, Op.DESCRIBE, Res.TRANSACTIONAL_ID, t.transactional_id, log_if_denied=False)]
    return response


for _api_key, _versions in COORDINATOR_APIS.items():
    handles(_api_key, _versions)(coordinated)


@handles(A.INIT_PRODUCER_ID, versions=(0, 5))
async def init_producer_id(ctx: RequestContext, req: m.InitProducerIdRequest) -> m.InitProducerIdResponse:
    """An idempotent producer gets a fresh producer id (Kafka always hands out a new one without a
    transactional id); a transactional one asks its coordinator."""
    R = m.InitProducerIdResponse
    if req.transactional_id is not None:
        require(ctx, Op.WRITE, Res.TRANSACTIONAL_ID, req.transactional_id)
    elif not allowed(ctx, Op.IDEMPOTENT_WRITE) and not allowed_any(ctx, Op.WRITE, Res.TOPIC):
        raise KafkaError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED, "Cluster authorization failed.")
    if req.transactional_id is None:
        return R(error_code=ErrorCode.NONE, producer_id=await ctx.broker.new_producer_id(), producer_epoch=0)
    if ctx.broker.transactions is None:
        return _unavailable(ctx, req)
    try:
        await ensure_transaction_topic(ctx.broker)
    except KafkaError as e:
        return R(error_code=e.code, producer_id=-1, producer_epoch=-1)
    return await ctx.broker.transactions.handle(req, ctx)


@handles(A.WRITE_TXN_MARKERS, versions=(0, 1))
async def write_txn_markers(ctx: RequestContext, req: m.WriteTxnMarkersRequest) -> m.WriteTxnMarkersResponse:
    """From a transaction coordinator: write the markers on the partitions this broker leads."""
    require(ctx, Op.CLUSTER_ACTION)
    return await write_markers(ctx.broker, req)


@handles(A.DESCRIBE_PRODUCERS, versions=(0, 0))
async def describe_producers(ctx: RequestContext, req: m.DescribeProducersRequest) -> m.DescribeProducersResponse:
    """The active producers of partitions this broker leads (kafka-transactions.sh
    find-hanging and describe-producers)."""
    R = m.DescribeProducersResponse
    topics = []
    for t in req.topics:
        parts = []
        may = allowed(ctx, Op.READ, Res.TOPIC, t.name)
        for index in t.partition_indexes:
            if not may:
                parts.append(R.PartitionResponse(partition_index=index,
                                                 error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                continue
            try:
                p = ctx.broker.replicas.leader(t.name, index)
            except KafkaError as e:
                parts.append(R.PartitionResponse(partition_index=index, error_code=e.code, error_message=e.message))
                continue
            producers = p.producers
            active = [R.ProducerState(producer_id=pid, producer_epoch=entry.epoch, last_sequence=entry.last_seq,
                                      last_timestamp=entry.last_timestamp, coordinator_epoch=entry.coordinator_epoch,
                                      current_txn_start_offset=entry.txn_first_offset)
                      for pid, entry in list(producers.producers.items())]
            parts.append(R.PartitionResponse(partition_index=index, error_code=ErrorCode.NONE, active_producers=active))
        topics.append(R.TopicResponse(name=t.name, partitions=parts))
    return R(topics=topics)
