"""pytest fixtures for running real brokers (loaded automatically through the pytest11 entry point).

For an application's tests:

- `kafka_cluster`: a running `KafkaCluster`. One is shared by the tests of a session (the ini
  option `kafka_cluster_scope` makes that a package, module, class or each function); a test
  marked `@pytest.mark.kafka_cluster(nodes=3, mode="process", config={...})` gets one of its own.
  The ini options `kafka_cluster_nodes`, `kafka_cluster_mode` (thread or process) and
  `kafka_cluster_config` (key=value lines) shape the shared one. To shape it in code, override the
  fixture `kafka_shared_cluster` in a conftest.py.
- `kafka_bootstrap`: its `bootstrap.servers` string, for any client.
- `kafka_topic`: `kafka_topic(partitions=3, config={...})` creates a topic with a fresh name on
  `kafka_cluster` and returns the name; it is deleted after the test.

For this project's own suites:

- `broker`: one broker process for the whole test session (conformance scenarios share it; each
  scenario uses its own topic and group names).
- `broker_factory`: start brokers of your own (restarts, crashes, special configs); all are
  stopped at the end of the test.
- `unique`: a fresh name for topics and groups.
"""

from __future__ import annotations

import uuid

import pytest

SCOPES = ("session", "package", "module", "class", "function")


def pytest_addoption(parser) -> None:
    parser.addini("kafka_cluster_scope", f"how long the shared kafka_cluster lives: {', '.join(SCOPES)}",
                  default="session")
    parser.addini("kafka_cluster_nodes", "nodes of the shared kafka_cluster", default="1")
    parser.addini("kafka_cluster_mode", "thread (nodes in this process) or process (one process a node)",
                  default="thread")
    parser.addini("kafka_cluster_config", "broker key=value lines for every node of kafka_cluster", type="linelist",
                  default=[])


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "kafka_cluster(nodes=1, mode='thread', config=None): this test gets a Kafka cluster of its own "
                   "in the kafka_cluster fixture")


def _scope(fixture_name: str, config) -> str:
    scope = config.getini("kafka_cluster_scope")
    if scope not in SCOPES:
        raise pytest.UsageError(f"kafka_cluster_scope = {scope!r}: use one of {', '.join(SCOPES)}")
    return scope


def _settings(pytest_config, **marked) -> dict:
    """KafkaCluster's arguments: the ini options, then what a marker gives."""
    lines = pytest_config.getini("kafka_cluster_config")
    if any("=" not in line for line in lines):
        raise pytest.UsageError(f"kafka_cluster_config: {next(x for x in lines if '=' not in x)!r} is not key=value")
    settings = {"nodes": int(pytest_config.getini("kafka_cluster_nodes")),
                "mode": pytest_config.getini("kafka_cluster_mode"),
                "config": dict(line.split("=", 1) for line in lines)}
    settings["config"].update(marked.pop("config", None) or {})
    return {**settings, **marked}


@pytest.fixture(scope=_scope)
def kafka_shared_cluster(request):
    """The cluster `kafka_cluster` gives tests that do not ask for one of their own."""
    from kafka_compat.testing.cluster import KafkaCluster

    with KafkaCluster(**_settings(request.config)) as cluster:
        yield cluster


@pytest.fixture
def kafka_cluster(request):
    """A running KafkaCluster: the test's own if it is marked `kafka_cluster(...)`, else the shared one."""
    marker = request.node.get_closest_marker("kafka_cluster")
    if marker is None:
        yield request.getfixturevalue("kafka_shared_cluster")
        return
    from kafka_compat.testing.cluster import KafkaCluster

    with KafkaCluster(**_settings(request.config, **marker.kwargs)) as cluster:
        yield cluster


@pytest.fixture
def kafka_bootstrap(kafka_cluster) -> str:
    return kafka_cluster.bootstrap_servers


@pytest.fixture
def kafka_topic(kafka_cluster):
    from kafka_compat.client import BrokerUnreachable

    created: list[str] = []

    def create(prefix: str = "topic", *, partitions: int | None = None, replication_factor: int | None = None,
               config: dict | None = None) -> str:
        name = kafka_cluster.create_topic(f"{prefix}-{uuid.uuid4().hex[:10]}", partitions,
                                          replication_factor=replication_factor, config=config)
        created.append(name)
        return name

    yield create
    if kafka_cluster.running:
        for name in created:
            try:
                kafka_cluster.delete_topic(name)
            except BrokerUnreachable:  # the test stopped a node: nothing left to tidy
                break


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    from kafka_compat.testing.broker_process import BrokerProcess

    proc = BrokerProcess(tmp_path_factory.mktemp("broker"))
    proc.start()
    yield proc
    code = proc.stop()
    assert code == 0, f"the shared broker exited with {code} on SIGTERM:\n{proc.tail()}"


@pytest.fixture
def broker_factory(tmp_path):
    from kafka_compat.testing.broker_process import BrokerProcess

    started: list = []

    def make(overrides: dict[str, str] | None = None, name: str | None = None, start: bool = True):
        proc = BrokerProcess(tmp_path / (name or f"broker-{len(started)}"), overrides=overrides)
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.kill()


@pytest.fixture
def unique():
    """A fresh name for topics and groups, so tests sharing a broker do not meet."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:10]}"
