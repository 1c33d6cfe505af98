"""What producers were told against what a consumer reads back: the verdict of a fault test.

Any client's delivery reports go in (`acknowledged`, `failed`); the records read back from the
start of every partition go to `verdict`, which names the acknowledged records lost (not at the
offset they were acknowledged at, or changed), the values read more than once, and the
partitions where one producer's values are not in the order it sent them. Values are
`value(producer, n)`, so that order and duplicates can be told from the bytes alone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


def value(producer: str, n: int) -> bytes:
    return f"{producer}:{n:09d}".encode()


def _parse(v: bytes) -> tuple[str, int]:
    producer, _, n = v.decode().rpartition(":")
    return producer, int(n)


@dataclass
class Verdict:
    acknowledged: int
    read: int
    lost: list = field(default_factory=list)  # (partition, offset, value acknowledged)
    duplicated: list = field(default_factory=list)  # values read more than once
    out_of_order: list = field(default_factory=list)  # (partition, producer): its values not in send order

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order)

    def __str__(self) -> str:
        return (f"{self.acknowledged} acknowledged, {self.read} read; lost {len(self.lost)} {self.lost[:5]}, "
                f"duplicated {len(self.duplicated)} {self.duplicated[:5]}, out of order {self.out_of_order[:5]}")


class Ledger:
    def __init__(self):
        self._lock = threading.Lock()
        self.acked: dict[tuple[int, int], bytes] = {}  # (partition, offset) -> value
        self.errors: list = []

    def acknowledged(self, partition: int, offset: int, v: bytes) -> None:
        with self._lock:
            self.acked[(partition, offset)] = v

    def failed(self, error) -> None:
        with self._lock:
            self.errors.append(error)

    def __len__(self) -> int:
        return len(self.acked)

    def verdict(self, read: dict[int, list[tuple[int, bytes]]]) -> Verdict:
        """`read`: partition -> [(offset, value)] in the order read, from each partition's start."""
        with self._lock:
            acked = dict(self.acked)
        at = {(p, o): v for p, records in read.items() for o, v in records}
        out = Verdict(len(acked), len(at))
        out.lost = sorted((p, o, v) for (p, o), v in acked.items() if at.get((p, o)) != v)
        seen: set[bytes] = set()
        for p, records in sorted(read.items()):
            last: dict[str, int] = {}
            for _, v in records:
                if v in seen:
                    out.duplicated.append(v)
                seen.add(v)
                producer, n = _parse(v)
                if n < last.get(producer, -1) and (p, producer) not in out.out_of_order:
                    out.out_of_order.append((p, producer))
                last[producer] = n
        return out
