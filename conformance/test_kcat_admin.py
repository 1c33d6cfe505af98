"""kcat has no admin API: `kcat -L` (Metadata) must show what another client's admin calls did:
topics with their partitions, leaders, replicas and ISRs; added partitions; deleted topics gone."""

import json

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions

from conformance.support import TIMEOUT, create_topic, kcat, wait_until

pytestmark = pytest.mark.timeout(60)


def _metadata(bootstrap: str, *args: str) -> dict:
    return json.loads(kcat("-b", bootstrap, "-L", "-J", *args).stdout)


def test_metadata_listing_follows_topic_admin(broker, unique):
    name = create_topic(broker.bootstrap, unique("kcat-md"), partitions=2)
    md = _metadata(broker.bootstrap)
    [b] = md["brokers"]
    assert b["name"] == broker.bootstrap
    assert md["controllerid"] == b["id"]
    [topic] = [t for t in md["topics"] if t["topic"] == name]
    assert topic["partitions"] == [{"partition": i, "leader": b["id"], "replicas": [{"id": b["id"]}],
                                    "isrs": [{"id": b["id"]}]} for i in (0, 1)]
    assert "error" not in topic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_partitions([NewPartitions(name, 3)], request_timeout=TIMEOUT)[name].result(TIMEOUT)
    [topic] = _metadata(broker.bootstrap, "-t", name)["topics"]
    assert [p["partition"] for p in topic["partitions"]] == [0, 1, 2]

    admin.delete_topics([name], request_timeout=TIMEOUT)[name].result(TIMEOUT)
    wait_until(lambda: name not in [t["topic"] for t in _metadata(broker.bootstrap)["topics"]], "the topic to go")
