"""Which `__consumer_offsets` partition holds a group: Kafka's mapping, bit for bit.

Kafka computes `Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions`, where:

- `String.hashCode()` is Java's: `h = 31 * h + c` over the string's UTF-16 code units (a character
  outside the BMP counts as its two surrogates), wrapping as a signed 32-bit int;
- `Utils.abs(n)` is `n == Integer.MIN_VALUE ? 0 : Math.abs(n)` (it is *not* `toPositive`, which
  masks with 0x7fffffff and gives a different partition for every negative hash).

Monitoring tools (Burrow, kafka-consumer-groups, Cruise Control) compute the same mapping to find a
group's records, so this must not drift.
"""

from __future__ import annotations

from functools import lru_cache

_INT_MIN = -(1 << 31)


def java_string_hash(s: str) -> int:
    """Java's `String.hashCode()` of `s`, as a signed 32-bit int."""
    data = s.encode("utf-16-be", "surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_abs(n: int) -> int:
    """Kafka's `Utils.abs`: the absolute value, with Integer.MIN_VALUE mapped to 0."""
    return 0 if n == _INT_MIN else abs(n)


@lru_cache(maxsize=1 << 16)  # asked on every group request; the hash is a Python loop per character
def partition_for(group_id: str, num_partitions: int) -> int:
    """The `__consumer_offsets` partition of `group_id` (Kafka's GroupCoordinator.partitionFor)."""
    return kafka_abs(java_string_hash(group_id)) % num_partitions
