"""Brokers joining, heartbeating, being fenced and leaving, as the active controller decides it
(KRaft's ClusterControlManager and BrokerHeartbeatManager, and the leader moves that follow).

Sans-I/O: each operation takes the current image and time and returns the records to commit
and the response to send once they are. The rules:

- A broker registers (BrokerRegistration) fenced; its broker epoch is the offset of its
  RegisterBrokerRecord. A retry with the same incarnation id gets the same epoch back; a new
  incarnation (the process restarted) replaces the registration at once.
- A fenced broker is unfenced by the first heartbeat that reports a metadata offset at or past
  its registration record (it has caught up) and does not ask to stay fenced.
- An unfenced broker whose heartbeats stop for `broker.session.timeout.ms` is fenced, as is one
  that asks to shut down (controlled shutdown: `should_shut_down` is answered once it is fenced).
- Fencing a broker takes it out of every ISR it is in, except where it is the last member (an ISR
  is never emptied), and hands its leaderships to the first live ISR member, or to none (-1):
  a partition with one replica is leaderless while its broker is fenced. Unfencing elects the
  broker leader of the leaderless partitions whose ISR holds it.

Sessions (the deadline of each broker's next heartbeat) live in memory only: a controller that
becomes active gives every unfenced broker a fresh session (`activate`), as KRaft does.
"""

from __future__ import annotations

from kafka_compat.metadata.controller import MINIMUM_METADATA_VERSION
from kafka_compat.metadata.image import NO_LEADER, SECURITY_PROTOCOLS, MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message

NO_LEADER_CHANGE = -2  # PartitionChangeRecord.leader: unchanged
FENCE, UNFENCE = 1, -1  # BrokerRegistrationChangeRecord.fenced


