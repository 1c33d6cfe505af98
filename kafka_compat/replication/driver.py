"""The replica manager's trio driver (the I/O of Kafka's replica fetcher threads and of its
AlterPartitionManager): one task polls the sans-I/O `ReplicaManager` for what to send, sends it,
and feeds the answers back.

- Fetch, OffsetForLeaderEpoch and ListOffsets go to the leader over one connection per fetcher
  (leader and num.replica.fetchers slot: `client.connection.Connection`, so that a long-polling
  fetch holds up no other fetcher), to the leader's endpoint on the inter-broker listener as the
  current metadata image has it. A request not answered within replica.socket.timeout.ms beyond
  its own wait closes its connection (a stopped leader keeps its sockets open); a connection no
  fetcher uses any more is closed.
- AlterPartition goes to the active controller through `to_controller`, which answers None when
  no controller answered in time.
- The task sleeps until the manager's next deadline or until woken: by the manager
  (`on_work`: new fetchers, an ISR change queued), or by an answer or a failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
import trio

from kafka_compat.client.connection import Connection
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Message
from kafka_compat.replication.alter_partition import VERSION as ALTER_PARTITION_VERSION
from kafka_compat.replication.fetcher import VERSIONS
from kafka_compat.replication.replica_manager import CONTROLLER, Outbound, ReplicaManager

log = structlog.get_logger("kafka_compat.replication")

ControllerCall = Callable[[Message, int, float], Awaitable[Message | None]]


class ReplicationDriver:
    """Drives `replicas`; `address(broker_id)` is the (host, port) to fetch from (None: unknown)."""

    def __init__(self, replicas: ReplicaManager, address: Callable[[int], tuple[str, int] | None],
                 to_controller: ControllerCall):
        self.replicas = replicas
        self.address = address
        self.to_controller = to_controller
        self._connections: dict[tuple[int, int], Connection] = {}  # (leader, fetcher slot) -> its connection
        self.security = None  # ClientSecurity for the inter-broker listener (TLS, SASL), set by the node
        self._waiting: dict[int, tuple[tuple[int, int], int]] = {}  # correlation id -> (connection, give-up ms)
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        replicas.on_work = self.wake

    def wake(self) -> None:
        self._wake.set()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Until cancelled; connections close with it."""
        rm = self.replicas
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                while True:
                    self._wake = trio.Event()  # before polling: a wake-up from here on is not lost
                    now = rm.clock()
                    self._close_idle(now)
                    for out in rm.poll(now):
                        self._send(out, now)
                    times = [t for _, t in self._waiting.values()]
                    if (t := rm.next_deadline()) is not None:
                        times.append(t)
                    with trio.move_on_after(max(min(times) - rm.clock(), 0) / 1000 if times else float("inf")):
                        await self._wake.wait()
        finally:
            for c in self._connections.values():
                c.close()

    def _send(self, out: Outbound, now: int) -> None:
        if out.dest == CONTROLLER:
            self._nursery.start_soon(self._alter_partition, out)
            return
        key = (out.dest, out.channel)
        conn = self._connections.get(key)
        if conn is None:
            conn = self._connections[key] = Connection(lambda dest=out.dest: self.address(dest),
                                                       f"replica-fetcher-{self.replicas.node_id}-{out.dest}-{out.channel}",
                                                       security=self.security)
            self._nursery.start_soon(conn.run)
        api_key = out.message.API_KEY
        wait = out.message.max_wait_ms if api_key == m.ApiKey.FETCH else 0
        self._waiting[out.correlation_id] = (key, now + wait + self.replicas.config.replica_socket_timeout_ms)
        conn.submit(out.message, VERSIONS[api_key], lambda result, c=out.correlation_id: self._answered(c, result))

    def _answered(self, correlation_id: int, result: Message | Exception) -> None:
        self._waiting.pop(correlation_id, None)
        rm = self.replicas
        if isinstance(result, Exception):
            rm.request_failed(correlation_id, rm.clock())
        else:
            rm.on_response(correlation_id, result, rm.clock())
        self.wake()

    def _close_idle(self, now: int) -> None:
        """Close the connections of fetchers gone and of requests overdue (their requests fail)."""
        overdue = {c: key for c, (key, give_up) in self._waiting.items() if give_up <= now}
        for correlation_id, key in overdue.items():
            log.info("replica_request_timed_out", leader=key[0], fetcher=key[1])
            self._answered(correlation_id, TimeoutError())
        fetchers = self.replicas.fetchers
        for key in [k for k in self._connections if k not in fetchers or k in overdue.values()]:
            self._connections.pop(key).close()

    async def _alter_partition(self, out: Outbound) -> None:
        rm = self.replicas
        response = await self.to_controller(out.message, ALTER_PARTITION_VERSION,
                                            rm.config.controller_socket_timeout_ms / 1000)
        if response is None:
            rm.request_failed(out.correlation_id, rm.clock())
        else:
            rm.on_response(out.correlation_id, response, rm.clock())
        self.wake()
