"""Brokers joining, heartbeating, being fenced and leaving, as the active controller decides it
(KRaft's ClusterControlManager and BrokerHeartbeatManager, and the leader moves that follow).

Sans-I/O: each operation takes the current image and time and returns the records to commit
and the response to send once they are. A registered broker is in one of four states, and its
heartbeats move it between them:

- FENCED: registered (BrokerRegistration) but not serving. Its broker epoch is the offset of its
  RegisterBrokerRecord; a retry with the same incarnation id gets the same epoch back, a new
  incarnation (the process restarted) replaces the registration at once. The first heartbeat
  that reports a metadata offset at or past the registration record (it has caught up) and does
  not ask to stay fenced unfences it.
- UNFENCED: serving. Heartbeats that stop for `broker.session.timeout.ms`, or one that asks to be
  fenced, fence it. One that asks to shut down starts a controlled shutdown if it leads any
  partition, else it is fenced and told to shut down at once.
- CONTROLLED_SHUTDOWN: still unfenced, but it may no longer lead or join an ISR: entering it
  moves its leaderships to other ISR members and takes it out of every ISR it is not the last
  member of (a partition whose only ISR member it is goes leaderless). It is told to shut down
  (and fenced) once it leads nothing and every other active broker has applied the records
  that moved its leaderships, so that nobody still sends it produce requests.
- Fencing, like unregistering, takes the broker out of ISRs and leaderships the same way;
  unfencing gives a leader to the leaderless partitions that can have one again (itself where
  it is in the ISR, or, where the topic allows unclean election, any live replica).

Sessions, reported metadata offsets and controlled shutdowns in progress live in memory only: a
controller that becomes active gives every unfenced broker a fresh session (`activate`), as
KRaft does.
"""

from __future__ import annotations

from kafka_compat.metadata.controller import MINIMUM_METADATA_VERSION
from kafka_compat.metadata.image import SECURITY_PROTOCOLS, BrokerImage, MetadataImage
from kafka_compat.metadata.partition_change import leader_and_isr_updates, leads_any
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message

FENCE, UNFENCE = 1, -1  # BrokerRegistrationChangeRecord.fenced
IN_CONTROLLED_SHUTDOWN = 1  # BrokerRegistrationChangeRecord.in_controlled_shutdown


