import pytest
import structlog


@pytest.fixture(autouse=True)
def structlog_left_as_found():
    """`structlog.testing.capture_logs` leaves structlog marked configured, and whether the host
    application configured structlog decides where an in-process broker's events go
    (kafka_compat.testing.cluster): no test changes that for the tests after it."""
    configured = structlog.is_configured()
    yield
    if not configured and structlog.is_configured():
        structlog.reset_defaults()
