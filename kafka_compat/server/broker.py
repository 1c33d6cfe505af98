"""A node process: the metadata quorum, the controller and/or the broker, under one nursery.

`process.roles` says which: a controller runs a voter of the metadata quorum and the
`QuorumController` on its controller listener; a broker registers with the active controller,
applies the committed metadata log to its image, hosts partition logs and serves clients; a
combined node does both (the default, and with no voters configured a one-voter quorum whose
controller runs in process). Admin requests that change metadata go to the active controller:
in process when this node's controller is the active one, else forwarded in an Envelope.

Every listener serves its connections through the same request pipeline (`server.pipeline`), with
the handlers registered for its kind: the client listeners the "broker" handlers, the controller
listener (`controller.listener.names`) the "controller" ones, Raft's RPCs among them.

A broker hands the metadata image to its replica manager once the image holds the broker's own
registration (an older image still shows what its previous incarnation led, which it would lead
again with whatever it lost in a crash); the replication driver then fetches what it follows and
sends ISR changes to the controller.

`Broker.run()` starts everything and serves until cancelled; `shutdown()` (on SIGTERM) asks the
controller for a controlled shutdown (its leaderships move to the other replicas while clients
are still served here), stops accepting, lets in-flight requests finish (briefly) and hands quorum
leadership over; on the way out every log is flushed and checkpointed and the shutdown marked
clean. Handlers reach everything through `ctx.broker`.
"""

from __future__ import annotations

import errno
import signal
import socket
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import trio

from kafka_compat.client.security import ClientSecurity
from kafka_compat.metadata.cluster_control import ClusterControl
from kafka_compat.metadata.controller import METADATA_VERSION, Controller, ControllerDefaults
from kafka_compat.metadata.image import BROKER_RESOURCE, MetadataImage
from kafka_compat.metadata.quorum import MetadataQuorum
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import Message, Uuid
from kafka_compat.raft import wire
from kafka_compat.raft.driver import RaftDriver
from kafka_compat.replication.driver import ReplicationDriver
from kafka_compat.replication.replica_manager import ReplicaManager
from kafka_compat.security.authorizer import Authorizer
from kafka_compat.server.channel_security import ListenerSecurity
from kafka_compat.server.config import BROKER_CONFIGS, BrokerConfig, ConfigError, Listener, ip_overrides, parse_value
from kafka_compat.server.connection import Connection, RequestCount
from kafka_compat.server.controller_channel import ControllerChannel
from kafka_compat.server.dynamic_config import reconfigurable_tls
from kafka_compat.server.errors import error_response
from kafka_compat.server.fetch_session import FetchSessionCache
from kafka_compat.server.group_coordinator import start_group_coordinator
from kafka_compat.server.handlers import BROKER, CONTROLLER
from kafka_compat.server.health import serve_http
from kafka_compat.server.lifecycle import BrokerLifecycleManager
from kafka_compat.server.metrics import NodeMetrics
from kafka_compat.server.pipeline import RequestPipeline, apis
from kafka_compat.server.quorum_controller import ControllerTimers, QuorumController, WriteTimeout
from kafka_compat.server.socket_server import accept
from kafka_compat.server.throttling import ClientQuotas, ConnectionQuotas
from kafka_compat.server.transaction_coordinator import start_transaction_coordinator
from kafka_compat.storage.config import LogConfig
from kafka_compat.storage.dir_lock import DirLocks
from kafka_compat.storage.log_manager import LogManager
from kafka_compat.storage.meta_properties import read_meta_properties, write_meta_properties
from kafka_compat.storage.producer_state import ProducerStateConfig

log = structlog.get_logger("kafka_compat.server")

METRICS = "metrics"  # the HTTP endpoint's socket, beside the listeners' (metrics.port)
SHUTDOWN_GRACE_S = 5.0
MAINTENANCE_INTERVAL_S = 1.0
FORWARD_TIMEOUT_S = 30.0  # how long a forwarded admin request may look for an active controller
CATCH_UP_WAIT_S = 5.0  # how long a forwarding broker waits to see the change in its own image
PRODUCER_IDS_VERSION = 0
CREATE_TOPICS_VERSION = 7


class StartupError(Exception):
    """The node cannot start (a port in use, an address it cannot bind), as one line."""