class ClusterControl:
    def __init__(self, cluster_id: str, session_timeout_ms: int, metadata_version: int, *,
                 unclean_leader_election_enable: bool = False):
        self.cluster_id = cluster_id
        self.session_timeout_ms = session_timeout_ms
        self.metadata_version = metadata_version
        self.unclean_default = unclean_leader_election_enable
        self.sessions: dict[int, int] = {}  # broker id -> when its session expires (ms)
        self.offsets: dict[int, int] = {}  # broker id -> the metadata offset its last heartbeat reported
        self.shutdown_offsets: dict[int, int] = {}  # broker in controlled shutdown -> offset others must reach

    def activate(self, image: MetadataImage, now_ms: int) -> None:
        """This controller just became active: every unfenced broker gets a full session."""
        self.sessions = {b.node_id: now_ms + self.session_timeout_ms for b in image.live_brokers()}
        self.offsets, self.shutdown_offsets = {}, {}

    # -- registration -----------------------------------------------------------------------

    def register(self, image: MetadataImage, req: m.BrokerRegistrationRequest, next_offset: int,
                 now_ms: int) -> tuple[list[Message], m.BrokerRegistrationResponse]:
        """`next_offset`: where the next record appended to the metadata log will land."""
        R = m.BrokerRegistrationResponse
        if req.cluster_id != self.cluster_id:
            return [], R(error_code=ErrorCode.INCONSISTENT_CLUSTER_ID, broker_epoch=-1)
        mv = next((f for f in req.features if f.name == "metadata.version"), None)
        level = image.features.get("metadata.version", 1)
        if mv is None or not mv.min_supported_version <= level <= mv.max_supported_version:
            return [], R(error_code=ErrorCode.UNSUPPORTED_VERSION, broker_epoch=-1)
        existing = image.brokers.get(req.broker_id)
        self.sessions[req.broker_id] = now_ms + self.session_timeout_ms
        if existing is not None and existing.incarnation_id == req.incarnation_id:
            return [], R(error_code=ErrorCode.NONE, broker_epoch=existing.epoch)  # a retry
        self._forget(req.broker_id)
        B = m.RegisterBrokerRecord
        records: list[Message] = [B(
            broker_id=req.broker_id, incarnation_id=req.incarnation_id, broker_epoch=next_offset, rack=req.rack,
            fenced=True, in_controlled_shutdown=False,
            end_points=[B.BrokerEndpoint(name=l.name, host=l.host, port=l.port, security_protocol=l.security_protocol)
                        for l in req.listeners],
            features=[B.BrokerFeature(name=f.name, min_supported_version=f.min_supported_version,
                                      max_supported_version=f.max_supported_version) for f in req.features])]
        if existing is not None and not existing.fenced:
            records += self._leave(image, req.broker_id)
        return records, R(error_code=ErrorCode.NONE, broker_epoch=next_offset)

    def unregister(self, image: MetadataImage,
                   req: m.UnregisterBrokerRequest) -> tuple[list[Message], m.UnregisterBrokerResponse]:
        """UnregisterBroker: the broker is gone for good; it leaves every ISR and leadership."""
        R = m.UnregisterBrokerResponse
        broker = image.brokers.get(req.broker_id)
        if broker is None:
            return [], R(error_code=ErrorCode.BROKER_ID_NOT_REGISTERED,
                         error_message=f"Broker ID {req.broker_id} is not currently registered")
        self._forget(req.broker_id)
        self.sessions.pop(req.broker_id, None)
        records: list[Message] = self._leave(image, req.broker_id)
        records.append(m.UnregisterBrokerRecord(broker_id=req.broker_id, broker_epoch=broker.epoch))
        return records, R(error_code=ErrorCode.NONE, error_message=None)

    # -- heartbeats -------------------------------------------------------------------------

    def heartbeat(self, image: MetadataImage, req: m.BrokerHeartbeatRequest, now_ms: int,
                  next_offset: int | None = None) -> tuple[list[Message], m.BrokerHeartbeatResponse]:
        """`next_offset`: where the next record appended will land (the offset that the other
        brokers must reach before a broker in controlled shutdown may go); without it, the
        offset just past the image."""
        R = m.BrokerHeartbeatResponse
        broker = image.brokers.get(req.broker_id)
        if broker is None or broker.epoch != req.broker_epoch:  # (Kafka: no registration is a stale epoch too)
            return [], R(error_code=ErrorCode.STALE_BROKER_EPOCH, is_fenced=True)
        b = broker.node_id
        caught_up = req.current_metadata_offset >= broker.epoch
        self.offsets[b] = req.current_metadata_offset
        self.sessions[b] = now_ms + self.session_timeout_ms
        if broker.fenced:
            if req.want_shut_down:
                records, fenced, shut_down = [], True, True
            elif req.want_fence or not caught_up or broker.in_controlled_shutdown:  # the last must register anew
                records, fenced, shut_down = [], True, False
            else:
                records, fenced, shut_down = self._unfence(image, b, broker.epoch), False, False
        elif b in self.shutdown_offsets or (req.want_shut_down and not req.want_fence and leads_any(image, b)):
            records, fenced, shut_down = self._shut_down(image, broker, next_offset)
        elif req.want_fence or req.want_shut_down:
            records, fenced, shut_down = self._fence(image, b, broker.epoch), True, req.want_shut_down
        else:
            records, fenced, shut_down = [], False, False
        return records, R(error_code=ErrorCode.NONE, is_caught_up=caught_up, is_fenced=fenced,
                          should_shut_down=shut_down)

    def _shut_down(self, image: MetadataImage, broker: BrokerImage,
                   next_offset: int | None) -> tuple[list[Message], bool, bool]:
        """A controlled shutdown's step: (records, fenced, should shut down)."""
        b = broker.node_id
        if broker.in_controlled_shutdown and not leads_any(image, b):
            if self.shutdown_offsets[b] <= self._lowest_active_offset(image):
                return self._fence(image, b, broker.epoch), True, True
            return [], False, False
        # Entering (or its records were lost on the way): leaderships move away, ISRs let it go.
        records: list[Message] = []
        if not broker.in_controlled_shutdown:
            records.append(m.BrokerRegistrationChangeRecord(broker_id=b, broker_epoch=broker.epoch,
                                                            in_controlled_shutdown=IN_CONTROLLED_SHUTDOWN))
        records += self._leave(image, b)
        end = image.offset + 1 if next_offset is None else next_offset
        self.shutdown_offsets[b] = end + len(records) - 1
        return records, False, False

    def expire_sessions(self, image: MetadataImage, now_ms: int) -> list[Message]:
        """Fence every unfenced broker whose session ran out."""
        records: list[Message] = []
        for b in sorted(image.live_brokers(), key=lambda b: b.node_id):
            deadline = self.sessions.get(b.node_id)
            if deadline is None:
                self.sessions[b.node_id] = now_ms + self.session_timeout_ms
            elif deadline <= now_ms:
                fence = self._fence(image, b.node_id, b.epoch)
                records += fence
                image = image.apply(fence)
        return records

    def next_expiry(self, image: MetadataImage) -> int | None:
        """When the earliest session of an unfenced broker runs out (None: no session runs)."""
        live = {b.node_id for b in image.live_brokers()}
        return min((t for b, t in self.sessions.items() if b in live), default=None)

    # -- fencing and leadership -------------------------------------------------------------

    def _lowest_active_offset(self, image: MetadataImage) -> float:
        active = [b.node_id for b in image.brokers.values() if b.active]
        return min((self.offsets.get(b, -1) for b in active), default=float("inf"))

    def _forget(self, broker_id: int) -> None:
        self.offsets.pop(broker_id, None)
        self.shutdown_offsets.pop(broker_id, None)

    def _leave(self, image: MetadataImage, broker_id: int) -> list[Message]:
        return leader_and_isr_updates(image, remove=broker_id, unclean_default=self.unclean_default)

    def _fence(self, image: MetadataImage, broker_id: int, epoch: int) -> list[Message]:
        self._forget(broker_id)
        self.sessions.pop(broker_id, None)
        return self._leave(image, broker_id) + [
            m.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=epoch, fenced=FENCE)]

    def _unfence(self, image: MetadataImage, broker_id: int, epoch: int) -> list[Message]:
        change = m.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=epoch, fenced=UNFENCE)
        return [change, *leader_and_isr_updates(image, add=broker_id, unclean_default=self.unclean_default)]


def registration_request(node_id: int, cluster_id: str, incarnation_id, endpoints: list[tuple[str, str, int, str]],
                         rack: str | None, metadata_version: int) -> m.BrokerRegistrationRequest:
    """What a broker sends to register: its advertised (listener, host, port, protocol) endpoints."""
    R = m.BrokerRegistrationRequest
    return R(broker_id=node_id, cluster_id=cluster_id, incarnation_id=incarnation_id, rack=rack,
             listeners=[R.Listener(name=n, host=h, port=p, security_protocol=SECURITY_PROTOCOLS[sp])
                        for n, h, p, sp in endpoints],
             features=[R.Feature(name="metadata.version", min_supported_version=MINIMUM_METADATA_VERSION,
                                 max_supported_version=metadata_version)])
