"""Client quotas: AlterClientQuotas/DescribeClientQuotas against an image, Kafka's resolution order,
its windowed rates and throttle times (on a simulated clock)."""

import time

import pytest
import trio

from kafka_compat.metadata.image import MetadataImage
from kafka_compat.metadata.quota_control import alter_client_quotas, describe_client_quotas
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.security.quotas import (
    CONSUMER_BYTE_RATE,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    ClientQuotaManager,
    ConnectionRateQuotaManager,
    ControllerMutationQuotaManager,
    Rate,
    quota_entity,
    resolve,
)
from kafka_compat.server.throttling import Stopwatch, timed

A, D = m.AlterClientQuotasRequest, m.DescribeClientQuotasRequest


def entry(entity: dict, remove=(), **values):
    return A.EntryData(entity=[A.EntityData(entity_type=t, entity_name=n) for t, n in entity.items()],
                       ops=[A.OpData(key=k, value=v) for k, v in values.items()]
                       + [A.OpData(key=k, remove=True) for k in remove])


def alter(image, *entries, validate_only=False):
    records, resp = alter_client_quotas(image, A(entries=list(entries), validate_only=validate_only))
    return image.apply(records), records, [(e.error_code, e.error_message) for e in resp.entries]


def test_altered_quotas_are_records_in_the_image():
    image, records, results = alter(MetadataImage(cluster_id="c"), entry({"user": "alice"}, producer_byte_rate=1024.0),
                                    entry({"user": None, "client-id": None}, consumer_byte_rate=2048.0),
                                    entry({"ip": "10.0.0.1"}, connection_creation_rate=5.0))
    assert results == [(0, None)] * 3 and len(records) == 3
    assert image.client_quotas[quota_entity([("user", "alice")])] == {"producer_byte_rate": 1024.0}
    assert image.client_quotas[quota_entity([("client-id", None), ("user", None)])] == {"consumer_byte_rate": 2048.0}
    again = MetadataImage(cluster_id="c").apply(image.records())
    assert again.client_quotas == image.client_quotas


def test_an_unchanged_value_writes_nothing_and_removal_empties_the_entity():
    image, _, _ = alter(MetadataImage(cluster_id="c"), entry({"user": "a"}, producer_byte_rate=10.0))
    _, records, _ = alter(image, entry({"user": "a"}, producer_byte_rate=10.0))
    assert records == []
    image, records, _ = alter(image, entry({"user": "a"}, remove=["producer_byte_rate", "consumer_byte_rate"]))
    assert len(records) == 1 and image.client_quotas == {}
    _, records, results = alter(image, entry({"user": "a"}, producer_byte_rate=5.0), validate_only=True)
    assert records == [] and results == [(0, None)]


@pytest.mark.parametrize("e, message", [
    (entry({}, producer_byte_rate=1.0), "Invalid empty client quota entity"),
    (entry({"group": "g"}, producer_byte_rate=1.0), "Unhandled client quota entity type: group"),
    (entry({"user": ""}, producer_byte_rate=1.0), "Empty user not supported"),
    (entry({"ip": "1.2.3.4", "user": "a"}, connection_creation_rate=1.0),
     "Invalid quota entity combination, IP entity should not be combined with User or ClientId"),
    (entry({"ip": "not-an-ip"}, connection_creation_rate=1.0), "not-an-ip is not a valid IP or resolvable host."),
    (entry({"user": "a"}, connection_creation_rate=1.0), "Invalid configuration key connection_creation_rate"),
    (entry({"ip": None}, producer_byte_rate=1.0), "Invalid configuration key producer_byte_rate"),
    (entry({"user": "a"}, producer_byte_rate=0.0), "Quota producer_byte_rate must be greater than 0"),
    (entry({"user": "a"}, producer_byte_rate=1.5), "producer_byte_rate cannot be a fractional value."),
    (entry({"ip": None}, connection_creation_rate=3e9), "Proposed value for connection_creation_rate is too large"),
])
def test_invalid_alterations_answer_invalid_request(e, message):
    _, records, [(code, text)] = alter(MetadataImage(cluster_id="c"), e)
    assert records == [] and code == ErrorCode.INVALID_REQUEST and text.startswith(message)


