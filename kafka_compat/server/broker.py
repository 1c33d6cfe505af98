"""A broker process: the metadata log, the partition logs, the listeners and the background work.

`Broker.run()` starts everything under one nursery and serves until cancelled; on the way out it
stops accepting, lets in-flight requests finish (briefly), flushes and checkpoints every log and
marks the shutdown clean. Handlers reach everything through `ctx.broker`.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Callable

import structlog
import trio

from kafka_compat.metadata.controller import Controller, ControllerDefaults
from kafka_compat.metadata.image import BROKER_RESOURCE, MetadataImage
from kafka_compat.metadata.quorum import SingleVoterQuorum, read_meta_properties, write_meta_properties
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.replication.replica_manager import ReplicaManager
from kafka_compat.server.config import BROKER_CONFIGS, BrokerConfig, ConfigError, Listener, parse_value
from kafka_compat.server.connection import Connection, configure_socket
from kafka_compat.server.fetch_session import FetchSessionCache
from kafka_compat.server.group_log import start_group_coordinator
from kafka_compat.server.handlers import load_all
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.log_manager import LogManager

log = structlog.get_logger("kafka_compat.server")

SHUTDOWN_GRACE_S = 5.0
PRODUCER_ID_BLOCK = 1000
MAINTENANCE_INTERVAL_S = 1.0


def format_log_dirs(config: BrokerConfig, cluster_id: str | None = None, *, ignore_formatted: bool = True) -> str:
    """Write meta.properties into every log dir (as `kafka-storage format` does); return the
    cluster id. Dirs already formatted must agree on node id and cluster id."""
    dirs = [Path(d) for d in config.log_dirs]
    if config.metadata_log_dir not in config.log_dirs:
        dirs.append(Path(config.metadata_log_dir))
    existing = {d: read_meta_properties(d) for d in dirs}
    ids = {p["cluster.id"] for p in existing.values() if p}
    if len(ids) > 1:
        raise ConfigError(f"log dirs belong to different clusters: {', '.join(sorted(ids))}")
    if ids and cluster_id and cluster_id not in ids:
        if not ignore_formatted:
            raise ConfigError(f"log dirs are already formatted for cluster {ids.pop()}")
    cluster = cluster_id or (ids.pop() if ids else str(Uuid.random()))
    for d, props in existing.items():
        if props is None:
            write_meta_properties(d, config.node_id, cluster, str(Uuid.random()))
        elif int(props.get("node.id", config.node_id)) != config.node_id:
            raise ConfigError(f"{d} belongs to node {props.get('node.id')}, not node.id {config.node_id}")
    return cluster


class Broker:
    def __init__(self, config: BrokerConfig):
        self.config = config
        self.node_id = config.node_id
        load_all()
        self.cluster_id = format_log_dirs(config)
        self.incarnation_id = Uuid.random()
        self.quorum = SingleVoterQuorum(Path(config.metadata_log_dir), self.cluster_id)
        dynamic = frozenset(k for k, v in BROKER_CONFIGS.items() if v.dynamic)
        self.controller = Controller(ControllerDefaults(
            num_partitions=config["num.partitions"], replication_factor=config["default.replication.factor"],
            dynamic_broker_keys=dynamic, broker_key_check=self._check_broker_value))
        self.logs = LogManager(config.log_dirs, self._log_defaults(self.quorum.image),
                               fsync_on_append=config["log.fsync.on.append"])
        self.replicas = ReplicaManager(self.node_id, self.logs, self._log_defaults)
        self.fetch_sessions = FetchSessionCache(config["max.incremental.fetch.session.cache.slots"])
        self.groups = None  # the group coordinator runtime, started in run()
        self.listening: dict[str, int] = {}  # listener name -> bound port (port 0 picks one)
        self._producer_ids = (0, 0)  # [next, end) of the block of producer ids this broker holds
        self.in_flight = 0  # requests read and not yet answered, across connections
        self._drained = trio.Event()
        self._accepting = trio.CancelScope()
        self.quorum.add_listener(self.replicas.apply_image)

    # -- what handlers use ------------------------------------------------------------------

    @property
    def metadata(self) -> MetadataImage:
        return self.quorum.image

    def _log_defaults(self, image: MetadataImage) -> LogConfig:
        """Broker-wide topic defaults: server.properties' log.* keys, then dynamic broker configs."""
        static = {k: v for k, v in self.config.explicit.items()}
        static.update(image.configs.get((BROKER_RESOURCE, ""), {}))
        static.update(image.configs.get((BROKER_RESOURCE, str(self.node_id)), {}))
        return LogConfig.from_broker(static)

    def _check_broker_value(self, key: str, value: str) -> str | None:
        try:
            parse_value(BROKER_CONFIGS[key], value)
        except ConfigError as e:
            return str(e)
        return None

    def request_started(self) -> None:
        self.in_flight += 1

    def request_finished(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._drained.set()
            self._drained = trio.Event()

    async def drain(self, timeout: float) -> None:
        """Stop accepting connections and wait (up to `timeout`) for in-flight requests."""
        self._accepting.cancel()
        with trio.move_on_after(timeout):
            while self.in_flight:
                await self._drained.wait()

    async def controller_write(self, decide: Callable[[MetadataImage], tuple[list[Message], object]]):
        """Run a controller decision against the current image and commit its records; returns
        the decision's response once the records are applied (so the caller sees its change)."""
        async with self.quorum.lock:
            records, response = decide(self.metadata)
            if records:
                await self.quorum.write(records)
            return response

    async def new_producer_id(self) -> int:
        """A producer id never handed out before: blocks of 1000 are reserved in the metadata log
        (ProducerIdsRecord), so ids stay unique across restarts."""
        async with self.quorum.lock:
            start, end = self._producer_ids
            if start >= end:
                start = self.metadata.next_producer_id
                end = start + PRODUCER_ID_BLOCK
                await self.quorum.write([m.ProducerIdsRecord(broker_id=self.node_id, broker_epoch=-1, next_producer_id=end)])
            self._producer_ids = (start + 1, end)
            return start

    def advertised(self, listener: str) -> tuple[str, int]:
        for l in self.config.advertised_listeners:
            if l.name == listener:
                return l.host, self.listening.get(l.name, l.port) if l.port == 0 else l.port
        l = self.config.advertised_listeners[0]
        return l.host, l.port

    # -- lifecycle ---------------------------------------------------------------------------

    async def _bootstrap(self) -> None:
        """First start: the cluster's features; every start: this broker's registration."""
        async with self.quorum.lock:
            if "metadata.version" not in self.metadata.features:
                await self.quorum.write(self.controller.bootstrap())
            endpoints = []
            for l in self.config.advertised_listeners:
                port = self.listening.get(l.name, l.port) if l.port == 0 else l.port
                endpoints.append((l.name, l.host, port, l.security_protocol))
            epoch = self.quorum.log.log_end_offset  # Kafka: the offset of the registration record
            await self.quorum.write(self.controller.register_broker(
                self.node_id, epoch, self.incarnation_id, endpoints, self.config["broker.rack"]))
        self.replicas.apply_image(None, self.metadata)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. `task_status.started()` fires once the listeners accept."""
        try:
            async with trio.open_nursery() as nursery:
                listeners = []
                for l in self.config.listeners:
                    if l.name in (n.upper() for n in self.config["controller.listener.names"]):
                        continue
                    socks = await trio.open_tcp_listeners(l.port, host=l.bind_host)
                    self.listening[l.name] = socks[0].socket.getsockname()[1]
                    listeners.append((l, socks))
                await self._bootstrap()
                self.groups = await start_group_coordinator(self, nursery)
                nursery.start_soon(self._serve, listeners, nursery)
                nursery.start_soon(self._maintenance)
                log.info("broker_started", node_id=self.node_id, cluster_id=self.cluster_id,
                         listeners={n: p for n, p in self.listening.items()}, topics=len(self.metadata.topics))
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                self.close()

    async def _serve(self, listeners: list[tuple[Listener, list]], nursery: trio.Nursery) -> None:
        async with trio.open_nursery() as conns:
            with self._accepting:
                async with trio.open_nursery() as accept:
                    for listener, socks in listeners:
                        for sock in socks:
                            accept.start_soon(self._accept_loop, sock, listener, conns)

    async def _accept_loop(self, server: trio.SocketListener, listener: Listener, conns: trio.Nursery) -> None:
        async with server:
            while True:
                try:
                    stream = await server.accept()
                except OSError as e:  # EMFILE and friends: back off, keep serving the others
                    log.warning("accept_failed", error=str(e))
                    await trio.sleep(0.1)
                    continue
                configure_socket(stream.socket)
                peer = "%s:%s" % stream.socket.getpeername()[:2]
                conns.start_soon(Connection(self, stream, listener, peer).serve)

    async def _maintenance(self) -> None:
        """Retention, flushing, file deletion, checkpoints and compaction, on Kafka's intervals."""
        retention_every = self.config["log.retention.check.interval.ms"] / 1000
        checkpoint_every = self.config["log.flush.offset.checkpoint.interval.ms"] / 1000
        cleaner_every = self.config["log.cleaner.backoff.ms"] / 1000
        last_retention = last_checkpoint = last_clean = time.monotonic()
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL_S)
            now_ms, t = int(time.time() * 1000), time.monotonic()
            self.logs.flush_due(now_ms)
            self.logs.delete_expired_files(now_ms)
            if t - last_retention >= retention_every:
                last_retention = t
                deleted = self.logs.run_retention(now_ms)
                if deleted:
                    log.info("retention_ran", segments_deleted=deleted)
            if t - last_checkpoint >= checkpoint_every:
                last_checkpoint = t
                await trio.to_thread.run_sync(self.logs.checkpoint)
            if self.config["log.cleaner.enable"] and t - last_clean >= cleaner_every:
                last_clean = t
                result = await trio.to_thread.run_sync(self.logs.clean_once, now_ms)
                if result is not None:
                    log.info("log_compacted", result=str(result))

    def close(self) -> None:
        """Flush, checkpoint and mark the shutdown clean (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.logs.close()
        self.quorum.close()
        log.info("broker_stopped", node_id=self.node_id)


async def run_until_signalled(broker: Broker) -> None:
    """Run the broker; SIGTERM or SIGINT stops accepting, lets requests finish, then shuts down."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run)
            async for sig in signals:
                log.info("shutdown_requested", signal=signal.Signals(sig).name, in_flight=broker.in_flight)
                await broker.drain(SHUTDOWN_GRACE_S)
                nursery.cancel_scope.cancel()
                break
