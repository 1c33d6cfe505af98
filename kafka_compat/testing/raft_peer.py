"""A metadata quorum member on its own, replicating a key/value toy instead of metadata: for tests
and benchmarks of the Raft layer (as Kafka's kafka.tools.TestRaftServer is for KRaft).

    python -m kafka_compat.testing.raft_peer --node-id 1 \\
        --voters 1@127.0.0.1:19091,2@127.0.0.1:19092,3@127.0.0.1:19093 --dir /tmp/raft-1 \\
        --client-listen 127.0.0.1:19191

Its controller listener (its own address in --voters, or --listen for an observer) serves Raft's
RPCs through the broker's own request pipeline and handlers: Vote, BeginQuorumEpoch,
EndQuorumEpoch, Fetch, FetchSnapshot, DescribeQuorum (each node's own view: leader, epoch, high
watermark) and ApiVersions. Its client listener (--client-listen) serves what a test drives it
with, in Kafka's terms:

- Produce to `__cluster_metadata-0`: the records' values (`key=value`) proposed as one batch and
  answered once committed (the last offset as `base_offset`); a node that does not lead answers
  NOT_LEADER_OR_FOLLOWER with the leader it knows (`current_leader`, v10+);
- Fetch of `__cluster_metadata-0` (v4-v12): the committed log, from its start to the high watermark;
- ApiVersions.

SIGTERM (or ^C) stops it gracefully: a leader resigns first, so the others need not wait out a
fetch timeout.
"""

from __future__ import annotations

import signal
from pathlib import Path

import trio
import typer

from kafka_compat import logs
from kafka_compat.client.fetched import iter_fetched
from kafka_compat.metadata.image import MetadataImage
from kafka_compat.protocol import messages as m
from kafka_compat.protocol.errors import ErrorCode
from kafka_compat.raft import wire
from kafka_compat.raft.config import QuorumConfig, parse_bootstrap_servers, parse_voters
from kafka_compat.raft.driver import CommitLost, RaftDriver
from kafka_compat.raft.node import NotLeaderError
from kafka_compat.raft.ready import Batch
from kafka_compat.server.connection import Connection
from kafka_compat.server.handlers import CONTROLLER, Handler, RequestContext
from kafka_compat.server.handlers.api_versions import api_versions
from kafka_compat.server.pipeline import RequestPipeline, apis
from kafka_compat.server.socket_server import accept

A = m.ApiKey
RAFT_APIS = (A.VOTE, A.BEGIN_QUORUM_EPOCH, A.END_QUORUM_EPOCH, A.FETCH, A.FETCH_SNAPSHOT, A.DESCRIBE_QUORUM,
             A.API_VERSIONS)
MAX_REQUEST_BYTES = 100 * 1024 * 1024


class KeyValueStateMachine:
    """Records are `key=value`; the state is the last value of each key."""

    def __init__(self):
        self.data: dict[str, str] = {}
        self.end_offset = 0

    def apply(self, batch: Batch) -> None:
        for value in batch.values:
            key, _, v = value.decode().partition("=")
            self.data[key] = v
        self.end_offset = batch.last_offset + 1

    def snapshot(self) -> tuple[int, list[bytes]]:
        return self.end_offset, [f"{k}={v}".encode() for k, v in sorted(self.data.items())]

    def restore(self, end_offset: int, values: list[bytes]) -> None:
        self.data = {}
        for value in values:
            key, _, v = value.decode().partition("=")
            self.data[key] = v
        self.end_offset = end_offset


async def _propose(ctx: RequestContext, req: m.ProduceRequest) -> m.ProduceResponse:
    R = m.ProduceResponse
    values = [r.value for t in req.topic_data for p in t.partition_data for r in iter_fetched(p.records)]
    answer = R.PartitionProduceResponse(index=wire.METADATA_PARTITION, error_code=ErrorCode.NONE)
    try:
        with trio.fail_after(req.timeout_ms / 1000):
            answer.base_offset = (await ctx.broker.raft.propose(values)).offset
    except NotLeaderError as e:
        answer.error_code = ErrorCode.NOT_LEADER_OR_FOLLOWER
        if ctx.api_version >= 10:
            answer.current_leader = R.LeaderIdAndEpoch(leader_id=e.leader_id, leader_epoch=e.epoch)
    except (CommitLost, trio.TooSlowError):
        answer.error_code = ErrorCode.REQUEST_TIMED_OUT
    return R(responses=[R.TopicProduceResponse(name=wire.METADATA_TOPIC, partition_responses=[answer])])


