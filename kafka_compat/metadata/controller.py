"""The controller: turns admin requests into metadata records, checked against the current image.

Sans-I/O, in the shape of KRaft's QuorumController: each operation takes the image and the
request data and returns the records to append plus the response to send once they are committed.
Nothing here appends or waits; the metadata log driver does (and, for a quorum, only on the
leader). Validation follows Kafka's rules and error codes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from kafka_compat.metadata.alter_partition import alter_partition
from kafka_compat.metadata.elections import elect_leaders, elect_unclean_leaders, rebalance_leaders
from kafka_compat.metadata.image import BROKER_RESOURCE, TOPIC_RESOURCE, MetadataImage
from kafka_compat.metadata.placement import PlacementError, assignment_problem, place, usable_brokers
from kafka_compat.metadata.reassignment import alter_partition_reassignments, list_partition_reassignments
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.security.config import split_key
from kafka_compat.storage.config import TOPIC_CONFIGS, LogConfig
from kafka_compat.storage.errors import InvalidConfigError

MAX_TOPIC_NAME = 249
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")
METADATA_VERSION = 21  # metadata.version level written at bootstrap (Kafka 3.9's IBP_3_9_IV0)
# The lowest metadata.version level supported: Kafka 4's (IBP_3_3_IV3); its tools know no level below.
MINIMUM_METADATA_VERSION = 7
PRODUCER_ID_BLOCK = 1000  # ids handed to a broker per AllocateProducerIds, as Kafka does

# IncrementalAlterConfigs operation codes.
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@dataclass
class ControllerDefaults:
    num_partitions: int = 1
    replication_factor: int = 1
    dynamic_broker_keys: frozenset[str] = frozenset()
    broker_key_check: Callable[[str, str], str | None] | None = None  # (key, value) -> problem
    unclean_leader_election_enable: bool = False  # the static broker default; topics may override it


def topic_name_problem(name: str) -> str | None:
    """Kafka's topic name rules; the sentence Kafka answers with, or None when legal."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return "Topic name cannot be \".\" or \"..\""
    if len(name) > MAX_TOPIC_NAME:
        return f"Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters, topic name: {name}"
    if not _LEGAL.match(name):
        return (f"Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, "
                "'.', '_' and '-'")
    return None


def collision(image: MetadataImage, name: str) -> str | None:
    """Kafka refuses names that differ from an existing one only by '.' vs '_' (metric names clash)."""
    if "." not in name and "_" not in name:
        return None
    folded = name.replace(".", "_")
    for other in image.topics:
        if other != name and other.replace(".", "_") == folded:
            return f"Topic '{name}' collides with existing topic: {other}"
    return None