def bind(listener: Listener) -> list[socket.socket]:
    """Listening sockets for `listener` (one per address its host resolves to), bound now so that
    a port in use stops the start before the data directories are touched; trio serves them later."""
    try:
        infos = socket.getaddrinfo(listener.bind_host, listener.port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except OSError as e:
        raise StartupError(f"listener {listener.name}: cannot resolve {listener.bind_host}: {e.strerror}") from None
    socks: list[socket.socket] = []
    try:
        for family, type_, proto, _, address in infos:
            s = socket.socket(family, type_, proto)
            socks.append(s)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind(address)
            s.listen(socket.SOMAXCONN)
    except OSError as e:
        for s in socks:
            s.close()
        where = f"listener {listener.name}: {listener.bind_host}:{listener.port}"
        if e.errno == errno.EADDRINUSE:
            raise StartupError(f"{where} is already in use (another broker running?); stop what holds it "
                               "or change listeners") from None
        raise StartupError(f"{where}: cannot listen there ({e.strerror}); change listeners") from None
    return socks


def bind_listeners(config: BrokerConfig) -> dict[str, list[socket.socket]]:
    """Bind the listeners this node serves: a broker's client listeners, a controller's listener."""
    controller = config.controller_listener if "controller" in config.roles else None
    wanted = [l for l in config.listeners
              if ("broker" in config.roles and l.name in config.broker_listener_names) or l == controller]
    bound: dict[str, list[socket.socket]] = {}
    try:
        for l in wanted:
            bound[l.name] = bind(l)
    except StartupError:
        for socks in bound.values():
            for s in socks:
                s.close()
        raise
    return bound


def format_log_dirs(config: BrokerConfig, cluster_id: str | None = None, *, ignore_formatted: bool = True) -> str:
    """Write meta.properties into every log dir (as `kafka-storage format` does); return the
    cluster id. Dirs already formatted must agree on node id and cluster id. Unformatted dirs of
    a node that is not alone in its quorum need the cluster id (every node must share it)."""
    dirs = [Path(d) for d in config.log_dirs]
    if config.metadata_log_dir not in config.log_dirs:
        dirs.append(Path(config.metadata_log_dir))
    existing = {d: read_meta_properties(d) for d in dirs}
    ids = {p["cluster.id"] for p in existing.values() if p}
    if len(ids) > 1:
        raise ConfigError(f"log dirs belong to different clusters: {', '.join(sorted(ids))}")
    formatted = ids.pop() if ids else None
    if formatted and cluster_id and cluster_id != formatted and not ignore_formatted:
        raise ConfigError(f"log dirs are already formatted for cluster {formatted}")
    if not formatted and not cluster_id and not config.single_node:
        raise ConfigError(f"{dirs[0]} is not formatted: this node is one of several in a metadata quorum, so every "
                          "node needs the same cluster id; pass --cluster-id "
                          "(or run `kafka-compat format --cluster-id`)")
    cluster = formatted or cluster_id or str(Uuid.random())
    for d, props in existing.items():
        if props is None:
            write_meta_properties(d, config.node_id, cluster, str(Uuid.random()))
        elif int(props.get("node.id", config.node_id)) != config.node_id:
            raise ConfigError(f"{d} belongs to node {props.get('node.id')}, not node.id {config.node_id}")
    return cluster


class Broker:
    def __init__(self, config: BrokerConfig, cluster_id: str | None = None):
        self.config = config
        self.node_id = config.node_id
        self.is_broker = "broker" in config.roles
        # Before anything reads or writes the directories: ours alone, and every port ours too
        # (a start that fails here leaves the disk as it was).
        self.dir_locks = DirLocks.acquire([*config.log_dirs, config.metadata_log_dir])
        self._sockets: dict[str, list[socket.socket]] = {}
        try:
            self._sockets = bind_listeners(config)
            if config["metrics.port"] >= 0:
                self._sockets[METRICS] = bind(Listener(METRICS, config["metrics.host"], config["metrics.port"], "HTTP"))
            self._secure(config)
            self.cluster_id = format_log_dirs(config, cluster_id, ignore_formatted=cluster_id is None)
        except BaseException:
            for s in (s for socks in self._sockets.values() for s in socks):
                s.close()
            self.dir_locks.release(undo=True)
            raise
        self.listening: dict[str, int] = {name: socks[0].getsockname()[1] for name, socks in self._sockets.items()}
        dynamic = frozenset(k for k, v in BROKER_CONFIGS.items() if v.dynamic)
        self.controller = Controller(ControllerDefaults(
            num_partitions=config["num.partitions"], replication_factor=config["default.replication.factor"],
            dynamic_broker_keys=dynamic, broker_key_check=self._check_broker_value,
            unclean_leader_election_enable=config["unclean.leader.election.enable"]))
        self.quorum_controller: QuorumController | None = None
        self.quorum = MetadataQuorum(self.node_id, config.quorum_config(self.cluster_id), Path(config.metadata_log_dir),
                                     self.cluster_id,
                                     snapshot_every_bytes=config["metadata.log.max.record.bytes.between.snapshots"])
        if "controller" in config.roles:
            self.quorum_controller = QuorumController(
                self.node_id, self.quorum, self.controller,
                ClusterControl(self.cluster_id, config["broker.session.timeout.ms"], METADATA_VERSION,
                               unclean_leader_election_enable=config["unclean.leader.election.enable"]),
                ControllerTimers.from_config(config))
        # Channels as Kafka has them: heartbeats and ISR changes never wait behind a forwarded request.
        self.forwarding = ControllerChannel(self.node_id, self.quorum, self.quorum_controller, "forwarding")
        self.lifecycle = BrokerLifecycleManager(
            self.node_id, self.cluster_id, self.quorum,
            ControllerChannel(self.node_id, self.quorum, self.quorum_controller, "heartbeat"),
            heartbeat_interval_ms=config["broker.heartbeat.interval.ms"],
            request_timeout_ms=config["controller.quorum.request.timeout.ms"], rack=config["broker.rack"])
        self.incarnation_id = self.lifecycle.incarnation_id
        self.logs = LogManager(config.log_dirs, self._log_defaults(self.quorum.image),
                               fsync_on_append=config["log.fsync.on.append"], producer_config=ProducerStateConfig(
                                   transaction_verification_enabled=config["transaction.partition.verification.enable"]))
        self.replicas = ReplicaManager(self.node_id, self.logs, self._log_defaults,
                                       config=config.replication_config())
        self.isr_channel = ControllerChannel(self.node_id, self.quorum, self.quorum_controller, "alter-partition")
        self.replication = ReplicationDriver(self.replicas, self._broker_address,
                                             partial(self._call_controller, self.isr_channel))
        self.quotas = ClientQuotas(config["quota.window.num"], config["quota.window.size.seconds"] * 1000)
        self.connection_quotas = ConnectionQuotas(*self._connection_limits(self.quorum.image))
        self.fetch_sessions = FetchSessionCache(config["max.incremental.fetch.session.cache.slots"])
        self.groups = None  # the group coordinator driver, started in run()
        self.transactions = None  # the transaction coordinator driver, started in run()
        self._producer_ids = (0, 0)  # [next, end) of the block of producer ids this broker holds
        self._producer_ids_lock = trio.Lock()
        self.requests = RequestCount()  # on the client listeners
        self._accepting = trio.CancelScope()
        self.serving = False  # started: the listeners accept (a broker: registered and unfenced first)
        self.metrics = NodeMetrics(self)
        if self.is_broker:
            self.quorum.add_listener(self._publish)
            self.quorum.add_listener(self.metrics.follow_image)
            self.lifecycle.on_registered = lambda: self._publish(None, self.quorum.image)
        self.quorum.add_listener(self._tls_changed)
        self.quorum.add_listener(self._producer_settings_changed)
        self.quorum.add_listener(self._connection_limits_changed)
        # The node's own connections to controller listeners speak their security protocol.
        self.quorum.driver.security = self.forwarding.security = self.lifecycle.channel.security = \
            self.isr_channel.security = self.controller_security
        self.replication.security = self.inter_broker_security

    def _secure(self, config: BrokerConfig) -> None:
        """Each listener's TLS context and SASL setup, and the authorizer; ConfigError names a
        setting that cannot work (at start, as Kafka refuses it)."""
        try:
            self.security = {l.name: ListenerSecurity.from_config(config.values, l.name, l.security_protocol,
                                                                  lambda: self.quorum.image)
                             for l in config.listeners if l.name in self._sockets}
            self.authorizer = Authorizer.from_config(config.values, audit=True)
            name = next(iter(config["controller.listener.names"]), "CONTROLLER").upper()
            self.controller_security = ClientSecurity.for_listener(
                config.values, name, config.security_protocols().get(name, "PLAINTEXT"),
                "sasl.mechanism.controller.protocol")
            inter = config.inter_broker_listener or "PLAINTEXT"
            self.inter_broker_security = ClientSecurity.for_listener(  # fetchers, transaction markers
                config.values, inter, config.security_protocols().get(inter, "PLAINTEXT"),
                "sasl.mechanism.inter.broker.protocol")
        except ValueError as e:
            raise ConfigError(str(e)) from None

    def _tls_changed(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """A dynamic keystore or truststore change (`listener.name.<l>.ssl.keystore.*`,
        `.ssl.truststore.*`: IncrementalAlterConfigs on this broker): new TLS connections use it,
        as Kafka's dynamic SSL update; one that cannot be loaded is logged and the old one kept."""
        def stores(image: MetadataImage | None) -> dict[str, str]:
            if image is None:
                return {}
            out = {}
            for resource in ((BROKER_RESOURCE, ""), (BROKER_RESOURCE, str(self.node_id))):
                out.update(reconfigurable_tls(image.configs.get(resource, {})))
            return out
        now = stores(new)
        if now == stores(old):
            return
        merged = {**self.config.values, **now}
        for security in self.security.values():
            try:
                security.reload_tls(merged)
            except ValueError as e:
                log.warning("keystore_update_failed", listener=security.name, reason=str(e))
            else:
                if security.tls is not None:
                    log.info("keystore_updated", listener=security.name)

    def _producer_settings_changed(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """A dynamic `transaction.partition.verification.enable` (IncrementalAlterConfigs on this
        broker or on all) applies to every partition at once, as Kafka's
        DynamicProducerStateManagerConfig: verifications start or stop with the next write."""
        key = "transaction.partition.verification.enable"
        enabled = self._dynamic_value(new, key)
        settings = self.logs.producer_config
        if settings.transaction_verification_enabled != enabled:
            log.info("broker_reconfigured", key=key, old=settings.transaction_verification_enabled, new=enabled)
            settings.transaction_verification_enabled = enabled

    def _connection_limits(self, image: MetadataImage) -> tuple[int, int, dict[str, int]]:
        value = partial(self._dynamic_value, image)
        return (value("max.connections"), value("max.connections.per.ip"),
                ip_overrides(value("max.connections.per.ip.overrides")))

    def _connection_limits_changed(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """A dynamic `max.connections`, `max.connections.per.ip` or `.overrides` (on this broker or
        on all), as Kafka's DynamicConnectionQuota: new connections meet the new limits, open ones stay."""
        cq = self.connection_quotas
        limits = self._connection_limits(new)
        if limits != (cq.max_connections, cq.per_ip, cq.overrides):
            log.info("broker_reconfigured", key="max.connections*", old=(cq.max_connections, cq.per_ip, cq.overrides),
                     new=limits)
            cq.update(*limits)

    def _dynamic_value(self, image: MetadataImage, key: str) -> Any:
        """A dynamic broker key's value: this broker's, else the cluster-wide default, else the
        static one."""
        for resource in ((BROKER_RESOURCE, str(self.node_id)), (BROKER_RESOURCE, "")):
            text = image.configs.get(resource, {}).get(key)
            if text is not None:
                return parse_value(BROKER_CONFIGS[key], text)
        return self.config[key]

    # -- what handlers use ------------------------------------------------------------------

    @property
    def metadata(self) -> MetadataImage:
        return self.quorum.image

    @property
    def raft(self) -> RaftDriver:
        return self.quorum.driver

    @property
    def in_flight(self) -> int:
        """Requests read on the client listeners and not yet answered."""
        return self.requests.value

    def _log_defaults(self, image: MetadataImage) -> LogConfig:
        """Broker-wide topic defaults: server.properties' log.* keys, then dynamic broker configs."""
        static = {k: v for k, v in self.config.explicit.items()}
        static.update(image.configs.get((BROKER_RESOURCE, ""), {}))
        static.update(image.configs.get((BROKER_RESOURCE, str(self.node_id)), {}))
        return LogConfig.from_broker(static)

    def _publish(self, old: MetadataImage | None, new: MetadataImage) -> None:
        """Hand `new` to the replica manager: from the first image that holds this broker's current
        registration on."""
        rm = self.replicas
        epoch = self.lifecycle.epoch
        if rm.image is None:
            me = new.brokers.get(self.node_id)
            if epoch < 0 or me is None or me.epoch != epoch:
                return
            log.info("replicas_published", metadata_offset=new.offset, broker_epoch=epoch)
        if epoch >= 0:
            rm.broker_epoch = epoch
        rm.apply_image(rm.image, new)

    def _broker_address(self, broker_id: int) -> tuple[str, int] | None:
        """Where followers fetch from broker `broker_id`: its inter-broker listener."""
        b = self.quorum.image.brokers.get(broker_id)
        e = b.endpoint(self.config.inter_broker_listener) if b is not None else None
        return (e.host, e.port) if e is not None else None

    async def _call_controller(self, channel: ControllerChannel, request: Message, version: int,
                               timeout: float) -> Message | None:
        """`request` to the active controller through `channel`; None if none answered in time."""
        try:
            return await channel.call(request, version, timeout)
        except (trio.TooSlowError, WriteTimeout):
            return None

    def _check_broker_value(self, key: str, value: str) -> str | None:
        try:
            parse_value(BROKER_CONFIGS[key], value)
        except ConfigError as e:
            return str(e)
        return None

    async def drain(self, timeout: float) -> None:
        """Stop accepting client connections and wait (up to `timeout`) for in-flight requests."""
        self._accepting.cancel()
        with trio.move_on_after(timeout):
            await self.requests.wait_idle()

    async def controller_request(self, ctx, request: Message, *,
                                 seen: Callable[[MetadataImage, Message], bool] | None = None) -> Message:
        """Have the active controller handle an admin request (CreateTopics, DeleteTopics,
        CreatePartitions, AlterConfigs, IncrementalAlterConfigs, DescribeQuorum): in process when
        this node's controller is the active one, else forwarded in an Envelope. `seen(image,
        response)`, if given, says when this node's own image shows the change; the answer waits for it
        (briefly), so that a client's next request here sees what it just did."""
        return await self._forward(request, ctx.api_version, ctx.correlation_id, ctx.client_id, ctx.principal,
                                   ctx.client_host, seen)

    async def create_topics(self, topics: list[m.CreateTopicsRequest.CreatableTopic]) -> m.CreateTopicsResponse:
        """CreateTopics on this broker's own behalf (auto-creation, internal topics such as
        __consumer_offsets), as Kafka's AutoTopicCreationManager sends it to the active
        controller. Returns once this node's image holds every topic that now exists (or after a
        short wait); TOPIC_ALREADY_EXISTS is an answer like any other."""
        request = m.CreateTopicsRequest(topics=topics, timeout_ms=int(FORWARD_TIMEOUT_S * 1000))

        def seen(image: MetadataImage, response: m.CreateTopicsResponse) -> bool:
            return all(r.name in image.topics for r in response.topics
                       if r.error_code in (ErrorCode.NONE, ErrorCode.TOPIC_ALREADY_EXISTS))
        return await self._forward(request, CREATE_TOPICS_VERSION, 0, f"broker-{self.node_id}", "User:ANONYMOUS",
                                   "", seen)

    async def _forward(self, request: Message, version: int, correlation_id: int, client_id: str | None,
                       principal: str, client_host: str, seen) -> Message:
        try:
            response = await self.forwarding.forward(request, version, correlation_id=correlation_id,
                                                     client_id=client_id, principal=principal,
                                                     client_host=client_host, timeout=FORWARD_TIMEOUT_S)
        except (trio.TooSlowError, WriteTimeout):
            return error_response(request.API_KEY, request, version, ErrorCode.REQUEST_TIMED_OUT,
                                  "No active controller handled the request in time.")
        except KafkaError as e:
            return error_response(request.API_KEY, request, version, e.code, e.message)
        if seen is not None:
            with trio.move_on_after(CATCH_UP_WAIT_S):
                await self.quorum.wait_for(lambda: seen(self.quorum.image, response))
        return response

    async def new_producer_id(self) -> int:
        """A producer id never handed out before: the controller hands out blocks of them
        (AllocateProducerIds, recorded with ProducerIdsRecord), so ids stay unique across brokers
        and restarts."""
        async with self._producer_ids_lock:
            start, end = self._producer_ids
            if start >= end:
                start, length = await self.allocate_producer_ids()
                end = start + length
            self._producer_ids = (start + 1, end)
            return start

    async def allocate_producer_ids(self) -> tuple[int, int]:
        """A new block of producer ids from the active controller: (first id, length)."""
        request = m.AllocateProducerIdsRequest(broker_id=self.node_id, broker_epoch=self.lifecycle.epoch)
        try:
            response = await self.forwarding.call(request, PRODUCER_IDS_VERSION, FORWARD_TIMEOUT_S)
        except (trio.TooSlowError, WriteTimeout):
            raise KafkaError(ErrorCode.REQUEST_TIMED_OUT, "no producer ids from the controller in time") from None
        if response.error_code:
            raise KafkaError(ErrorCode(response.error_code), "the controller handed out no producer ids")
        return response.producer_id_start, response.producer_id_len

    async def describe_quorum(self, version: int) -> m.DescribeQuorumResponse:
        """The quorum as its leader describes it (Kafka brokers forward DescribeQuorum)."""
        if self.quorum.leader.leader_id == self.node_id:
            return await self.quorum.describe_quorum(version)
        try:
            return await self.forwarding.call(wire.describe_quorum_request(), version, FORWARD_TIMEOUT_S)
        except trio.TooSlowError:
            return m.DescribeQuorumResponse(error_code=ErrorCode.REQUEST_TIMED_OUT)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled. `task_status.started()` fires once the listeners accept (a
        broker: once it is registered, caught up and unfenced)."""
        try:
            async with trio.open_nursery() as nursery:
                client_listeners = self._listeners(self.config.broker_listener_names if self.is_broker else [])
                controller = self.config.controller_listener if "controller" in self.config.roles else None
                controller_listeners = self._listeners([controller.name] if controller else [])
                # The quorum's peers reach it through the controller listener, from the start.
                nursery.start_soon(self._serve, controller_listeners, CONTROLLER, RequestCount(), trio.CancelScope())
                if METRICS in self._sockets:  # probes answer (not ready) while the node starts
                    nursery.start_soon(serve_http, self, [trio.SocketListener(trio.socket.from_stdlib_socket(s))
                                                          for s in self._sockets[METRICS]])
                await nursery.start(self.quorum.run)
                await nursery.start(self.forwarding.run)
                await nursery.start(self.lifecycle.channel.run)
                await nursery.start(self.isr_channel.run)
                if self.quorum_controller is not None:
                    await nursery.start(self.quorum_controller.run)
                if self.is_broker:
                    if self.replicas.syncer is not None:
                        await nursery.start(self.replicas.syncer.run)
                    await nursery.start(self.replication.run)
                    self.lifecycle.endpoints = [
                        (l.name, l.host, self.listening.get(l.name, l.port) if l.port == 0 else l.port,
                         l.security_protocol)
                        for l in self.config.advertised_listeners]
                    await nursery.start(self.lifecycle.run)
                    self.groups = await start_group_coordinator(self, nursery)
                    self.transactions = await start_transaction_coordinator(self, nursery)
                    nursery.start_soon(self._serve, client_listeners, BROKER, self.requests, self._accepting)
                    nursery.start_soon(self._maintenance)
                    await self.groups.wait_loaded()  # its summary line comes before the ready line
                self.serving = True
                log.info(self.ready_line())
                task_status.started(self)
                await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                self.close()

    def ready_line(self) -> str:
        """`ready: PLAINTEXT://127.0.0.1:9092, controller ..., cluster id ..., data ./data`: the last
        line of a start, saying where clients connect and where the controller and the data are."""
        where = []
        if self.is_broker:
            where += [f"{l.name}://{l.host}:{self.listening.get(l.name, l.port) if l.port == 0 else l.port}"
                      for l in self.config.advertised_listeners]
        listener = self.config.controller_listener
        if "controller" not in self.config.roles:
            where.append(f"controller quorum {','.join(self.config['controller.quorum.voters'])}"
                         if self.config["controller.quorum.voters"]
                         else f"controller bootstrap {','.join(self.config['controller.quorum.bootstrap.servers'])}")
        elif listener is None:
            where.append("controller in process")
        else:
            where.append(f"controller {listener.name}://{listener.bind_host}:{self.listening[listener.name]}")
        if METRICS in self.listening:
            where.append(f"metrics http://{self.config['metrics.host'] or '0.0.0.0'}:{self.listening[METRICS]}/metrics")
        return f"ready: {', '.join(where)}, cluster id {self.cluster_id}, data {', '.join(self.config.log_dirs)}"

    async def shutdown(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Before cancelling `run`: a controlled shutdown at the controller (this broker's
        leaderships move away while its clients are still served, so that they find the new
        leaders), then stop accepting and let requests in flight finish (up to `grace` seconds),
        then hand quorum leadership over."""
        if self.is_broker:
            await self.lifecycle.shutdown()
        await self.drain(grace)
        await self.quorum.shutdown()

    def _listeners(self, names: list[str]) -> list[tuple[Listener, list[trio.SocketListener]]]:
        """The listeners named, over their sockets bound in `__init__`, for trio to serve."""
        return [(l, [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in self._sockets[l.name]])
                for l in self.config.listeners if l.name in names]

    async def _serve(self, listeners: list[tuple[Listener, list[trio.SocketListener]]], kind: str,
                     requests: RequestCount, accepting: trio.CancelScope) -> None:
        """Serve `listeners` with the handlers for `kind` ("broker" or "controller") until
        cancelled; cancelling `accepting` stops taking new connections only."""
        handlers = apis(kind)
        max_request_bytes, idle_ms = self.config["socket.request.max.bytes"], self.config["connections.max.idle.ms"]
        max_queued = self.config["queued.max.requests"]

        metrics = self.metrics
        observe = metrics.requests.observe if metrics.observing else None

        async def connection(stream: trio.SocketStream, peer: str, listener: str) -> None:
            ip = peer.rsplit(":", 1)[0]
            admitted, hold_s = self.connection_quotas.admit(ip, self.metadata.client_quotas)
            if not admitted:
                log.info("connection_refused", peer=peer, reason="max.connections or max.connections.per.ip reached")
                await trio.aclose_forcefully(stream)
                return
            metrics.connections_created[listener] += 1
            metrics.connections[listener] += 1
            try:
                if hold_s:  # over the ip's connection_creation_rate: held before it is served
                    await trio.sleep(hold_s)
                await secured_connection(stream, peer, listener)
            finally:
                metrics.connections[listener] -= 1
                self.connection_quotas.release(ip)

        async def secured_connection(stream: trio.SocketStream, peer: str, listener: str) -> None:
            security = self.security[listener]
            secured = await security.accept(stream, peer)
            if secured is None:
                return
            stream, principal = secured
            pipeline = RequestPipeline(self, handlers, listener, peer, principal)
            conn = Connection(stream, pipeline, peer, max_request_bytes=max_request_bytes, idle_ms=idle_ms,
                              max_queued=max_queued, requests=requests, observe=observe)
            conn.serve = security.serve(pipeline, conn.frames)
            await conn.run()

        async with trio.open_nursery() as connections:
            with accepting:
                async with trio.open_nursery() as acceptors:
                    for listener, socks in listeners:
                        for sock in socks:
                            acceptors.start_soon(accept, sock, partial(connection, listener=listener.name),
                                                 connections)

    async def _maintenance(self) -> None:
        """Retention, flushing, file deletion, checkpoints and compaction, on Kafka's intervals
        (the checkpoints as often as the first of them wants: high watermarks every
        replica.high.watermark.checkpoint.interval.ms, which a restarted follower starts from)."""
        retention_every = self.config["log.retention.check.interval.ms"] / 1000
        checkpoint_every = min(self.config["log.flush.offset.checkpoint.interval.ms"],
                               self.config["replica.high.watermark.checkpoint.interval.ms"]) / 1000
        cleaner_every = self.config["log.cleaner.backoff.ms"] / 1000
        last_retention = last_checkpoint = last_clean = time.monotonic()
        while True:
            await trio.sleep(MAINTENANCE_INTERVAL_S)
            now_ms, t = int(time.time() * 1000), time.monotonic()
            await trio.to_thread.run_sync(self.logs.flush_due, now_ms)  # fsyncs: off the event loop
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
        self.dir_locks.release()
        log.info("broker_stopped", node_id=self.node_id)


async def run_until_signalled(broker: Broker) -> None:
    """Run the broker; SIGTERM or SIGINT shuts it down (`Broker.shutdown`)."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(broker.run)
            async for sig in signals:
                log.info("shutdown_requested", signal=signal.Signals(sig).name, in_flight=broker.in_flight)
                await broker.shutdown()
                nursery.cancel_scope.cancel()
                break
