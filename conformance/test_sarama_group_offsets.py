"""sarama committed offsets (with metadata) survive a consumer restart, a broker stop (SIGTERM) and
a broker crash (SIGKILL) under a live group member, which goes on consuming and committing (see
`groups.committed_offsets_survive_restarts`). The member commits on its session with MarkOffset and
ResetOffset (one moves forward, the other back) and Commit, and reads committed offsets with the ClusterAdmin's
ListConsumerGroupOffsets; after the crash sarama's session ends and Consume joins again."""

import pytest

from conformance.golang import GroupConsumer
from conformance.groups import committed_offsets_survive_restarts
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(120)


def test_committed_offsets_survive_restarts(broker_factory, unique):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("srm-offsets"), partitions=2)
    group = unique("srm-offsets")
    committed_offsets_survive_restarts(b, topic, lambda: GroupConsumer("sarama", b.bootstrap, topic, group))
