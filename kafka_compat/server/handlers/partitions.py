"""Leaders and replicas of partitions, decided by the active controller (brokers forward these
requests to it, as Kafka's do in KRaft mode):

    ElectLeaders                v0-v2  preferred (v0) or unclean (v1+) elections, of the partitions
                                       named or of every partition
    AlterPartitionReassignments v0     move partitions to new replicas, or cancel a move
    ListPartitionReassignments  v0     the moves in progress

An election is answered once this broker's image shows the leaders it elected, so that a client's
next Metadata here sees them.
"""

from __future__ import annotations

from kafka_compat.metadata.elections import PREFERRED
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.server.handlers import RequestContext, handles


@handles(m.ApiKey.ELECT_LEADERS, versions=(0, 2))
async def elect_leaders(ctx: RequestContext, req: m.ElectLeadersRequest) -> m.ElectLeadersResponse:
    preferred = ctx.api_version == 0 or req.election_type == PREFERRED

    def seen(image: MetadataImage, response: m.ElectLeadersResponse) -> bool:
        for t in response.replica_election_results:
            topic = image.topics.get(t.topic)
            for r in t.partition_result:
                if r.error_code != ErrorCode.NONE or topic is None or r.partition_id not in topic.partitions:
                    continue
                p = topic.partitions[r.partition_id]
                if p.leader < 0 or (preferred and p.leader != p.preferred_leader):
                    return False
        return True
    return await ctx.broker.controller_request(ctx, req, seen=seen)


@handles(m.ApiKey.ALTER_PARTITION_REASSIGNMENTS, versions=(0, 0))
@handles(m.ApiKey.LIST_PARTITION_REASSIGNMENTS, versions=(0, 0))
async def reassignments(ctx: RequestContext, req):
    return await ctx.broker.controller_request(ctx, req)
