"""Client quotas on a broker (Kafka's ClientQuotaManager per quota type, KIP-13 / KIP-219).

One `ClientQuotas` per broker records each Produce request's size against `producer_byte_rate`
and each Fetch response's record bytes against `consumer_byte_rate`, for the quota entity the
request's principal and client id fall under (the quotas in the metadata image). A client over its
quota gets its answer at once with `throttle_time_ms`, and its connection serves nothing more until
that time has passed (the channel muted, as KIP-219 has it). `ConnectionQuotas` limits connections.
"""

from __future__ import annotations

import time

from kafka_compat.protocol import messages as m
from kafka_compat.security.quotas import (
    CONSUMER_BYTE_RATE,
    PRODUCER_BYTE_RATE,
    ClientQuotaManager,
    ConnectionRateQuotaManager,
    ControllerMutationQuotaManager,
)

_PRODUCE, _FETCH = m.ApiKey.PRODUCE, m.ApiKey.FETCH


class ClientQuotas:
    def __init__(self, window_num: int = 11, window_size_ms: int = 1000):
        self.produce = ClientQuotaManager(PRODUCER_BYTE_RATE, window_num, window_size_ms)
        self.fetch = ClientQuotaManager(CONSUMER_BYTE_RATE, window_num, window_size_ms)
        self.mutations = ControllerMutationQuotaManager(window_num, window_size_ms)

    def mutation_throttle_ms(self, quotas, principal: str, client_id: str | None) -> int:
        """`controller_mutation_rate` (KIP-599): 0 while the client has credit for topic creations,
        deletions and new partitions, else how long until it has."""
        return self.mutations.throttle_ms(quotas, _user(principal), client_id or "", int(time.time() * 1000))

    def record_mutations(self, quotas, principal: str, client_id: str | None, partitions: int) -> None:
        self.mutations.record(quotas, _user(principal), client_id or "", partitions, int(time.time() * 1000))

    def throttle_ms(self, quotas, principal: str, client_id: str | None, api_key: int, request_size: int,
                    response) -> int:
        """Record what the request costs; how long its client is to be throttled (0: not at all)."""
        if not quotas or api_key not in (_PRODUCE, _FETCH) or response is None:
            return 0
        user = _user(principal)
        now_ms = int(time.time() * 1000)
        if api_key == _PRODUCE:
            return self.produce.record(quotas, user, client_id or "", request_size, now_ms)
        size = sum(len(p.records) for t in response.responses for p in t.partitions if p.records is not None)
        return self.fetch.record(quotas, user, client_id or "", size, now_ms)


def _user(principal: str) -> str:
    return principal.split(":", 1)[1] if ":" in principal else principal


class ConnectionQuotas:
    """`max.connections` and `max.connections.per.ip` (with `max.connections.per.ip.overrides`,
    "host:count,..."), and the `connection_creation_rate` quota of an ip (Kafka's ConnectionQuotas):
    `admit(ip)` says whether a new connection may stay (else it is closed at once, as Kafka closes
    one over the per-ip limit) and how long to hold it first (over its creation rate);
    `release(ip)` when it closes."""

    def __init__(self, max_connections: int, per_ip: int, overrides: str | None, window_num: int = 11,
                 window_size_ms: int = 1000):
        self.max_connections, self.per_ip = max_connections, per_ip
        self.overrides = {}
        for entry in filter(None, (e.strip() for e in (overrides or "").split(","))):
            host, _, count = entry.rpartition(":")
            self.overrides[host] = int(count)
        self.rate = ConnectionRateQuotaManager(window_num, window_size_ms)
        self.total = 0
        self.by_ip: dict[str, int] = {}

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
