"""Orders: published to Kafka keyed by customer, totalled per customer by a consumer group."""

from orders.publisher import OrderPublisher
from orders.totals import CustomerTotals

__all__ = ["CustomerTotals", "OrderPublisher"]
