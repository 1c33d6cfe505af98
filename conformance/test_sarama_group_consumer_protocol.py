"""sarama and KIP-848's consumer group protocol: sarama 1.61.1 has no KIP-848 consumer (its
ConsumerGroup speaks only JoinGroup/SyncGroup; it sends ConsumerGroupHeartbeat nowhere and has only
the admin side, ConsumerGroupDescribe), so there is nothing to run until a sarama release has one;
franz-go covers the protocol (test_franz_go_group_consumer_protocol.py)."""

import pytest


@pytest.mark.skip(reason="sarama 1.61.1 has no KIP-848 (group.protocol=consumer) consumer")
def test_group_splits_and_rebalances():
    pass
