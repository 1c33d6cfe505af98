"""The application against a real Kafka-compatible cluster from kafka-compat's pytest fixtures:
`kafka_bootstrap` (the cluster's address), `kafka_topic` (a fresh topic, deleted afterwards) and,
for a test that needs a cluster of its own, the `kafka_cluster` marker."""

import pytest
from orders import CustomerTotals, OrderPublisher

ORDERS = [("o1", "ada", 1250), ("o2", "bob", 400), ("o3", "ada", 50), ("o4", "cy", 999), ("o5", "bob", 1)]


def publish(bootstrap: str, topic: str, orders=ORDERS) -> None:
    publisher = OrderPublisher(bootstrap, topic)
    for order in orders:
        publisher.publish(*order)
    publisher.flush()


def test_totals_per_customer(kafka_bootstrap, kafka_topic):
    topic = kafka_topic(partitions=3)
    publish(kafka_bootstrap, topic)
    totals = CustomerTotals(kafka_bootstrap, topic)
    try:
        assert totals.consume(len(ORDERS)) == len(ORDERS)
    finally:
        totals.close()
    assert totals.totals == {"ada": 1300, "bob": 401, "cy": 999}
    assert all(len(parts) == 1 for parts in totals.partitions.values())  # keyed: one partition per customer


def test_a_restarted_consumer_counts_only_new_orders(kafka_bootstrap, kafka_topic):
    topic = kafka_topic(partitions=1)  # a consumer that started over would read o1 first
    publish(kafka_bootstrap, topic)
    first = CustomerTotals(kafka_bootstrap, topic, group="restarts")
    try:
        assert first.consume(len(ORDERS)) == len(ORDERS)
    finally:
        first.close()
    publish(kafka_bootstrap, topic, [("o6", "dee", 700)])
    second = CustomerTotals(kafka_bootstrap, topic, group="restarts")
    try:
        assert second.consume(1) == 1
    finally:
        second.close()
    assert second.totals == {"dee": 700}


@pytest.mark.kafka_cluster(nodes=3)
def test_totals_on_a_three_node_cluster(kafka_cluster, kafka_topic):
    topic = kafka_topic(partitions=6)
    publish(kafka_cluster.bootstrap_servers, topic, [(f"o{i}", f"c{i % 4}", i) for i in range(40)])
    totals = CustomerTotals(kafka_cluster.bootstrap_servers, topic)
    try:
        assert totals.consume(40) == 40
    finally:
        totals.close()
    assert totals.totals == {f"c{k}": sum(i for i in range(40) if i % 4 == k) for k in range(4)}
