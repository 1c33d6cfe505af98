"""Totalling orders per customer as a member of a consumer group, committing what was counted."""

from __future__ import annotations

import json
import time

from confluent_kafka import Consumer, KafkaException


class CustomerTotals:
    def __init__(self, bootstrap_servers: str, topic: str, group: str = "order-totals"):
        self.totals: dict[str, int] = {}
        self.partitions: dict[str, set[int]] = {}  # customer -> the partitions its orders came from
        self._consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": group,
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self._consumer.subscribe([topic])

    def consume(self, count: int, timeout: float = 30.0) -> int:
        """Count up to `count` orders (fewer if none arrive for `timeout` seconds), commit, and
        return how many were counted."""
        counted, deadline = 0, time.monotonic() + timeout
        while counted < count and time.monotonic() < deadline:
            msg = self._consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            order = json.loads(msg.value())
            self.totals[order["customer"]] = self.totals.get(order["customer"], 0) + order["amount_cents"]
            self.partitions.setdefault(order["customer"], set()).add(msg.partition())
            counted += 1
        if counted:
            self._consumer.commit(asynchronous=False)
        return counted

    def close(self) -> None:
        self._consumer.close()
