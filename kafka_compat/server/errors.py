"""The response to a request that fails as a whole: Kafka's getErrorResponse, for every API."""

from __future__ import annotations

from kafka_compat.coordinator.responses import GROUP_APIS, group_error_response
from kafka_compat.protocol import messages
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message


def error_response(api_key: int, request: Message | None, version: int, code: ErrorCode,
                   message: str | None = None) -> Message | None:
    """A response of version `version` that fails `request` with `code`, where Kafka puts it: on
    every item of a controller request (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs,
    IncrementalAlterConfigs, ElectLeaders) or a group request, else in the top-level error field. None when the
    version has no place for it, or the request could not be decoded and its items are unknown:
    the caller closes the connection, as Kafka does when it cannot answer."""
    if request is not None:
        if api_key in GROUP_APIS:
            return group_error_response(api_key, request, version, code, message)
        items = _item_error_response(api_key, request, version, code, message)
        if items is not None:
            return items
    cls = messages.response_class(api_key)
    if not cls.has_field("error_code", version):
        return None
    response = cls(error_code=code)
    if message is not None and cls.has_field("error_message", version):
        response.error_message = message
    return response


def _item_error_response(k: int, request: Message, version: int, code: ErrorCode, message: str | None):
    A = messages.ApiKey
    if k == A.CREATE_TOPICS:
        R = messages.CreateTopicsResponse
        return R(topics=[R.CreatableTopicResult(name=t.name, error_code=code, error_message=message, num_partitions=-1,
                                                replication_factor=-1) for t in request.topics])
    if k == A.DELETE_TOPICS:
        R = messages.DeleteTopicsResponse
        if version >= 6:
            items = [(t.name, t.topic_id) for t in request.topics]
        else:
            items = [(n, None) for n in request.topic_names]
        results = []
        for name, topic_id in items:
            r = R.DeletableTopicResult(name=name, error_code=code, error_message=message)
            if topic_id is not None:
                r.topic_id = topic_id
            results.append(r)
        return R(responses=results)
    if k == A.CREATE_PARTITIONS:
        R = messages.CreatePartitionsResponse
        return R(results=[R.CreatePartitionsTopicResult(name=t.name, error_code=code, error_message=message)
                          for t in request.topics])
    if k in (A.ALTER_CONFIGS, A.INCREMENTAL_ALTER_CONFIGS):
        R = messages.response_class(k)
        return R(responses=[R.AlterConfigsResourceResponse(error_code=code, error_message=message,
                                                           resource_type=r.resource_type, resource_name=r.resource_name)
                            for r in request.resources])
    if k == A.ELECT_LEADERS and request.topic_partitions is not None:
        R = messages.ElectLeadersResponse
        return R(error_code=code, replica_election_results=[R.ReplicaElectionResult(
            topic=t.topic, partition_result=[R.PartitionResult(partition_id=p, error_code=code, error_message=message)
                                             for p in t.partitions]) for t in request.topic_partitions])
    return None
