"""The metadata quorum's APIs.

On broker listeners, DescribeQuorum (v0-v2): the quorum as its leader describes it (leader, epoch,
high watermark, voters and observers with their log end offsets); a broker that does not lead the
quorum forwards the request to the one that does, as Kafka's brokers do.

On controller listeners, Raft's own RPCs for `__cluster_metadata-0`, each fed to this node's Raft
replica (`RaftDriver.handle_request`), which answers it (a leader parks a Fetch until it has data
or its wait is up): Vote, BeginQuorumEpoch, EndQuorumEpoch (v0-v1), Fetch (v13-v17, the versions
that name topics by id), FetchSnapshot (v0-v1) and DescribeQuorum (v0-v2, this node's own view:
NOT_LEADER_OR_FOLLOWER with the leader it knows, on a node that does not lead).
"""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Message
from kafka_compat.server.handlers import CONTROLLER, RequestContext, handles

A = m.ApiKey


@handles(A.DESCRIBE_QUORUM, versions=(0, 2))
async def describe_quorum(ctx: RequestContext, req: m.DescribeQuorumRequest) -> m.DescribeQuorumResponse:
    return await ctx.broker.describe_quorum(ctx.api_version)


@handles(A.VOTE, versions=(0, 1), listeners=(CONTROLLER,))
@handles(A.BEGIN_QUORUM_EPOCH, versions=(0, 1), listeners=(CONTROLLER,))
@handles(A.END_QUORUM_EPOCH, versions=(0, 1), listeners=(CONTROLLER,))
@handles(A.FETCH, versions=(13, 17), listeners=(CONTROLLER,))
@handles(A.FETCH_SNAPSHOT, versions=(0, 1), listeners=(CONTROLLER,))
@handles(A.DESCRIBE_QUORUM, versions=(0, 2), listeners=(CONTROLLER,))
async def raft_request(ctx: RequestContext, request: Message) -> Message:
    return await ctx.broker.raft.handle_request(request, ctx.api_version)
