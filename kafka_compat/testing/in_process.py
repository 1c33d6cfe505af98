"""Nodes of a cluster as `Broker` objects in this process: one background thread runs its own trio
loop with every node in one nursery, so an application's tests (which need not use trio) get a
cluster in a fraction of a second and talk to it over real sockets.

`start()` returns once every node logged its ready line; `stop()` stops them as SIGTERM stops a
`kafka-compat start` (requests drain, controlled shutdown, logs flushed and marked clean), all at
once. A node that fails while running
stops the others; `stop()` then raises what it failed with.

The broker logs through structlog. Unless the application configured structlog itself, its events
go to the standard `logging` module under `kafka_compat.*` loggers (INFO and up) while a cluster
runs, not to the application's stdout; pytest shows them with a failing test's output where its
log level lets INFO through (`log_level = INFO`). The last cluster to stop puts structlog's
defaults back.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence

import structlog
import trio

SHUTDOWN_GRACE_S = 5.0


_routing = [0]  # clusters running whose broker events go to logging, under _routing_lock
_routing_lock = threading.Lock()


def route_logs_to_logging() -> bool:
    """Send structlog's events to the `logging` module, unless the application configured structlog;
    True if so (`unroute_logs` undoes it when the last cluster that asked stops)."""
    with _routing_lock:
        if not _routing[0]:
            if structlog.is_configured():
                return False
            structlog.configure(
                processors=[structlog.contextvars.merge_contextvars, structlog.processors.format_exc_info,
                            structlog.dev.ConsoleRenderer(colors=False)],
                wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
                logger_factory=structlog.stdlib.LoggerFactory(),
                cache_logger_on_first_use=False,  # so that modules' loggers follow the defaults again later
            )
        _routing[0] += 1
        return True


def unroute_logs() -> None:
    with _routing_lock:
        _routing[0] -= 1
        if not _routing[0]:
            structlog.reset_defaults()


class InProcessNodes:
    """The nodes of one cluster, given as their configs (`BrokerConfig`), in a background thread."""

    def __init__(self, configs: Sequence, cluster_id: str):
        self.configs, self.cluster_id = list(configs), cluster_id
        self.brokers: list = []
        self.error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._scope: trio.CancelScope | None = None
        self._routed = False

    def start(self, timeout: float) -> InProcessNodes:
        self._routed = route_logs_to_logging()
        self._thread = threading.Thread(target=self._run, args=(timeout,), name="kafka-compat-cluster", daemon=True)
        self._thread.start()
        ready = self._started.wait(timeout + SHUTDOWN_GRACE_S)
        if ready and self.error is None:
            return self
        error = self.error
        with contextlib.suppress(RuntimeError):  # what stop() reports is what is raised here
            self.stop()
        if error is None:
            raise RuntimeError(f"the cluster was not ready within {timeout}s")
        raise RuntimeError(f"the cluster did not start: {error}") from error

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every node gracefully (forcefully after `timeout`); raise what a node failed with."""
        if self._thread is None:
            return
        self._in_loop(lambda: self._stop.set())
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._in_loop(lambda: self._scope and self._scope.cancel())
            self._thread.join(SHUTDOWN_GRACE_S)
        self._thread = None
        if self._routed:
            self._routed = False
            unroute_logs()
        if self.error is not None:
            raise RuntimeError(f"a node of the cluster failed: {self.error!r}") from self.error

    def _in_loop(self, call) -> None:
        """`call()` in the cluster's trio loop, if it runs."""
        if self._token is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(call, trio_token=self._token)

    def _run(self, timeout: float) -> None:
        try:
            trio.run(self._main, timeout)
        except BaseException as e:  # reported by start() or stop(), in the caller's thread
            self.error = e
        finally:
            self._started.set()

    async def _main(self, timeout: float) -> None:
        from kafka_compat.server.broker import Broker

        self._token, self._stop = trio.lowlevel.current_trio_token(), trio.Event()
        try:
            for config in self.configs:
                self.brokers.append(Broker(config, self.cluster_id))
        except BaseException:
            for b in self.brokers:
                b.close()
            raise
        async with trio.open_nursery() as nursery:
            self._scope = nursery.cancel_scope
            with trio.move_on_after(timeout) as waited:
                async with trio.open_nursery() as starting:  # together: a quorum needs a majority first
                    for b in self.brokers:
                        starting.start_soon(nursery.start, b.run)
            if waited.cancelled_caught:
                raise RuntimeError(f"not every node was ready within {timeout}s")
            self._started.set()
            await self._stop.wait()
            await _stop_all(self.brokers)
            nursery.cancel_scope.cancel()


async def _stop_all(brokers: list) -> None:
    """`Broker.shutdown()` for every node at once, in two phases: each drains its requests and does
    its controlled shutdown while the quorum is still there to record it; then the quorum stops
    without handing leadership over, since no node stays to take it (a handover would wait for
    voters that are gone)."""

    async def leave(broker) -> None:
        await broker.drain(SHUTDOWN_GRACE_S)
        if broker.is_broker:
            await broker.lifecycle.shutdown()

    async with trio.open_nursery() as nursery:
        for b in brokers:
            nursery.start_soon(leave, b)
    for b in brokers:
        await b.quorum.shutdown(timeout=0)
