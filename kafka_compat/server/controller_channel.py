"""Requests from a node to the active controller (Kafka's NodeToControllerChannelManager).

The active controller is the leader of the metadata quorum, as this node's own Raft replica knows
it. When that is this node and its controller is active, a request is handled in process;
otherwise it goes over one connection (`client.connection.Connection`, requests pipelined) to the
leader's controller listener, replaced when the leader moves. A NOT_CONTROLLER answer, a lost
connection or an unknown leader is retried with a short backoff (the quorum names the next leader)
until the caller's deadline. `run` holds the connection: it runs in the node's nursery.

`call` sends a controller API as is (BrokerRegistration, BrokerHeartbeat, AllocateProducerIds).
`forward` carries a client's request to the controller inside an Envelope, with the client's
principal and address, as Kafka brokers forward CreateTopics, DeleteTopics, CreatePartitions,
the config alterations and DescribeQuorum, and returns the controller's response to it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Awaitable, Callable

import structlog
import trio

from kafka_compat.client.connection import Connection
from kafka_compat.metadata.quorum import MetadataQuorum
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import DecodeError, Message
from kafka_compat.raft.config import Endpoint
from kafka_compat.server.quorum_controller import NotController, QuorumController, request_bytes

log = structlog.get_logger("kafka_compat.server")

BACKOFF_S = (0.05, 0.5)
_LOST = (OSError, DecodeError)  # ConnectionLost is an OSError


def says_not_controller(response: Message) -> bool:
    """True if the controller said it is not the active one (anywhere in the response)."""
    if getattr(response, "error_code", 0) == ErrorCode.NOT_CONTROLLER:
        return True
    if isinstance(response, m.DescribeQuorumResponse):
        return any(p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER for t in response.topics for p in t.partitions)
    for field in ("topics", "responses", "results"):
        items = getattr(response, field, None)
        if isinstance(items, list) and any(getattr(i, "error_code", 0) == ErrorCode.NOT_CONTROLLER for i in items):
            return True
    return False


def principal_bytes(principal: str) -> bytes:
    """A principal as Kafka serializes it into an Envelope: version-prefixed DefaultPrincipalData."""
    kind, _, name = principal.partition(":")
    return struct.pack(">h", 0) + m.DefaultPrincipalData(type=kind, name=name, token_authenticated=False).encode(0)


def host_bytes(host: str) -> bytes:
    try:
        return ipaddress.ip_address(host).packed
    except ValueError:
        return b""


class ControllerChannel:
    def __init__(self, node_id: int, quorum: MetadataQuorum, local: QuorumController | None, name: str):
        self.node_id = node_id
        self.quorum = quorum
        self.local = local
        self.client_id = f"{name}-{node_id}"
        self.security = None  # ClientSecurity for the controller listener (TLS, SASL), set by the node
        self._conn: Connection | None = None
        self._endpoint: Endpoint | None = None
        self._nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Hold the connection to the active controller (opened on first use) until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def call(self, request: Message, version: int, timeout: float) -> Message:
        """Send a controller API request to the active controller; trio.TooSlowError if no
        controller answered within `timeout` seconds."""
        async def remote(endpoint: Endpoint) -> Message:
            return await self._request(endpoint, request, version)
        return await self._retrying(request, version, remote, timeout)

    async def forward(self, request: Message, version: int, *, correlation_id: int, client_id: str | None,
                      principal: str, client_host: str, timeout: float) -> Message:
        """Forward a client's request in an Envelope and return the controller's response to it."""
        envelope = m.EnvelopeRequest(request_data=request_bytes(request, version, correlation_id, client_id),
                                     request_principal=principal_bytes(principal),
                                     client_host_address=host_bytes(client_host))

        async def remote(endpoint: Endpoint) -> Message:
            response = await self._request(endpoint, envelope, 0)
            if response.error_code == ErrorCode.NOT_CONTROLLER:
                raise NotController
            if response.error_code:
                raise KafkaError(ErrorCode(response.error_code), "the controller refused the forwarded request")
            return framing.read_response(bytes(response.response_data), request.API_KEY, version)[1]
        return await self._retrying(request, version, remote, timeout)

    async def _retrying(self, request: Message, version: int, remote: Callable[[Endpoint], Awaitable[Message]],
                        timeout: float) -> Message:
        backoff = BACKOFF_S[0]
        with trio.fail_after(timeout):
            while True:
                leader = self.quorum.leader.leader_id
                try:
                    if leader == self.node_id and self.local is not None:
                        response = await self.local.handle(request, version)
                    else:
                        endpoint = self.quorum.endpoint(leader) if leader >= 0 else None
                        if endpoint is None:
                            raise NotController
                        response = await remote(endpoint)
                    if not says_not_controller(response):
                        return response
                except NotController:
                    pass
                except _LOST as e:
                    log.debug("controller_request_failed", api=m.ApiKey(request.API_KEY).name, leader=leader,
                              reason=f"{type(e).__name__}: {e}")
                await trio.sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_S[1])

    async def _request(self, endpoint: Endpoint, request: Message, version: int) -> Message:
        """One request and its response over the connection to `endpoint` (opened as needed)."""
        if self._conn is None or self._endpoint != endpoint:
            if self._conn is not None:
                self._conn.close()
            # No backoff of its own: `_retrying` paces the attempts.
            self._conn = Connection(lambda: (endpoint.host, endpoint.port), self.client_id, backoff_ms=(0, 0),
                                    security=self.security)
            self._endpoint = endpoint
            self._nursery.start_soon(self._conn.run)
        return await self._conn.request(request, version)
