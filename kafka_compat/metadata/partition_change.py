"""One partition's next state, as a PartitionChangeRecord: Kafka's PartitionChangeBuilder rules.

A change starts from the partition's current state and targets (ISR, replicas, adding and
removing replicas, leader recovery state); `build()` settles them in this order and returns the
record, or None when nothing changes:

1. A reassignment completes once the target ISR holds every target replica: the removing
   replicas leave the replicas and the ISR, adding and removing are cleared.
2. The leader: kept while it is in the target ISR and acceptable (live, unfenced, not shutting
   down); otherwise the first acceptable target-ISR member in replica order (PREFERRED tries the
   first replica before the current leader); otherwise, for an UNCLEAN election, the first
   acceptable replica at all, which makes the ISR just itself and the leader RECOVERING (data
   may be lost); otherwise none (-1): the partition is offline.
3. A new leader (or none) bumps the leader epoch; so does a reassignment that drops replicas,
   by naming the same leader again. ISR-only changes keep the leader epoch.
4. The ISR is written only if it changes and is not empty: when the last ISR member fails, it
   stays in the ISR (it has every committed record) and the partition goes leaderless.

Every record bumps the partition epoch (the image does that on apply).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

from kafka_compat.metadata.image import BROKER_RESOURCE, NO_LEADER, RECOVERING, MetadataImage, PartitionImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Uuid

NO_LEADER_CHANGE = -2  # PartitionChangeRecord.leader: unchanged
UNCLEAN_KEY = "unclean.leader.election.enable"


class Election(Enum):
    PREFERRED = "preferred"  # the first replica if it can lead, else as ONLINE
    ONLINE = "online"  # keep the partition led from its ISR
    UNCLEAN = "unclean"  # ... or from outside the ISR when no ISR member can lead


def unclean_enabled(image: MetadataImage, topic: str, default: bool) -> bool:
    """`unclean.leader.election.enable` for a topic: its own config, else the cluster-wide dynamic
    broker config, else the controller's static one."""
    value = image.topic_configs(topic).get(UNCLEAN_KEY)
    if value is None:
        value = image.configs.get((BROKER_RESOURCE, ""), {}).get(UNCLEAN_KEY)
    return default if value is None else value.strip().lower() == "true"


class PartitionChange:
    def __init__(self, partition: PartitionImage, topic_id: Uuid, acceptable: Callable[[int], bool],
                 election: Election = Election.ONLINE):
        self.partition = partition
        self.topic_id = topic_id
        self.acceptable = acceptable  # may this broker lead (live, unfenced, not shutting down)?
        self.election = election
        self.isr = list(partition.isr)
        self.replicas = list(partition.replicas)
        self.adding = list(partition.adding_replicas)
        self.removing = list(partition.removing_replicas)
        self.recovery_state = partition.leader_recovery_state

    def build(self) -> m.PartitionChangeRecord | None:
        p = self.partition
        self._complete_reassignment()
        record = m.PartitionChangeRecord(topic_id=self.topic_id, partition_id=p.partition)
        leader, unclean = self._elect()
        if leader != p.leader:
            record.leader = leader
            if unclean:
                record.isr = [leader]
                if p.leader_recovery_state != RECOVERING:
                    record.leader_recovery_state = RECOVERING
        if record.leader == NO_LEADER_CHANGE and not set(p.replicas) <= set(self.replicas):
            record.leader = p.leader  # replicas left: a new leader epoch fences their requests
        if record.isr is None and self.isr and self.isr != list(p.isr):
            record.isr = self.isr
        if self.replicas and self.replicas != list(p.replicas):
            record.replicas = self.replicas
        if self.removing != list(p.removing_replicas):
            record.removing_replicas = self.removing
        if self.adding != list(p.adding_replicas):
            record.adding_replicas = self.adding
        if self.recovery_state != p.leader_recovery_state:
            record.leader_recovery_state = self.recovery_state
        unchanged = (record.leader == NO_LEADER_CHANGE and record.leader_recovery_state == -1
                     and record.isr is None and record.replicas is None
                     and record.adding_replicas is None and record.removing_replicas is None)
        return None if unchanged else record

    def _complete_reassignment(self) -> None:
        if not self.adding and not self.removing:
            return
        isr = [r for r in self.isr if r not in self.removing]
        replicas = [r for r in self.replicas if r not in self.removing]
        if not isr or not replicas or not set(replicas) <= set(isr):
            return
        self.isr, self.replicas, self.adding, self.removing = isr, replicas, [], []

    def _can_lead(self, replica: int) -> bool:
        return replica in self.isr and self.acceptable(replica)

    def _elect(self) -> tuple[int, bool]:
        """(leader, unclean)."""
        current = self.partition.leader
        if self.election is Election.PREFERRED and self.replicas and self._can_lead(self.replicas[0]):
            return self.replicas[0], False
        if self._can_lead(current):
            return current, False
        clean = next((r for r in self.replicas if self._can_lead(r)), None)
        if clean is not None:
            return clean, False
        if self.election is Election.UNCLEAN:
            unclean = next((r for r in self.replicas if self.acceptable(r)), None)
            if unclean is not None:
                return unclean, True
        return NO_LEADER, False


def leader_and_isr_updates(image: MetadataImage, *, remove: int = NO_LEADER, add: int = NO_LEADER,
                           unclean_default: bool = False) -> list[m.PartitionChangeRecord]:
    """The changes when broker `remove` stops serving (fenced, shutting down, unregistered: it
    leaves every ISR it is not the last member of, and every leadership) or broker `add` starts
    (leaderless partitions get a leader again, itself if it is in their ISR). `image` may not
    show the change of the broker's own state yet: `add` counts as active, `remove` does not."""

    def acceptable(r: int) -> bool:
        return r != remove and (r == add or image.is_active(r))

    records = []
    for topic in image.topics.values():
        election = Election.UNCLEAN if unclean_enabled(image, topic.name, unclean_default) else Election.ONLINE
        for p in topic.partitions.values():
            if (remove not in p.isr) if remove != NO_LEADER else (p.leader != NO_LEADER):
                continue
            change = PartitionChange(p, topic.topic_id, acceptable, election)
            change.isr = [r for r in p.isr if r != remove]
            record = change.build()
            if record is not None:
                records.append(record)
    return records


def leads_any(image: MetadataImage, broker: int) -> bool:
    return any(p.leader == broker for t in image.topics.values() for p in t.partitions.values())
