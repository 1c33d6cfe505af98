"""API handlers, one module per API family; each registers the versions it serves and the
listeners that serve it.

A handler is `async def handle(ctx: RequestContext, request) -> response | None` registered with
`@handles(ApiKey.X, versions=(lo, hi), listeners=(...))`. A listener is "broker" (the client
listeners, the default) or "controller" (`controller.listener.names`); a handler may claim only
listeners that Kafka's schema for the API lists, and an API may have one handler per listener
(Fetch reads partitions on a broker listener and the metadata log on a controller listener).
ApiVersions answers from these declarations, so a version is advertised on a listener exactly
when a handler there says it serves it.

Returning None sends no response (acks=0 produce); returning a `Deferred` answers later, while the
connection goes on reading. Raising `KafkaError` answers with that code where the response has a
top-level error code; `CloseConnection` closes the connection instead of answering; anything else
is logged and answered UNKNOWN_SERVER_ERROR (see `server.pipeline`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kafka_compat.protocol import messages

if TYPE_CHECKING:
    from kafka_compat.server.broker import Broker

BROKER, CONTROLLER = "broker", "controller"


@dataclass(slots=True)
class RequestContext:
    """What a handler knows about the request besides its body."""

    broker: Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    client_host: str
    listener: str
    apis: Mapping[int, Handler]  # what this listener serves
    principal: str = "User:ANONYMOUS"
    # the handler's request-thread time so far, while some client has a request_percentage quota
    watch: Any = None


@dataclass(frozen=True, slots=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    fn: Callable[[RequestContext, Any], Awaitable[Any]]


class Deferred:
    """A response to be produced later: `await deferred.run()` returns it (or None for none)."""

    __slots__ = ("run",)

    def __init__(self, run: Callable[[], Awaitable[object]]):
        self.run = run


class CloseConnection(Exception):
    """Raised by a handler to close the client's connection instead of answering (Kafka does this
    for an acks=0 produce that failed, so that the producer notices and refreshes metadata)."""


# listener ("broker" or "controller") -> api key -> handler
HANDLERS: dict[str, dict[int, Handler]] = {BROKER: {}, CONTROLLER: {}}


def handles(api_key: int, versions: tuple[int, int], listeners: tuple[str, ...] = (BROKER,)):
    """Register a handler for `api_key` serving `versions` (inclusive) on `listeners`."""
    allowed = messages.request_class(api_key).LISTENERS

    def register(fn):
        for listener in listeners:
            if listener not in allowed:
                raise RuntimeError(f"{messages.ApiKey(api_key).name} is not served on {listener} listeners "
                                   f"(Kafka serves it on {', '.join(allowed)})")
            if api_key in HANDLERS[listener]:
                raise RuntimeError(f"two handlers for {messages.ApiKey(api_key).name} on {listener} listeners")
            HANDLERS[listener][api_key] = Handler(int(api_key), versions[0], versions[1], fn)
        return fn

    return register
