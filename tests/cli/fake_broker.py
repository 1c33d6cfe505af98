"""A scripted Kafka endpoint for client paths one healthy broker never takes (a leader that moved,
old API versions): it answers each request with `handlers[api_key](request, version)` and
advertises `versions` in ApiVersions. Threads and blocking sockets: it serves one test."""

from __future__ import annotations

import socket
import threading
from typing import Callable

from kafka_compat.protocol import framing, messages as m
from kafka_compat.protocol.primitives import join


class FakeBroker:
    node_id = 1

    def __init__(self, handlers: dict[int, Callable], versions: dict[int, tuple[int, int]]):
        self.handlers, self.versions = handlers, versions
        self.requests: list[tuple[int, int, object]] = []  # (api key, version, request)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metadata(self, topics: dict[str, int]) -> Callable:
        """A Metadata handler: this broker leads every partition of `topics` (name -> count)."""
        R = m.MetadataResponse

        def handle(req, version):
            return R(brokers=[R.MetadataResponseBroker(node_id=self.node_id, host="127.0.0.1", port=self.port)],
                     controller_id=self.node_id, topics=[R.MetadataResponseTopic(name=t, partitions=[
                         R.MetadataResponsePartition(partition_index=p, leader_id=self.node_id,
                                                     replica_nodes=[self.node_id], isr_nodes=[self.node_id])
                         for p in range(n)]) for t, n in topics.items()])

        return handle

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            while head := f.read(4):
                frame = framing.read_request(f.read(framing.SIZE.unpack(head)[0]))
                key, version = frame.api_key, frame.api_version
                if key == m.ApiKey.API_VERSIONS:
                    A = m.ApiVersionsResponse
                    resp = A(api_keys=[A.ApiVersion(api_key=k, min_version=lo, max_version=hi)
                                       for k, (lo, hi) in self.versions.items()])
                else:
                    req = frame.decode_body(m.request_class(key))
                    self.requests.append((key, version, req))
                    resp = self.handlers[key](req, version)
                conn.sendall(join(framing.response_frame(resp, version, frame.correlation_id)))

    def close(self) -> None:
        self.server.close()
