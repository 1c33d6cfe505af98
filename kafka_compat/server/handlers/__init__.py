"""API handlers, one module per API family; each registers the versions it serves.

A handler is `async def handle(ctx: RequestContext, request) -> response | None` registered with
`@handles(ApiKey.X, versions=(lo, hi))`. ApiVersions answers from these declarations, so a version
is advertised exactly when a handler says it serves it. Returning None sends no response (acks=0
produce). Raising `KafkaError` answers with that code where the response has a top-level error
code (`errors.error_response`); anything else is logged and the connection is closed.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kafka_compat.server.broker import Broker

# Modules that register handlers when imported (kept in one list so every family is loaded).
FAMILIES = (
    "api_versions",
    "metadata",
    "produce",
    "fetch",
    "log_offsets",
    "topics",
    "configs",
    "cluster",
    "groups",
    "quorum",
)


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
    principal: str = "User:ANONYMOUS"
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    fn: Callable[[RequestContext, Any], Awaitable[Any]]


HANDLERS: dict[int, Handler] = {}


class CloseConnection(Exception):
    """Raised by a handler to close the client's connection instead of answering (Kafka does this
    for an acks=0 produce that failed, so that the producer notices and refreshes metadata)."""


def handles(api_key: int, versions: tuple[int, int]):
    """Register a handler for `api_key` serving `versions` (inclusive)."""

    def register(fn):
        if api_key in HANDLERS:
            raise RuntimeError(f"two handlers for api key {api_key}")
        HANDLERS[api_key] = Handler(int(api_key), versions[0], versions[1], fn)
        return fn

    return register


def load_all() -> dict[int, Handler]:
    """Import every handler family (idempotent) and return the registry."""
    for name in FAMILIES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    return HANDLERS
