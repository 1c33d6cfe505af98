"""A fake clock, an in-memory `__consumer_offsets` log and request builders around the real
GroupCoordinator state machine (nothing of the machine is mocked)."""

from __future__ import annotations

import itertools
import struct
import uuid
from collections.abc import Iterable

from kafka_compat.coordinator import GroupConfig, GroupCoordinator, records
from kafka_compat.coordinator.machine import Append, Client, Load
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.protocol.primitives import Uuid

E = ErrorCode
START = 1_700_000_000_000


def counter_uuids():
    n = itertools.count(1)
    return lambda: uuid.UUID(int=next(n))


class Harness:
    """Drives one GroupCoordinator: every partition loaded (unless told otherwise), appends
    succeed at once into `self.log` unless `auto_append` is off (then `release()` them)."""

    def __init__(self, config: GroupConfig | None = None, *, topics=None, partitions: Iterable[int] | None = None,
                 auto_append: bool = True, now: int = START):
        self.now = now
        self.config = config or GroupConfig(group_initial_rebalance_delay_ms=0)
        self.c = GroupCoordinator(self.config, topics=topics, new_uuid=counter_uuids(), now_ms=now)
        self.log: dict[int, list[tuple[bytes, bytes | None]]] = {}
        self.auto_append = auto_append
        self.held: list[Append] = []
        self.hold_loads = False
        self.held_loads: list[Load] = []
        self.done: dict[int, m.Message] = {}
        self._tokens = itertools.count(1)
        for p in (range(self.config.offsets_topic_num_partitions) if partitions is None else partitions):
            self.c.begin_load(p, self.now)
        self.drain()

    # -- plumbing -----------------------------------------------------------------------------------

    def drain(self) -> None:
        while True:
            work = self.c.take_work()
            if not work:
                break
            for job in work:
                if isinstance(job, Load) and self.hold_loads:
                    self.held_loads.append(job)
                elif isinstance(job, Load):
                    self.load(job)
                elif self.auto_append:
                    self.store(job)
                    self.c.append_done(job, None, self.now)
                else:
                    self.held.append(job)
        for token, response in self.c.take_completions():
            assert token not in self.done, f"token {token} completed twice"
            self.done[token] = response

    def release(self, error: ErrorCode | None = None, count: int | None = None) -> None:
        """Complete held appends (all, or the first `count`), successfully or with `error`."""
        n = len(self.held) if count is None else count
        jobs, self.held = self.held[:n], self.held[n:]
        for job in jobs:
            if error is None:
                self.store(job)
            self.c.append_done(job, error, self.now)
        self.drain()

    def store(self, job: Append) -> None:
        self.log.setdefault(job.partition, []).extend(job.records)

    def load(self, job: Load) -> None:
        assert self.c.load_records(job.partition, job.epoch, list(self.log.get(job.partition, [])))
        assert self.c.finish_load(job.partition, job.epoch, self.now)

    def call(self, method: str, request, version: int, client_id: str = "client", client_host: str = "/127.0.0.1"):
        """Send a request of the API named `method` (join_group: JOIN_GROUP): returns (token,
        response) with response None while it is parked."""
        token = next(self._tokens)
        response = self.c.handle(m.ApiKey[method.upper()], token, request, version, self.now,
                                 Client(client_id, client_host))
        self.drain()
        if response is None:
            response = self.done.pop(token, None)
        return token, response

    def send(self, method: str, request, version: int, **kw):
        """Send a request that must be answered at once."""
        token, response = self.call(method, request, version, **kw)
        assert response is not None, f"{method} was parked"
        response.encode(version)  # every response we produce must encode at its version
        return response

    def result(self, token: int):
        response = self.done.pop(token, None)
        return response

    def advance(self, ms: int) -> None:
        self.now += ms
        self.c.tick(self.now)
        self.drain()

    def group(self, gid: str):
        return self.c.group(gid)

    def records(self):
        """Every appended record, decoded, in log order."""
        out = []
        for p in sorted(self.log):
            for k, v in self.log[p]:
                out.append(records.decode(k, v))
        return out

    def reload(self, config: GroupConfig | None = None) -> Harness:
        """A fresh coordinator that loads this one's log (a restart)."""
        fresh = Harness.__new__(Harness)
        fresh.now = self.now
        fresh.config = config or self.config
        fresh.c = GroupCoordinator(fresh.config, topics=self.c.topics, new_uuid=counter_uuids(), now_ms=self.now)
        fresh.log = {p: list(v) for p, v in self.log.items()}
        fresh.auto_append = True
        fresh.held = []
        fresh.hold_loads = False
        fresh.held_loads = []
        fresh.done = {}
        fresh._tokens = itertools.count(1000)
        for p in range(fresh.config.offsets_topic_num_partitions):
            fresh.c.begin_load(p, fresh.now)
        fresh.drain()
        return fresh


