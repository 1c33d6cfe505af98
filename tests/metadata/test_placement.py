"""Where new replicas go (Kafka's striped placer): one rule per test."""

import random
from collections import Counter

import pytest

from kafka_compat.metadata.placement import PlacementError, UsableBroker, place


def brokers(*ids, rack=None, fenced=()):
    return [UsableBroker(b, rack, b in fenced) for b in ids]


def test_each_partition_gets_distinct_replicas_up_to_the_number_of_brokers():
    plan = place(brokers(1, 2, 3), 20, 3, random.Random(1))
    assert len(plan) == 20 and all(sorted(p) == [1, 2, 3] for p in plan)


def test_leaders_and_replicas_are_spread_evenly_over_the_brokers():
    plan = place(brokers(1, 2, 3, 4), 400, 2, random.Random(2))
    assert Counter(p[0] for p in plan) == {1: 100, 2: 100, 3: 100, 4: 100}
    assert Counter(b for p in plan for b in p) == {1: 200, 2: 200, 3: 200, 4: 200}


def test_consecutive_partitions_do_not_repeat_the_same_replica_set():
    plan = place(brokers(1, 2, 3, 4, 5, 6), 6, 3, random.Random(3))
    assert len({tuple(sorted(p)) for p in plan}) > 1


def test_replicas_spread_over_racks_before_brokers():
    usable = brokers(1, 2, rack="a") + brokers(3, 4, rack="b") + brokers(5, 6, rack="c")
    rack = {b.node_id: b.rack for b in usable}
    plan = place(usable, 60, 3, random.Random(4))
    assert all(sorted(rack[b] for b in p) == ["a", "b", "c"] for p in plan)
    assert Counter(rack[p[0]] for p in plan) == {"a": 20, "b": 20, "c": 20}


def test_a_rack_with_fewer_brokers_still_gets_one_replica_of_each_partition():
    usable = brokers(1, 2, 3, rack="a") + brokers(4, rack="b")
    plan = place(usable, 10, 2, random.Random(5))
    assert all(4 in p for p in plan)


def test_fenced_brokers_get_followers_only_and_only_when_unfenced_ones_run_out():
    plan = place(brokers(1, 2, 3, fenced={3}), 30, 3, random.Random(6))
    assert all(p[0] != 3 and 3 in p for p in plan)
    assert all(4 not in p for p in place(brokers(1, 2, 3, 4, fenced={4}), 30, 3, random.Random(6)))


def test_the_same_seed_places_the_same_way():
    usable = brokers(1, 2, 3, 4, 5)
    assert place(usable, 50, 3, random.Random(9)) == place(usable, 50, 3, random.Random(9))


@pytest.mark.parametrize("usable, rf, message", [
    (brokers(1, 2, 3), 4,
     "The target replication factor of 4 cannot be reached because only 3 broker(s) are registered."),
    (brokers(1, 2, fenced={1, 2}), 1, "All brokers are currently fenced."),
    (brokers(1), 0, "Invalid replication factor 0: the replication factor must be positive."),
])
def test_impossible_placements_fail_with_kafkas_sentence(usable, rf, message):
    with pytest.raises(PlacementError) as e:
        place(usable, 1, rf, random.Random(1))
    assert str(e.value) == message
