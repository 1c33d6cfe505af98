"""`kafka-compat topic ...` against a real broker."""

from __future__ import annotations


def _section(out: str, title: str) -> list[list[str]]:
    """The rows (split on whitespace) of one titled table in `topic describe` output."""
    lines = out.split(title + "\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [line.split() for line in lines[1:]]


def test_topic_lifecycle_through_the_executable(cli, unique):
    name = unique()
    r = cli("topic", "create", name, "-p", "3", "-c", "retention.ms=123456")
    assert r.code == 0, r.stderr
    assert r.stdout.split("\n")[1].split() == [name, "3", "1", "OK"]

    assert [name, "3", "1"] in [line.split() for line in cli("topic", "list").stdout.splitlines()]

    r = cli("topic", "alter-config", name, "--set", "cleanup.policy=compact", "--delete", "retention.ms")
    assert r.code == 0, r.stderr
    r = cli("topic", "describe", name)
    assert r.code == 0, r.stderr
    assert _section(r.stdout, "CONFIGS") == [["cleanup.policy", "compact", "DYNAMIC_TOPIC_CONFIG"]]
    assert _section(r.stdout, "PARTITIONS") == [[str(p), "1", "0", "[1]", "[1]", "0", "0"] for p in range(3)]

    r = cli("topic", "delete", name)
    assert r.code == 0, r.stderr
    assert name not in cli("topic", "list").stdout


def test_describe_shows_watermarks_and_config_sources(invoke, unique):
    name = unique()
    assert invoke("topic", "create", name, "-p", "2", "-c", "segment.bytes=1048576").code == 0
    assert invoke("produce", name, "-p", "1", input="a\nb\nc\n").code == 0
    r = invoke("topic", "describe", name)
    assert _section(r.stdout, "SUMMARY")[0][2:] == ["2", "1", "no"]
    assert ["segment.bytes", "1048576", "DYNAMIC_TOPIC_CONFIG"] in _section(r.stdout, "CONFIGS")
    assert [row[5:] for row in _section(r.stdout, "PARTITIONS")] == [["0", "0"], ["0", "3"]]
    everything = _section(invoke("topic", "describe", name, "--all-configs").stdout, "CONFIGS")
    assert ["retention.ms", "604800000", "DEFAULT_CONFIG"] in everything


def test_dry_run_creates_nothing(invoke, unique):
    name = unique()
    r = invoke("topic", "create", name, "-p", "4", "--dry-run")
    assert r.code == 0 and "OK (dry run)" in r.stdout
    assert invoke("topic", "describe", name).code == 1


def test_add_partitions_adds_to_the_count(invoke, unique):
    name = unique()
    invoke("topic", "create", name, "-p", "2")
    r = invoke("topic", "add-partitions", name, "-n", "3")
    assert r.code == 0, r.stderr
    assert r.stdout.splitlines()[1].split() == [name, "5", "OK"]
    assert [name, "5", "1"] in [line.split() for line in invoke("topic", "list").stdout.splitlines()]


def test_internal_topics_are_listed_only_on_request(invoke, broker):
    from kafka_compat.client import Cluster

    with Cluster(broker.bootstrap) as c:
        internal = [t.name for t in c.metadata(None).topics.values() if t.internal]
    plain, everything = invoke("topic", "list").stdout, invoke("topic", "list", "--internal").stdout
    assert not any(name in plain for name in internal)
    assert all(f"{name} " in everything for name in internal)


def test_kafka_errors_are_one_line_with_their_name(invoke, unique):
    name = unique()
    invoke("topic", "create", name)
    cases = {
        ("topic", "create", name): f"error: {name}: TOPIC_ALREADY_EXISTS",
        ("topic", "create", unique(), "-c", "no.such.config=1"): "INVALID_CONFIG",
        ("topic", "alter-config", name, "--set", "retention.ms=soon"): "INVALID_CONFIG",
        ("topic", "describe", unique()): "error: UNKNOWN_TOPIC_OR_PARTITION",
        ("topic", "delete", unique()): "UNKNOWN_TOPIC_OR_PARTITION",
        ("topic", "create", unique(), "-p", "0"): "INVALID_PARTITIONS",
    }
    for args, expected in cases.items():
        r = invoke(*args)
        assert r.code == 1, (args, r)
        assert expected in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_usage_errors_exit_2(invoke, unique):
    assert invoke("topic", "create", unique(), "-c", "novalue").code == 2
    assert invoke("topic", "alter-config", unique()).code == 2
    assert invoke("topic", "list", brokers="no-port-here").code == 2


def test_a_failed_change_prints_no_ok_row(invoke, unique):
    missing = unique()
    for args in (("alter-config", missing, "--set", "retention.ms=1"), ("add-partitions", missing, "-n", "1"),
                 ("delete", missing)):
        r = invoke("topic", *args)
        assert r.code == 1 and r.stdout == "" and "UNKNOWN_TOPIC_OR_PARTITION" in r.stderr, args
