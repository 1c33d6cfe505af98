"""The differential suite: the same raw wire probes (conformance/differential.py, built with the
project's own codecs) sent to kafka-compat and to Apache Kafka (the pinned release, started once
per session), the answers compared field by field: ApiVersions ranges and the answer to a version
from the future, malformed frames, unsupported request versions and unknown API keys, Metadata for
unknown topics, names and ids, CreateTopics refusals and their messages, DescribeConfigs of a topic
and a broker (values, sources, read-only, types, documentation, synonyms), IncrementalAlterConfigs
refusals, Produce refusals (unknown topic or partition, oversized, corrupt, far-future timestamp,
bad acks), Fetch out of range, ListOffsets, DeleteRecords, group APIs for unknown groups and
members, InitProducerId.

Every difference found must be listed in conformance/DIFFERENCES.md (one table, each row naming
the probe field it explains, `*` matching any text) and every row there must still be found: a
fixed difference leaves the table with its fix, a new one fails here until it is fixed or listed
with its reason."""

import fnmatch
import re
import uuid
from pathlib import Path

import pytest

from conformance.conftest import PEER
from conformance.differential import PROBES, Peer, run
from conformance.support import create_topic
from kafka_compat.client import BrokerConnection
from kafka_compat.protocol import messages as m

pytestmark = [pytest.mark.timeout(120),
              pytest.mark.skipif(PEER == "apache-kafka", reason="compares kafka-compat with Apache Kafka")]
TABLE = Path(__file__).parent / "DIFFERENCES.md"


def known() -> list[str]:
    """The probe-field patterns of the table's rows."""
    return re.findall(r"^\| `([^`]+)` \|", TABLE.read_text(), re.M)


def peer(name: str, bootstrap: str, topic: str) -> Peer:
    from confluent_kafka import Producer

    create_topic(bootstrap, topic, partitions=2, configs={"retention.ms": "3600000"})
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(3):
        p.produce(topic, key=b"k", value=b"v%d" % i, partition=0, timestamp=1_700_000_000_000 + i)
    assert p.flush(15) == 0
    with BrokerConnection.to(bootstrap) as conn:
        [b] = conn.request(m.MetadataRequest(topics=[]), 12).brokers
    return Peer(name, bootstrap, str(b.node_id), topic)


@pytest.fixture(scope="module")
def peers(broker, apache_kafka):
    topic = f"diff-{uuid.uuid4().hex[:8]}"
    return peer("kafka-compat", broker.bootstrap, topic), peer("apache-kafka", apache_kafka.bootstrap, topic)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_differences_are_the_listed_ones(peers, name):
    found = run(name, *peers)
    patterns = [p for p in known() if p.startswith(f"{name}:")]
    unexplained = {k: v for k, v in found.items() if not any(fnmatch.fnmatchcase(f"{name}:{k}", p) for p in patterns)}
    assert not unexplained, "differences from Apache Kafka that DIFFERENCES.md does not list:\n" + "\n".join(
        f"  {name}:{k}: kafka-compat {v[0]!r}, Apache Kafka {v[1]!r}" if isinstance(v, tuple) else f"  {name}:{k}: {v}"
        for k, v in unexplained.items())
    stale = [p for p in patterns if not any(fnmatch.fnmatchcase(f"{name}:{k}", p) for k in found)]
    assert not stale, f"DIFFERENCES.md lists differences no longer found (remove the rows): {stale}"


def test_every_listed_difference_names_a_probe():
    assert [p for p in known() if p.split(":")[0] not in PROBES] == []
