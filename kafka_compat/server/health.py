"""The node's HTTP endpoint (`metrics.port`, `metrics.host`): Prometheus metrics and container probes.

- `GET /metrics`: the node's registry (`server.metrics`) in Prometheus' text format;
- `GET /health/live`: 200 while the process serves at all (a liveness probe);
- `GET /health/ready`: 200 once the node can take its share of traffic, else 503 with the reasons,
  one a line (a readiness probe). A broker is ready when it is registered with the active
  controller, unfenced (which the controller grants once it has caught up with the metadata log),
  shown unfenced in its own metadata image, and has had a heartbeat answered within
  `broker.session.timeout.ms` (past that, the controller fences it). A controller is ready once it
  knows the quorum's leader.

It is a small HTTP/1.1 server on the node's own trio loop rather than prometheus_client's threaded
one: the collectors then read the broker's live structures (partitions, groups, the image) between
two awaits, with no lock on any request path and no torn reads. A scrape costs a walk over the
partitions and groups, on the loop, once per scrape interval. One request per connection.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import structlog
import trio
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

if TYPE_CHECKING:
    from kafka_compat.server.broker import Broker

log = structlog.get_logger("kafka_compat.server")

MAX_HEAD = 8192  # a probe's request head is a few hundred bytes
READ_TIMEOUT_S = 10.0
_TEXT = "text/plain; charset=utf-8"


def not_ready(broker: Broker) -> list[str]:
    """Why `broker` is not ready to serve (empty: ready)."""
    reasons = []
    if not broker.serving:
        reasons.append("starting")
    if broker.quorum.leader.leader_id < 0:
        reasons.append("no metadata quorum leader known")
    if broker.is_broker:
        lc = broker.lifecycle
        if lc.epoch < 0:
            reasons.append("not registered with the controller")
        elif lc.fenced:
            reasons.append("fenced by the controller (catching up with the metadata log)")
        else:
            silent_ms = (trio.current_time() - lc.answered_at) * 1000
            if silent_ms > broker.config["broker.session.timeout.ms"]:
                reasons.append(f"no heartbeat answered by the controller for {silent_ms:.0f} ms")
        me = broker.metadata.brokers.get(broker.node_id)
        if lc.epoch >= 0 and (me is None or me.fenced or me.epoch != lc.epoch):
            reasons.append("not shown unfenced in this node's metadata image yet")
    return reasons


def _respond(broker: Broker, method: str, path: str) -> tuple[str, str, bytes]:
    if method not in ("GET", "HEAD"):
        return "405 Method Not Allowed", _TEXT, b"GET or HEAD only\n"
    if path == "/metrics":
        return "200 OK", CONTENT_TYPE_LATEST, generate_latest(broker.metrics.registry)
    if path == "/health/live":
        return "200 OK", _TEXT, b"live\n"
    if path == "/health/ready":
        reasons = not_ready(broker)
        if reasons:
            return "503 Service Unavailable", _TEXT, "".join(f"not ready: {r}\n" for r in reasons).encode()
        return "200 OK", _TEXT, b"ready\n"
    return "404 Not Found", _TEXT, b"/metrics, /health/live or /health/ready\n"


async def _serve_one(broker: Broker, stream: trio.SocketStream) -> None:
    try:
        async with stream:
            head = bytearray()
            with trio.move_on_after(READ_TIMEOUT_S):
                while b"\r\n\r\n" not in head and len(head) < MAX_HEAD:
                    chunk = await stream.receive_some(4096)
                    if not chunk:
                        return
                    head += chunk
            parts = bytes(head).split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                status, ctype, body = "400 Bad Request", _TEXT, b"not an HTTP request\n"
                method = "GET"
            else:
                method = parts[0]
                status, ctype, body = _respond(broker, method, parts[1].split("?", 1)[0])
            response = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                        "Connection: close\r\n\r\n").encode("latin-1")
            await stream.send_all(response + body if method != "HEAD" else response)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
        pass
    except Exception:  # never the node's problem: one line, and the endpoint goes on
        log.exception("http_request_failed")


async def serve_http(broker: Broker, listeners: list[trio.SocketListener]) -> None:
    """Serve the endpoint on `listeners` until cancelled."""
    await trio.serve_listeners(partial(_serve_one, broker), listeners)
