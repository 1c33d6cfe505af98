"""`kafka-compat group ...` against the session broker, with a real kafka-python consumer in the group."""

import pytest
from kafka import KafkaConsumer

from kafka_compat.testing.waiting import collect

pytestmark = pytest.mark.timeout(60)


def rows(stdout: str) -> list[list[str]]:
    return [line.split() for line in stdout.strip().splitlines()]


def member_of(bootstrap: str, topic: str, group: str, want: int) -> KafkaConsumer:
    """A kafka-python consumer in `group` that has consumed and committed `want` records."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, client_id="lag-probe",
                      auto_offset_reset="earliest", enable_auto_commit=False, max_poll_records=want)
    # Learn the topic's partitions before joining: kafka-python 3.0 may otherwise join knowing none,
    # rejoin once it learns them, and (when that races its poll timeout) never take the assignment.
    assert c.partitions_for_topic(topic)
    c.subscribe([topic])
    got = []

    def poll() -> list:  # never more than `want`
        batch = [r for records in c.poll(200, max_records=want - len(got)).values() for r in records]
        got.extend(batch)
        return batch
    collect(poll, want, "records consumed by the probe", 30)
    c.commit()
    return c


def test_describe_shows_members_and_lag_then_reset_and_delete(invoke, broker, unique):
    topic, group = unique(), unique("g")
    assert invoke("topic", "create", topic, "-p", "2").code == 0
    lines = "".join(f"k{i}:{i}\n" for i in range(10))  # keyed: both partitions get records
    assert invoke("produce", topic, "-K", ":", input=lines).code == 0
    consumer = member_of(broker.bootstrap, topic, group, 3)
    try:
        listed = invoke("group", "list")
        assert [group, "Stable", "classic", "consumer"] in rows(listed.stdout)

        out = invoke("group", "describe", group)
        assert out.code == 0, out.stderr
        head, _, parts = out.stdout.partition("\n\n")
        (summary,) = rows(head)[1:]
        assert summary[0] == group and summary[2:5] == ["Stable", "range", "1"] and summary[5] == "7"
        table = {(r[0], int(r[1])): r for r in rows(parts)[1:]}
        assert set(table) == {(topic, 0), (topic, 1)}
        ends = {p: int(table[(topic, p)][3]) for p in (0, 1)}
        assert sum(ends.values()) == 10
        for p in (0, 1):
            r = table[(topic, p)]
            committed = 0 if r[2] == "-" else int(r[2])
            assert r[4] == ("-" if r[2] == "-" else str(ends[p] - committed))
            assert r[6] == "lag-probe" and r[7].startswith("/127.0.0.1")

        active = invoke("group", "reset-offsets", group, "-t", topic, "--to-earliest", "--execute")
        assert active.code == 1 and "inactive, but the current state is Stable" in active.stderr
    finally:
        consumer.close()

    plan = invoke("group", "reset-offsets", group, "-t", f"{topic}:1", "--to-offset", "1")
    assert plan.code == 0 and rows(plan.stdout)[1:] == [[group, topic, "1", "1"]]
    assert "dry run" in plan.stderr
    assert invoke("group", "reset-offsets", group, "-t", topic, "--to-latest", "--execute").code == 0
    shifted = invoke("group", "reset-offsets", group, "-t", topic, "--shift-by", "-2", "--execute")
    assert rows(shifted.stdout)[1:] == [[group, topic, str(p), str(ends[p] - 2)] for p in (0, 1)]
    out = invoke("group", "describe", group)
    head, _, parts = out.stdout.partition("\n\n")
    assert rows(head)[1][2:6] == ["Empty", "-", "0", "4"]
    assert {(r[1], r[2], r[4], r[5]) for r in rows(parts)[1:]} == {("0", str(ends[0] - 2), "2", "-"),
                                                                   ("1", str(ends[1] - 2), "2", "-")}

    assert invoke("group", "delete", group).stdout == f"deleted {group}\n"
    again = invoke("group", "delete", group)
    assert again.code == 1 and again.stderr.startswith("error: GROUP_ID_NOT_FOUND")
    assert group not in invoke("group", "list").stdout


def test_reset_offsets_needs_exactly_one_target(invoke, unique):
    r = invoke("group", "reset-offsets", unique("g"), "-t", "x", "--to-earliest", "--to-latest")
    assert r.code == 2 and r.stderr.startswith("error: give exactly one of")
