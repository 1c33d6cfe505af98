"""Waiting in tests and scenarios on something outside the test's control (another process, a
client's consumer): a condition re-checked until it holds, bounded by a timeout that says what
was being waited for."""

from __future__ import annotations

import asyncio
import time


def wait_until(predicate, what, timeout: float = 15.0, interval: float = 0.1):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout`
    naming `what` was awaited (a string, or a callable that describes it with the state reached)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")
        time.sleep(interval)


def collect(poll, count: int, what: str, timeout: float = 15.0) -> list:
    """Call `poll()` until the lists it returned hold `count` items in all; returns them in order.
    `poll` waits for items itself (a consumer's poll with a short timeout), so calls follow each
    other without a pause. Fails after `timeout` saying how many of `what` came."""
    out: list = []

    def enough() -> bool:
        out.extend(poll())
        return len(out) >= count

    try:
        wait_until(enough, what, timeout, interval=0)
    except AssertionError as e:
        raise AssertionError(f"{e} (got {len(out)} of {count})") from None
    return out


async def collect_async(poll, count: int, what: str, timeout: float = 15.0) -> list:
    """`collect` for asyncio clients: `poll` is a coroutine function."""
    out: list = []

    async def fill() -> None:
        while len(out) < count:
            out.extend(await poll())

    try:
        await asyncio.wait_for(fill(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (got {len(out)} of {count})") from None
    return out
