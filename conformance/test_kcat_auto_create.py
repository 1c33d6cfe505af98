"""kcat and topic auto-creation (auto.create.topics.enable defaults to true): `kcat -P` to a missing
topic creates it with one partition (the broker default) and the record lands at offset 0;
`kcat -L -t <missing>` (a producer-side metadata request) creates the topic too."""

import json

import pytest

from conformance.support import kcat, kcat_read

pytestmark = pytest.mark.timeout(60)


def _listed(bootstrap: str) -> set[str]:
    return {t["topic"] for t in json.loads(kcat("-b", bootstrap, "-L", "-J").stdout)["topics"]}


def test_produce_and_metadata_create_the_topic(broker, unique):
    sent_to, asked_for = unique("kcat-auto"), unique("kcat-auto-md")
    assert not {sent_to, asked_for} & _listed(broker.bootstrap)

    kcat("-b", broker.bootstrap, "-P", "-t", sent_to, "-K", ":", input=b"k:first\n")
    [got] = kcat_read(broker.bootstrap, sent_to, {0: 0}, 1)
    assert (got.partition, got.offset, got.key, got.value) == (0, 0, b"k", b"first")

    [topic] = json.loads(kcat("-b", broker.bootstrap, "-L", "-J", "-t", asked_for).stdout)["topics"]
    assert "error" not in topic
    assert [p["partition"] for p in topic["partitions"]] == [0]
    assert {sent_to, asked_for} <= _listed(broker.bootstrap)