class Controller:
    def __init__(self, defaults: ControllerDefaults | None = None, rng: random.Random | None = None):
        self.defaults = defaults or ControllerDefaults()
        self.rng = rng or random.Random()

    def _uuid(self) -> Uuid:
        while True:
            u = Uuid(self.rng.randbytes(16))
            if u[0] >> 2 != 62 and u != Uuid() and u != Uuid(bytes(15) + b"\x01"):
                return u

    # -- topics ---------------------------------------------------------------------------

    def place_replicas(self, image: MetadataImage, partitions: int, rf: int) -> list[list[int]]:
        """Replica lists for new partitions (Kafka's striped placer); PlacementError if impossible."""
        return place(usable_brokers(image), partitions, rf, self.rng)

    def new_topic(self, image: MetadataImage, name: str, assignment: list[list[int]], configs: dict[str, str],
                  topic_id: Uuid | None = None) -> list[Message]:
        topic_id = topic_id or self._uuid()
        records: list[Message] = [m.TopicRecord(name=name, topic_id=topic_id)]
        for key, value in configs.items():
            records.append(m.ConfigRecord(resource_type=TOPIC_RESOURCE, resource_name=name, name=key, value=value))
        for p, replicas in enumerate(assignment):
            records.append(self._partition(image, topic_id, p, replicas))
        return records

    @staticmethod
    def _partition(image: MetadataImage, topic_id: Uuid, p: int, replicas: list[int]) -> Message:
        """A new partition: its ISR is the replicas that can serve now, led by the first of them."""
        isr = [r for r in replicas if image.is_active(r)]
        return m.PartitionRecord(partition_id=p, topic_id=topic_id, replicas=list(replicas), isr=isr, leader=isr[0],
                                 leader_epoch=0, partition_epoch=0)

    def check_new_topic(self, image: MetadataImage, name: str, partitions: int, rf: int, assignments: list,
                        configs: dict[str, str]) -> tuple[ErrorCode, str | None, list[list[int]] | None]:
        """(error, message, replica assignment) for a topic to create."""
        problem = topic_name_problem(name)
        if problem:
            return ErrorCode.INVALID_TOPIC_EXCEPTION, problem, None
        if name in image.topics:
            return ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.", None
        problem = collision(image, name)
        if problem:
            return ErrorCode.INVALID_TOPIC_EXCEPTION, problem, None
        try:
            LogConfig.from_dict(configs)
        except InvalidConfigError as e:
            return ErrorCode.INVALID_CONFIG, e.message, None
        if assignments:
            if rf != -1:
                return (ErrorCode.INVALID_REQUEST,
                        "A manual partition assignment was specified, but replication factor was not set to -1.", None)
            if partitions != -1:
                return (ErrorCode.INVALID_REQUEST,
                        "A manual partition assignment was specified, but numPartitions was not set to -1.", None)
            by_index: dict[int, list[int]] = {}
            rf = None  # every partition has as many replicas as the one before
            for a in assignments:
                if a.partition_index in by_index:
                    return (ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                            f"Found multiple manual partition assignments for partition {a.partition_index}", None)
                replicas = list(a.broker_ids)
                problem = assignment_problem(image, replicas, rf)
                rf = len(replicas)
                if problem:
                    return ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem, None
                if not any(image.is_active(r) for r in replicas):
                    return (ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                            f"All brokers specified in the manual partition assignment for partition "
                            f"{a.partition_index} are fenced or in controlled shutdown.", None)
                by_index[a.partition_index] = replicas
            if sorted(by_index) != list(range(len(by_index))):
                return (ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                        "partitions should be a consecutive 0-based integer sequence", None)
            return ErrorCode.NONE, None, [by_index[i] for i in range(len(by_index))]
        if rf < -1 or rf == 0:
            return (ErrorCode.INVALID_REPLICATION_FACTOR,
                    "Replication factor must be larger than 0, or -1 to use the default value.", None)
        if partitions < -1 or partitions == 0:
            return ErrorCode.INVALID_PARTITIONS, "Number of partitions was set to an invalid non-positive value.", None
        partitions = self.defaults.num_partitions if partitions == -1 else partitions
        rf = self.defaults.replication_factor if rf == -1 else rf
        try:
            return ErrorCode.NONE, None, self.place_replicas(image, partitions, rf)
        except PlacementError as e:
            return ErrorCode.INVALID_REPLICATION_FACTOR, f"Unable to replicate the partition {rf} time(s): {e}", None

    def create_topics(self, image: MetadataImage, req: Message) -> tuple[list[Message], Message]:
        R = m.CreateTopicsResponse
        records: list[Message] = []
        results = []
        seen: set[str] = set()
        for t in req.topics:
            configs = {c.name: c.value for c in t.configs}
            result = R.CreatableTopicResult(name=t.name)
            if t.name in seen:
                result.error_code, result.error_message = ErrorCode.INVALID_REQUEST, "Duplicate topic name."
                results.append(result)
                continue
            seen.add(t.name)
            code, message, plan = self.check_new_topic(image, t.name, t.num_partitions, t.replication_factor,
                                                       list(t.assignments), configs)
            result.error_code, result.error_message = code, message
            if code == ErrorCode.NONE:
                topic_records = self.new_topic(image, t.name, plan, configs)
                result.topic_id = topic_records[0].topic_id
                result.num_partitions, result.replication_factor = len(plan), len(plan[0])
                if not req.validate_only:
                    records += topic_records
                    image = image.apply(topic_records)  # later topics in the same request see this one
            else:
                result.num_partitions = result.replication_factor = -1
                result.topic_config_error_code = code if code == ErrorCode.INVALID_CONFIG else 0
            results.append(result)
        return records, R(topics=results)

    def delete_topics(self, image: MetadataImage, req: Message, version: int) -> tuple[list[Message], Message]:
        R = m.DeleteTopicsResponse
        records, results = [], []
        wanted = []  # (name or None, id or None)
        if version >= 6:
            wanted = [(t.name, t.topic_id) for t in req.topics]
        else:
            wanted = [(n, None) for n in req.topic_names]
        for name, topic_id in wanted:
            result = R.DeletableTopicResult(name=name, topic_id=topic_id or Uuid())
            topic = None
            if topic_id and topic_id != Uuid():
                topic = image.topics_by_id.get(topic_id)
                if topic is None:
                    result.error_code, result.error_message = ErrorCode.UNKNOWN_TOPIC_ID, "Topic id not found."
            elif name is not None:
                topic = image.topics.get(name)
                if topic is None:
                    result.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    result.error_message = "This server does not host this topic-partition."
            else:
                result.error_code = ErrorCode.INVALID_REQUEST
                result.error_message = "Neither topic name nor id was given."
            if topic is not None:
                result.name, result.topic_id = topic.name, topic.topic_id
                if not any(r.topic_id == topic.topic_id for r in records):
                    records.append(m.RemoveTopicRecord(topic_id=topic.topic_id))
            results.append(result)
        return records, R(responses=results)

    def create_partitions(self, image: MetadataImage, req: Message) -> tuple[list[Message], Message]:
        R = m.CreatePartitionsResponse
        records, results = [], []
        for t in req.topics:
            result = R.CreatePartitionsTopicResult(name=t.name)
            results.append(result)
            code, message, plan = self._check_new_partitions(image, t)
            result.error_code, result.error_message = code, message
            if code == ErrorCode.NONE and not req.validate_only:
                topic = image.topics[t.name]
                records += [self._partition(image, topic.topic_id, len(topic.partitions) + i, replicas)
                            for i, replicas in enumerate(plan)]
        return records, R(results=results)

    def _check_new_partitions(self, image: MetadataImage, t) -> tuple[ErrorCode, str | None, list[list[int]] | None]:
        topic = image.topics.get(t.name)
        if topic is None:
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, None, None
        current = len(topic.partitions)
        if t.count == current:
            return ErrorCode.INVALID_PARTITIONS, f"Topic already has {current} partition(s).", None
        if t.count < current:
            return (ErrorCode.INVALID_PARTITIONS, f"The topic {t.name} currently has {current} partition(s); "
                    f"{t.count} would not be an increase.", None)
        new = t.count - current
        rf = len(topic.partitions[0].replicas)
        if t.assignments is None:
            try:
                return ErrorCode.NONE, None, self.place_replicas(image, new, rf)
            except PlacementError as e:
                return ErrorCode.INVALID_REPLICATION_FACTOR, str(e), None
        if len(t.assignments) != new:
            return (ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Attempted to add {new} additional partition(s), but only "
                    f"{len(t.assignments)} assignment(s) were specified.", None)
        plan = [list(a.broker_ids) for a in t.assignments]
        for i, replicas in enumerate(plan):
            problem = assignment_problem(image, replicas, rf)
            if problem:
                return ErrorCode.INVALID_REPLICA_ASSIGNMENT, problem, None
            if not any(image.is_active(r) for r in replicas):
                return (ErrorCode.INVALID_REPLICA_ASSIGNMENT, "All brokers specified in the manual partition "
                        f"assignment for partition {current + i} are fenced or in controlled shutdown.", None)
        return ErrorCode.NONE, None, plan

    # -- replication -------------------------------------------------------------------------

    def alter_partition(self, image: MetadataImage, req: m.AlterPartitionRequest,
                        version: int) -> tuple[list[Message], Message]:
        return alter_partition(image, req, version, self.defaults.unclean_leader_election_enable)

    def elect_leaders(self, image: MetadataImage, req: m.ElectLeadersRequest,
                      version: int) -> tuple[list[Message], Message]:
        return elect_leaders(image, req, version)

    def alter_partition_reassignments(self, image: MetadataImage,
                                      req: m.AlterPartitionReassignmentsRequest) -> tuple[list[Message], Message]:
        return alter_partition_reassignments(image, req, self.defaults.unclean_leader_election_enable)

    def list_partition_reassignments(self, image: MetadataImage,
                                     req: m.ListPartitionReassignmentsRequest) -> tuple[list[Message], Message]:
        return [], list_partition_reassignments(image, req)

    def rebalance_leaders(self, image: MetadataImage, imbalance_percentage: int) -> list[Message]:
        """`auto.leader.rebalance.enable`'s periodic work: preferred leaders back where the
        imbalance exceeds `leader.imbalance.per.broker.percentage`."""
        return rebalance_leaders(image, imbalance_percentage)

    def elect_unclean_leaders(self, image: MetadataImage) -> list[Message]:
        return elect_unclean_leaders(image, self.defaults.unclean_leader_election_enable)

    # -- configs ----------------------------------------------------------------------------

    def _check_config(self, image: MetadataImage, rtype: int, rname: str, key: str, value: str | None) -> str | None:
        if rtype == TOPIC_RESOURCE:
            if rname not in image.topics:
                return None  # answered as UNKNOWN_TOPIC_OR_PARTITION by the caller
            if key not in TOPIC_CONFIGS:
                return f"Unknown topic config name: {key}"
            if value is not None:
                try:
                    LogConfig.from_dict({key: value})
                except InvalidConfigError as e:
                    return e.message
            return None
        base = split_key(key)[1]  # a listener's own setting (listener.name.<l>.<key>) is checked as <key>
        if base not in self.defaults.dynamic_broker_keys:
            return f"Cannot update these configs dynamically: Set({key})"
        if value is not None and self.defaults.broker_key_check:
            return self.defaults.broker_key_check(base, value)
        return None

    def _resource_error(self, image: MetadataImage, rtype: int, rname: str,
                        node_id: int) -> tuple[ErrorCode, str] | None:
        if rtype == TOPIC_RESOURCE:
            if rname not in image.topics:
                return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{rname}' does not exist."
        elif rtype == BROKER_RESOURCE:
            if rname not in ("", str(node_id)) and not (rname.isdigit() and int(rname) in image.brokers):
                return ErrorCode.INVALID_REQUEST, f"Unexpected broker id {rname}"
        else:
            return ErrorCode.INVALID_REQUEST, f"Unsupported resource type {rtype}"
        return None

    def alter_configs(self, image: MetadataImage, req: Message, node_id: int) -> tuple[list[Message], Message]:
        """AlterConfigs: replaces the whole set of a resource's overrides."""
        R = m.AlterConfigsResponse
        records, results = [], []
        for res in req.resources:
            result = R.AlterConfigsResourceResponse(resource_type=res.resource_type, resource_name=res.resource_name,
                                                    error_message=None)
            results.append(result)
            err = self._resource_error(image, res.resource_type, res.resource_name, node_id)
            if err:
                result.error_code, result.error_message = err
                continue
            new = {c.name: c.value for c in res.configs}
            problem = next((p for k, v in new.items()
                            if (p := self._check_config(image, res.resource_type, res.resource_name, k, v))), None)
            if problem:
                result.error_code, result.error_message = self._config_error(problem), problem
                continue
            old = image.configs.get((res.resource_type, res.resource_name), {})
            if not req.validate_only:
                for key in old:
                    if key not in new:
                        records.append(m.ConfigRecord(resource_type=res.resource_type, resource_name=res.resource_name,
                                                      name=key, value=None))
                for key, value in new.items():
                    records.append(m.ConfigRecord(resource_type=res.resource_type, resource_name=res.resource_name,
                                                  name=key, value=value))
        return records, R(responses=results)

    @staticmethod
    def _config_error(problem: str) -> ErrorCode:
        return ErrorCode.INVALID_REQUEST if problem.startswith("Cannot update") else ErrorCode.INVALID_CONFIG

    def incremental_alter_configs(self, image: MetadataImage, req: Message,
                                  node_id: int) -> tuple[list[Message], Message]:
        R = m.IncrementalAlterConfigsResponse
        records, results = [], []
        for res in req.resources:
            result = R.AlterConfigsResourceResponse(resource_type=res.resource_type, resource_name=res.resource_name,
                                                    error_message=None)
            results.append(result)
            err = self._resource_error(image, res.resource_type, res.resource_name, node_id)
            if err:
                result.error_code, result.error_message = err
                continue
            if len({c.name for c in res.configs}) < len(res.configs):
                result.error_code = ErrorCode.INVALID_REQUEST
                result.error_message = "Error due to duplicate config keys"
                continue
            current = dict(image.configs.get((res.resource_type, res.resource_name), {}))
            changes: dict[str, str | None] = {}
            problem = None
            for c in res.configs:
                key = c.name
                if c.config_operation == SET:
                    changes[key] = c.value
                elif c.config_operation == DELETE:
                    changes[key] = None
                elif c.config_operation in (APPEND, SUBTRACT):
                    spec = TOPIC_CONFIGS.get(key) if res.resource_type == TOPIC_RESOURCE else None
                    if spec is None or spec.type != "LIST":
                        op = "APPEND" if c.config_operation == APPEND else "SUBTRACT"
                        problem = f"Can't {op} to key {key} because its type is not LIST."
                        break
                    base = changes.get(key, current.get(key))
                    items = [x for x in (base.split(",") if base else ",".join(spec.default).split(",")) if x]
                    extra = [x.strip() for x in (c.value or "").split(",") if x.strip()]
                    if c.config_operation == APPEND:
                        items += [x for x in extra if x not in items]
                    else:
                        items = [x for x in items if x not in extra]
                    changes[key] = ",".join(items)
                else:
                    problem = f"Unknown config operation {c.config_operation}"
                    break
                problem = self._check_config(image, res.resource_type, res.resource_name, key, changes[key])
                if problem:
                    break
            if problem:
                result.error_code, result.error_message = self._config_error(problem), problem
                continue
            if not req.validate_only:
                for key, value in changes.items():
                    if value is None and key not in current:
                        continue
                    records.append(m.ConfigRecord(resource_type=res.resource_type, resource_name=res.resource_name,
                                                  name=key, value=value))
        return records, R(responses=results)

    # -- brokers and bootstrap --------------------------------------------------------------

    def bootstrap(self) -> list[Message]:
        """Records a new cluster's log starts with."""
        return [m.FeatureLevelRecord(name="metadata.version", feature_level=METADATA_VERSION)]

    def allocate_producer_ids(self, image: MetadataImage,
                              req: m.AllocateProducerIdsRequest) -> tuple[list[Message], Message]:
        """A block of producer ids never handed out before (ProducerIdsRecord moves the mark)."""
        R = m.AllocateProducerIdsResponse
        broker = image.brokers.get(req.broker_id)
        if broker is None:
            return [], R(error_code=ErrorCode.BROKER_ID_NOT_REGISTERED, producer_id_start=-1, producer_id_len=0)
        if req.broker_epoch != broker.epoch:
            return [], R(error_code=ErrorCode.STALE_BROKER_EPOCH, producer_id_start=-1, producer_id_len=0)
        start = image.next_producer_id
        record = m.ProducerIdsRecord(broker_id=req.broker_id, broker_epoch=req.broker_epoch,
                                     next_producer_id=start + PRODUCER_ID_BLOCK)
        return [record], R(error_code=ErrorCode.NONE, producer_id_start=start, producer_id_len=PRODUCER_ID_BLOCK)
