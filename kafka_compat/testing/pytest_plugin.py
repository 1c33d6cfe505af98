"""pytest fixtures for running real brokers (loaded automatically through the pytest11 entry point).

- `broker`: one broker process for the whole test session (conformance scenarios share it; each
  scenario uses its own topic and group names).
- `broker_factory`: start brokers of your own (restarts, crashes, special configs); all are
  stopped at the end of the test.
"""

from __future__ import annotations

import uuid

import pytest

from kafka_compat.testing.broker_process import BrokerProcess


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> BrokerProcess:
    proc = BrokerProcess(tmp_path_factory.mktemp("broker"))
    proc.start()
    yield proc
    code = proc.stop()
    assert code == 0, f"the shared broker exited with {code} on SIGTERM:\n{proc.tail()}"


@pytest.fixture
def broker_factory(tmp_path):
    started: list[BrokerProcess] = []

    def make(overrides: dict[str, str] | None = None, name: str | None = None, start: bool = True) -> BrokerProcess:
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
