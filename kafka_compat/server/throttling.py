"""Client quotas on a broker (Kafka's ClientQuotaManager per quota type, KIP-13 / KIP-124 / KIP-219).

One `ClientQuotas` per broker records each Produce request's size against `producer_byte_rate`,
each Fetch response's record bytes against `consumer_byte_rate`, and the time spent serving every
request against `request_percentage` (100 is one event loop's whole time), for the quota entity the
request's principal and client id fall under (the quotas in the metadata image). A client over a
quota gets its answer at once with `throttle_time_ms` (the largest of its throttles), and its
connection serves nothing more until that time has passed (the channel muted, as KIP-219 has it).
A consumer's fetch is recorded by the fetch handler before it answers (`fetch_throttle_ms`): a
throttled fetch answers no records, and its bytes are taken back (Kafka's KafkaApis does so).
An acks=0 produce counts against `producer_byte_rate` too; with no response to carry the
throttle, the muted channel is all its producer sees (as in Kafka).
What Kafka exempts from throttling is exempt here: the cluster's own requests (replication,
controller, transaction markers), acks=0 produces from the request quota.
`ConnectionQuotas` limits connections.
"""

from __future__ import annotations

import time
import types
from time import perf_counter_ns

from kafka_compat.protocol import messages as m
from kafka_compat.security.quotas import (
    CONSUMER_BYTE_RATE,
    NANOS_TO_PERCENTAGE,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    ClientQuotaManager,
    ConnectionRateQuotaManager,
    ControllerMutationQuotaManager,
)

_PRODUCE, _FETCH = m.ApiKey.PRODUCE, m.ApiKey.FETCH
_K = m.ApiKey
# Kafka's cluster actions (ApiKeys with clusterAction): served exempt from every client quota, as
# are SASL exchanges (Kafka's authenticator answers them before any quota is looked at).
EXEMPT = frozenset({_K.LEADER_AND_ISR, _K.STOP_REPLICA, _K.UPDATE_METADATA, _K.CONTROLLED_SHUTDOWN,
                    _K.WRITE_TXN_MARKERS, _K.VOTE, _K.BEGIN_QUORUM_EPOCH, _K.END_QUORUM_EPOCH, _K.DESCRIBE_QUORUM,
                    _K.ALTER_PARTITION, _K.UPDATE_FEATURES, _K.ENVELOPE, _K.FETCH_SNAPSHOT, _K.BROKER_REGISTRATION,
                    _K.BROKER_HEARTBEAT, _K.UNREGISTER_BROKER, _K.ALLOCATE_PRODUCER_IDS, _K.CONTROLLER_REGISTRATION,
                    _K.ASSIGN_REPLICAS_TO_DIRS, _K.ADD_RAFT_VOTER, _K.REMOVE_RAFT_VOTER, _K.UPDATE_RAFT_VOTER,
                    _K.SASL_HANDSHAKE, _K.SASL_AUTHENTICATE})


class Stopwatch:
    """The time a request's handling has run on the event loop so far, in ns."""

    __slots__ = ("ns",)

    def __init__(self):
        self.ns = 0


@types.coroutine
def timed(coro, watch: Stopwatch):
    """Await `coro`, adding to `watch` the time its steps run, not the time it waits (a long poll,
    a rebalance or a replication wait costs nothing): Kafka's request-thread time."""
    send, value = coro.send, None
    while True:
        start = perf_counter_ns()
        try:
            yielded = send(value)
        except StopIteration as done:
            return done.value
        finally:
            watch.ns += perf_counter_ns() - start
        try:
            value, send = (yield yielded), coro.send
        except BaseException as e:  # a cancellation or close: the coroutine deals with it
            value, send = e, coro.throw


