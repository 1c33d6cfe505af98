"""Publishing orders: one JSON record per order, keyed by customer so that a customer's orders stay
in order on one partition."""

from __future__ import annotations

import json

from confluent_kafka import KafkaException, Producer


class OrderPublisher:
    def __init__(self, bootstrap_servers: str, topic: str):
        self.topic = topic
        self._producer = Producer({"bootstrap.servers": bootstrap_servers, "enable.idempotence": True,
                                   "compression.type": "zstd", "linger.ms": 5})

    def publish(self, order_id: str, customer: str, amount_cents: int) -> None:
        value = json.dumps({"order": order_id, "customer": customer, "amount_cents": amount_cents})
        self._producer.produce(self.topic, key=customer, value=value, headers=[("source", b"orders")])

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every order is acknowledged; raise if some were not."""
        left = self._producer.flush(timeout)
        if left:
            raise KafkaException(f"{left} orders not acknowledged within {timeout}s")