def test_a_fractional_request_percentage_is_fine_and_an_entity_twice_is_ignored():
    _, records, results = alter(MetadataImage(cluster_id="c"), entry({"client-id": "c"}, request_percentage=12.5),
                                entry({"client-id": "c"}, request_percentage=20.0))
    assert results[0] == (0, None) and len(records) == 1
    assert results[1] == (ErrorCode.INVALID_REQUEST,
                          "Ignoring duplicate entity ClientQuotaEntity(entries={client-id=c})")


def described(image, *components, strict=False):
    resp = describe_client_quotas(image, D(components=[D.ComponentData(entity_type=t, match_type=mt, match=mm)
                                                       for t, mt, mm in components], strict=strict))
    assert resp.error_code == 0, resp.error_message
    return [({e.entity_type: e.entity_name for e in x.entity}, {v.key: v.value for v in x.values})
            for x in resp.entries]


def quota_image():
    image, _, _ = alter(MetadataImage(cluster_id="c"), entry({"user": "alice"}, producer_byte_rate=1.0),
                        entry({"user": "alice", "client-id": "app"}, producer_byte_rate=2.0),
                        entry({"user": None}, producer_byte_rate=3.0),
                        entry({"client-id": "app"}, consumer_byte_rate=4.0),
                        entry({"ip": None}, connection_creation_rate=5.0))
    return image


def test_describe_matches_exact_names_defaults_and_any_name():
    image = quota_image()
    assert [e for e, _ in described(image, ("user", 0, "alice"))] == [{"user": "alice", "client-id": "app"},
                                                                       {"user": "alice"}]
    assert described(image, ("user", 0, "alice"), strict=True) == [({"user": "alice"}, {"producer_byte_rate": 1.0})]
    assert described(image, ("user", 1, None)) == [({"user": None}, {"producer_byte_rate": 3.0})]
    assert len(described(image, ("user", 2, None))) == 3 and len(described(image)) == 5
    assert described(image, ("ip", 2, None)) == [({"ip": None}, {"connection_creation_rate": 5.0})]


@pytest.mark.parametrize("components, code", [
    ([("user", 0, None)], ErrorCode.INVALID_REQUEST),
    ([("user", 1, "x")], ErrorCode.INVALID_REQUEST),
    ([("user", 0, "a"), ("user", 2, None)], ErrorCode.INVALID_REQUEST),
    ([("ip", 2, None), ("user", 2, None)], ErrorCode.INVALID_REQUEST),
    ([("group", 2, None)], ErrorCode.UNSUPPORTED_VERSION),
    ([("user", 7, None)], ErrorCode.INVALID_REQUEST),
])
def test_describe_refuses_bad_filters(components, code):
    resp = describe_client_quotas(quota_image(), D(components=[D.ComponentData(entity_type=t, match_type=mt, match=mm)
                                                               for t, mt, mm in components]))
    assert resp.error_code == code and resp.entries is None


# -- resolution and throttling ---------------------------------------------------------------------

ORDER = [({"user": "u", "client-id": "c"}, ("u", "c")), ({"user": "u", "client-id": None}, ("u", "c")),
         ({"user": "u"}, ("u", None)), ({"user": None, "client-id": "c"}, ("u", "c")),
         ({"user": None, "client-id": None}, ("u", "c")), ({"user": None}, ("u", None)),
         ({"client-id": "c"}, (None, "c")), ({"client-id": None}, (None, "c"))]


@pytest.mark.parametrize("level", range(len(ORDER)))
def test_the_most_specific_quota_wins_in_kafkas_order(level):
    quotas = {quota_entity(e.items()): {PRODUCER_BYTE_RATE: float(i)} for i, (e, _) in enumerate(ORDER) if i >= level}
    assert resolve(quotas, PRODUCER_BYTE_RATE, "u", "c") == (float(level), ORDER[level][1])
    assert resolve(quotas, CONSUMER_BYTE_RATE, "u", "c")[0] is None


def test_the_rate_counts_at_least_the_window_minus_one_samples():
    rate = Rate(11, 1000)
    rate.record(10_000, 0)
    assert rate.window_size_ms(0) == 10_000 and rate.measure(0) == 1000.0
    rate.record(10_000, 12_500)  # the first sample has expired
    assert rate.measure(12_500) == 1000.0


