"""The request pipeline, one for every listener: a frame in, its handler, a response frame out.

`read_request` decodes the header; the listener's handler table (`apis(listener)`: the handlers
registered for "broker" or "controller" listeners) picks the handler and says which versions it
serves; the body is decoded, the handler called with a `RequestContext`, and its response encoded
for the request's version and correlation id. What goes wrong is answered as Kafka answers it:

- a malformed header or body, or an API the listener does not serve: the connection is closed
  (CLOSE), with one log line;
- a version the handler does not serve: ApiVersions answers with a v0 body carrying
  UNSUPPORTED_VERSION and what the listener serves, so that the client can retry at a version it
  knows; other APIs answer UNSUPPORTED_VERSION where their response can say so, else close;
- `KafkaError` from a handler: that code, where the response has a top-level error code, else close;
- any other exception: logged, UNKNOWN_SERVER_ERROR where the response can carry it, else close.

A `Deferred` from a handler becomes a function the connection awaits in its own task.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

import structlog
import trio

from kafka_compat.protocol import framing, messages
from kafka_compat.protocol.errors import ErrorCode, KafkaError
from kafka_compat.protocol.primitives import DecodeError, EncodeError, Message
from kafka_compat.security.principal import ANONYMOUS
from kafka_compat.server import errors
from kafka_compat.server.connection import CLOSE, Reply
from kafka_compat.server.handlers import (
    HANDLERS,
    CloseConnection,
    Deferred,
    Handler,
    RequestContext,
    api_versions,
    cluster,
    configs,
    controller,
    fetch,
    groups,
    log_offsets,
    metadata,
    partitions,
    produce,
    quorum,
    sasl,
    security,
    topics,
    transactions,
)
from kafka_compat.server.handlers.api_versions import api_versions_response
from kafka_compat.server.throttling import Stopwatch, timed

if TYPE_CHECKING:
    from kafka_compat.server.broker import Broker

log = structlog.get_logger("kafka_compat.server")

# Every family registers its handlers when imported: a family left out of here serves nothing.
FAMILIES = (api_versions, cluster, configs, controller, fetch, groups, log_offsets, metadata, partitions, produce,
            quorum, sasl, security, topics, transactions)


def apis(listener: str) -> Mapping[int, Handler]:
    """The handlers a listener serves: "broker" (client listeners) or "controller"."""
    return HANDLERS[listener]


class RequestPipeline:
    """The requests of one connection from `peer` (host:port) on `listener` (its name), served by
    the handlers in `apis`. Called with each frame; returns what `server.connection` writes."""

    __slots__ = ("broker", "apis", "listener", "peer", "client_host", "principal", "muted_until", "quotas")

    def __init__(self, broker: Broker, apis: Mapping[int, Handler], listener: str, peer: str,
                 principal: str = ANONYMOUS):
        self.broker = broker
        self.apis = apis
        self.listener = listener
        self.peer = peer
        self.client_host = peer.rsplit(":", 1)[0]
        self.principal = principal  # the TLS certificate's, or set by the SASL gate once authenticated
        self.muted_until = 0.0  # a throttled client's next request waits until then (trio time)
        # client quotas; none on a controller listener (the cluster's own traffic) or a Raft peer
        self.quotas = None if apis is HANDLERS["controller"] else getattr(broker, "quotas", None)

    async def __call__(self, frame: bytearray):
        if self.muted_until:  # throttled: the channel reads nothing more until the time is served
            await trio.sleep_until(self.muted_until)
            self.muted_until = 0.0
        try:
            rf = framing.read_request(frame)
        except DecodeError as e:
            log.warning("malformed_request", peer=self.peer, reason=str(e))
            return CLOSE
        handler = self.apis.get(rf.api_key)
        if handler is None:
            log.warning("unknown_api", peer=self.peer, api_key=rf.api_key, client_id=rf.client_id,
                        listener=self.listener)
            return CLOSE
        if rf.header is None or not handler.min_version <= rf.api_version <= handler.max_version:
            return self._unsupported_version(rf)
        try:
            request = rf.decode_body(messages.request_class(rf.api_key))
        except DecodeError as e:
            log.warning("malformed_request", peer=self.peer, api=messages.ApiKey(rf.api_key).name,
                        version=rf.api_version, client_id=rf.client_id, reason=str(e), head=bytes(frame[:64]).hex())
            return CLOSE
        client_quotas = self.broker.metadata.client_quotas if self.quotas is not None else None
        # the handler's own time (Kafka's request-thread time), only while some client has a request quota
        watch = Stopwatch() if client_quotas and self.quotas.measures_time(client_quotas, rf.api_key) else None
        ctx = RequestContext(self.broker, rf.api_key, rf.api_version, rf.correlation_id, rf.client_id,
                             self.client_host, self.listener, self.apis, self.principal, watch)
        try:
            result = await (handler.fn(ctx, request) if watch is None else timed(handler.fn(ctx, request), watch))
        except CloseConnection:
            return CLOSE
        except KafkaError as e:
            result = errors.error_response(rf.api_key, request, rf.api_version, e.code, e.message)
            if result is None:
                log.warning("request_failed", api=messages.ApiKey(rf.api_key).name, error=e.code.name, reason=e.message)
                return CLOSE
        except Exception:
            log.exception("handler_crashed", api=messages.ApiKey(rf.api_key).name, version=rf.api_version,
                          client_id=rf.client_id)
            result = errors.error_response(rf.api_key, request, rf.api_version, ErrorCode.UNKNOWN_SERVER_ERROR)
            if result is None:
                return CLOSE
        if isinstance(result, Deferred):
            return partial(self._complete, result, ctx, request, len(frame), client_quotas, watch)
        self._throttle(result, rf.api_key, rf.api_version, rf.client_id, request, len(frame), client_quotas, ctx.watch)
        return _encode(result, rf.api_key, rf.api_version, rf.correlation_id)

    async def _complete(self, deferred: Deferred, ctx: RequestContext, request: Message, size: int, client_quotas,
                        watch: Stopwatch | None) -> Reply:
        api_key, version = ctx.api_key, ctx.api_version
        try:
            result = await (deferred.run() if watch is None else timed(deferred.run(), watch))
        except Exception:
            log.exception("handler_crashed", api=messages.ApiKey(api_key).name, version=version)
            return CLOSE
        # ctx.watch is None when the handler recorded its time itself (a fetch: see throttling)
        self._throttle(result, api_key, version, ctx.client_id, request, size, client_quotas, ctx.watch)
        return _encode(result, api_key, version, ctx.correlation_id)

    def _throttle(self, response: Message | None, api_key: int, version: int, client_id: str | None,
                  request: Message, size: int, client_quotas, watch: Stopwatch | None) -> None:
        """Record the request against its client's quotas (those of the image when it came in);
        the throttle they or the handler ask for goes in the response and mutes the channel."""
        if not client_quotas:
            return
        ms = self.quotas.throttle_ms(client_quotas, self.principal, client_id, api_key, request, size, response,
                                     watch)
        # a throttle the handler set itself (controller_mutation_rate) mutes the channel as well
        ms = max(ms, getattr(response, "throttle_time_ms", 0) or 0)
        if ms > 0:
            if response is not None and response.has_field("throttle_time_ms", version):
                response.throttle_time_ms = max(response.throttle_time_ms or 0, ms)
            self.muted_until = max(self.muted_until, trio.current_time() + ms / 1000)

    def _unsupported_version(self, rf: framing.RequestFrame) -> Reply:
        log.info("unsupported_version", peer=self.peer, api=messages.ApiKey(rf.api_key).name,
                 version=rf.api_version, client_id=rf.client_id)
        if rf.api_key == messages.ApiKey.API_VERSIONS:
            response = api_versions_response(self.apis, ErrorCode.UNSUPPORTED_VERSION)
            return _encode(response, rf.api_key, 0, rf.correlation_id)
        response = None
        if rf.header is not None:
            response = errors.error_response(rf.api_key, None, rf.api_version, ErrorCode.UNSUPPORTED_VERSION)
        return CLOSE if response is None else _encode(response, rf.api_key, rf.api_version, rf.correlation_id)


def _encode(response: Message | None, api_key: int, version: int, correlation_id: int) -> Reply:
    if response is None:
        return None
    try:
        return framing.response_frame(response, version, correlation_id)
    except EncodeError as e:
        log.error("response_encode_failed", api=messages.ApiKey(api_key).name, version=version, reason=str(e))
        return CLOSE
