"""franz-go's kadm on consumer groups (`golang.group_admin`): ListGroups (with state and type),
DescribeGroups (members, client ids and hosts, assignments decoded by kadm), FetchOffsets,
DeleteGroups (NON_EMPTY_GROUP while members are in, GROUP_ID_NOT_FOUND for a group that never
existed), DeleteOffsets (GROUP_SUBSCRIBED_TO_TOPIC while members consume the topic), on a group of
two franz-go members."""

import pytest

from conformance.golang import group_admin
from conformance.support import create_topic

pytestmark = pytest.mark.timeout(90)


def test_group_admin(broker, unique):
    topic = create_topic(broker.bootstrap, unique("fgo-gadmin"), partitions=4)
    group_admin("franz-go", broker, topic, unique("fgo-active"), unique("fgo-never"))