# -- request builders ---------------------------------------------------------------------------------

def subscription(*topics: str, version: int = 1) -> bytes:
    s = m.ConsumerProtocolSubscription(topics=list(topics), user_data=None)
    return struct.pack(">h", version) + s.encode(version)


def join_req(group: str, member_id: str = "", protocols=(("range", b"r"),), *, session: int = 10000,
             rebalance: int = 30000, instance: str | None = None, protocol_type: str = "consumer"):
    P = m.JoinGroupRequest.JoinGroupRequestProtocol
    return m.JoinGroupRequest(group_id=group, session_timeout_ms=session, rebalance_timeout_ms=rebalance,
                              member_id=member_id, group_instance_id=instance, protocol_type=protocol_type,
                              protocols=[P(name=n, metadata=md) for n, md in protocols])


def sync_req(group: str, generation: int, member_id: str, assignments: dict | None = None, *,
             instance: str | None = None, protocol_type: str | None = None, protocol_name: str | None = None):
    A = m.SyncGroupRequest.SyncGroupRequestAssignment
    return m.SyncGroupRequest(group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance,
                              protocol_type=protocol_type, protocol_name=protocol_name,
                              assignments=[A(member_id=k, assignment=v) for k, v in (assignments or {}).items()])


def hb_req(group: str, generation: int, member_id: str, instance: str | None = None):
    return m.HeartbeatRequest(group_id=group, generation_id=generation, member_id=member_id, group_instance_id=instance)


def leave_req(group: str, *members: tuple[str, str | None]):
    MI = m.LeaveGroupRequest.MemberIdentity
    return m.LeaveGroupRequest(group_id=group, member_id=members[0][0] if members else "",
                               members=[MI(member_id=mid, group_instance_id=iid) for mid, iid in members])


def commit_req(group: str, offsets: dict, *, generation: int = -1, member_id: str = "", instance: str | None = None,
               metadata: str | None = "", retention: int = -1, leader_epoch: int = -1):
    T = m.OffsetCommitRequest.OffsetCommitRequestTopic
    P = m.OffsetCommitRequest.OffsetCommitRequestPartition
    topics: dict[str, list] = {}
    for (topic, p), off in offsets.items():
        topics.setdefault(topic, []).append(P(partition_index=p, committed_offset=off, committed_metadata=metadata,
                                              committed_leader_epoch=leader_epoch))
    return m.OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=generation, member_id=member_id,
                                 group_instance_id=instance, retention_time_ms=retention,
                                 topics=[T(name=t, partitions=ps) for t, ps in topics.items()])


def fetch_req(group: str, parts: dict | None, *, require_stable: bool = False):
    T = m.OffsetFetchRequest.OffsetFetchRequestTopic
    return m.OffsetFetchRequest(group_id=group, require_stable=require_stable, topics=None if parts is None else [
        T(name=t, partition_indexes=list(ps)) for t, ps in parts.items()])


def fetch_req_v8(groups: dict, *, require_stable: bool = False, member_id=None, member_epoch=-1):
    G = m.OffsetFetchRequest.OffsetFetchRequestGroup
    T = m.OffsetFetchRequest.OffsetFetchRequestTopics
    return m.OffsetFetchRequest(require_stable=require_stable, groups=[
        G(group_id=g, member_id=member_id, member_epoch=member_epoch,
          topics=None if parts is None else [T(name=t, partition_indexes=list(ps)) for t, ps in parts.items()])
        for g, parts in groups.items()])


def fetched(response, version: int = 7) -> dict:
    """{(topic, partition): (offset, metadata, error)} of a v0-v7 OffsetFetch response."""
    return {(t.name, p.partition_index): (p.committed_offset, p.metadata, p.error_code)
            for t in response.topics for p in t.partitions}


def commit_errors(response) -> dict:
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


def topic_id(name: str) -> Uuid:
    return Uuid(name.encode().ljust(16, b"\0")[:16])


def topics(**counts: int) -> dict:
    return {name: (topic_id(name), n) for name, n in counts.items()}
