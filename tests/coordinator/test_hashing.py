"""The group -> `__consumer_offsets` partition mapping must be Kafka's, bit for bit."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kafka_compat.coordinator.hashing import java_string_hash, kafka_abs, partition_for


def by_hand(units: list[int]) -> int:
    """Java's String.hashCode over explicit UTF-16 code units, in 32-bit two's complement."""
    h = 0
    for u in units:
        h = (h * 31 + u) % (1 << 32)
    return h - (1 << 32) if h >= 1 << 31 else h


@pytest.mark.parametrize("s, expected", [
    ("", 0),
    ("a", 97),
    ("ab", 97 * 31 + 98),
    ("hello", 99162322),  # a classic Java value
    ("Hello", 69609650),
    ("polygenelubricants", -(1 << 31)),  # the famous Integer.MIN_VALUE hash
    ("é", 0xE9),
    ("日本", 0x65E5 * 31 + 0x672C),
    ("😀", 0xD83D * 31 + 0xDE00),  # outside the BMP: two surrogates
])
def test_java_hash_known_values(s, expected):
    assert java_string_hash(s) == expected


def test_non_ascii_is_utf16_not_utf8():
    s = "grüppe-😀"
    units = [ord(c) for c in "grüppe-"] + [0xD83D, 0xDE00]
    assert java_string_hash(s) == by_hand(units)


def test_kafka_abs_is_not_masking():
    assert kafka_abs(-(1 << 31)) == 0
    assert kafka_abs(-5) == 5  # Utils.toPositive would give 2147483643
    assert kafka_abs(7) == 7


@pytest.mark.parametrize("group, partition", [
    ("hello", 99162322 % 50),
    ("polygenelubricants", 0),
    # Negative hashes: abs(), not a mask (masking would give 36, 10 and 48).
    ("my-group", 12),
    ("consumer-group", 38),
    ("my-app", 0),
    ("", 0),
])
def test_partition_for(group, partition):
    assert partition_for(group, 50) == partition


def test_partition_for_negative_hash_by_hand():
    s = "my-group"
    h = by_hand([ord(c) for c in s])
    assert h == -1906497762  # negative
    assert partition_for(s, 50) == (-h) % 50 == 12
    assert partition_for(s, 50) != (h & 0x7FFFFFFF) % 50


@given(st.text())
def test_matches_definition(s):
    units = [(b[0] << 8) | b[1] for b in zip(*[iter(s.encode("utf-16-be", "surrogatepass"))] * 2)]
    h = by_hand(units)
    assert java_string_hash(s) == h
    assert partition_for(s, 50) == (0 if h == -(1 << 31) else abs(h)) % 50
