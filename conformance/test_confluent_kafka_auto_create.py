"""confluent-kafka and topic auto-creation (auto.create.topics.enable defaults to true): a producer
sending to a missing topic creates it with the broker's defaults (num.partitions=1); a producer's
metadata request for a missing topic creates it; a consumer's does not (librdkafka sends
allow_auto_topic_creation=false by default), and a broker with auto-creation off creates nothing."""

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from conformance.support import TIMEOUT, confluent_read, wait_until

pytestmark = pytest.mark.timeout(60)


def _topics(bootstrap: str) -> dict:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=TIMEOUT).topics


def test_produce_creates_the_topic(broker, unique):
    topic = unique("cfk-auto")
    assert topic not in _topics(broker.bootstrap)
    p = Producer({"bootstrap.servers": broker.bootstrap, "message.timeout.ms": int(TIMEOUT * 1000)})
    reports = []
    p.produce(topic, key=b"k", value=b"first",
              on_delivery=lambda err, msg: reports.append((err, msg.partition(), msg.offset())))
    assert p.flush(TIMEOUT) == 0
    assert reports == [(None, 0, 0)]
    md = _topics(broker.bootstrap)[topic]
    assert (sorted(md.partitions), md.error) == ([0], None)
    [got] = confluent_read(broker.bootstrap, topic, {0: 0}, 1)
    assert (got.key, got.value) == (b"k", b"first")


def test_metadata_request_creates_the_topic_for_a_producer_only(broker, unique):
    wanted, unwanted = unique("cfk-auto-md"), unique("cfk-no-auto")
    p = Producer({"bootstrap.servers": broker.bootstrap})
    md = p.list_topics(wanted, timeout=TIMEOUT).topics[wanted]
    assert (sorted(md.partitions), md.error) == ([0], None)

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "conformance-never-joined"})
    try:
        md = c.list_topics(unwanted, timeout=TIMEOUT).topics[unwanted]
        assert md.error is not None and md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        c.close()
    topics = _topics(broker.bootstrap)
    assert wanted in topics and unwanted not in topics


def test_nothing_is_created_when_auto_creation_is_off(broker_factory, unique):
    b = broker_factory({"auto.create.topics.enable": "false"})
    topic = unique("cfk-off")
    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 1000})
    md = p.list_topics(topic, timeout=TIMEOUT).topics[topic]
    assert md.error is not None and md.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    reports = []
    p.produce(topic, value=b"nowhere", on_delivery=lambda err, msg: reports.append(err))
    p.flush(TIMEOUT)
    wait_until(lambda: reports, "the delivery report")
    assert reports[0] is not None and reports[0].code() == KafkaError._MSG_TIMED_OUT, reports[0]
    assert topic not in _topics(b.bootstrap)
