"""Fixtures the JVM scenarios share, and the switch that runs the conformance scenarios against
Apache Kafka itself: `CONFORMANCE_BROKER=apache-kafka pytest conformance/...` makes the session's
`broker` the pinned Apache Kafka release (conformance/peers/apache_kafka.py), which checks that a
scenario expects what Kafka does. Scenarios marked `not_served_yet` are skipped there."""

import os

import pytest

from conformance.jvm import Driver

PEER = os.environ.get("CONFORMANCE_BROKER", "kafka-compat")


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    if PEER == "apache-kafka":
        from conformance.peers.apache_kafka import ApacheKafkaNode

        node = ApacheKafkaNode(tmp_path_factory.mktemp("apache-kafka")).start()
        yield node
        node.stop()
        return
    from kafka_compat.testing.broker_process import BrokerProcess

    proc = BrokerProcess(tmp_path_factory.mktemp("broker")).start()
    yield proc
    code = proc.stop()
    assert code == 0, f"the shared broker exited with {code} on SIGTERM:\n{proc.tail()}"


@pytest.fixture(scope="session")
def apache_kafka(tmp_path_factory):
    """Apache Kafka (the pinned release, one combined node) for the whole session, started only if a
    scenario asks for it: the differential suite's reference."""
    from conformance.peers.apache_kafka import ApacheKafkaNode

    node = ApacheKafkaNode(tmp_path_factory.mktemp("apache-kafka-peer")).start()
    yield node
    node.stop()


def pytest_collection_modifyitems(config, items):
    if PEER == "apache-kafka":
        skip = pytest.mark.skip(reason="kafka-compat does not serve this API yet; Apache Kafka does")
        for item in items:
            if "not_served_yet" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="module")
def java(broker):
    """One Java scenario driver (kafka-clients of the pinned release) for a scenario file, on the
    session's broker."""
    with Driver(broker.bootstrap) as driver:
        yield driver


def pytest_terminal_summary(terminalreporter):
    """The client x capability table (conformance/capabilities.py) with each cell's outcome in this
    run, printed when the run included any of its scenarios."""
    from conformance.capabilities import report

    outcomes: dict[str, str] = {}  # node id -> failed (in any phase), skipped or passed
    for reports in terminalreporter.stats.values():
        for r in reports:
            if not hasattr(r, "when") or not r.nodeid.startswith("conformance/"):
                continue
            if r.failed:
                outcomes[r.nodeid] = "failed"
            elif r.when == "call" or r.skipped:
                outcomes.setdefault(r.nodeid, r.outcome)
    table = report(outcomes)
    if table:
        terminalreporter.write_sep("=", "client x capability (ok: its scenarios passed; .: not run)")
        terminalreporter.write_line(table)