async def _read_log(ctx: RequestContext, req: m.FetchRequest) -> m.FetchResponse:
    R = m.FetchResponse
    raft = ctx.broker.raft
    end = min(raft.node.high_watermark, raft.log.end_offset)
    data = b"".join(bytes(b.data) for b in raft.log.batches(raft.log.start_offset, end))
    p = R.PartitionData(partition_index=wire.METADATA_PARTITION, high_watermark=end,
                        log_start_offset=raft.log.start_offset, records=data)
    return R(responses=[R.FetchableTopicResponse(topic=wire.METADATA_TOPIC, partitions=[p])])


CLIENT_APIS = {A.PRODUCE: Handler(A.PRODUCE, 3, 11, _propose), A.FETCH: Handler(A.FETCH, 4, 12, _read_log),
               A.API_VERSIONS: Handler(A.API_VERSIONS, 0, 4, api_versions)}


class RaftPeer:
    """Node `node_id` of the quorum, with its files under `data_dir`, serving Raft on `listen` and
    the test's requests on `client_listen` (port 0 picks a free one: see `port`, `client_port`)."""

    def __init__(self, node_id: int, config: QuorumConfig, data_dir: Path, *, listen: tuple[str, int],
                 client_listen: tuple[str, int] | None = None, snapshot_every: int = 0):
        self.state_machine = KeyValueStateMachine()
        self.raft = RaftDriver(node_id, config, data_dir, self.state_machine, snapshot_every=snapshot_every)
        self.metadata = MetadataImage(config.cluster_id or "")  # what ApiVersions reports: no features
        self.listen, self.client_listen = listen, client_listen
        self.port: int | None = None
        self.client_port: int | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        raft_apis = {k: h for k, h in apis(CONTROLLER).items() if k in RAFT_APIS}
        async with trio.open_nursery() as nursery:
            self.port = await self._listen(nursery, self.listen, raft_apis, "CONTROLLER")
            if self.client_listen is not None:
                self.client_port = await self._listen(nursery, self.client_listen, CLIENT_APIS, "CLIENT")
            await nursery.start(self.raft.run)
            task_status.started(self)

    async def _listen(self, nursery: trio.Nursery, address: tuple[str, int], handlers, name: str) -> int:
        host, port = address
        sockets = await trio.open_tcp_listeners(port, host=host)

        async def serve(stream: trio.SocketStream, peer: str) -> None:
            await Connection(stream, RequestPipeline(self, handlers, name, peer), peer,
                             max_request_bytes=MAX_REQUEST_BYTES).run()

        for sock in sockets:
            nursery.start_soon(accept, sock, serve, nursery)
        return sockets[0].socket.getsockname()[1]


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


@app.command()
def main(
    node_id: int = typer.Option(..., "--node-id", help="node.id"),
    voters: str = typer.Option(..., "--voters", help="controller.quorum.voters: id@host:port,..."),
    data_dir: Path = typer.Option(..., "--dir", help="where __cluster_metadata-0 lives"),
    listen: str = typer.Option("", "--listen", help="host:port to listen on (default: this node's voter address)"),
    client_listen: str = typer.Option("", "--client-listen", help="host:port for the test's requests"),
    bootstrap_servers: str = typer.Option("", "--bootstrap-servers", help="controller.quorum.bootstrap.servers"),
    cluster_id: str = typer.Option("raft-peer", "--cluster-id"),
    election_timeout_ms: int = typer.Option(1000, "--election-timeout-ms"),
    fetch_timeout_ms: int = typer.Option(2000, "--fetch-timeout-ms"),
    snapshot_every: int = typer.Option(0, "--snapshot-every", help="records between snapshots (0: never)"),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    logs.configure("console", log_level)
    voter_endpoints = parse_voters(voters)
    bootstrap = parse_bootstrap_servers(bootstrap_servers)
    config = QuorumConfig(voters=frozenset(voter_endpoints), endpoints={**voter_endpoints, **bootstrap},
                          bootstrap=tuple(bootstrap), cluster_id=cluster_id, election_timeout_ms=election_timeout_ms,
                          fetch_timeout_ms=fetch_timeout_ms)
    if listen:
        address = _address(listen)
    elif node_id in voter_endpoints:
        address = tuple(voter_endpoints[node_id])
    else:
        raise typer.BadParameter("an observer needs --listen", param_hint="--listen")
    peer = RaftPeer(node_id, config, data_dir, listen=address, client_listen=_address(client_listen) if client_listen
                    else None, snapshot_every=snapshot_every)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    await peer.raft.shutdown()  # a leader hands over before it goes
                    nursery.cancel_scope.cancel()
                    return

    trio.run(run)


if __name__ == "__main__":
    app()
