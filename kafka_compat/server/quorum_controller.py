"""The controller role: on the node that leads the metadata quorum, decide and commit.

Every controller node runs one `QuorumController`; it acts only while its Raft replica is the
leader and has applied the whole committed log (`MetadataQuorum.active`), and raises
NotController otherwise (brokers then retry at the new leader). While active it

- handles the controller APIs (served on the controller listener by `handlers.controller`, and in
  process to its own broker): BrokerRegistration, BrokerHeartbeat, UnregisterBroker,
  AllocateProducerIds, AlterPartition (leaders' ISR changes), the admin requests brokers forward
  (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
  ElectLeaders, AlterPartitionReassignments, ListPartitionReassignments) and DescribeQuorum;
- decides each request against the current image with the sans-I/O `Controller` and
  `ClusterControl`, proposes the records and answers once they are committed and applied, one
  decision at a time (so that two requests never pass their checks against the same image);
- fences brokers whose sessions expire, and on activation writes the bootstrap records of a new
  cluster (metadata.version);
- moves leaderships back to preferred replicas every leader.imbalance.check.interval.seconds
  (with auto.leader.rebalance.enable), and elects unclean leaders where topics allow it every
  unclean.leader.election.interval.ms and right after a config change that may allow it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog
import trio

from kafka_compat.metadata import acl_control, quota_control, scram_control
from kafka_compat.metadata.cluster_control import ClusterControl
from kafka_compat.metadata.controller import Controller
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.quorum import MetadataQuorum
from kafka_compat.protocol import framing
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Message, join
from kafka_compat.raft.driver import CommitLost
from kafka_compat.raft.node import NotLeaderError

log = structlog.get_logger("kafka_compat.controller")

A = m.ApiKey
WRITE_TIMEOUT_S = 10.0
MAX_EXPIRY_CHECK_S = 1.0


def now_ms() -> int:
    return int(time.monotonic() * 1000)


class NotController(Exception):
    """This node's controller is not the active one (or stopped being it during the request)."""


class WriteTimeout(Exception):
    """Records were proposed but not committed in time: whether they will be is unknown."""


def request_bytes(request: Message, version: int, correlation_id: int, client_id: str | None) -> bytes:
    """A request with its header and without the size prefix: what an Envelope carries."""
    return join(framing.request_frame(request, version, correlation_id, client_id)[1:])


def response_bytes(response: Message, version: int, correlation_id: int) -> bytes:
    return join(framing.response_frame(response, version, correlation_id)[1:])


@dataclass(frozen=True)
class ControllerTimers:
    """The active controller's periodic elections (seconds; None: off)."""

    rebalance_every_s: float | None = None
    imbalance_percentage: int = 10
    unclean_every_s: float = 300.0

    @classmethod
    def from_config(cls, config) -> ControllerTimers:
        rebalance = config["auto.leader.rebalance.enable"]
        return cls(config["leader.imbalance.check.interval.seconds"] if rebalance else None,
                   config["leader.imbalance.per.broker.percentage"],
                   config["unclean.leader.election.interval.ms"] / 1000)


