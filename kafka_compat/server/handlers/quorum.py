"""DescribeQuorum (v0-v2) on broker listeners: the metadata quorum as its leader describes it
(leader, epoch, high watermark, voters and observers with their log end offsets). A broker that
does not lead the quorum forwards the request to the one that does, as Kafka's brokers do."""

from __future__ import annotations

from kafka_compat.protocol import messages as m
from kafka_compat.server.handlers import RequestContext, handles


@handles(m.ApiKey.DESCRIBE_QUORUM, versions=(0, 2))
async def describe_quorum(ctx: RequestContext, req: m.DescribeQuorumRequest) -> m.DescribeQuorumResponse:
    return await ctx.broker.describe_quorum(ctx.api_version)
