"""franz-go committed offsets (with metadata) survive a consumer restart, a broker stop (SIGTERM) and
a broker crash (SIGKILL) under a live group member, which goes on consuming and committing (see
`groups.committed_offsets_survive_restarts`). The member commits with CommitOffsetsSync (metadata
set through PreCommitFnContext; a commit may go backwards) and reads committed offsets with kadm's
FetchOffsets."""

import pytest

from conformance.golang import GroupConsumer
from conformance.groups import committed_offsets_survive_restarts
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(120)


def test_committed_offsets_survive_restarts(broker_factory, unique):
    b = broker_factory()
    topic = create_topic(b.bootstrap, unique("fgo-offsets"), partitions=2)
    group = unique("fgo-offsets")
    committed_offsets_survive_restarts(b, topic, lambda: GroupConsumer("franz-go", b.bootstrap, topic, group))
