"""Client quotas, sans-I/O: which quota applies to a client, how fast it goes, how long to throttle it.

Quotas live in the metadata image as ClientQuotaRecords: an entity (user and/or client-id, or an
ip; a None name is that type's default) and key -> value. A client's quota for a key is the first
that exists in Kafka's order (DefaultQuotaCallback, KIP-55):

    1 user=U, client-id=C    2 user=U, client-id=<default>    3 user=U
    4 user=<default>, client-id=C    5 user=<default>, client-id=<default>    6 user=<default>
    7 client-id=C    8 client-id=<default>

and the clients sharing that entity share one rate (a user quota is shared by all the user's
clients). Rates are Kafka's windowed rates (`quota.window.num` samples of
`quota.window.size.seconds`); after recording a request's bytes (or request time), a client over
its quota is throttled for the time that brings the rate back to it, (rate - quota) / quota *
window (KIP-219: the response goes out at once with throttle_time_ms, then the channel is muted
that long). `controller_mutation_rate` is a token bucket checked before recording (KIP-599).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

USER, CLIENT_ID, IP = "user", "client-id", "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"

# Kafka's quota keys and their types, by the entities they apply to (QuotaConfig).
USER_CLIENT_KEYS = {PRODUCER_BYTE_RATE: "LONG", CONSUMER_BYTE_RATE: "LONG", REQUEST_PERCENTAGE: "DOUBLE",
                    CONTROLLER_MUTATION_RATE: "DOUBLE"}
IP_KEYS = {CONNECTION_CREATION_RATE: "INT"}

NANOS_TO_PERCENTAGE = 100.0 / 1e9  # request_percentage records request-thread time this way

QuotaEntity = tuple[tuple[str, "str | None"], ...]  # (type, name or None for the default), sorted


def quota_entity(pairs: Iterable[tuple[str, str | None]]) -> QuotaEntity:
    return tuple(sorted(pairs, key=lambda p: p[0]))


def entity_str(entity: QuotaEntity) -> str:
    """As Kafka prints a ClientQuotaEntity."""
    return "ClientQuotaEntity(entries={" + ", ".join(f"{t}={n}" for t, n in entity) + "})"


def resolve(quotas: Mapping[QuotaEntity, Mapping[str, float]], key: str, user: str,
            client_id: str) -> tuple[float | None, tuple[str | None, str | None]]:
    """(quota, sensor key) for a client: the first quota in Kafka's order, and who shares its rate."""
    u, c, du, dc = (USER, user), (CLIENT_ID, client_id), (USER, None), (CLIENT_ID, None)
    both, user_only, client_only = (user, client_id), (user, None), (None, client_id)
    # entities as quota_entity sorts them: client-id before user
    for entity, shared in (((c, u), both), ((dc, u), both), ((u,), user_only), ((c, du), both),
                           ((dc, du), both), ((du,), user_only), ((c,), client_only), ((dc,), client_only)):
        values = quotas.get(entity)
        if values is not None and key in values:
            return values[key], shared
    return None, client_only


def resolve_ip(quotas: Mapping[QuotaEntity, Mapping[str, float]], ip: str) -> float | None:
    for entity in (((IP, ip),), ((IP, None),)):
        values = quotas.get(entity)
        if values is not None and CONNECTION_CREATION_RATE in values:
            return values[CONNECTION_CREATION_RATE]
    return None


@dataclass(slots=True)
class _Sample:
    start_ms: int
    last_ms: int
    value: float = 0.0

    def reset(self, now_ms: int) -> None:
        self.start_ms = self.last_ms = now_ms
        self.value = 0.0