class QuorumController:
    def __init__(self, node_id: int, quorum: MetadataQuorum, controller: Controller, cluster: ClusterControl,
                 timers: ControllerTimers | None = None):
        self.node_id = node_id
        self.quorum = quorum
        self.controller = controller
        self.cluster = cluster
        self.timers = timers or ControllerTimers()
        self._lock = trio.Lock()
        self._configs_changed = trio.Event()

    @property
    def active(self) -> bool:
        return self.quorum.active

    # -- deciding and committing ------------------------------------------------------------

    async def write(self, decide: Callable[[MetadataImage], tuple[list[Message], object]]):
        """Decide against the current image and commit the records; return the decision's response
        once they are applied. NotController if this node is not (or stops being) the active
        controller before they commit; WriteTimeout if they are not committed in time."""
        async with self._lock:
            if not self.active:
                raise NotController
            records, response = decide(self.quorum.image)
            if records:
                try:
                    with trio.fail_after(WRITE_TIMEOUT_S):
                        await self.quorum.propose(records)
                except (NotLeaderError, CommitLost):
                    raise NotController from None
                except trio.TooSlowError:
                    raise WriteTimeout from None
            return response

    async def handle(self, request: Message, version: int) -> Message:
        """Answer one controller request (the broker's own, or one from the controller listener)."""
        if request.API_KEY == A.DESCRIBE_QUORUM:
            return await self.quorum.describe_quorum(version)
        response = await self.write(lambda image: self._decide(image, request, version))
        if request.API_KEY in (A.ALTER_CONFIGS, A.INCREMENTAL_ALTER_CONFIGS):
            self._configs_changed.set()  # unclean.leader.election.enable may now allow an election
        return response

    def _decide(self, image: MetadataImage, request: Message, version: int) -> tuple[list[Message], Message]:
        k, c = request.API_KEY, self.controller
        if k == A.CREATE_TOPICS:
            return c.create_topics(image, request)
        if k == A.DELETE_TOPICS:
            return c.delete_topics(image, request, version)
        if k == A.CREATE_PARTITIONS:
            return c.create_partitions(image, request)
        if k == A.ALTER_CONFIGS:
            return c.alter_configs(image, request, self.node_id)
        if k == A.INCREMENTAL_ALTER_CONFIGS:
            return c.incremental_alter_configs(image, request, self.node_id)
        if k == A.CREATE_ACLS:
            return acl_control.create_acls(image, request, version)
        if k == A.DELETE_ACLS:
            return acl_control.delete_acls(image, request, version)
        if k == A.ALTER_USER_SCRAM_CREDENTIALS:
            return scram_control.alter_user_scram_credentials(image, request)
        if k == A.ALTER_CLIENT_QUOTAS:
            return quota_control.alter_client_quotas(image, request)
        if k == A.ALLOCATE_PRODUCER_IDS:
            return c.allocate_producer_ids(image, request)
        if k == A.BROKER_REGISTRATION:
            return self.cluster.register(image, request, self.quorum.next_offset, now_ms())
        if k == A.BROKER_HEARTBEAT:
            return self.cluster.heartbeat(image, request, now_ms(), self.quorum.next_offset)
        if k == A.UNREGISTER_BROKER:
            return self.cluster.unregister(image, request)
        if k == A.ALTER_PARTITION:
            return c.alter_partition(image, request, version)
        if k == A.ELECT_LEADERS:
            return c.elect_leaders(image, request, version)
        if k == A.ALTER_PARTITION_REASSIGNMENTS:
            return c.alter_partition_reassignments(image, request)
        if k == A.LIST_PARTITION_REASSIGNMENTS:
            return c.list_partition_reassignments(image, request)
        raise ValueError(f"not a controller API: {k}")

    # -- the active controller's own work ---------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Each time this node becomes the active controller: bootstrap a new cluster, give every
        broker a fresh session, then fence brokers whose sessions expire, until it is no longer."""
        task_status.started()
        while True:
            await self.quorum.wait_for(lambda: self.quorum.active)
            epoch = self.quorum.leader.epoch
            try:
                await self.write(self._activate)
            except (NotController, WriteTimeout):
                continue
            log.info("controller_activated", node=self.node_id, epoch=epoch, brokers=len(self.quorum.image.brokers),
                     topics=len(self.quorum.image.topics))
            t = self.timers
            next_rebalance = trio.current_time() + t.rebalance_every_s if t.rebalance_every_s else float("inf")
            next_unclean = trio.current_time() + t.unclean_every_s
            while self.quorum.active and self.quorum.leader.epoch == epoch:
                expiry = self.cluster.next_expiry(self.quorum.image)
                delay = MAX_EXPIRY_CHECK_S if expiry is None else (expiry - now_ms()) / 1000
                delay = min(max(delay, 0.0), MAX_EXPIRY_CHECK_S, next_rebalance - trio.current_time(),
                            next_unclean - trio.current_time())
                with trio.move_on_after(max(delay, 0.0)):
                    await self._configs_changed.wait()
                try:
                    await self.write(self._expire)
                    if trio.current_time() >= next_rebalance:
                        next_rebalance = trio.current_time() + t.rebalance_every_s
                        await self.write(self._rebalance)
                    if self._configs_changed.is_set() or trio.current_time() >= next_unclean:
                        self._configs_changed = trio.Event()
                        next_unclean = trio.current_time() + t.unclean_every_s
                        await self.write(self._elect_unclean)
                except (NotController, WriteTimeout):
                    break
            log.info("controller_deactivated", node=self.node_id, epoch=epoch)

    def _activate(self, image: MetadataImage):
        self.cluster.activate(image, now_ms())
        if "metadata.version" not in image.features:
            return self.controller.bootstrap(), None
        return [], None

    def _rebalance(self, image: MetadataImage):
        records = self.controller.rebalance_leaders(image, self.timers.imbalance_percentage)
        if records:
            log.info("preferred_leaders_elected", partitions=len(records))
        return records, None

    def _elect_unclean(self, image: MetadataImage):
        records = self.controller.elect_unclean_leaders(image)
        if records:
            log.warning("unclean_leaders_elected", partitions=len(records))
        return records, None

    def _expire(self, image: MetadataImage):
        records = self.cluster.expire_sessions(image, now_ms())
        for r in records:
            if isinstance(r, m.BrokerRegistrationChangeRecord):
                log.info("broker_fenced", broker=r.broker_id, reason="session expired")
        return records, None