def test_a_client_over_its_quota_is_throttled_for_the_time_that_brings_it_back():
    quotas = {quota_entity([("user", "u")]): {PRODUCER_BYTE_RATE: 1000.0}}
    manager = ClientQuotaManager(PRODUCER_BYTE_RATE)
    assert manager.record(quotas, "u", "c", 5_000, 0) == 0  # 5000 B over 10 s: 500 B/s
    # 20000 B over 10 s is 2000 B/s: twice the quota, throttled for one more window of 10 s
    assert manager.record(quotas, "u", "c", 15_000, 0) == 10_000
    assert manager.record({}, "u", "c", 10**9, 0) == 0  # no quota: nothing recorded, no throttle
    assert manager.max_value_in_window(quotas, "u", "c") == 10_000


def test_clients_of_a_user_share_its_quota_and_a_client_id_quota_is_per_client():
    quotas = {quota_entity([("user", "u")]): {PRODUCER_BYTE_RATE: 1000.0},
              quota_entity([("client-id", None)]): {PRODUCER_BYTE_RATE: 1000.0}}
    manager = ClientQuotaManager(PRODUCER_BYTE_RATE)
    manager.record(quotas, "u", "a", 10_000, 0)
    assert manager.record(quotas, "u", "b", 1_000, 0) > 0
    manager.record(quotas, "v", "a", 10_000, 0)
    assert manager.record(quotas, "v", "b", 1_000, 0) == 0


def test_request_time_throttling_is_capped_at_one_window_and_unrecord_takes_back():
    quotas = {quota_entity([("client-id", "c")]): {REQUEST_PERCENTAGE: 1.0}}
    manager = ClientQuotaManager(REQUEST_PERCENTAGE, max_throttle_ms=1000)
    assert manager.record(quotas, "u", "c", 500.0, 0) == 1000
    fetch = ClientQuotaManager(CONSUMER_BYTE_RATE)
    quotas = {quota_entity([("client-id", "c")]): {CONSUMER_BYTE_RATE: 100.0}}
    assert fetch.record(quotas, "u", "c", 5_000, 0) > 0
    fetch.unrecord(quotas, "u", "c", 5_000, 0)
    assert fetch.record(quotas, "u", "c", 500, 0) == 0


def test_a_producer_that_honours_throttling_stays_within_20_percent_of_its_quota_over_10_seconds():
    """KIP-219: the client waits throttle_time_ms after each throttled response."""
    quota = 100_000.0
    quotas = {quota_entity([("client-id", "fast")]): {PRODUCER_BYTE_RATE: quota}}
    manager = ClientQuotaManager(PRODUCER_BYTE_RATE)
    now, sent, batch = 0, 0, 16_384
    while now < 20_000:  # a warm-up of 10 s, then 10 s measured
        throttle = manager.record(quotas, "u", "fast", batch, now)
        if now >= 10_000:
            sent += batch
        now += 5 + throttle  # 5 ms per request: 3.2 MB/s unthrottled
    assert abs(sent / 10 - quota) <= 0.2 * quota


def test_controller_mutations_are_refused_once_the_bucket_is_in_debt():
    quotas = {quota_entity([("user", None)]): {"controller_mutation_rate": 10.0}}
    manager = ControllerMutationQuotaManager(window_num=11, window_size_ms=1000)
    assert manager.throttle_ms(quotas, "u", "c", 0) == 0
    manager.record(quotas, "u", "c", 130, 0)  # a burst of 110 tokens, then 20 in debt
    assert manager.throttle_ms(quotas, "u", "c", 0) == 2000
    assert manager.throttle_ms(quotas, "u", "c", 2000) == 0


def test_connection_creation_is_rated_per_ip():
    quotas = {quota_entity([("ip", None)]): {"connection_creation_rate": 1.0}}
    manager = ConnectionRateQuotaManager()
    assert all(manager.record(quotas, "10.0.0.1", 0) == 0 for _ in range(10))
    assert manager.record(quotas, "10.0.0.1", 0) > 0
    assert manager.record(quotas, "10.0.0.2", 0) == 0


async def test_a_request_is_timed_for_the_steps_it_runs_not_the_time_it_waits():
    async def waits_then_works():
        await trio.sleep(0.3)
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            pass
        return "done"

    watch = Stopwatch()
    assert await timed(waits_then_works(), watch) == "done"
    assert 0.02e9 <= watch.ns < 0.2e9


def test_the_request_quota_is_enabled_only_while_some_client_has_one():
    manager = ClientQuotaManager(REQUEST_PERCENTAGE)
    assert not manager.enabled({quota_entity([("client-id", "c")]): {PRODUCER_BYTE_RATE: 10.0}})
    assert manager.enabled({quota_entity([("client-id", "c")]): {REQUEST_PERCENTAGE: 10.0}})
