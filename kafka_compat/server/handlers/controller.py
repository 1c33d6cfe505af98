"""The controller's APIs, on controller listeners (Kafka's ControllerApis).

BrokerRegistration (v0-v4), BrokerHeartbeat (v0-v1), AllocateProducerIds (v0) and AlterPartition
(v0-v3: a leader's ISR change) from brokers; CreateTopics, DeleteTopics, CreatePartitions,
AlterConfigs, IncrementalAlterConfigs, ElectLeaders (v0-v2), AlterPartitionReassignments (v0),
ListPartitionReassignments (v0) and UnregisterBroker (v0), from brokers forwarding a client's
request or from clients that talk to the controller directly; and Envelope (v0): a client's
request forwarded by a broker, answered in full inside the envelope.

This node's `QuorumController` decides each one and commits its records. A controller that is not
the active one answers NOT_CONTROLLER, one whose records did not commit in time
REQUEST_TIMED_OUT (per item, as Kafka's error responses for these APIs), and brokers retry.
"""

from __future__ import annotations

from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import DecodeError, Message
from kafka_compat.server.authz import Op, require
from kafka_compat.server.errors import error_response
from kafka_compat.server.handlers import CONTROLLER, RequestContext, handles
from kafka_compat.server.quorum_controller import NotController, WriteTimeout, response_bytes

A = m.ApiKey
# What a broker may forward inside an Envelope (Kafka's forwardable APIs that a controller serves).
FORWARDABLE = frozenset({A.CREATE_TOPICS, A.DELETE_TOPICS, A.CREATE_PARTITIONS, A.ALTER_CONFIGS,
                         A.INCREMENTAL_ALTER_CONFIGS, A.DESCRIBE_QUORUM, A.ELECT_LEADERS,
                         A.ALTER_PARTITION_REASSIGNMENTS, A.LIST_PARTITION_REASSIGNMENTS, A.UNREGISTER_BROKER,
                         A.CREATE_ACLS, A.DELETE_ACLS, A.ALTER_USER_SCRAM_CREDENTIALS, A.ALTER_CLIENT_QUOTAS})
BROKER_APIS = frozenset({A.BROKER_REGISTRATION, A.BROKER_HEARTBEAT, A.ALLOCATE_PRODUCER_IDS})  # CLUSTER_ACTION
TIMED_OUT = "The metadata change was not committed in time."


@handles(A.BROKER_REGISTRATION, versions=(0, 4), listeners=(CONTROLLER,))
@handles(A.BROKER_HEARTBEAT, versions=(0, 1), listeners=(CONTROLLER,))
@handles(A.ALLOCATE_PRODUCER_IDS, versions=(0, 0), listeners=(CONTROLLER,))
@handles(A.ALTER_PARTITION, versions=(0, 3), listeners=(CONTROLLER,))
@handles(A.UNREGISTER_BROKER, versions=(0, 0), listeners=(CONTROLLER,))
@handles(A.ELECT_LEADERS, versions=(0, 2), listeners=(CONTROLLER,))
@handles(A.ALTER_PARTITION_REASSIGNMENTS, versions=(0, 0), listeners=(CONTROLLER,))
@handles(A.LIST_PARTITION_REASSIGNMENTS, versions=(0, 0), listeners=(CONTROLLER,))
@handles(A.CREATE_TOPICS, versions=(0, 7), listeners=(CONTROLLER,))
@handles(A.DELETE_TOPICS, versions=(0, 6), listeners=(CONTROLLER,))
@handles(A.CREATE_PARTITIONS, versions=(0, 3), listeners=(CONTROLLER,))
@handles(A.ALTER_CONFIGS, versions=(0, 2), listeners=(CONTROLLER,))
@handles(A.INCREMENTAL_ALTER_CONFIGS, versions=(0, 1), listeners=(CONTROLLER,))
@handles(A.CREATE_ACLS, versions=(0, 3), listeners=(CONTROLLER,))
@handles(A.DELETE_ACLS, versions=(0, 3), listeners=(CONTROLLER,))
@handles(A.ALTER_USER_SCRAM_CREDENTIALS, versions=(0, 0), listeners=(CONTROLLER,))
@handles(A.ALTER_CLIENT_QUOTAS, versions=(0, 1), listeners=(CONTROLLER,))
async def controller_request(ctx: RequestContext, request: Message) -> Message:
    if request.API_KEY in BROKER_APIS:
        require(ctx, Op.CLUSTER_ACTION)
    try:
        return await ctx.broker.quorum_controller.handle(request, ctx.api_version)
    except NotController:
        code, message = ErrorCode.NOT_CONTROLLER, "This is not the active controller."
    except WriteTimeout:
        code, message = ErrorCode.REQUEST_TIMED_OUT, TIMED_OUT
    return error_response(request.API_KEY, request, ctx.api_version, code, message)


@handles(A.ENVELOPE, versions=(0, 0), listeners=(CONTROLLER,))
async def envelope(ctx: RequestContext, request: m.EnvelopeRequest) -> m.EnvelopeResponse:
    require(ctx, Op.CLUSTER_ACTION)  # only brokers forward
    try:
        rf = framing.read_request(bytes(request.request_data))
        handler = ctx.apis.get(rf.api_key) if rf.api_key in FORWARDABLE else None
        if rf.header is None or handler is None or not handler.min_version <= rf.api_version <= handler.max_version:
            return m.EnvelopeResponse(error_code=ErrorCode.INVALID_REQUEST)
        inner = rf.decode_body(m.request_class(rf.api_key))
    except DecodeError:
        return m.EnvelopeResponse(error_code=ErrorCode.INVALID_REQUEST)
    try:
        response = await ctx.broker.quorum_controller.handle(inner, rf.api_version)
    except NotController:
        return m.EnvelopeResponse(error_code=ErrorCode.NOT_CONTROLLER)
    except WriteTimeout:
        response = error_response(inner.API_KEY, inner, rf.api_version, ErrorCode.REQUEST_TIMED_OUT, TIMED_OUT)
    return m.EnvelopeResponse(response_data=response_bytes(response, rf.api_version, rf.correlation_id))