class ClusterControl:
    def __init__(self, cluster_id: str, session_timeout_ms: int, metadata_version: int):
        self.cluster_id = cluster_id
        self.session_timeout_ms = session_timeout_ms
        self.metadata_version = metadata_version
        self.sessions: dict[int, int] = {}  # broker id -> when its session expires (ms)

    def activate(self, image: MetadataImage, now_ms: int) -> None:
        """This controller just became active: every unfenced broker gets a full session."""
        self.sessions = {b.node_id: now_ms + self.session_timeout_ms for b in image.live_brokers()}

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
        B = m.RegisterBrokerRecord
        records: list[Message] = [B(
            broker_id=req.broker_id, incarnation_id=req.incarnation_id, broker_epoch=next_offset, rack=req.rack,
            fenced=True, in_controlled_shutdown=False,
            end_points=[B.BrokerEndpoint(name=l.name, host=l.host, port=l.port, security_protocol=l.security_protocol)
                        for l in req.listeners],
            features=[B.BrokerFeature(name=f.name, min_supported_version=f.min_supported_version,
                                      max_supported_version=f.max_supported_version) for f in req.features])]
        if existing is not None and not existing.fenced:
            records += self.leader_moves(image, req.broker_id, fenced=True)
        return records, R(error_code=ErrorCode.NONE, broker_epoch=next_offset)

    # -- heartbeats -------------------------------------------------------------------------

    def heartbeat(self, image: MetadataImage, req: m.BrokerHeartbeatRequest,
                  now_ms: int) -> tuple[list[Message], m.BrokerHeartbeatResponse]:
        R = m.BrokerHeartbeatResponse
        broker = image.brokers.get(req.broker_id)
        if broker is None:
            return [], R(error_code=ErrorCode.BROKER_ID_NOT_REGISTERED, is_fenced=True)
        if broker.epoch != req.broker_epoch:
            return [], R(error_code=ErrorCode.STALE_BROKER_EPOCH, is_fenced=True)
        caught_up = req.current_metadata_offset >= broker.epoch
        records: list[Message] = []
        if req.want_shut_down:
            self.sessions.pop(req.broker_id, None)
            if not broker.fenced:
                records = self._fence(image, broker.node_id, broker.epoch, controlled=True)
            return records, R(error_code=ErrorCode.NONE, is_caught_up=caught_up, is_fenced=True, should_shut_down=True)
        self.sessions[req.broker_id] = now_ms + self.session_timeout_ms
        fenced = broker.fenced
        if fenced and caught_up and not req.want_fence:
            records, fenced = self._unfence(image, broker.node_id, broker.epoch), False
        elif not fenced and req.want_fence:
            records, fenced = self._fence(image, broker.node_id, broker.epoch), True
        return records, R(error_code=ErrorCode.NONE, is_caught_up=caught_up, is_fenced=fenced, should_shut_down=False)

    def expire_sessions(self, image: MetadataImage, now_ms: int) -> list[Message]:
        """Fence every unfenced broker whose session ran out."""
        records: list[Message] = []
        for b in sorted(image.live_brokers(), key=lambda b: b.node_id):
            deadline = self.sessions.get(b.node_id)
            if deadline is None:
                self.sessions[b.node_id] = now_ms + self.session_timeout_ms
            elif deadline <= now_ms:
                del self.sessions[b.node_id]
                fence = self._fence(image, b.node_id, b.epoch)
                records += fence
                image = image.apply(fence)
        return records

    def next_expiry(self, image: MetadataImage) -> int | None:
        """When the earliest session of an unfenced broker runs out (None: no session runs)."""
        live = {b.node_id for b in image.live_brokers()}
        return min((t for b, t in self.sessions.items() if b in live), default=None)

    # -- fencing and leadership -------------------------------------------------------------

    def _fence(self, image: MetadataImage, broker_id: int, epoch: int, controlled: bool = False) -> list[Message]:
        change = m.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=epoch, fenced=FENCE,
                                                  in_controlled_shutdown=1 if controlled else 0)
        return [change] + self.leader_moves(image, broker_id, fenced=True)

    def _unfence(self, image: MetadataImage, broker_id: int, epoch: int) -> list[Message]:
        change = m.BrokerRegistrationChangeRecord(broker_id=broker_id, broker_epoch=epoch, fenced=UNFENCE)
        return [change] + self.leader_moves(image.apply([change]), broker_id, fenced=False)

    @staticmethod
    def leader_moves(image: MetadataImage, broker_id: int, *, fenced: bool) -> list[Message]:
        """PartitionChangeRecords for `broker_id` becoming fenced (or unfenced) in `image`."""
        live = {b.node_id for b in image.live_brokers()} - ({broker_id} if fenced else set())
        records: list[Message] = []
        for topic in image.topics.values():
            for p in topic.partitions.values():
                if broker_id not in p.replicas:
                    continue
                leader, isr = NO_LEADER_CHANGE, None
                if fenced:
                    if broker_id in p.isr and len(p.isr) > 1:
                        isr = [r for r in p.isr if r != broker_id]
                    if p.leader == broker_id:
                        leader = next((r for r in (isr if isr is not None else p.isr) if r in live), NO_LEADER)
                elif p.leader == NO_LEADER and broker_id in p.isr:
                    leader = broker_id
                if leader != NO_LEADER_CHANGE or isr is not None:
                    records.append(m.PartitionChangeRecord(topic_id=topic.topic_id, partition_id=p.partition,
                                                           leader=leader, isr=isr))
        return records


def registration_request(node_id: int, cluster_id: str, incarnation_id, endpoints: list[tuple[str, str, int, str]],
                         rack: str | None, metadata_version: int) -> m.BrokerRegistrationRequest:
    """What a broker sends to register: its advertised (listener, host, port, protocol) endpoints."""
    R = m.BrokerRegistrationRequest
    return R(broker_id=node_id, cluster_id=cluster_id, incarnation_id=incarnation_id, rack=rack,
             listeners=[R.Listener(name=n, host=h, port=p, security_protocol=SECURITY_PROTOCOLS[sp])
                        for n, h, p, sp in endpoints],
             features=[R.Feature(name="metadata.version", min_supported_version=MINIMUM_METADATA_VERSION,
                                 max_supported_version=metadata_version)])
