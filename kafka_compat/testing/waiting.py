"""Waiting in tests and scenarios on something outside the test's control (another process)."""

from __future__ import annotations

import time


def wait_until(predicate, what: str, timeout: float = 15.0, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
