"""The cluster's metadata as an immutable image, built by applying metadata records in log order.

Handlers read the current `MetadataImage`; nothing mutates one. `image.apply(records, offset)`
returns a new image that shares every unchanged topic and broker with the old one, so applying a
record costs in proportion to what it changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.security.acls import Acl, AclIndex, AclIndexBuilder
from kafka_compat.security.quotas import QuotaEntity, quota_entity
from kafka_compat.security.sasl.scram import ScramCredential

# ConfigResource types, as Kafka numbers them.
TOPIC_RESOURCE = 2
BROKER_RESOURCE = 4
SECURITY_PROTOCOLS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}
NO_LEADER = -1
RECOVERED, RECOVERING = 0, 1  # leader recovery states: RECOVERING after an unclean election (KIP-704)
# PartitionChangeRecord fields that replace the partition's field of the same name when not null.
_LIST_CHANGES = ("isr", "replicas", "adding_replicas", "removing_replicas", "eligible_leader_replicas",
                 "last_known_elr")


@dataclass(frozen=True, slots=True)
class PartitionImage:
    """A partition's replication state. During a reassignment `replicas` holds the target
    replicas followed by the ones being removed; `adding_replicas` are catching up."""

    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader: int
    leader_epoch: int
    partition_epoch: int
    eligible_leader_replicas: tuple[int, ...] = ()
    last_known_elr: tuple[int, ...] = ()
    adding_replicas: tuple[int, ...] = ()
    removing_replicas: tuple[int, ...] = ()
    leader_recovery_state: int = RECOVERED

    @property
    def preferred_leader(self) -> int:
        return self.replicas[0] if self.replicas else NO_LEADER

    @property
    def reassigning(self) -> bool:
        return bool(self.adding_replicas or self.removing_replicas)

    def merge(self, r: m.PartitionChangeRecord) -> PartitionImage:
        """This partition with a PartitionChangeRecord applied."""
        changes = {f: tuple(v) for f in _LIST_CHANGES if (v := getattr(r, f)) is not None}
        if r.leader_recovery_state != -1:  # -1: unchanged
            changes["leader_recovery_state"] = r.leader_recovery_state
        if r.leader != -2:  # -2: leader unchanged; a new leader (or none, or the same again) starts an epoch
            changes["leader"], changes["leader_epoch"] = r.leader, self.leader_epoch + 1
        return replace(self, partition_epoch=self.partition_epoch + 1, **changes)


@dataclass(frozen=True, slots=True)
class TopicImage:
    name: str
    topic_id: Uuid
    partitions: Mapping[int, PartitionImage]

    @property
    def internal(self) -> bool:
        return self.name in ("__consumer_offsets", "__transaction_state")


@dataclass(frozen=True, slots=True)
class Endpoint:
    listener: str
    host: str
    port: int
    security_protocol: int


@dataclass(frozen=True, slots=True)
class BrokerImage:
    node_id: int
    epoch: int
    incarnation_id: Uuid
    endpoints: tuple[Endpoint, ...]
    rack: str | None
    fenced: bool
    in_controlled_shutdown: bool = False
    features: tuple[tuple[str, int, int], ...] = ()  # (name, min, max) the broker supports
    log_dirs: tuple[Uuid, ...] = ()

    @property
    def active(self) -> bool:
        """May lead and join ISRs: unfenced and not shutting down."""
        return not self.fenced and not self.in_controlled_shutdown

    def endpoint(self, listener: str) -> Endpoint | None:
        for e in self.endpoints:
            if e.listener == listener:
                return e
        return None


@dataclass(frozen=True)
class MetadataImage:
    cluster_id: str
    offset: int = -1  # of the last record applied
    topics: Mapping[str, TopicImage] = field(default_factory=dict)
    topics_by_id: Mapping[Uuid, TopicImage] = field(default_factory=dict)
    brokers: Mapping[int, BrokerImage] = field(default_factory=dict)
    configs: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=dict)
    features: Mapping[str, int] = field(default_factory=dict)
    next_producer_id: int = 0
    acls: AclIndex = field(default_factory=AclIndex)
    scram: Mapping[tuple[str, int], ScramCredential] = field(default_factory=dict)  # (user, mechanism type)
    client_quotas: Mapping[QuotaEntity, Mapping[str, float]] = field(default_factory=dict)

    def topic_configs(self, topic: str) -> Mapping[str, str]:
        return self.configs.get((TOPIC_RESOURCE, topic), {})

    def live_brokers(self) -> list[BrokerImage]:
        return [b for b in self.brokers.values() if not b.fenced]

    def is_active(self, node_id: int) -> bool:
        broker = self.brokers.get(node_id)
        return broker is not None and broker.active

    def offline_replicas(self, partition: PartitionImage, listener: str | None = None) -> tuple[int, ...]:
        """Replicas on brokers that are unregistered, fenced, or (given one) lack the listener."""
        out = []
        for r in partition.replicas:
            b = self.brokers.get(r)
            if b is None or b.fenced or (listener is not None and b.endpoint(listener) is None):
                out.append(r)
        return tuple(out)

    def records(self) -> list[Message]:
        """Records that rebuild this image from an empty one: what a snapshot of the metadata
        log holds (`MetadataImage(cluster_id).apply(image.records(), image.offset)` equals it)."""
        out: list[Message] = [m.FeatureLevelRecord(name=n, feature_level=v) for n, v in sorted(self.features.items())]
        R = m.RegisterBrokerRecord
        for b in sorted(self.brokers.values(), key=lambda b: b.node_id):
            out.append(R(broker_id=b.node_id, incarnation_id=b.incarnation_id, broker_epoch=b.epoch, rack=b.rack,
                         fenced=b.fenced, in_controlled_shutdown=b.in_controlled_shutdown,
                         end_points=[R.BrokerEndpoint(name=e.listener, host=e.host, port=e.port,
                                                      security_protocol=e.security_protocol) for e in b.endpoints],
                         features=[R.BrokerFeature(name=n, min_supported_version=lo, max_supported_version=hi)
                                   for n, lo, hi in b.features],
                         log_dirs=list(b.log_dirs)))
        for (rtype, rname), entries in sorted(self.configs.items()):
            if rtype != TOPIC_RESOURCE:
                out += [m.ConfigRecord(resource_type=rtype, resource_name=rname, name=k, value=v)
                        for k, v in sorted(entries.items())]
        for t in sorted(self.topics.values(), key=lambda t: t.name):
            out.append(m.TopicRecord(name=t.name, topic_id=t.topic_id))
            out += [m.ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=t.name, name=k, value=v)
                    for k, v in sorted(self.topic_configs(t.name).items())]
            for p in sorted(t.partitions.values(), key=lambda p: p.partition):
                out.append(m.PartitionRecord(partition_id=p.partition, topic_id=t.topic_id, replicas=list(p.replicas),
                                             isr=list(p.isr), leader=p.leader, leader_epoch=p.leader_epoch,
                                             partition_epoch=p.partition_epoch,
                                             adding_replicas=list(p.adding_replicas),
                                             removing_replicas=list(p.removing_replicas),
                                             leader_recovery_state=p.leader_recovery_state,
                                             eligible_leader_replicas=list(p.eligible_leader_replicas),
                                             last_known_elr=list(p.last_known_elr)))
        if self.next_producer_id:
            out.append(m.ProducerIdsRecord(broker_id=-1, broker_epoch=-1, next_producer_id=self.next_producer_id))
        out += [m.AccessControlEntryRecord(id=i, resource_type=a.resource_type, resource_name=a.resource_name,
                                           pattern_type=a.pattern_type, principal=a.principal, host=a.host,
                                           operation=a.operation, permission_type=a.permission)
                for i, a in self.acls]
        out += [m.UserScramCredentialRecord(name=user, mechanism=mech, salt=c.salt, stored_key=c.stored_key,
                                            server_key=c.server_key, iterations=c.iterations)
                for (user, mech), c in sorted(self.scram.items())]
        E = m.ClientQuotaRecord.EntityData
        out += [m.ClientQuotaRecord(entity=[E(entity_type=t, entity_name=n) for t, n in entity], key=k, value=v)
                for entity, values in self.client_quotas.items() for k, v in sorted(values.items())]
        return out

    def apply(self, records: Iterable[Message], offset: int | None = None) -> MetadataImage:
        """A new image with `records` applied in order (the last at `offset`)."""
        delta = _Delta(self)
        for record in records:
            delta.apply(record)
        return delta.image(self.offset if offset is None else offset)


class _Delta:
    """Copy-on-write changes on top of an image; `image()` freezes them into a new one."""

    def __init__(self, base: MetadataImage):
        self.base = base
        self.topics: dict[str, TopicImage] | None = None
        self.by_id: dict[Uuid, TopicImage] | None = None
        self.brokers: dict[int, BrokerImage] | None = None
        self.configs: dict | None = None
        self.features: dict | None = None
        self.next_producer_id = base.next_producer_id
        self.parts: dict[Uuid, dict[int, PartitionImage]] = {}  # topics whose partitions this delta copied
        self.acls: AclIndexBuilder | None = None
        self.scram: dict | None = None
        self.client_quotas: dict | None = None

    def _topics(self) -> tuple[dict, dict]:
        if self.topics is None:
            self.topics, self.by_id = dict(self.base.topics), dict(self.base.topics_by_id)
        return self.topics, self.by_id

    def _brokers(self) -> dict:
        if self.brokers is None:
            self.brokers = dict(self.base.brokers)
        return self.brokers

    def _put_topic(self, topic: TopicImage) -> None:
        topics, by_id = self._topics()
        topics[topic.name] = topic
        by_id[topic.topic_id] = topic

    def _partitions(self, topic_id: Uuid) -> dict[int, PartitionImage]:
        """The topic's partitions, copied once per delta (a batch of a thousand changes to one
        topic copies its partitions once, not a thousand times)."""
        parts = self.parts.get(topic_id)
        if parts is None:
            topic = self._topics()[1][topic_id]
            parts = self.parts[topic_id] = dict(topic.partitions)
            self._put_topic(replace(topic, partitions=parts))
        return parts

    def apply(self, r: Message) -> None:
        kind = type(r)
        if kind is m.TopicRecord:
            self._put_topic(TopicImage(r.name, r.topic_id, {}))
        elif kind is m.PartitionRecord:
            self._partitions(r.topic_id)[r.partition_id] = PartitionImage(
                r.partition_id, tuple(r.replicas), tuple(r.isr), r.leader, r.leader_epoch, r.partition_epoch,
                tuple(r.eligible_leader_replicas or ()), tuple(r.last_known_elr or ()), tuple(r.adding_replicas),
                tuple(r.removing_replicas), r.leader_recovery_state)
        elif kind is m.PartitionChangeRecord:
            parts = self._partitions(r.topic_id)
            parts[r.partition_id] = parts[r.partition_id].merge(r)
        elif kind is m.RemoveTopicRecord:
            topics, by_id = self._topics()
            topic = by_id.pop(r.topic_id, None)
            self.parts.pop(r.topic_id, None)
            if topic is not None:
                topics.pop(topic.name, None)
                if self.configs is None:
                    self.configs = dict(self.base.configs)
                self.configs.pop((TOPIC_RESOURCE, topic.name), None)
        elif kind is m.ConfigRecord:
            if self.configs is None:
                self.configs = dict(self.base.configs)
            key = (r.resource_type, r.resource_name)
            entries = dict(self.configs.get(key, {}))
            if r.value is None:
                entries.pop(r.name, None)
            else:
                entries[r.name] = r.value
            if entries:
                self.configs[key] = entries
            else:
                self.configs.pop(key, None)
        elif kind is m.RegisterBrokerRecord:
            endpoints = tuple(Endpoint(e.name, e.host, e.port, e.security_protocol) for e in r.end_points)
            features = tuple((f.name, f.min_supported_version, f.max_supported_version) for f in r.features)
            self._brokers()[r.broker_id] = BrokerImage(r.broker_id, r.broker_epoch, r.incarnation_id, endpoints,
                                                       r.rack, r.fenced, r.in_controlled_shutdown, features,
                                                       tuple(r.log_dirs or ()))
        elif kind is m.UnregisterBrokerRecord:
            self._brokers().pop(r.broker_id, None)
        elif kind in (m.FenceBrokerRecord, m.UnfenceBrokerRecord):
            brokers = self._brokers()
            if r.id in brokers:
                brokers[r.id] = replace(brokers[r.id], fenced=kind is m.FenceBrokerRecord)
        elif kind is m.BrokerRegistrationChangeRecord:
            brokers = self._brokers()
            b = brokers.get(r.broker_id)
            if b is not None:
                if r.fenced:  # 1 fence, -1 unfence, 0 no change
                    b = replace(b, fenced=r.fenced == 1)
                if r.in_controlled_shutdown:
                    b = replace(b, in_controlled_shutdown=True)
                if r.log_dirs:
                    b = replace(b, log_dirs=tuple(r.log_dirs))
                brokers[r.broker_id] = b
        elif kind is m.FeatureLevelRecord:
            if self.features is None:
                self.features = dict(self.base.features)
            if r.feature_level == 0:
                self.features.pop(r.name, None)
            else:
                self.features[r.name] = r.feature_level
        elif kind is m.ProducerIdsRecord:
            self.next_producer_id = max(self.next_producer_id, r.next_producer_id)
        elif kind is m.AccessControlEntryRecord:
            self._acls().add(r.id, Acl.from_record(r))
        elif kind is m.RemoveAccessControlEntryRecord:
            self._acls().remove(r.id)
        elif kind is m.UserScramCredentialRecord:
            self._scram()[(r.name, r.mechanism)] = ScramCredential(bytes(r.salt), bytes(r.stored_key),
                                                                   bytes(r.server_key), r.iterations)
        elif kind is m.RemoveUserScramCredentialRecord:
            self._scram().pop((r.name, r.mechanism), None)
        elif kind is m.ClientQuotaRecord:
            if self.client_quotas is None:
                self.client_quotas = dict(self.base.client_quotas)
            entity = quota_entity((e.entity_type, e.entity_name) for e in r.entity)
            values = dict(self.client_quotas.get(entity, {}))
            if r.remove:
                values.pop(r.key, None)
            else:
                values[r.key] = r.value
            if values:
                self.client_quotas[entity] = values
            else:
                self.client_quotas.pop(entity, None)
        # Other record types (delegation tokens, NoOp) carry nothing this broker uses yet; they
        # stay in the log for when it does.

    def _acls(self) -> AclIndexBuilder:
        if self.acls is None:
            self.acls = self.base.acls.builder()
        return self.acls

    def _scram(self) -> dict:
        if self.scram is None:
            self.scram = dict(self.base.scram)
        return self.scram

    def image(self, offset: int) -> MetadataImage:
        b = self.base
        return MetadataImage(
            cluster_id=b.cluster_id,
            offset=offset,
            topics=b.topics if self.topics is None else self.topics,
            topics_by_id=b.topics_by_id if self.by_id is None else self.by_id,
            brokers=b.brokers if self.brokers is None else self.brokers,
            configs=b.configs if self.configs is None else self.configs,
            features=b.features if self.features is None else self.features,
            next_producer_id=self.next_producer_id,
            acls=b.acls if self.acls is None else self.acls.freeze(),
            scram=b.scram if self.scram is None else self.scram,
            client_quotas=b.client_quotas if self.client_quotas is None else self.client_quotas,
        )