class Rate:
    """Kafka's Rate over a WindowedSum: `samples` windows of `window_ms`, plus one that overlaps."""

    __slots__ = ("samples", "window_ms", "_samples", "_current")

    def __init__(self, samples: int, window_ms: int):
        self.samples, self.window_ms = samples, window_ms
        self._samples: list[_Sample] = []
        self._current = 0

    def record(self, value: float, now_ms: int) -> None:
        if not self._samples:
            self._samples.append(_Sample(now_ms, now_ms))
        sample = self._samples[self._current]
        if now_ms - sample.start_ms >= self.window_ms:
            self._current = (self._current + 1) % (self.samples + 1)
            if self._current >= len(self._samples):
                sample = _Sample(now_ms, now_ms)
                self._samples.append(sample)
            else:
                sample = self._samples[self._current]
                sample.reset(now_ms)
        sample.value += value
        sample.last_ms = now_ms

    def _purge(self, now_ms: int) -> None:
        expire = self.samples * self.window_ms
        for s in self._samples:
            if now_ms - s.last_ms >= expire:
                s.reset(now_ms)

    def window_size_ms(self, now_ms: int) -> int:
        """The span the rate divides by: at least samples - 1 full windows, so that a burst right
        after a quiet spell is not read as a huge rate."""
        self._purge(now_ms)
        oldest = min((s.start_ms for s in self._samples), default=now_ms)
        elapsed = now_ms - oldest
        full, least = elapsed // self.window_ms, self.samples - 1
        if full < least:
            elapsed += (least - full) * self.window_ms
        return max(elapsed, 1)

    def measure(self, now_ms: int) -> float:
        """Per second."""
        self._purge(now_ms)
        return sum(s.value for s in self._samples) / (self.window_size_ms(now_ms) / 1000.0)

    def idle(self, now_ms: int, idle_ms: int) -> bool:
        return all(now_ms - s.last_ms >= idle_ms for s in self._samples)


class TokenBucket:
    """Kafka's TokenBucket: refills at `quota` per second up to samples * window of credit."""

    __slots__ = ("samples", "window_ms", "tokens", "last_ms")

    def __init__(self, samples: int, window_ms: int):
        self.samples, self.window_ms = samples, window_ms
        self.tokens: float | None = None
        self.last_ms = 0

    def _refill(self, quota: float, now_ms: int) -> float:
        burst = self.samples * self.window_ms / 1000.0 * quota
        if self.tokens is None:
            self.tokens = burst
        self.tokens = min(burst, self.tokens + quota * (now_ms - self.last_ms) / 1000.0)
        self.last_ms = now_ms
        return burst

    def measure(self, quota: float, now_ms: int) -> float:
        self._refill(quota, now_ms)
        return self.tokens

    def record(self, quota: float, value: float, now_ms: int) -> None:
        burst = self._refill(quota, now_ms)
        self.tokens = min(burst, self.tokens - value)


INACTIVE_SENSOR_MS = 3600 * 1000  # Kafka drops a client's sensors after an hour without use


