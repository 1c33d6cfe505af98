"""KafkaJS admin: a topic's whole life (create with configs, list, describe partitions and configs,
add partitions, alter configs, delete) as node/admin.js sees it."""

import pytest

from conformance.support import run_node
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)
TOPIC_CONFIG, DEFAULT_CONFIG = 1, 5  # DescribeConfigs config_source


def test_topic_lifecycle(broker, unique):
    topic = unique("kjs-admin")
    out = run_node("admin.js", broker.bootstrap, topic)
    assert (out["created"], out["createdAgain"]) == (True, False)  # false: TOPIC_ALREADY_EXISTS, which KafkaJS swallows
    assert out["badConfig"]["error"]["type"] == "INVALID_CONFIG"
    assert out["listed"] is True

    [b] = out["cluster"]["brokers"]
    assert f"{b['host']}:{b['port']}" == broker.bootstrap and out["cluster"]["controller"] == b["nodeId"]
    node = b["nodeId"]
    assert out["partitions"] == [{"id": i, "error": 0, "leader": node, "replicas": [node], "isr": [node]}
                                 for i in (0, 1)]

    assert out["configs"]["errorCode"] == ErrorCode.NONE
    entries = out["configs"]["entries"]
    assert entries["retention.ms"] == {"value": "3600000", "source": TOPIC_CONFIG, "isDefault": False,
                                       "readOnly": False}
    assert entries["cleanup.policy"] == {"value": "compact", "source": TOPIC_CONFIG, "isDefault": False,
                                         "readOnly": False}
    assert entries["max.message.bytes"] == {"value": "1048588", "source": DEFAULT_CONFIG, "isDefault": True,
                                            "readOnly": False}

    assert out["shrink"]["error"]["type"] == "INVALID_PARTITIONS"
    assert out["partitionsAfterGrowth"] == [0, 1, 2, 3]

    assert out["altered"] == [{"errorCode": ErrorCode.NONE, "name": topic}]
    entries = out["configsAfterAlter"]["entries"]
    assert entries["retention.ms"]["value"] == "7200000"
    # AlterConfigs (not incremental) replaces the whole set of overrides
    assert (entries["cleanup.policy"]["value"], entries["cleanup.policy"]["source"]) == ("delete", DEFAULT_CONFIG)

    assert out["deleted"] == {}  # deleteTopics resolves with nothing
    assert out["listedAfterDelete"] is False
    assert out["describeDeleted"]["error"]["type"] == "UNKNOWN_TOPIC_OR_PARTITION"
