"""Fixtures the JVM scenarios share."""

import pytest

from conformance.jvm import Driver


@pytest.fixture(scope="module")
def java(broker):
    """One Java scenario driver (kafka-clients of the pinned release) for a scenario file, on the
    session's broker."""
    with Driver(broker.bootstrap) as driver:
        yield driver