class ClientQuotaManager:
    """One quota key (producer_byte_rate, consumer_byte_rate or request_percentage) for every client.

    `record` is called once per request with its size (or request-thread time as a percentage) and
    answers the throttle time in ms; 0 when no quota applies (nothing is recorded then).
    `max_throttle_ms` caps the answer (Kafka caps request_percentage at one window)."""

    def __init__(self, key: str, window_num: int = 11, window_size_ms: int = 1000, max_throttle_ms: int | None = None):
        self.key, self.window_num, self.window_size_ms = key, window_num, window_size_ms
        self.max_throttle_ms = max_throttle_ms
        self._rates: dict[tuple[str | None, str | None], Rate] = {}
        self._quotas: Mapping | None = None
        self._resolved: dict[tuple[str, str], tuple[float | None, tuple[str | None, str | None]]] = {}
        self._enabled = False

    def enabled(self, quotas: Mapping[QuotaEntity, Mapping[str, float]]) -> bool:
        """Whether any client has this quota (Kafka's quotasEnabled): what it costs to measure a
        request is paid only then."""
        if quotas is not self._quotas:
            self._quotas, self._resolved = quotas, {}
            self._enabled = any(self.key in values for values in quotas.values()) if quotas else False
        return self._enabled

    def quota(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str,
              client_id: str) -> tuple[float | None, tuple[str | None, str | None]]:
        self.enabled(quotas)  # a new image: resolve afresh
        found = self._resolved.get((user, client_id))
        if found is None:
            found = self._resolved[(user, client_id)] = resolve(quotas, self.key, user, client_id)
        return found

    def record(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str, client_id: str, value: float,
               now_ms: int) -> int:
        if not quotas:
            return 0
        limit, shared = self.quota(quotas, user, client_id)
        if limit is None:
            return 0
        rate = self._rates.get(shared)
        if rate is None:
            rate = self._rates[shared] = Rate(self.window_num, self.window_size_ms)
        rate.record(value, now_ms)
        observed = rate.measure(now_ms)
        if observed <= limit:
            return 0
        throttle = round((observed - limit) / limit * rate.window_size_ms(now_ms))
        return throttle if self.max_throttle_ms is None else min(throttle, self.max_throttle_ms)

    def unrecord(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str, client_id: str, value: float,
                 now_ms: int) -> None:
        """Take back a recorded value (a throttled fetch answers empty, so its bytes do not count)."""
        limit, shared = self.quota(quotas, user, client_id) if quotas else (None, None)
        rate = self._rates.get(shared) if limit is not None else None
        if rate is not None:
            rate.record(-value, now_ms)

    def max_value_in_window(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str,
                            client_id: str) -> float:
        """The most that can be recorded at once without being throttled for sure (caps fetch sizes)."""
        limit = self.quota(quotas, user, client_id)[0] if quotas else None
        if limit is None:
            return float("inf")
        return limit * (self.window_num - 1) * self.window_size_ms / 1000.0

    def expire(self, now_ms: int) -> None:
        """Forget the rates of clients idle for an hour."""
        for key in [k for k, r in self._rates.items() if r.idle(now_ms, INACTIVE_SENSOR_MS)]:
            del self._rates[key]


class ControllerMutationQuotaManager:
    """controller_mutation_rate: partitions created or deleted per second, as a token bucket that
    is checked before a request's mutations are recorded (KIP-599)."""

    def __init__(self, window_num: int = 11, window_size_ms: int = 1000):
        self.window_num, self.window_size_ms = window_num, window_size_ms
        self._buckets: dict[tuple[str | None, str | None], TokenBucket] = {}

    def _bucket(self, quotas, user, client_id) -> tuple[float | None, TokenBucket | None]:
        if not quotas:
            return None, None
        limit, shared = resolve(quotas, CONTROLLER_MUTATION_RATE, user, client_id)
        if limit is None:
            return None, None
        bucket = self._buckets.get(shared)
        if bucket is None:
            bucket = self._buckets[shared] = TokenBucket(self.window_num, self.window_size_ms)
        return limit, bucket

    def throttle_ms(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str, client_id: str,
                    now_ms: int) -> int:
        """0 while the client has credit; else how long until its debt is paid back."""
        limit, bucket = self._bucket(quotas, user, client_id)
        if bucket is None:
            return 0
        tokens = bucket.measure(limit, now_ms)
        return 0 if tokens >= 0 else round(-tokens / limit * 1000)

    def record(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], user: str, client_id: str,
               mutations: int, now_ms: int) -> None:
        limit, bucket = self._bucket(quotas, user, client_id)
        if bucket is not None:
            bucket.record(limit, mutations, now_ms)


class ConnectionRateQuotaManager:
    """connection_creation_rate per client ip: the throttle (ms) for a new connection from `ip`."""

    def __init__(self, window_num: int = 11, window_size_ms: int = 1000):
        self.window_num, self.window_size_ms = window_num, window_size_ms
        self._rates: dict[str, Rate] = {}

    def record(self, quotas: Mapping[QuotaEntity, Mapping[str, float]], ip: str, now_ms: int) -> int:
        limit = resolve_ip(quotas, ip) if quotas else None
        if limit is None:
            return 0
        rate = self._rates.get(ip)
        if rate is None:
            rate = self._rates[ip] = Rate(self.window_num, self.window_size_ms)
        rate.record(1, now_ms)
        observed = rate.measure(now_ms)
        return 0 if observed <= limit else round((observed - limit) / limit * rate.window_size_ms(now_ms))
