"""The server-side assignors, by their properties (hypothesis) and a few exact cases."""

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_compat.coordinator.assignors import MemberSpec, range_assignor, uniform
from kafka_compat.protocol.primitives import Uuid

TOPICS = [Uuid(bytes([i]) * 16) for i in range(1, 6)]


@st.composite
def groups(draw, homogeneous=None, disjoint_priors=False):
    n_topics = draw(st.integers(1, 4))
    topics = {TOPICS[i]: draw(st.integers(1, 12)) for i in range(n_topics)}
    n_members = draw(st.integers(1, 7))
    homo = draw(st.booleans()) if homogeneous is None else homogeneous
    shared = frozenset(draw(st.sets(st.sampled_from(list(topics)), min_size=1)))
    members = {}
    taken = set()
    for i in range(n_members):
        subs = shared if homo else frozenset(draw(st.sets(st.sampled_from(TOPICS[:n_topics + 1]), min_size=1)))
        prior = {}
        for t in draw(st.sets(st.sampled_from(TOPICS[:n_topics + 1]))):
            ps = set(draw(st.sets(st.integers(0, 13), max_size=5)))
            if disjoint_priors:
                ps = {p for p in ps if (t, p) not in taken}
                taken.update((t, p) for p in ps)
            if ps:
                prior[t] = frozenset(ps)
        instance = draw(st.one_of(st.none(), st.sampled_from(["i1", "i2", "i3", "i4"])))
        members[f"m{i}"] = MemberSpec(f"m{i}", subs, instance if instance not in
                                      {s.instance_id for s in members.values()} else None, None, prior)
    return members, topics


def owners(result):
    out = Counter()
    for _mid, assignment in result.items():
        for t, ps in assignment.items():
            for p in ps:
                out[(t, p)] += 1
    return out


def check_exactly_once(members, topics, result):
    assert set(result) == set(members)
    wanted = {(t, p) for spec in members.values() for t in spec.topics if t in topics for p in range(topics[t])}
    counts = owners(result)
    assert set(counts) == wanted
    assert all(c == 1 for c in counts.values())
    for mid, assignment in result.items():
        assert all(t in members[mid].topics for t in assignment if assignment[t])


def load(result):
    return {mid: sum(len(ps) for ps in a.values()) for mid, a in result.items()}


@settings(max_examples=150, deadline=None)
@given(groups())
def test_uniform_assigns_every_partition_once_balanced_and_stable(group):
    members, topics = group
    result = uniform(members, topics)
    check_exactly_once(members, topics, result)
    loads = load(result)
    subscribed = {t for s in members.values() for t in s.topics if t in topics}
    if len({frozenset(s.topics & topics.keys()) for s in members.values()}) == 1:
        assert max(loads.values()) - min(loads.values()) <= 1
    else:
        # No single move could even out two members subscribed to the same topic.
        for mid, assignment in result.items():
            for t in assignment:
                for other, spec in members.items():
                    if t in spec.topics:
                        assert loads[other] >= loads[mid] - 1
    # Stable across heartbeats: feeding the result back changes nothing.
    again = uniform({mid: MemberSpec(mid, s.topics, s.instance_id, None, result[mid]) for mid, s in members.items()},
                    topics)
    assert again == result
    assert subscribed or all(not a for a in result.values())


@settings(max_examples=100, deadline=None)
@given(groups(homogeneous=True, disjoint_priors=True))
def test_uniform_is_sticky(group):
    members, topics = group
    result = uniform(members, topics)
    for mid, spec in members.items():
        valid = {(t, p) for t, ps in spec.assignment.items() if t in spec.topics and t in topics
                 for p in ps if p < topics[t]}
        now = {(t, p) for t, ps in result[mid].items() for p in ps}
        assert len(valid & now) == min(len(valid), len(now))


@settings(max_examples=150, deadline=None)
@given(groups())
def test_range_contiguous_balanced_per_topic_and_deterministic(group):
    members, topics = group
    result = range_assignor(members, topics)
    check_exactly_once(members, topics, result)
    for t, _n in topics.items():
        subs = [mid for mid, s in members.items() if t in s.topics]
        if not subs:
            continue
        counts = [len(result[mid].get(t, ())) for mid in subs]
        assert max(counts) - min(counts) <= 1
        for mid in subs:
            ps = sorted(result[mid].get(t, ()))
            assert ps == list(range(ps[0], ps[0] + len(ps))) if ps else True
    assert range_assignor(members, topics) == result
    assert range_assignor({mid: MemberSpec(mid, s.topics, s.instance_id, None, result[mid])
                           for mid, s in members.items()}, topics) == result


def test_range_co_partitions_equal_topics_and_orders_static_members_first():
    a, b = TOPICS[0], TOPICS[1]
    members = {
        "z-dynamic": MemberSpec("z-dynamic", frozenset({a, b})),
        "a-dynamic": MemberSpec("a-dynamic", frozenset({a, b})),
        "m-static": MemberSpec("m-static", frozenset({a, b}), instance_id="i0"),
    }
    result = range_assignor(members, {a: 4, b: 4})
    assert result["m-static"] == {a: frozenset({0, 1}), b: frozenset({0, 1})}
    assert result["a-dynamic"] == {a: frozenset({2}), b: frozenset({2})}
    assert result["z-dynamic"] == {a: frozenset({3}), b: frozenset({3})}


def test_uniform_adding_a_member_moves_only_what_it_must():
    t = TOPICS[0]
    one = uniform({"a": MemberSpec("a", frozenset({t}))}, {t: 6})
    assert one == {"a": {t: frozenset(range(6))}}
    two = uniform({"a": MemberSpec("a", frozenset({t}), assignment=one["a"]),
                   "b": MemberSpec("b", frozenset({t}))}, {t: 6})
    assert len(two["a"][t]) == len(two["b"][t]) == 3 and two["a"][t] <= one["a"][t]


def test_uniform_ignores_missing_topics_and_empty_groups():
    assert uniform({}, {TOPICS[0]: 3}) == {}
    r = uniform({"a": MemberSpec("a", frozenset({TOPICS[4]}))}, {TOPICS[0]: 3})
    assert r == {"a": {}}
