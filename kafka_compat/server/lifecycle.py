"""The broker's side of membership (Kafka's BrokerLifecycleManager): register with the active
controller, heartbeat, get unfenced once caught up, and shut down in a controlled way.

`run` registers (BrokerRegistration, with the advertised endpoints and a new incarnation id),
then heartbeats every `broker.heartbeat.interval.ms` with the offset of the metadata this node
has applied; it reports started once the controller has unfenced the broker, which it does once
that offset reaches the registration record. A heartbeat answered STALE_BROKER_EPOCH (the
controller replaced or lost the registration) registers again. While fenced, heartbeats go out
quickly so that unfencing does not wait a whole interval.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
import trio

from kafka_compat.metadata.cluster_control import registration_request
from kafka_compat.metadata.controller import METADATA_VERSION
from kafka_compat.metadata.quorum import MetadataQuorum
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid
from kafka_compat.server.controller_channel import ControllerChannel
from kafka_compat.server.quorum_controller import WriteTimeout

log = structlog.get_logger("kafka_compat.server")

REGISTRATION_VERSION = 2
HEARTBEAT_VERSION = 1
FENCED_HEARTBEAT_S = 0.05
SHUTDOWN_TIMEOUT_S = 3.0  # a controlled shutdown commits in milliseconds when a quorum is there


class BrokerLifecycleManager:
    def __init__(self, node_id: int, cluster_id: str, quorum: MetadataQuorum, channel: ControllerChannel, *,
                 heartbeat_interval_ms: int, request_timeout_ms: int, rack: str | None):
        self.node_id = node_id
        self.cluster_id = cluster_id
        self.quorum = quorum
        self.channel = channel
        self.interval = heartbeat_interval_ms / 1000
        self.timeout = request_timeout_ms / 1000
        self.rack = rack
        self.incarnation_id = Uuid.random()
        self.epoch = -1  # the broker epoch the controller gave the current registration
        self.fenced = True
        self.answered_at = -float("inf")  # trio time of the last heartbeat the controller answered
        self.endpoints: list[tuple[str, str, int, str]] = []  # (listener, host, port, protocol), set before run
        self.on_registered: Callable[[], None] = lambda: None  # called once `epoch` is a new registration's
        self._stopping = False

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        started = False
        waiting_since = trio.current_time()
        while not self._stopping:
            try:
                if self.epoch < 0:
                    await self._register()
                response = await self._heartbeat(want_shut_down=False)
                self.answered_at = trio.current_time()
            except (trio.TooSlowError, WriteTimeout):
                if trio.current_time() - waiting_since > 10:
                    log.warning("controller_unreachable", node=self.node_id, leader=self.quorum.leader.leader_id)
                    waiting_since = trio.current_time()
                continue
            if response.error_code == ErrorCode.STALE_BROKER_EPOCH:
                log.info("broker_registration_lost", node=self.node_id, epoch=self.epoch,
                         error=ErrorCode(response.error_code).name)
                self.epoch = -1
                continue
            if response.error_code:
                log.warning("broker_heartbeat_failed", node=self.node_id, error=ErrorCode(response.error_code).name)
            elif response.is_fenced != self.fenced:
                self.fenced = response.is_fenced
                log.info("broker_fenced" if self.fenced else "broker_unfenced", node=self.node_id, epoch=self.epoch,
                         metadata_offset=self.quorum.applied_offset)
            if not self.fenced and not started:
                started = True
                task_status.started()
            await trio.sleep(FENCED_HEARTBEAT_S if self.fenced else self.interval)

    async def _register(self) -> None:
        request = registration_request(self.node_id, self.cluster_id, self.incarnation_id, self.endpoints, self.rack,
                                       METADATA_VERSION)
        while True:
            response = await self.channel.call(request, REGISTRATION_VERSION, self.timeout)
            if response.error_code == ErrorCode.NONE:
                self.epoch, self.fenced = response.broker_epoch, True
                log.info("broker_registered", node=self.node_id, epoch=self.epoch,
                         incarnation=str(self.incarnation_id))
                self.on_registered()
                return
            log.warning("broker_registration_failed", node=self.node_id, error=ErrorCode(response.error_code).name)
            await trio.sleep(self.interval)

    async def _heartbeat(self, want_shut_down: bool) -> m.BrokerHeartbeatResponse:
        request = m.BrokerHeartbeatRequest(broker_id=self.node_id, broker_epoch=self.epoch, want_fence=False,
                                           current_metadata_offset=self.quorum.applied_offset,
                                           want_shut_down=want_shut_down)
        return await self.channel.call(request, HEARTBEAT_VERSION, self.timeout)

    async def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Controlled shutdown: the controller fences this broker and moves its leaderships away
        before it goes (bounded by `timeout`; a broker that cannot reach a controller just goes)."""
        self._stopping = True
        if self.epoch < 0:
            return
        with trio.move_on_after(timeout):
            while True:
                try:
                    response = await self._heartbeat(want_shut_down=True)
                except (trio.TooSlowError, WriteTimeout):
                    continue
                if response.error_code or response.should_shut_down:
                    log.info("broker_controlled_shutdown", node=self.node_id, error=ErrorCode(response.error_code).name)
                    return
                await trio.sleep(FENCED_HEARTBEAT_S)