class ClientQuotas:
    def __init__(self, window_num: int = 11, window_size_ms: int = 1000):
        self.produce = ClientQuotaManager(PRODUCER_BYTE_RATE, window_num, window_size_ms)
        self.fetch = ClientQuotaManager(CONSUMER_BYTE_RATE, window_num, window_size_ms)
        # Kafka caps a request-time throttle at one window
        self.request = ClientQuotaManager(REQUEST_PERCENTAGE, window_num, window_size_ms, window_size_ms)
        self.mutations = ControllerMutationQuotaManager(window_num, window_size_ms)

    def measures_time(self, quotas, api_key: int) -> bool:
        """Whether a request's handling is to be timed: some client has a request_percentage quota."""
        return api_key not in EXEMPT and self.request.enabled(quotas)

    def mutation_throttle_ms(self, quotas, principal: str, client_id: str | None) -> int:
        """`controller_mutation_rate` (KIP-599): 0 while the client has credit for topic creations,
        deletions and new partitions, else how long until it has."""
        return self.mutations.throttle_ms(quotas, _user(principal), client_id or "", int(time.time() * 1000))

    def record_mutations(self, quotas, principal: str, client_id: str | None, partitions: int) -> None:
        self.mutations.record(quotas, _user(principal), client_id or "", partitions, int(time.time() * 1000))

    def throttle_ms(self, quotas, principal: str, client_id: str | None, api_key: int, request, request_size: int,
                    response, watch: Stopwatch | None) -> int:
        """Record what the request costs; how long its client is to be throttled (0: not at all).
        A consumer's fetch bytes are not recorded here: its handler did (`fetch_throttle_ms`)."""
        if not quotas or api_key in EXEMPT or (watch is None and api_key != _PRODUCE):
            return 0
        user, client_id = _user(principal), client_id or ""
        now_ms = int(time.time() * 1000)
        if api_key == _FETCH and max(request.replica_id, request.replica_state.replica_id) >= 0:
            return 0  # a follower: replication has its own quotas
        ms = 0
        if watch is not None and not (api_key == _PRODUCE and request.acks == 0):
            ms = self.request.record(quotas, user, client_id, watch.ns * NANOS_TO_PERCENTAGE, now_ms)
        if api_key == _PRODUCE and (response is not None or request.acks == 0):
            ms = max(ms, self.produce.record(quotas, user, client_id, request_size, now_ms))
        return ms

    def fetch_max_bytes(self, quotas, principal: str, client_id: str | None) -> float:
        """The most a consumer's fetch may return: what its quota allows in one window (Kafka's
        maxQuotaWindowBytes), so that a fetch answered empty for being too big cannot recur forever."""
        return self.fetch.max_value_in_window(quotas, _user(principal), client_id or "") if quotas else float("inf")

    def fetch_throttle_ms(self, quotas, principal: str, client_id: str | None, size: int,
                          watch: Stopwatch | None) -> int:
        """Record a consumer's fetch (its request time, its `size` record bytes) before it is
        answered; when this throttles it, the answer carries no records, so its bytes are taken back."""
        if not quotas:
            return 0
        user, client_id = _user(principal), client_id or ""
        now_ms = int(time.time() * 1000)
        ms = self.request.record(quotas, user, client_id, watch.ns * NANOS_TO_PERCENTAGE, now_ms) if watch else 0
        ms = max(ms, self.fetch.record(quotas, user, client_id, size, now_ms))
        if ms > 0:
            self.fetch.unrecord(quotas, user, client_id, size, now_ms)
        return ms


def _user(principal: str) -> str:
    return principal.split(":", 1)[1] if ":" in principal else principal


class ConnectionQuotas:
    """`max.connections` and `max.connections.per.ip` (with `max.connections.per.ip.overrides`,
    "host:count,..."), and the `connection_creation_rate` quota of an ip (Kafka's ConnectionQuotas):
    `admit(ip)` says whether a new connection may stay (else it is closed at once, as Kafka closes
    one over the per-ip limit) and how long to hold it first (over its creation rate);
    `release(ip)` when it closes. The limits may change at any time (`update`, dynamic configs):
    a lower one refuses new connections only, as in Kafka; those open stay."""

    def __init__(self, max_connections: int, per_ip: int, overrides: dict[str, int], window_num: int = 11,
                 window_size_ms: int = 1000):
        self.update(max_connections, per_ip, overrides)
        self.rate = ConnectionRateQuotaManager(window_num, window_size_ms)
        self.total = 0
        self.by_ip: dict[str, int] = {}

    def update(self, max_connections: int, per_ip: int, overrides: dict[str, int]) -> None:
        self.max_connections, self.per_ip, self.overrides = max_connections, per_ip, overrides

    def admit(self, ip: str, quotas) -> tuple[bool, float]:
        if self.total >= self.max_connections or self.by_ip.get(ip, 0) >= self.overrides.get(ip, self.per_ip):
            return False, 0.0
        self.total += 1
        self.by_ip[ip] = self.by_ip.get(ip, 0) + 1
        return True, self.rate.record(quotas, ip, int(time.time() * 1000)) / 1000

    def release(self, ip: str) -> None:
        self.total -= 1
        left = self.by_ip[ip] - 1
        if left:
            self.by_ip[ip] = left
        else:
            del self.by_ip[ip]
