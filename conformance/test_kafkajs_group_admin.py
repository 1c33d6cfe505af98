"""KafkaJS admin on consumer groups (node/group_admin.js): list, describe (members, client ids and
hosts, assignments decoded by KafkaJS's AssignerProtocol), fetch committed offsets with metadata,
set offsets (KafkaJS does it by joining the group, so only for a stopped group), delete groups;
and consumer lag (high watermark minus committed offset, per partition) from fetchTopicOffsets and
fetchOffsets. One group is active (two member processes), one stopped."""

import pytest

from conformance.groups import node_member, produce, wait_consumed_once, wait_split
from conformance.support import create_topic, run_node
from kafka_compat.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(90)
STOPPED_AT = {0: 3, 1: 10, 2: 0, 3: 7}  # what the stopped group committed (node/group_admin.js)


def test_group_admin(broker, unique):
    topic = create_topic(broker.bootstrap, unique("kjs-gadmin"), partitions=4)
    active, stopped, never = unique("kjs-active"), unique("kjs-stopped"), unique("kjs-never")
    members = [node_member(broker.bootstrap, topic, active, n) for n in "ab"]
    try:
        owners = wait_split(members, 4)
        sent = produce(broker.bootstrap, topic, 4, 10, "x")
        wait_consumed_once(members, sent, "x", owners)
        out = run_node("group_admin.js", broker.bootstrap, topic, active, stopped, never)

        assert (out["listed"][active], out["listed"][stopped]) == ("consumer", "consumer")
        d = out["described"]
        assert {k: v for k, v in d[active].items() if k != "members"} == \
            {"errorCode": ErrorCode.NONE, "state": "Stable", "protocolType": "consumer",
             "protocol": "RoundRobinAssigner"}
        assert {mb["memberId"]: (mb["clientId"], mb["clientHost"], mb["assignment"]) for mb in d[active]["members"]} \
            == {mb.member_id: (f"kjs-{mb.name}", "/127.0.0.1", {topic: mb.assigned}) for mb in members}
        assert d[stopped] == {"errorCode": ErrorCode.NONE, "state": "Empty", "protocolType": "consumer", "protocol": "",
                              "members": []}
        assert d[never] == {"errorCode": ErrorCode.NONE, "state": "Dead", "protocolType": "", "protocol": "",
                            "members": []}

        assert out["committed"]["stopped"] == {str(p): [o, f"at-{o}"] for p, o in STOPPED_AT.items()}
        assert out["lag"] == {"active": {str(p): 0 for p in range(4)},
                              "stopped": {str(p): 10 - o for p, o in STOPPED_AT.items()}}

        assert out["setStopped"] == {}
        assert out["setActive"]["error"]["message"].endswith("current state: Stable")
        assert out["lagAfterSet"] == {"0": 5, "1": 0, "2": 10, "3": 3}

        assert out["deleted"] == {"failed": [{"groupId": active, "errorCode": 68, "type": "NON_EMPTY_GROUP"},
                                             {"groupId": never, "errorCode": 69, "type": "GROUP_ID_NOT_FOUND"}]}
        assert stopped not in out["listedAfterDelete"]
        assert out["committedAfterDelete"] == {str(p): [-1, None] for p in range(4)}

        for mb in members:
            mb.close()
        out = run_node("group_admin.js", broker.bootstrap, topic, "--delete", active)
        assert out["deleted"] == {"results": [{"groupId": active, "errorCode": ErrorCode.NONE}]}
        assert active not in out["listed"]
    finally:
        for mb in members:
            mb.kill()
